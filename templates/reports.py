"""Everything generate.py writes besides the templates, built in memory from the templates.

Pure: file name -> text. The evidence report (`evidence-<suffix>.md` and `.html`), the D2
source of each stack's diagram (`<stack>.d2`, rendered to SVG by generate.py through
templates.d2render) and the runbook. The diagrams and the runbook are the same for every
suffix, so their committed copies in docs/ (`DOCS`) are simply these texts.
"""

from __future__ import annotations

from collections.abc import Mapping

from templates import diagram, evidence, runbook
from templates.registry import STACKS
from templates.sources import Sources

# docs/ copies kept in the repository (refreshed by `generate.py --docs`): file -> stack base.
DOCS_DIAGRAMS = {"docs/payment-platform.d2": "payment-platform"}
DOCS_RUNBOOK = "docs/runbook.md"


def diagram_sources(templates: Mapping[str, dict], suffix: str) -> dict[str, str]:
    """`<stack>.d2` -> D2 source for every template."""
    return {
        f"{name}.d2": diagram.to_d2(template, title=f"{name.removesuffix('-' + suffix)}-<suffix>")
        for name, template in templates.items()
    }


def evidence_files(templates: Mapping[str, dict], suffix: str, sources: Sources) -> dict:
    """`evidence-<suffix>.md` and its HTML rendering."""
    text = evidence.render_markdown(templates, suffix, sources)
    return {f"evidence-{suffix}.md": text, f"evidence-{suffix}.html": evidence.render_html(text)}


def covers_every_stack(templates: Mapping[str, dict], suffix: str) -> bool:
    """Whether every registered stack was built (the evidence report needs them all)."""
    return {f"{base}-{suffix}" for base in STACKS} <= set(templates)


def docs_files(templates: Mapping[str, dict], suffix: str) -> dict[str, str]:
    """The committed copies in docs/: the runbook and the platform's diagram source."""
    sources = diagram_sources(templates, suffix)
    files = {
        path: sources[f"{base}-{suffix}.d2"]
        for path, base in DOCS_DIAGRAMS.items()
        if f"{base}-{suffix}.d2" in sources
    }
    files[DOCS_RUNBOOK] = runbook.render(templates, suffix)
    return files

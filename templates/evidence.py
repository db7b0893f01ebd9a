"""The evidence report: per requirement, what in the generated JSON implements it.

Pure: built from the template dicts (stack name -> dict, as generate.py writes them), the
requirement tables and the test index; `render_markdown` returns the text generate.py
writes to build/evidence-<suffix>.md, `render_html` its HTML rendering. Every value in
the report is read from the templates; the tables only say where to look.
"""

from __future__ import annotations

import copy
import hashlib
import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from templates.cfnread import ABSENT, LABEL_PROPERTIES, read_path
from templates.common import to_json
from templates.requirements import Requirement, Selector
from templates.sources import Sources

INLINE_LIMIT = 100  # longer values are shown as an indented JSON block
NAME_PATH = "@name"  # a selector path: the physical-name property of each resource's type
CHECKS_IN_CI = (
    "cfn-lint -c I, checkov and cdk-nag (AwsSolutions, PCI DSS 3.2.1, NIST 800-53 rev 5) "
    "run on these templates in CI (`.ci/run`) and fail the build on any finding that is "
    "not suppressed below"
)


# Where a template can hold a secret's value: the report shows that a value is set there,
# never the value (it is attached to audits and CI artifacts). An environment variable's
# name is free-form, so its name decides.
SECRET_NAME = re.compile(r"(?i)secret|passw|token|api_?key|private_?key|credential")
REDACTED = "(a value is set; not shown: a secret)"


class EvidenceError(ValueError):
    """A requirement's evidence selector that matches nothing in the templates."""


@dataclass(frozen=True)
class Suppression:
    """A finding accepted rather than fixed, with the reason written in the template."""

    tool: str  # checkov | cdk-nag | cfn-guard
    rule: str
    stack: str
    resource: str
    reason: str
    applies_to: tuple[str, ...] = ()


def slug(text: str) -> str:
    """The anchor GitHub and Python-Markdown's toc give a heading."""
    value = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", value)


def template_hash(template: Mapping[str, Any]) -> str:
    """SHA-256 of the template's deterministic JSON (the bytes generate.py writes)."""
    return hashlib.sha256(to_json(template).encode()).hexdigest()


def by_base(templates: Mapping[str, dict], suffix: str) -> dict[str, dict]:
    """Stack base name (`payment-api`) -> template, from stack names (`payment-api-qa`)."""
    return {name.removesuffix(f"-{suffix}"): t for name, t in templates.items()}


def suppressions(stacks: Mapping[str, dict]) -> list[Suppression]:
    """Every suppression in every resource's Metadata (checkov, cdk-nag, cfn-guard)."""
    found = []
    for stack, template in sorted(stacks.items()):
        for logical_id, resource in sorted(template.get("Resources", {}).items()):
            metadata = resource.get("Metadata", {})
            for skip in metadata.get("checkov", {}).get("skip", []):
                found.append(
                    Suppression("checkov", skip["id"], stack, logical_id, skip.get("comment", ""))
                )
            for rule in metadata.get("cdk_nag", {}).get("rules_to_suppress", []):
                found.append(
                    Suppression(
                        "cdk-nag",
                        rule["id"],
                        stack,
                        logical_id,
                        rule.get("reason", ""),
                        tuple(str(a) for a in rule.get("applies_to", rule.get("appliesTo", []))),
                    )
                )
            guard = metadata.get("guard", {})
            for rule in guard.get("SuppressedRules", []):
                # cfn-guard reads only the names; our templates keep each reason beside it.
                name = rule if isinstance(rule, str) else rule.get("id", str(rule))
                reason = guard.get("Reasons", {}).get(name, "")
                if not isinstance(rule, str):
                    reason = rule.get("reason", reason)
                found.append(Suppression("cfn-guard", name, stack, logical_id, reason))
    return found


def redacted(stacks: Mapping[str, dict]) -> dict[str, dict]:
    """A copy of the templates with every secret-bearing value replaced by REDACTED: an
    API key's Value, a secret's SecretString, a NoEcho parameter's Default and a function's
    environment variable whose name says it is a secret."""
    clean = copy.deepcopy(dict(stacks))
    for template in clean.values():
        for parameter in template.get("Parameters", {}).values():
            if str(parameter.get("NoEcho", "")).lower() == "true" and "Default" in parameter:
                parameter["Default"] = REDACTED
        for resource in template.get("Resources", {}).values():
            props = resource.get("Properties", {})
            kind = resource.get("Type")
            if kind == "AWS::ApiGateway::ApiKey" and "Value" in props:
                props["Value"] = REDACTED
            if kind == "AWS::SecretsManager::Secret" and "SecretString" in props:
                props["SecretString"] = REDACTED
            variables = props.get("Environment", {}).get("Variables", {})
            if isinstance(variables, dict):
                for name in variables:
                    if SECRET_NAME.search(name):
                        variables[name] = REDACTED
    return clean


def _items(template: dict, selector: Selector) -> list[tuple[str, dict]]:
    """(name, item) pairs of a template section that a selector picks."""
    section = template.get(selector.section, {})
    picked = []
    for name, item in sorted(section.items()):
        if selector.ids and name not in selector.ids:
            continue
        if selector.types and "*" not in selector.types and item.get("Type") not in selector.types:
            continue
        if any(_read(item, path) != value for path, value in selector.where):
            continue
        picked.append((name, item))
    return picked


def _code(value: Any) -> str:
    """A value as inline code (compact JSON for structures)."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return "`" + text.replace("`", "'") + "`"


def label(item: Mapping[str, Any]) -> str:
    """What the report says beside an item's name: its type, and the condition it exists
    under (evidence that holds only for some parameter values must say so)."""
    parts = [item.get("Type", "")]
    if isinstance(item.get("Condition"), str):
        parts.append(f"only if condition `{item['Condition']}` holds")
    return "; ".join(p for p in parts if p)


def _named(name: str, labels: Mapping[str, str]) -> str:
    return f"`{name}`" + (f" ({labels[name]})" if labels.get(name) else "")


def _value_lines(path: str, value: Any, names: list[str], types: Mapping[str, str]) -> list[str]:
    """One bullet: a path, its value, and the resources that have it."""
    where = ", ".join(_named(name, types) for name in names)
    if value is ABSENT:
        return [f"- `{path}`: *{{absent}}* — {where}"]
    compact = json.dumps(value, sort_keys=True)
    if len(compact) <= INLINE_LIMIT:
        return [f"- `{path}` = {_code(value)} — {where}"]
    # Not indented under the bullet: Python-Markdown does not nest fenced blocks in lists.
    block = json.dumps(value, sort_keys=True, indent=2)
    return [f"- `{path}` — {where}:", "", "```json", *block.splitlines(), "```", ""]


def _read(item: dict, path: str) -> Any:
    """read_path, plus `@name`: the resource's physical-name property, whatever its type."""
    if path == NAME_PATH:
        prop = LABEL_PROPERTIES.get(item.get("Type", ""))
        return read_path(item, f"Properties.{prop}") if prop else ABSENT
    return read_path(item, path)


def _grouped(items: list[tuple[str, dict]], paths: Iterable[str]) -> list[tuple[str, Any, list]]:
    """(path, value, names) with the names of every item that has that value at that path."""
    rows = []
    for path in paths:
        groups: dict[str, tuple[Any, list[str]]] = {}
        for name, item in items:
            value = _read(item, path)
            key = "\0absent" if value is ABSENT else json.dumps(value, sort_keys=True)
            groups.setdefault(key, (value, []))[1].append(name)
        rows += [(path, value, names) for value, names in groups.values()]
    return rows


def selector_lines(stacks: Mapping[str, dict], selector: Selector, where: str) -> list[str]:
    """The evidence one selector reads, as Markdown lines; EvidenceError when it reads
    nothing (a renamed resource or property must not leave a silent hole)."""
    if selector.files:
        return [f"- implemented in {', '.join(f'`{f}`' for f in selector.files)}"]
    template = stacks.get(selector.stack)
    if template is None:
        raise EvidenceError(f"{where}: no stack {selector.stack!r} (have {sorted(stacks)})")
    items = _items(template, selector)
    if not items:
        raise EvidenceError(f"{where}: nothing in {selector.stack} matches {selector}")
    missing = sorted(set(selector.ids) - {name for name, _ in items})
    if missing:
        # One renamed resource of several must not drop out of the evidence unnoticed.
        raise EvidenceError(
            f"{where}: {selector.stack} has no {selector.section} entry {missing} matching "
            f"{selector}"
        )
    types = {name: label(item) for name, item in items}
    where_read = selector.section if selector.section != "Resources" else "resources"
    lines = ["", f"*{selector.stack}* {where_read}:", ""]
    rows = _grouped(items, selector.paths)
    for path in selector.paths:
        if selector.absent_means == "-" and all(v is ABSENT for p, v, _ in rows if p == path):
            raise EvidenceError(f"{where}: {path} is set on none of {sorted(types)}")
    for path, value, names in rows:
        if value is ABSENT and selector.absent_means is None:
            raise EvidenceError(
                f"{where}: {path} is not set on {', '.join(names)} (set absent_means if "
                "unset is the evidence)"
            )
        if value is ABSENT and selector.absent_means == "-":
            continue  # the path does not apply to these items (another name property)
        for line in _value_lines(path, value, names, types):
            lines.append(line.replace("{absent}", selector.absent_means or ""))
    return lines


# PCI rule statuses that need a test (tests/evidence/test_requirement_markers.py): a rule a
# resource meets. An accepted rule's evidence is its suppression's reason (cdk-nag fails CI
# on a suppression that suppresses nothing); an inapplicable one has nothing to prove.
RULE_STATUSES_NEEDING_A_TEST = ("met", "met, partly accepted")
WHAT_A_TEST_PROVES = (
    "A test listed under a requirement declares that it proves it "
    "(`@pytest.mark.requirement`); the suite fails when a seed requirement or a PCI rule a "
    "resource meets has no such test, and when a listed test is skipped, xfailed or never "
    "collected (tests/requirement_plugin.py). This report is written before the tests run: "
    "it is evidence together with a green test run of the same commit (CI, `.ci/run`)."
)


def _tests_line(tests: tuple[str, ...], status: str = "met") -> str:
    if tests:
        return "**Tests:** " + ", ".join(f"`{t}`" for t in tests)
    if status in RULE_STATUSES_NEEDING_A_TEST:
        return "**Tests:** none yet (the requirement-marker check fails the suite)"
    if status == "accepted":
        return "**Tests:** none needed: accepted, the reason above is the evidence"
    return "**Tests:** none needed: no resource of its types"


def _seed_section(stacks: Mapping[str, dict], req: Requirement, sources: Sources) -> list[str]:
    lines = [f"### {req.id}", ""]
    lines += [f"> {quote}" for quote in req.quotes]
    label = "How" if req.status == "met" else "Deviation"
    lines += ["", f"**Status:** {req.status}. **{label}:** {req.how}", ""]
    for n, selector in enumerate(req.selectors):
        lines += selector_lines(stacks, selector, f"{req.id} evidence {n}")
    lines += ["", _tests_line(sources.tests.tests(req.id)), ""]
    return lines


def rule_status(stacks: Mapping[str, dict], rule: Requirement, accepted: list[Suppression]):
    """(status, [(stack, logical id, type)] the rule evaluates) of one cdk-nag rule."""
    evaluated = [
        (stack, logical_id, resource["Type"])
        for stack, template in sorted(stacks.items())
        for logical_id, resource in sorted(template.get("Resources", {}).items())
        if resource["Type"] in rule.resource_types
    ]
    if not evaluated:
        return "not applicable", evaluated
    mine = [s for s in accepted if s.rule == rule.id]
    # A suppression limited to some findings (`applies_to`) accepts those, not the rule.
    whole = {(s.stack, s.resource) for s in mine if not s.applies_to}
    some = {(s.stack, s.resource) for s in mine if s.applies_to}
    hit = [e for e in evaluated if (e[0], e[1]) in whole]
    if not hit and not some:
        return "met", evaluated
    return ("accepted" if len(hit) == len(evaluated) else "met, partly accepted"), evaluated


def _rule_section(stacks, rule: Requirement, accepted: list[Suppression], sources) -> list[str]:
    status, evaluated = rule_status(stacks, rule, accepted)
    controls = ", ".join(rule.controls) or "none stated"
    lines = [
        f"### {rule.id}",
        "",
        f"> cdk-nag's finding when the rule fails: {rule.title}",
        "",
        f"**Status:** {status}. **Level:** {rule.level}. **PCI DSS controls:** {controls}.",
        f"Evaluates {', '.join(f'`{t}`' for t in rule.resource_types)}"
        + (
            f" (looks up {', '.join(f'`{t}`' for t in rule.related_types)})"
            if rule.related_types
            else ""
        )
        + (f"; reads {', '.join(f'`{p}`' for p in rule.properties)}." if rule.properties else "."),
        "",
    ]
    if status == "not applicable":
        lines += ["No resource of these types in the templates.", ""]
        return [*lines, _tests_line(sources.tests.tests(rule.id), status), ""]
    for stack in sorted({e[0] for e in evaluated}):
        ids = [e[1] for e in evaluated if e[0] == stack]
        related = [
            lid
            for lid, r in sorted(stacks[stack]["Resources"].items())
            if r["Type"] in rule.related_types
        ]
        selector = Selector(
            stack=stack,
            ids=tuple(ids + related),
            paths=tuple(f"Properties.{p}" for p in rule.properties),
            absent_means="not set",
        )
        if rule.properties:
            lines += selector_lines(stacks, selector, rule.id)
        else:
            labels = {lid: label(stacks[stack]["Resources"][lid]) for lid in ids + related}
            lines += [f"*{stack}*: " + ", ".join(_named(i, labels) for i in ids)]
            if related:
                lines += ["", "Looked up: " + ", ".join(_named(i, labels) for i in related)]
        for s in accepted:
            if s.rule == rule.id and s.stack == stack:
                scope = f" (for {', '.join(s.applies_to)})" if s.applies_to else ""
                lines.append(f"- **accepted** on `{s.resource}`{scope}: {s.reason}")
    lines += ["", _tests_line(sources.tests.tests(rule.id), status), ""]
    return lines


def _summary_row(req: Requirement, status: str, sources: Sources) -> str:
    tests = len(sources.tests.tests(req.id))
    return f"| [{req.id}](#{slug(req.id)}) | {status} | {tests} |"


def render_markdown(templates: Mapping[str, dict], suffix: str, sources: Sources) -> str:
    """The whole report as Markdown (template hashes of `templates`, values of a copy with
    every secret redacted)."""
    stacks = redacted(by_base(templates, suffix))
    accepted = suppressions(stacks)
    statuses = {r.id: rule_status(stacks, r, accepted)[0] for r in sources.rules.rules}
    seed_reqs = [r for table in sources.seeds for r in table.requirements]
    lines = [
        f"# Evidence report: payment infrastructure, suffix `{suffix}`",
        "",
        "Generated by `python generate.py --suffix " + suffix + "` from the templates it "
        "writes; every value below is read from that JSON. " + CHECKS_IN_CI + ".",
        "",
        WHAT_A_TEST_PROVES,
        "",
        "## Templates",
        "",
        "| stack | file | SHA-256 of the file |",
        "| --- | --- | --- |",
        *(
            f"| {name} | `{name}.json` | `{template_hash(t)}` |"
            for name, t in sorted(templates.items())
        ),
        "",
        "Resources marked *only if condition `X` holds* exist only for the parameter values "
        "that condition names:",
        "",
        "| stack | condition | definition |",
        "| --- | --- | --- |",
        *(
            f"| {name} | `{condition}` | {_code(definition)} |"
            for name, t in sorted(stacks.items())
            for condition, definition in sorted(t.get("Conditions", {}).items())
        ),
        "",
        "## Tools",
        "",
        "| tool | version |",
        "| --- | --- |",
        *(f"| {tool} | {version} |" for tool, version in sources.tool_versions.items()),
        "",
        "## Summary",
        "",
        f"- Seed requirements: {len(seed_reqs)} "
        f"({sum(r.status == 'met' for r in seed_reqs)} met, "
        f"{sum(r.status == 'deviation' for r in seed_reqs)} deviations), "
        f"{sum(not sources.tests.tests(r.id) for r in seed_reqs)} without a test.",
        f"- {sources.rules.pack} rules (cdk-nag {sources.rules.cdk_nag_version}): "
        f"{len(sources.rules.rules)}; "
        + ", ".join(f"{n} {s}" for s, n in sorted(_count(statuses.values()).items()))
        + ".",
        f"- Suppressions: {len(accepted)} "
        f"({', '.join(f'{n} {t}' for t, n in sorted(_count(s.tool for s in accepted).items()))}).",
        "",
        "| requirement | status | tests |",
        "| --- | --- | --- |",
        *(_summary_row(r, r.status, sources) for r in seed_reqs),
        *(_summary_row(r, statuses[r.id], sources) for r in sources.rules.rules),
        "",
    ]
    for table in sources.seeds:
        lines += [f"## Seed `{table.seed}`", ""]
        for req in table.requirements:
            lines += _seed_section(stacks, req, sources)
    lines += [
        f"## {sources.rules.pack} (cdk-nag {sources.rules.cdk_nag_version})",
        "",
        "A rule is *met* when the templates have resources of the types it evaluates and none "
        "suppresses it: CI's cdk-nag step fails on any unsuppressed error or warning, so on a "
        "green build each of them complies (the values it reads are listed). It is "
        "*accepted* when every such resource suppresses it, with the reason shown, and *not "
        "applicable* when the templates have no resource of its types.",
        "",
    ]
    for rule in sources.rules.rules:
        lines += _rule_section(stacks, rule, accepted, sources)
    lines += [
        "## Every suppression",
        "",
        "| tool | rule | stack | resource | reason |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {s.tool} | {s.rule} | {s.stack} | `{s.resource}` | {s.reason.replace('|', '/')} |"
        for s in accepted
    ]
    return "\n".join(lines).rstrip() + "\n"


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto;
        padding: 0 1rem; line-height: 1.45; color: #1b1f24; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccd; padding: .2rem .5rem; }}
code {{ background: #f3f4f7; padding: 0 .2rem; word-break: break-all; }}
pre {{ background: #f3f4f7; padding: .5rem; overflow-x: auto; }}
blockquote {{ border-left: 4px solid #99a; margin-left: 0; padding-left: 1rem; color: #444; }}
</style></head><body>
{body}
</body></html>
"""


def render_html(markdown_text: str) -> str:
    """The report as one self-contained HTML page (Python-Markdown: tables, anchors)."""
    # Imported here: only the evidence step needs it.
    import markdown

    converter = markdown.Markdown(extensions=["tables", "fenced_code", "toc"], output_format="html")
    # The report holds no HTML of its own, but its text does hold `<suffix>` and whatever a
    # template's reasons say: shown as text, never passed through as markup.
    converter.preprocessors.deregister("html_block")
    converter.inlinePatterns.deregister("html")
    body = converter.convert(markdown_text)
    title = html.escape(markdown_text.splitlines()[0].lstrip("# "))
    return HTML_PAGE.format(title=title, body=body)

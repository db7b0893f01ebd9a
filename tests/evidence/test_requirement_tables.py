"""The requirement tables: every seed sentence accounted for, every entry well formed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from templates.requirements import RequirementTableError, parse_seed_table, seed_sentences

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
seed = "seeds/x.txt"
prefix = "S000"
stack = "payment-api"
[[requirement]]
id = "S000-THING"
quotes = ["Do the thing."]
status = "met"
how = "done"
[[requirement.evidence]]
type = "AWS::ApiGateway::RestApi"
paths = ["Properties.Name"]
"""


def test_every_seed_sentence_is_a_requirement_or_context_and_every_quote_is_in_its_seed(
    sources,
):
    for table in sources.seeds:
        sentences = set(seed_sentences(sources.seed_texts[table.seed]))
        assert sentences, table.seed
        missing = sorted(sentences - table.quotes)
        invented = sorted(table.quotes - sentences)
        assert not missing, f"{table.name}: seed sentences not in the table: {missing}"
        assert not invented, f"{table.name}: quotes that are not seed sentences: {invented}"


def test_ids_are_unique_across_tables_and_deviations_say_why(sources):
    ids = [r.id for table in sources.seeds for r in table.requirements]
    assert len(ids) == len(set(ids))
    deviations = {r.id for t in sources.seeds for r in t.requirements if r.status == "deviation"}
    # The deliberate deviations of DESIGN.md are listed as such, with their reasons.
    assert {"S000-SINGLE-FILE", "S000-OUTPUT-API-KEY", "S001-CDK-PYTHON"} <= deviations
    for table in sources.seeds:
        for req in table.requirements:
            assert len(req.how) > 20, req.id


def test_the_sentence_splitter_drops_headings_and_bullets():
    text = (
        "# Title\n\n1. **API Layer**\n   - Use **on-demand** mode\n   - Be fast\nOne. Two? Three!"
    )
    assert seed_sentences(text) == ["Use on-demand mode", "Be fast", "One.", "Two?", "Three!"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('status = "met"', 'status = "done"'), "status 'done' is not one of"),
        (('id = "S000-THING"', 'id = "S001-THING"'), "id must look like S000-"),
        (('how = "done"', ""), "says `how`"),
        (('quotes = ["Do the thing."]', ""), "quotes the seed sentence"),
        (('paths = ["Properties.Name"]', 'pathz = ["x"]'), "unknown evidence key"),
        (('type = "AWS::ApiGateway::RestApi"', 'section = "Nope"'), "section 'Nope'"),
        (("[[requirement]]", "[[requirement]\n"), "not valid TOML"),
    ],
)
def test_a_malformed_table_names_the_file_and_the_entry(change, message):
    with pytest.raises(RequirementTableError, match=message) as error:
        parse_seed_table("seed-x.toml", MINIMAL.replace(*change))
    assert str(error.value).startswith("seed-x.toml")


def test_the_rule_table_lists_the_pack_with_levels_and_controls(sources):
    rules = sources.rules
    assert rules.pack == "PCI.DSS.321"
    assert len(rules.rules) >= 60
    for rule in rules.rules:
        assert rule.id.startswith("PCI.DSS.321-"), rule.id
        assert rule.level in ("Error", "Warning"), rule.id
        assert rule.resource_types, rule.id
        assert all(t.startswith("AWS::") for t in rule.resource_types + rule.related_types)
    ids = [r.id for r in rules.rules]
    assert len(ids) == len(set(ids))


def test_the_rule_table_is_the_version_ci_pins(sources):
    package = ROOT / "tools" / "cdk-nag" / "package.json"
    pinned = json.loads(package.read_text())["dependencies"]["cdk-nag"]
    assert sources.rules.cdk_nag_version == pinned, (
        "tools/cdk-nag/package.json pins another cdk-nag: run npm ci there, then "
        "python requirements/extract_pci_rules.py"
    )

"""Every requirement is proved by a test that says so, and every marker names a requirement."""

from __future__ import annotations

from templates import evidence
from templates.requirements import all_ids

from .conftest import SUFFIX


def test_every_seed_requirement_has_a_test(sources):
    untested = [
        r.id for t in sources.seeds for r in t.requirements if not sources.tests.tests(r.id)
    ]
    assert untested == [], (
        f"requirements without a test: {untested}; mark the test that proves each with "
        '@pytest.mark.requirement("ID")'
    )


def test_every_pci_rule_a_resource_meets_has_a_test(built, sources):
    stacks = evidence.by_base(built, SUFFIX)
    accepted = evidence.suppressions(stacks)
    untested = [
        rule.id
        for rule in sources.rules.rules
        if evidence.rule_status(stacks, rule, accepted)[0] in evidence.RULE_STATUSES_NEEDING_A_TEST
        and not sources.tests.tests(rule.id)
    ]
    assert untested == [], (
        f"PCI DSS rules met by the templates without a test: {untested}; mark the test that "
        'proves each with @pytest.mark.requirement("ID")'
    )


def test_every_marker_names_a_requirement(sources):
    unknown = sorted(set(sources.tests.by_requirement) - all_ids(sources.seeds, sources.rules))
    assert unknown == []

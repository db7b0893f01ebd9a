"""The evidence report: read from the templates, complete, and honest about suppressions."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import re

import pytest

from templates import evidence, reports
from templates.common import to_json
from templates.requirements import Selector
from templates.testindex import MarkerIndex

from .conftest import SUFFIX


@pytest.fixture(scope="module")
def report(built, sources) -> str:
    return evidence.render_markdown(built, SUFFIX, sources)


def section(report: str, requirement_id: str) -> str:
    """The report's section of one requirement."""
    match = re.search(rf"^### {re.escape(requirement_id)}\n(.*?)(?=^##)", report, re.S | re.M)
    assert match, requirement_id
    return match.group(1)


def test_every_requirement_and_every_pci_rule_has_a_section(report, sources):
    ids = [r.id for t in sources.seeds for r in t.requirements] + [
        r.id for r in sources.rules.rules
    ]
    for requirement_id in ids:
        assert f"[{requirement_id}](#{evidence.slug(requirement_id)})" in report
        section(report, requirement_id)


def test_the_report_states_each_template_hash_and_the_tool_versions(report, built, sources):
    for name, template in built.items():
        digest = hashlib.sha256(to_json(template).encode()).hexdigest()
        assert f"| {name} | `{name}.json` | `{digest}` |" in report
    for tool, version in sources.tool_versions.items():
        assert f"| {tool} | {version} |" in report
    assert "cfn-lint" in sources.tool_versions and "troposphere" in sources.tool_versions


def test_values_are_read_from_the_template_not_written_by_hand(built, sources):
    before = section(evidence.render_markdown(built, SUFFIX, sources), "S001-PITR")
    assert '`{"PointInTimeRecoveryEnabled": true}`' in before
    changed = copy.deepcopy(built)
    table = changed[f"payment-platform-{SUFFIX}"]["Resources"]["TransactionsTable"]
    table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] = False
    after = section(evidence.render_markdown(changed, SUFFIX, sources), "S001-PITR")
    assert '`{"PointInTimeRecoveryEnabled": false}`' in after


def test_deviations_are_listed_with_their_reason(report, sources):
    text = section(report, "S000-OUTPUT-API-KEY")
    assert "**Status:** deviation" in text and "DescribeStacks" in text
    assert "ApiKeyValueCommand" in text  # what we output instead, read from the template


def test_a_selector_that_matches_nothing_names_the_requirement(built):
    stacks = evidence.by_base(built, SUFFIX)
    with pytest.raises(evidence.EvidenceError, match="S001-X evidence 0: nothing in"):
        evidence.selector_lines(
            stacks,
            Selector(stack="payment-platform", types=("AWS::RDS::DBInstance",), paths=("X",)),
            "S001-X evidence 0",
        )
    with pytest.raises(evidence.EvidenceError, match=r"Properties\.Nope is not set on"):
        evidence.selector_lines(
            stacks,
            Selector(
                stack="payment-platform", ids=("TransactionsTable",), paths=("Properties.Nope",)
            ),
            "S001-X evidence 0",
        )


def test_a_selector_naming_several_ids_fails_when_one_is_gone(built):
    """A deviation's evidence names two outputs; renaming one must not quietly shrink it."""
    stacks = evidence.by_base(copy.deepcopy(built), SUFFIX)
    del stacks["payment-api"]["Outputs"]["ApiKeyValueCommand"]
    with pytest.raises(
        evidence.EvidenceError, match=r"S000-X evidence 0: .*\['ApiKeyValueCommand'\]"
    ):
        evidence.selector_lines(
            stacks,
            Selector(
                stack="payment-api",
                section="Outputs",
                ids=("ApiKeyId", "ApiKeyValueCommand"),
                paths=("Value",),
            ),
            "S000-X evidence 0",
        )


def test_a_suppression_is_reported_with_its_reason_and_makes_the_rule_accepted(built, sources):
    rule = "PCI.DSS.321-CloudWatchLogGroupEncrypted"
    assert "**Status:** met" in section(evidence.render_markdown(built, SUFFIX, sources), rule)
    changed = copy.deepcopy(built)
    for template in changed.values():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::Logs::LogGroup":
                resource["Metadata"] = {
                    "cdk_nag": {"rules_to_suppress": [{"id": rule, "reason": "because X"}]}
                }
    text = section(evidence.render_markdown(changed, SUFFIX, sources), rule)
    assert "**Status:** accepted" in text
    assert "**accepted** on `ApiAccessLogGroup`" in text and "because X" in text


def test_every_checkov_skip_of_the_templates_is_in_the_suppression_list(report, built):
    for name, template in built.items():
        for logical_id, resource in template["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert (
                    f"| checkov | {skip['id']} | {name.removesuffix('-' + SUFFIX)} | "
                    f"`{logical_id}` |" in report
                )


def test_a_rule_for_types_we_do_not_use_is_not_applicable(report):
    text = section(report, "PCI.DSS.321-RDSStorageEncrypted")
    assert "**Status:** not applicable" in text


def test_the_tests_that_name_a_requirement_are_listed(built, sources):
    index = MarkerIndex(by_requirement={"S001-PITR": ("tests/x.py::test_pitr",)})
    text = section(
        evidence.render_markdown(built, SUFFIX, dataclasses.replace(sources, tests=index)),
        "S001-PITR",
    )
    assert "**Tests:** `tests/x.py::test_pitr`" in text


def test_the_report_is_deterministic_and_its_html_has_an_anchor_per_requirement(
    report, built, sources
):
    assert evidence.render_markdown(built, SUFFIX, sources) == report
    page = evidence.render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    for requirement_id in ("S000-API-KEY", "S001-PITR", "PCI.DSS.321-LambdaInsideVPC"):
        assert f'id="{evidence.slug(requirement_id)}"' in page
        assert f'href="#{evidence.slug(requirement_id)}"' in page


def test_a_tests_line_claims_the_suite_fails_only_where_the_marker_check_does(built, sources):
    """A PCI rule without a test: "the check fails the suite" only for a status the check
    requires a test for (an accepted rule's evidence is its reason)."""
    no_tests = dataclasses.replace(sources, tests=MarkerIndex())
    report = evidence.render_markdown(built, SUFFIX, no_tests)
    stacks = evidence.by_base(built, SUFFIX)
    accepted = evidence.suppressions(stacks)
    statuses = {evidence.rule_status(stacks, r, accepted)[0] for r in sources.rules.rules}
    assert {"met", "accepted", "not applicable"} <= statuses
    for rule in sources.rules.rules:
        status = evidence.rule_status(stacks, rule, accepted)[0]
        claims_failure = "the requirement-marker check fails the suite" in section(report, rule.id)
        assert claims_failure == (status in evidence.RULE_STATUSES_NEEDING_A_TEST), rule.id


def test_the_report_says_what_a_listed_test_proves_and_when_the_suite_fails(report):
    assert evidence.WHAT_A_TEST_PROVES in report
    assert "skipped, xfailed or never collected" in evidence.WHAT_A_TEST_PROVES


def test_a_resource_that_exists_only_under_a_condition_is_named_with_it(report, built):
    """The VPC, its flow log and security groups exist only if FunctionsInVpc holds: the
    evidence built on them says so wherever it names them."""
    platform = built[f"payment-platform-{SUFFIX}"]["Resources"]
    conditional = {lid: r["Condition"] for lid, r in platform.items() if "Condition" in r}
    assert conditional.get("Vpc") == "FunctionsInVpc"
    seen = set()
    for logical_id, condition in conditional.items():
        for match in re.finditer(rf"`{re.escape(logical_id)}` \(([^)]*)\)", report):
            assert f"only if condition `{condition}` holds" in match.group(1), logical_id
            seen.add(logical_id)
    assert {"Vpc", "VpcFlowLog", "FunctionsSecurityGroup"} <= seen, seen


def test_a_rule_without_properties_names_the_resources_it_looks_up(report):
    flow_logs = section(report, "PCI.DSS.321-VPCFlowLogsEnabled")
    assert "`Vpc` (AWS::EC2::VPC; only if condition `FunctionsInVpc` holds)" in flow_logs
    assert "Looked up: `VpcFlowLog` (AWS::EC2::FlowLog;" in flow_logs
    assert "| payment-platform | `FunctionsInVpc` | " in report  # what the condition is


def test_no_secret_value_reaches_the_report(built, sources):
    """An API key's value, a secret's string, a NoEcho default or a secret-named function
    variable may sit in a template: the report (attached to audits) says one is set and
    never shows it; the template hash is still the real template's."""
    secret = "s3cr3t-Value-0123456789abcdef"
    changed = copy.deepcopy(built)
    for template in changed.values():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::ApiGateway::ApiKey":
                resource["Properties"]["Value"] = secret
            if resource["Type"] == "AWS::Lambda::Function":
                resource["Properties"]["Environment"]["Variables"]["PROVIDER_API_KEY"] = secret
        template["Parameters"]["ProviderSecret"] = {
            "Type": "String",
            "NoEcho": "true",
            "Default": secret,
        }
        template["Resources"]["ProviderSecret"] = {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {"SecretString": secret},
        }
    files = reports.evidence_files(changed, SUFFIX, sources)
    for name, text in files.items():
        assert secret not in text, name
    markdown = files[f"evidence-{SUFFIX}.md"]
    assert f'"PROVIDER_API_KEY": "{evidence.REDACTED}"' in markdown  # shown as set
    for template in changed.values():
        assert evidence.template_hash(template) in markdown
    assert "PaymentPlatform/qa" in markdown  # what is not a secret is still shown


def test_the_html_shows_angle_brackets_as_text_and_passes_no_markup_through(built, sources):
    """`<suffix>` in a reason must read as `<suffix>` in a browser (not vanish as a tag),
    and a template's text must not become markup in a page attached to an audit."""
    changed = copy.deepcopy(built)
    stage = changed[f"payment-api-{SUFFIX}"]["Resources"]["ApiStage"]
    stage["Metadata"]["cdk_nag"]["rules_to_suppress"][0]["reason"] += ' <img src="x">'
    page = reports.evidence_files(changed, SUFFIX, sources)[f"evidence-{SUFFIX}.html"]
    assert "build/payment-api-&lt;suffix&gt;.json" in page
    assert "<img" not in page and "&lt;img src=" in page
    assert "<table>" in page and '<h3 id="s001-pitr">' in page  # still rendered Markdown


def test_a_suppression_for_some_findings_only_does_not_make_the_rule_accepted(built, sources):
    """cdk-nag's `applies_to` accepts the findings it lists; the rest still have to pass."""
    rule = "PCI.DSS.321-CloudWatchLogGroupEncrypted"
    changed = copy.deepcopy(built)
    for template in changed.values():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::Logs::LogGroup":
                entry = {"id": rule, "reason": "because X", "applies_to": ["Resource::*"]}
                resource["Metadata"] = {"cdk_nag": {"rules_to_suppress": [entry]}}
    text = section(evidence.render_markdown(changed, SUFFIX, sources), rule)
    assert "**Status:** met, partly accepted" in text
    assert "(for Resource::*): because X" in text


def test_every_suppression_in_the_report_carries_its_reason(report, built):
    """checkov, cdk-nag and cfn-guard alike: an accepted finding without its reason is no
    evidence (cfn-guard's reasons sit beside the rule names, in Metadata.guard.Reasons)."""
    rows = [line for line in report.split("## Every suppression", 1)[1].splitlines()]
    rows = [line for line in rows if line.startswith("| ") and line[2:5] not in ("too", "---")]
    assert {row.split(" | ")[0][2:] for row in rows} == {"checkov", "cdk-nag", "cfn-guard"}
    for row in rows:
        reason = row.rstrip(" |").rsplit(" | ", 1)[1]
        assert len(reason) >= 30 and not reason.startswith("`"), row

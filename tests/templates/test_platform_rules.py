"""Rules over whatever the platform template contains, and proof each rule is live:
adding a queue or a function without its DLQ, alarm, log group or tags fails them."""

from __future__ import annotations

import copy

import pytest

from tests.templates import platform_rules as rules
from tests.templates.cfn import props, resources


@pytest.fixture(scope="module")
def platform(all_templates) -> dict:
    return all_templates["payment-platform"]


def with_resource(template: dict, logical_id: str, resource: dict) -> dict:
    changed = copy.deepcopy(template)
    changed["Resources"][logical_id] = resource
    return changed


@pytest.fixture(scope="module")
def bare_queue(platform) -> dict:
    """The platform plus a queue with a name and nothing else."""
    return with_resource(
        platform, "ExtraQueue", {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "extra"}}
    )


@pytest.fixture(scope="module")
def bare_function(platform) -> dict:
    """The platform plus a copy of a function under a new name, without its companions."""
    _, fn = sorted(resources(platform, "AWS::Lambda::Function").items())[0]
    extra = copy.deepcopy(fn)
    props(extra)["FunctionName"] = "extra-function-qa"
    props(extra)["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] = "extra"
    props(extra).pop("Tags")
    return with_resource(platform, "ExtraFunction", extra)


PLATFORM_RULES = [
    rules.queues_without_dlq,
    rules.queues_not_protected,
    rules.dlqs_open_to_other_sources,
    rules.functions_without_log_group,
    rules.functions_without_alarms,
    rules.functions_without_own_role,
    rules.queue_consumers_misfit,
    rules.alarms_not_notifying,
    rules.schedules_that_can_fail_silently,
]


# The rules above, on the platform as generated: what proves these requirements on the
# template itself (the tests below prove each rule catches its defect).
@pytest.mark.requirement("S001-DLQ", "S001-FUNCTION-LOGS", "S001-ALARMS", "S001-ALARM-NOTIFY")
@pytest.mark.parametrize("rule", PLATFORM_RULES, ids=lambda rule: rule.__name__)
def test_platform_keeps_the_rule(platform, rule):
    assert rule(platform) == []


@pytest.mark.requirement("S001-ENVIRONMENT-TAG")
def test_platform_tags_every_taggable_resource(platform, naming):
    assert rules.resources_without_environment_tag(platform, naming.suffix) == []


def test_the_rules_see_real_resources(platform):
    """The rules above are not vacuous: there is something for each to check."""
    assert len(resources(platform, "AWS::SQS::Queue")) >= 2
    assert len(resources(platform, "AWS::Lambda::Function")) == 3
    assert rules.dead_letter_queues(platform)
    assert resources(platform, "AWS::Lambda::EventSourceMapping")
    assert len(resources(platform, "AWS::CloudWatch::Alarm")) >= 10


@pytest.mark.requirement("S001-DLQ")
def test_a_queue_without_dlq_fails(bare_queue):
    assert rules.queues_without_dlq(bare_queue) == ["ExtraQueue: no RedrivePolicy"]


@pytest.mark.requirement("S001-QUEUE-RETENTION")
def test_a_queue_without_encryption_retention_or_tls_policy_fails(bare_queue):
    assert len(rules.queues_not_protected(bare_queue)) == 3


def test_a_queue_without_tags_fails(bare_queue, naming):
    assert rules.resources_without_environment_tag(bare_queue, naming.suffix) == ["ExtraQueue"]


def test_a_dlq_open_to_any_source_fails(platform):
    changed = copy.deepcopy(platform)
    dlq = next(iter(rules.dead_letter_queues(changed)))
    props(changed["Resources"][dlq])["RedriveAllowPolicy"] = {"redrivePermission": "allowAll"}
    assert rules.dlqs_open_to_other_sources(changed)


@pytest.mark.requirement("S001-FUNCTION-LOGS", "S001-ERROR-HANDLING")
def test_a_function_without_log_group_fails(bare_function):
    assert rules.functions_without_log_group(bare_function) == [
        "ExtraFunction: no log group /aws/lambda/extra-function-qa"
    ]


@pytest.mark.requirement("S001-ALARMS")
def test_a_function_without_alarms_fails(bare_function):
    assert rules.functions_without_alarms(bare_function) == [
        "ExtraFunction: no Errors alarm",
        "ExtraFunction: no Throttles alarm",
        "ExtraFunction: no ServerError alarm",
    ]


@pytest.mark.requirement("S001-FUNCTION-PERMISSIONS")
def test_a_function_sharing_a_role_fails(bare_function):
    assert any("shares" in p for p in rules.functions_without_own_role(bare_function))


def test_a_function_without_tags_fails(bare_function, naming):
    untagged = rules.resources_without_environment_tag(bare_function, naming.suffix)
    assert untagged == ["ExtraFunction"]


def test_a_consumer_slower_than_the_visibility_timeout_fails(platform):
    changed = copy.deepcopy(platform)
    mapping = next(iter(resources(changed, "AWS::Lambda::EventSourceMapping").values()))
    fn_id = props(mapping)["FunctionName"]["Ref"]
    props(changed["Resources"][fn_id])["Timeout"] = 900
    assert rules.queue_consumers_misfit(changed)


@pytest.mark.requirement("S001-ALARM-NOTIFY")
def test_an_alarm_without_ok_action_fails(platform):
    changed = copy.deepcopy(platform)
    alarm_id, alarm = sorted(resources(changed, "AWS::CloudWatch::Alarm").items())[0]
    props(alarm).pop("OKActions")
    assert rules.alarms_not_notifying(changed) == [f"{alarm_id}: OKActions is not the alarm topic"]


def test_a_schedule_without_dead_letters_or_retry_policy_fails(platform):
    changed = copy.deepcopy(platform)
    rule = next(iter(resources(changed, "AWS::Events::Rule").values()))
    (rule_target,) = props(rule)["Targets"]
    rule_target.pop("DeadLetterConfig")
    rule_target.pop("RetryPolicy")
    props(changed["Resources"][rule_target["Arn"]["Fn::GetAtt"][0]]).pop("DeadLetterConfig")
    assert len(rules.schedules_that_can_fail_silently(changed)) == 3

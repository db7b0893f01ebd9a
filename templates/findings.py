"""Accepted policy findings, written into the resource's own Metadata in the forms the tools read.

One `Accepted` is one decision an auditor reviews: a reason, and the id of the same finding in
each tool that reports it (checkov, cdk-nag's packs, the AWS Guard Rules Registry for
cfn-guard). `accept` records it as `checkov.skip`, `cdk_nag.rules_to_suppress` (with
`applies_to` for rules that report per ARN or per action) and `guard.SuppressedRules`; the
guard rules read only the names, so the reason sits beside them under `guard.Reasons`.
Every suppression is proven to suppress a real finding (tests/templates/test_findings.py and
the cdk-nag gate); one that suppresses nothing fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# cdk-nag refuses shorter reasons; an auditor would too.
MIN_REASON_LENGTH = 30


@dataclass(frozen=True)
class Accepted:
    """A finding accepted on purpose, with the reason and each tool's id for it."""

    reason: str
    checkov: tuple[str, ...] = ()
    cdk_nag: tuple[str, ...] = ()
    guard: tuple[str, ...] = ()
    # cdk-nag finding ids the suppression covers (e.g. "Resource::*"); empty = the whole rule.
    applies_to: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.reason) < MIN_REASON_LENGTH:
            raise ValueError(f"accepted finding without a reason an auditor reads: {self.reason!r}")
        if not (self.checkov or self.cdk_nag or self.guard):
            raise ValueError(f"accepted finding names no rule: {self.reason!r}")


def accept(resource: Any, *accepted: Accepted) -> None:
    """Record each accepted finding in `resource`'s Metadata (added to what is there)."""
    metadata = dict(getattr(resource, "Metadata", None) or {})
    checkov = list(metadata.get("checkov", {}).get("skip", []))
    nag = list(metadata.get("cdk_nag", {}).get("rules_to_suppress", []))
    guard_rules = list(metadata.get("guard", {}).get("SuppressedRules", []))
    guard_reasons = dict(metadata.get("guard", {}).get("Reasons", {}))
    for item in accepted:
        checkov += [{"id": check, "comment": item.reason} for check in item.checkov]
        for rule in item.cdk_nag:
            entry: dict[str, Any] = {"id": rule, "reason": item.reason}
            if item.applies_to:
                entry["applies_to"] = list(item.applies_to)
            nag.append(entry)
        for rule in item.guard:
            guard_rules.append(rule)
            guard_reasons[rule] = item.reason
    if checkov:
        metadata["checkov"] = {"skip": checkov}
    if nag:
        metadata["cdk_nag"] = {"rules_to_suppress": nag}
    if guard_rules:
        metadata["guard"] = {"SuppressedRules": guard_rules, "Reasons": guard_reasons}
    resource.Metadata = metadata

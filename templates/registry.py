"""The stacks this project builds, by base name, and the order they deploy in."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from troposphere import Template

from templates.naming import Naming
from templates.payment_api import build_payment_api
from templates.payment_platform import build_payment_platform

StackBuilder = Callable[[Naming], Template]

STACKS: dict[str, StackBuilder] = {
    "payment-api": build_payment_api,
    "payment-platform": build_payment_platform,
}
# The platform deploys first: by default the payment API fronts its processor.
DEPLOY_ORDER: tuple[str, ...] = tuple(
    name for name in ("payment-platform", "payment-api") if name in STACKS
)


class UnknownStackError(ValueError):
    """A stack name that is not one of STACKS."""


def select_stacks(names: Iterable[str] | None) -> list[str]:
    """The requested base names in deploy order; all of them when none are given."""
    wanted = list(names or DEPLOY_ORDER)
    unknown = [name for name in wanted if name not in STACKS]
    if unknown:
        raise UnknownStackError(
            f"unknown stack {', '.join(map(repr, unknown))}; known stacks: {', '.join(STACKS)}"
        )
    return [name for name in DEPLOY_ORDER if name in wanted]


def build_templates(
    naming: Naming, names: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Stack name -> template dict for the selected stacks (pure: nothing written)."""
    return {naming.stack(base): STACKS[base](naming).to_dict() for base in select_stacks(names)}

"""Run cfn-guard with the AWS Guard Rules Registry's PCI DSS 3.2.1 and Well-Architected
security and reliability rule sets over build/*.json; print each failing (rule, resource).

Not a CI step: the rule sets live only in the registry's GitHub repository. Locally:

    git clone https://github.com/aws-cloudformation/aws-guard-rules-registry /tmp/registry
    git -C /tmp/registry checkout 7f7340c26ae5d5e8874651dbffeb12e0e9f505b6
    npm install --prefix /tmp/guard @cdklabs/cdk-validator-cfnguard@0.0.62   # cfn-guard 3.1.1
    python tools/cfn-guard/guard.py --registry /tmp/registry \
        --guard /tmp/guard/node_modules/@cdklabs/cdk-validator-cfnguard/bin/ubuntu/x86_64/cfn-guard

The versions above are the ones the README's counts were measured with (the registry's last
mapping update, "Update mappings to reflect latest ruleset (#272)", 2024-03-22).

Suppressions are each resource's `Metadata.guard.SuppressedRules`: the registry's rules read
them themselves. Each template is also checked without its suppressions, so a suppression that
matches no failure is reported (UNUSED). Exit 1 on any failure or unused suppression.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

RULE_SETS = (
    "rule_set_pci_dss_3_2_1.json",
    "rule_set_wa-Security-Pillar.json",
    "rule_set_wa-Reliability-Pillar.json",
)
ROOT = Path(__file__).resolve().parents[2]


def rule_files(registry: Path) -> list[str]:
    """Every guard file the three rule sets map, relative to the registry root."""
    files: set[str] = set()
    for name in RULE_SETS:
        mapping = json.loads((registry / "mappings" / name).read_text())
        files |= {entry["guardFilePath"] for entry in mapping["mappings"]}
    return sorted(files)


def resource_ids(value) -> Iterator[str]:
    """Logical ids named by any `/Resources/<id>` path inside a cfn-guard result."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "path" and isinstance(item, str):
                match = re.match(r"/Resources/([^/\[]+)", item)
                if match:
                    yield match.group(1)
            else:
                yield from resource_ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from resource_ids(item)


STRIPPED = ".without-suppressions"


def suppressed(template: dict) -> set[tuple[str, str]]:
    """(logical id, rule) for every guard suppression in the template."""
    return {
        (logical_id, rule)
        for logical_id, resource in template.get("Resources", {}).items()
        for rule in resource.get("Metadata", {}).get("guard", {}).get("SuppressedRules", [])
    }


def failures(guard: str, registry: Path, rules: list[str], data: list[Path]) -> set[tuple]:
    """(template stem, logical id, rule) for every failing check."""
    command = [guard, "validate", "-z", "-o", "json", "-S", "none"]
    for rule in rules:
        command += ["--rules", rule]
    for path in data:
        command += ["--data", str(path.resolve())]
    # The binary and the rule files are the operator's own command-line arguments.
    run = subprocess.run(  # noqa: S603
        command, cwd=registry, capture_output=True, text=True, check=False
    )
    if not run.stdout.strip():
        raise SystemExit(f"cfn-guard failed: {run.stderr.strip()[-2000:]}")
    found = set()
    for report in json.loads(run.stdout):
        stem = Path(report["name"]).stem
        for item in report.get("not_compliant", []):
            for logical_id in sorted(set(resource_ids(item))) or ["(template)"]:
                found.add((stem, logical_id, item["Rule"]["name"]))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", type=Path, required=True, help="registry checkout")
    parser.add_argument("--guard", required=True, help="the cfn-guard binary")
    parser.add_argument("templates", nargs="*", type=Path, help="default: the build/ templates")
    args = parser.parse_args(argv)
    templates = args.templates or [
        path
        for path in sorted((ROOT / "build").glob("*.json"))
        if "AWSTemplateFormatVersion" in json.loads(path.read_text())
    ]
    if not templates:
        print("cfn-guard: no templates: run `python generate.py --suffix qa`", file=sys.stderr)
        return 2
    rules = rule_files(args.registry)
    with tempfile.TemporaryDirectory() as folder:
        data, claimed = [], set()
        for path in templates:
            template = json.loads(path.read_text())
            claimed |= {(path.stem, *pair) for pair in suppressed(template)}
            for resource in template.get("Resources", {}).values():
                resource.get("Metadata", {}).pop("guard", None)
            stripped = Path(folder) / f"{path.stem}{STRIPPED}.json"
            stripped.write_text(json.dumps(template))
            data += [path, stripped]
        found = failures(args.guard, args.registry, rules, data)
    failing = sorted(f for f in found if not f[0].endswith(STRIPPED))
    without = {(stem.removesuffix(STRIPPED), *rest) for stem, *rest in found}
    unused = sorted(claimed - without)
    for stack, logical_id, rule in failing:
        print(f"FAIL {stack} {logical_id} {rule}")
    for stack, logical_id, rule in unused:
        print(f"UNUSED {stack} {logical_id} {rule}: suppression matches no failure")
    accepted = len(claimed) - len(unused)
    print(
        f"cfn-guard: {len(rules)} rules, {len(templates)} template(s): {len(failing)} failing, "
        f"{accepted} suppressed, {len(unused)} suppression(s) matching nothing"
    )
    return 1 if failing or unused else 0


if __name__ == "__main__":
    sys.exit(main())

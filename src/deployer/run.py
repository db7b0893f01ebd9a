"""The whole run: check input, package, bootstrap the bucket, deploy or destroy in order."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.exceptions

from deployer.account_logging import PARAMETER as ACCOUNT_LOGGING
from deployer.account_logging import new_stack_owns_logging
from deployer.artifacts import (
    BOOTSTRAP_STACK,
    BOOTSTRAP_TAGS,
    BUCKET_LOGICAL_ID,
    ArtifactStore,
    bootstrap_is_current,
    bootstrap_template,
    bucket_region,
)
from deployer.aws import Clients, caller_account
from deployer.changeset import Deployer, WaitConfig
from deployer.errors import AwsCallError, DeployError, InvalidInputError, WrongRegionError
from deployer.events import Failure
from deployer.flow import Confirm, Outcome, StackFlow
from deployer.output import StackLog, Writer
from deployer.outputs import print_outputs
from deployer.packaging import DEFAULT_SETUP_CFG, DEFAULT_SOURCE, Package, build_package
from deployer.stackspec import MAX_TEMPLATE_BODY, StackSpec, stack_tags
from templates.common import to_json
from templates.naming import Kind, Naming, NamingError

PLATFORM = "payment-platform"
PAYMENT_API = "payment-api"
# The platform's processing function; the payment API fronts it by default. Read from
# the platform's output; the base name is the fallback when no outputs are reported.
PROCESSOR_OUTPUT = "ProcessorFunctionName"
PROCESSOR_BASE = "payment-processor"
# Regions a stack is restricted to even before its template says so in Rules.
REQUIRED_REGIONS = {PLATFORM: "us-east-1"}

BuildTemplates = Callable[[Naming, Iterable[str]], dict[str, dict[str, Any]]]
SelectStacks = Callable[[Iterable[str] | None], list[str]]


@dataclass(frozen=True)
class DeployOptions:
    """Everything the command line decides."""

    suffix: str
    stacks: tuple[str, ...] = ()
    yes: bool = False
    no_execute: bool = False
    destroy: bool = False
    delete_artifacts: bool = False
    artifact_bucket: str | None = None
    processor_function: str | None = None
    hide_api_key: bool = False
    local: bool = False
    source_dir: Path = DEFAULT_SOURCE
    setup_cfg: Path = DEFAULT_SETUP_CFG


@dataclass(frozen=True)
class Plan:
    """The validated input: naming, stacks in deploy order, their templates."""

    naming: Naming
    bases: list[str]
    templates: dict[str, dict[str, Any]]  # by base name

    def name(self, base: str) -> str:
        """The stack name of a base name."""
        return self.naming.stack(base)


@dataclass
class Report:
    """What the run did; `error` is set when it stopped early."""

    outcomes: list[Outcome] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    package: Package | None = None
    error: DeployError | None = None

    @property
    def change_sets(self) -> int:
        """Change sets created during the run."""
        return sum(outcome.change_sets for outcome in self.outcomes)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return (self.error is None) and (not self.failures)


def prepare(
    options: DeployOptions,
    build: BuildTemplates | None = None,
    select: SelectStacks | None = None,
) -> Plan:
    """Validate the suffix and stacks and build the templates: no AWS call, nothing written."""
    from templates import registry  # the registry imports every builder: load on use

    build = build or registry.build_templates
    select = select or registry.select_stacks
    try:
        naming = Naming(options.suffix)
    except NamingError as error:
        raise InvalidInputError(reason=f"{error}; pass --suffix with a valid value") from None
    try:
        bases = select(options.stacks or None)
    except registry.UnknownStackError as error:
        raise InvalidInputError(reason=f"{error}; pass --stack with one of those") from None
    try:
        # The same builders generate.py writes to build/, called now: never a stale file.
        built = build(naming, bases)
    except NamingError as error:
        raise InvalidInputError(reason=f"{error}; choose a shorter --suffix") from None
    by_name = {naming.stack(base): base for base in bases}
    return Plan(naming, bases, {by_name[name]: template for name, template in built.items()})


def output_value(stack: Mapping[str, Any] | None, key: str) -> str | None:
    """One output of a described stack, or None."""
    for output in (stack or {}).get("Outputs") or []:
        if output["OutputKey"] == key:
            return str(output["OutputValue"])
    return None


def required_region(base: str, template: Mapping[str, Any]) -> str | None:
    """The one region the stack may deploy to: from its Rules, else from REQUIRED_REGIONS."""
    for rule in template.get("Rules", {}).values():
        for assertion in rule.get("Assertions", []):
            equals = assertion.get("Assert", {}).get("Fn::Equals")
            if isinstance(equals, list) and ({"Ref": "AWS::Region"} in equals):
                literals = [item for item in equals if isinstance(item, str)]
                if literals:
                    return literals[0]
    return REQUIRED_REGIONS.get(base)


def check_region(plan: Plan, region: str) -> None:
    """Refuse early, before any AWS call, a stack its template would refuse in this region."""
    for base in plan.bases:
        required = required_region(base, plan.templates[base])
        if required and (region != required):
            raise WrongRegionError(stack=plan.name(base), required=required, region=region)


@dataclass
class Run:
    """One deploy or destroy with its clients, writer and report."""

    plan: Plan
    options: DeployOptions
    clients: Clients
    writer: Writer
    confirm: Confirm
    wait: WaitConfig = field(default_factory=WaitConfig)
    sleep: Callable[[float], None] = time.sleep
    report: Report = field(default_factory=Report)
    processor_name: str | None = None

    def flow(self, stack: str, *, no_execute: bool | None = None) -> StackFlow:
        """A StackFlow for one stack sharing this run's failures list."""
        deployer = Deployer(
            self.clients.cloudformation, StackLog(self.writer, stack), self.wait, self.sleep
        )
        return StackFlow(
            deployer,
            self.report.failures,
            self.report.outcomes,
            self.confirm,
            yes=self.options.yes,
            no_execute=self.options.no_execute if no_execute is None else no_execute,
            region=self.clients.region,
        )

    def execute(self) -> Report:
        """Deploy or destroy; errors end up in the report, failures are reprinted last."""
        try:
            account = caller_account(self.clients.sts)
            names = ", ".join(self.plan.name(base) for base in self.plan.bases)
            verb = "destroying" if self.options.destroy else "deploying"
            self.writer(f"{verb} {names} in account {account}, region {self.clients.region}")
            if self.options.destroy:
                self.destroy()
            else:
                self.deploy()
        except DeployError as error:
            self.report.error = error
        except botocore.exceptions.BotoCoreError as error:
            # Transport and parsing errors (no network, a broken endpoint) after retries.
            self.report.error = AwsCallError(
                operation="AWS call",
                code=type(error).__name__,
                message=str(error).splitlines()[0],
                next_step="check the network, the region and AWS_ENDPOINT_URL, then rerun",
            )
        self.summary()
        return self.report

    def deploy(self) -> None:
        """Package, upload, then each stack in order; stop at the first failure."""
        templates = self.plan.templates
        needs_code = any("CodeKey" in t.get("Parameters", {}) for t in templates.values())
        large = any(len(to_json(t).encode()) > MAX_TEMPLATE_BODY for t in templates.values())
        store = self.artifact_store(create=True) if (needs_code or large) else None
        code: dict[str, str] = {}
        if needs_code and (store is not None):
            package = build_package(self.options.source_dir, self.options.setup_cfg)
            self.report.package = package
            self.upload(store, package.key, package.data, "application/zip", what="package")
            code = {"CodeBucket": store.bucket, "CodeKey": store.key(package.key)}
        platform_present = (PLATFORM in self.plan.bases) or self.stack_exists(PLATFORM)
        for base in self.plan.bases:
            spec = self.spec(base, code, platform_present)
            url = None
            if (store is not None) and (len(spec.body.encode()) > MAX_TEMPLATE_BODY):
                digest = hashlib.sha256(spec.body.encode()).hexdigest()
                name = f"templates/{digest}.json"
                self.upload(store, name, spec.body.encode(), "application/json", what="template")
                url = store.url(name)
            outcome = self.flow(spec.name).deploy(spec, url)
            if base == PLATFORM:
                self.processor_name = output_value(outcome.stack_description, PROCESSOR_OUTPUT)
            self.after_deploy(spec, outcome)

    def spec(self, base: str, code: Mapping[str, str], platform_present: bool) -> StackSpec:
        """The stack as we want it, with the parameters the deployer decides."""
        naming, template = self.plan.naming, self.plan.templates[base]
        wanted: dict[str, str] = dict(code)
        if base == PAYMENT_API:
            if self.options.processor_function:
                wanted["ProcessorFunctionName"] = self.options.processor_function
            elif platform_present:
                # The platform's own output when we have it (moto reports none): then the
                # name is never derived twice.
                wanted["ProcessorFunctionName"] = self.processor_name or naming.name(
                    PROCESSOR_BASE, Kind.FUNCTION
                )
        declared = template.get("Parameters", {})
        parameters = {key: value for key, value in wanted.items() if key in declared}
        name = self.plan.name(base)
        return StackSpec(
            name=name,
            base=base,
            template=template,
            parameters=parameters,
            tags=stack_tags(naming.suffix),
            # One stack per account and region owns the API Gateway logging role: the first
            # one created; a later one finds a live role and leaves it alone.
            sticky={ACCOUNT_LOGGING: lambda: self.new_stack_owns_logging(name)},
        )

    def new_stack_owns_logging(self, stack: str) -> str:
        """ManageApiGatewayAccount for a stack about to be created (account state decides)."""
        value = new_stack_owns_logging(self.clients.apigateway, self.clients.iam)
        owner = "owns it" if value == "true" else "leaves it to the account's live role"
        StackLog(self.writer, stack)(f"API Gateway account logging role: this new stack {owner}")
        return value

    def stack_exists(self, base: str) -> bool:
        """True when the stack exists in a usable state (one DescribeStacks)."""
        flow = self.flow(self.plan.name(base))
        stack = flow.deployer.describe_stack(self.plan.name(base))
        return (
            (stack is not None)
            and stack["StackStatus"].endswith("_COMPLETE")
            and (stack["StackStatus"] != "ROLLBACK_COMPLETE")
        )

    def upload(
        self, store: ArtifactStore, name: str, data: bytes, content_type: str, what: str
    ) -> None:
        """Upload unless the content-addressed key is already stored."""
        if store.ensure(name, data, content_type):
            self.report.uploads.append(store.key(name))
            self.writer(
                f"{what} uploaded: s3://{store.bucket}/{store.key(name)} ({len(data)} bytes)"
            )
        else:
            self.writer(
                f"{what} already stored: s3://{store.bucket}/{store.key(name)} (not uploaded)"
            )

    def artifact_store(self, *, create: bool) -> ArtifactStore | None:
        """The artifact bucket: --artifact-bucket, else the bootstrap stack's (created if asked)."""
        s3, region, suffix = self.clients.s3, self.clients.region, self.plan.naming.suffix
        if self.options.artifact_bucket:
            bucket = self.options.artifact_bucket
            actual = bucket_region(s3, bucket)
            if actual != region:
                raise InvalidInputError(
                    reason=f"--artifact-bucket {bucket} is in {actual} but the stacks deploy to "
                    f"{region}; Lambda reads code only from its own region: "
                    f"give a bucket in {region}"
                )
            return ArtifactStore(s3, bucket, suffix, region)
        flow = self.flow(BOOTSTRAP_STACK, no_execute=False)
        stack = flow.deployer.describe_stack(BOOTSTRAP_STACK)
        if not bootstrap_is_current(stack):
            if not create:
                return None
            if self.options.no_execute:
                raise InvalidInputError(
                    reason=f"the artifact bucket (stack {BOOTSTRAP_STACK}) is missing or outdated "
                    "and --no-execute creates nothing: run once without --no-execute, or pass "
                    "--artifact-bucket"
                )
            flow.log("artifact bucket stack missing or outdated: deploying it first")
            spec = StackSpec(
                name=BOOTSTRAP_STACK,
                base="bootstrap",
                template=bootstrap_template(),
                parameters={},
                tags=dict(BOOTSTRAP_TAGS),
            )
            outcome = flow.deploy(spec)
            stack = outcome.stack_description or flow.deployer.describe_stack(BOOTSTRAP_STACK)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs") or []}
        bucket = outputs.get(BUCKET_LOGICAL_ID)
        if not bucket:
            # moto leaves Outputs empty after a change set; the resource itself is authoritative.
            detail = self.clients.cloudformation.describe_stack_resource(
                StackName=BOOTSTRAP_STACK, LogicalResourceId=BUCKET_LOGICAL_ID
            )
            bucket = detail["StackResourceDetail"]["PhysicalResourceId"]
        return ArtifactStore(s3, bucket, suffix, region)

    def after_deploy(self, spec: StackSpec, outcome: Outcome) -> None:
        """Outputs, the API key value, and in --local what the emulator did not create."""
        log = StackLog(self.writer, spec.name)
        if outcome.stack_description is None or outcome.result == "change set ready":
            return
        print_outputs(
            log,
            outcome.stack_description,
            spec.template,
            self.clients.apigateway,
            show_key_value=not self.options.hide_api_key,
            local=self.options.local,
        )
        if self.options.local:
            from deployer.local import skipped_resources

            skipped = skipped_resources(self.clients.cloudformation, spec.name, spec.template)
            self.report.skipped[spec.name] = skipped
            for line in skipped:
                log(line)

    def destroy(self) -> None:
        """Delete the stacks in reverse order, then this suffix's artifacts when asked."""
        for base in reversed(self.plan.bases):
            spec = self.spec(base, {}, platform_present=False)
            self.flow(spec.name).destroy(spec)
        if self.options.delete_artifacts:
            store = self.artifact_store(create=False)
            if store is None:
                self.writer("no artifact bucket found; no artifacts to delete")
                return
            count = store.delete_all()
            self.writer(
                f"deleted {count} object version(s) under s3://{store.bucket}/{store.prefix}/"
            )

    def summary(self) -> None:
        """One line per stack, then every failed resource again, so CI logs end with the cause."""
        if self.report.outcomes:
            self.writer("summary:")
            for outcome in self.report.outcomes:
                self.writer(f"  {outcome.stack}: {outcome.result}")
        if self.report.failures:
            self.writer("failed resources:")
            for failure in self.report.failures:
                self.writer(f"  [{failure.stack}] {failure.line()}")

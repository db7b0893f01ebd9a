"""The whole run: check input, package, bootstrap the bucket, deploy or destroy in order."""

from __future__ import annotations

import datetime as dt
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
    BOOTSTRAP_OWNER_TAGS,
    BOOTSTRAP_STACK,
    BOOTSTRAP_TAGS,
    BUCKET_LOGICAL_ID,
    ArtifactStore,
    bootstrap_is_current,
    bootstrap_template,
    checked_bucket,
)
from deployer.aws import (
    AWS_ERRORS,
    Clients,
    call_failure,
    caller_account,
    check_reachable,
    error_code,
)
from deployer.changeset import Deployer, WaitConfig, utc_now
from deployer.errors import (
    DependentStackError,
    DeployError,
    InvalidInputError,
    ProcessorMissingError,
    RunInterruptedError,
    WrongRegionError,
)
from deployer.events import Failure
from deployer.flow import Confirm, Outcome, StackFlow
from deployer.inputs import check_overrides
from deployer.output import StackLog, Writer
from deployer.outputs import print_outputs
from deployer.packaging import DEFAULT_SETUP_CFG, DEFAULT_SOURCE, Package, build_package
from deployer.rollback import DEFAULT_MONITOR_MINUTES
from deployer.safety import stack_policy
from deployer.stackspec import MAX_TEMPLATE_BODY, StackSpec, deployed_parameters, stack_tags
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
    local: bool = False
    source_dir: Path = DEFAULT_SOURCE
    setup_cfg: Path = DEFAULT_SETUP_CFG
    # What an operator sets (command line over deploy.toml); see docs/deployer.md.
    parameters: Mapping[str, str] = field(default_factory=dict)  # --parameter KEY=VALUE
    config_parameters: Mapping[str, str] = field(default_factory=dict)  # deploy.toml
    tags: Mapping[str, str] = field(default_factory=dict)  # --tags, added to ours
    role_arn: str | None = None
    notification_arns: tuple[str, ...] | None = None  # None: keep the stack's
    allow_replacement: frozenset[str] = frozenset()
    monitor_minutes: int = DEFAULT_MONITOR_MINUTES
    disable_rollback: bool = False
    # The API key's value is printed only when this is set (a terminal or --show-api-key);
    # --outputs-file gets it only with --show-api-key (deploy.write_outputs).
    show_api_key: bool = False


@dataclass(frozen=True)
class Plan:
    """The validated input: naming, stacks in deploy order, their templates."""

    naming: Naming
    bases: list[str]
    templates: dict[str, dict[str, Any]]  # by base name
    # Every stack a suffix can have, in deploy order (to find the ones a run leaves).
    known: tuple[str, ...] = ()
    # Parameter values the operator gives, by key; each goes to the stacks declaring it.
    overrides: Mapping[str, str] = field(default_factory=dict)

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
    interrupted: bool = False
    # Stack name -> the API key values printed (only with show_api_key).
    api_keys: dict[str, dict[str, str]] = field(default_factory=dict)

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
    known = tuple(select(None))
    try:
        # The same builders generate.py writes to build/, called now: never a stale file.
        built = build(naming, bases)
        others: dict[str, dict[str, Any]] = {}
        if set(options.config_parameters) - declared_keys(built.values()):
            # deploy.toml serves runs of any --stack: check it against every stack.
            others = build(naming, [base for base in known if base not in bases])
    except NamingError as error:
        raise InvalidInputError(reason=f"{error}; choose a shorter --suffix") from None
    overrides = check_overrides(built, options.parameters, options.config_parameters, others)
    by_name = {naming.stack(base): base for base in bases}
    templates = {by_name[name]: template for name, template in built.items()}
    if (
        ("ProcessorFunctionName" in options.parameters)
        and options.processor_function
        and (options.parameters["ProcessorFunctionName"] != options.processor_function)
    ):
        raise InvalidInputError(
            reason="--processor-function and --parameter ProcessorFunctionName disagree: "
            "give one of them"
        )
    return Plan(naming, bases, templates, known, overrides)


def declared_keys(templates: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every parameter any of the templates declares."""
    return {key for template in templates for key in template.get("Parameters", {})}


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
    now: Callable[[], dt.datetime] = utc_now
    report: Report = field(default_factory=Report)
    processor_name: str | None = None
    account: str | None = None

    def flow(self, stack: str, *, no_execute: bool | None = None) -> StackFlow:
        """A StackFlow for one stack sharing this run's failures list."""
        deployer = Deployer(
            self.clients.cloudformation,
            StackLog(self.writer, stack),
            self.wait,
            self.sleep,
            now=self.now,
        )
        return StackFlow(
            deployer,
            self.report.failures,
            self.report.outcomes,
            self.confirm,
            yes=self.options.yes,
            no_execute=self.options.no_execute if no_execute is None else no_execute,
            region=self.clients.region,
            disable_rollback=self.options.disable_rollback,
            allow_replacement=self.options.allow_replacement,
            monitor_minutes=self.options.monitor_minutes,
            cloudwatch=self.clients.cloudwatch,
        )

    def execute(self) -> Report:
        """Deploy or destroy; errors end up in the report, failures are reprinted last."""
        try:
            self.account = caller_account(self.clients.sts, self.clients.profile)
            check_reachable(self.clients.probes)
            names = ", ".join(self.plan.name(base) for base in self.plan.bases)
            verb = "destroying" if self.options.destroy else "deploying"
            self.writer(f"{verb} {names} in account {self.account}, region {self.clients.region}")
            if self.options.destroy:
                self.destroy()
            else:
                self.deploy()
        except DeployError as error:
            self.report.error = error
        except AWS_ERRORS as error:
            # The net under every call: transport, parsing and any error not named closer.
            self.report.error = call_failure("AWS call", error)
        except KeyboardInterrupt:
            self.report.interrupted = True
            self.report.error = RunInterruptedError(state=self.still_running())
        self.summary()
        return self.report

    def still_running(self) -> str:
        """What this run leaves running or pending in CloudFormation, and how to follow it."""
        region = self.clients.region
        said = []
        for outcome in self.report.outcomes:
            if outcome.in_flight:
                said.append(
                    f"{outcome.stack}: {outcome.in_flight} is still running in CloudFormation "
                    "and goes on without this command; follow it with aws cloudformation "
                    f"describe-stack-events --stack-name {outcome.stack} --region {region}, "
                    "or rerun this command (it waits for the operation, then continues)"
                )
            if outcome.pending_change_set:
                said.append(
                    f"{outcome.stack}: change set {outcome.pending_change_set} was created and "
                    "not executed; it stays for review (aws cloudformation delete-change-set "
                    f"--change-set-name {outcome.pending_change_set} removes it)"
                )
        return "; ".join(said) or "nothing this run started is running in CloudFormation"

    def deploy(self) -> None:
        """Package, upload, then each stack in order; stop at the first failure."""
        templates = self.plan.templates
        needs_code = any("CodeKey" in t.get("Parameters", {}) for t in templates.values())
        large = any(len(to_json(t).encode()) > MAX_TEMPLATE_BODY for t in templates.values())
        # Packaging is local: it fails (if it does) before anything is created in AWS.
        package = (
            build_package(self.options.source_dir, self.options.setup_cfg) if needs_code else None
        )
        store = self.artifact_store(create=True) if (needs_code or large) else None
        code: dict[str, str] = {}
        if (package is not None) and (store is not None):
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
            check = self.check_processor if base == PAYMENT_API else None
            outcome = self.flow(spec.name).deploy(spec, url, check)
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
        wanted.update({key: value for key, value in self.plan.overrides.items() if key in declared})
        parameters = {key: value for key, value in wanted.items() if key in declared}
        name = self.plan.name(base)
        sticky = {}
        if ACCOUNT_LOGGING not in parameters:
            # One stack per account and region owns the API Gateway logging role: the first
            # one created; a later one finds a live role and leaves it alone.
            sticky[ACCOUNT_LOGGING] = lambda: self.new_stack_owns_logging(name)
        return StackSpec(
            name=name,
            base=base,
            template=template,
            parameters=parameters,
            tags={**stack_tags(naming.suffix), **self.options.tags},
            sticky=sticky,
            owner_tags=stack_tags(naming.suffix),
            role_arn=self.options.role_arn,
            notification_arns=self.options.notification_arns,
            stack_policy=stack_policy(template),
        )

    def check_processor(self, spec: StackSpec) -> None:
        """Before the payment API's change set: the function it fronts must exist."""
        function = spec.effective_parameters().get("ProcessorFunctionName")
        if (not function) or (self.clients.lambda_ is None):
            return
        try:
            self.clients.lambda_.get_function_configuration(FunctionName=function)
        except AWS_ERRORS as error:
            missing = isinstance(error, botocore.exceptions.ClientError) and (
                error_code(error) == "ResourceNotFoundException"
            )
            if not missing:
                raise call_failure("lambda:GetFunctionConfiguration", error) from None
            if self.options.no_execute and (PLATFORM in self.plan.bases):
                StackLog(self.writer, spec.name)(
                    f"processor function {function} does not exist yet: the platform's change "
                    "set was not executed (--no-execute)"
                )
                return
            raise ProcessorMissingError(
                stack=spec.name,
                function=function,
                region=self.clients.region,
                suffix=self.plan.naming.suffix,
            ) from None

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
            bucket = checked_bucket(s3, self.options.artifact_bucket, region, self.account)
            return ArtifactStore(s3, bucket, suffix, region, self.account)
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
                owner_tags=BOOTSTRAP_OWNER_TAGS,
                role_arn=self.options.role_arn,
            )
            outcome = flow.deploy(spec)
            stack = outcome.stack_description or flow.deployer.describe_stack(BOOTSTRAP_STACK)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs") or []}
        # moto leaves Outputs empty after a change set; the resource itself is authoritative.
        bucket = str(
            outputs.get(BUCKET_LOGICAL_ID)
            or flow.deployer.stack_resources(BOOTSTRAP_STACK)[BUCKET_LOGICAL_ID]
        )
        return ArtifactStore(s3, bucket, suffix, region, self.account, bootstrap=BOOTSTRAP_STACK)

    def after_deploy(self, spec: StackSpec, outcome: Outcome) -> None:
        """Outputs, the API key value, and in --local what the emulator did not create."""
        log = StackLog(self.writer, spec.name)
        if outcome.stack_description is None or outcome.result == "change set ready":
            return
        values = print_outputs(
            log,
            outcome.stack_description,
            spec.template,
            self.clients.apigateway,
            show_key_value=self.options.show_api_key,
            local=self.options.local,
            region=self.clients.region,
        )
        if values:
            self.report.api_keys[spec.name] = values
        if self.options.local:
            from deployer.local import skipped_resources

            skipped = skipped_resources(self.clients.cloudformation, spec.name, spec.template)
            self.report.skipped[spec.name] = skipped
            for line in skipped:
                log(line)

    def destroy(self) -> None:
        """Delete the stacks in reverse order, then the artifacts no remaining stack uses."""
        if (PLATFORM in self.plan.bases) and (PAYMENT_API not in self.plan.bases):
            self.refuse_if_fronted()
        for base in reversed(self.plan.bases):
            spec = self.spec(base, {}, platform_present=False)
            self.flow(spec.name).destroy(spec)
        if self.options.delete_artifacts:
            store = self.artifact_store(create=False)
            if store is None:
                self.writer("no artifact bucket found; no artifacts to delete")
                return
            keep = self.artifacts_in_use(store)
            count = store.delete_unreferenced(keep)
            kept = f"; kept {', '.join(sorted(keep))} (used by a remaining stack)" if keep else ""
            self.writer(
                f"deleted {count} object version(s) under s3://{store.bucket}/{store.prefix}/{kept}"
            )

    def refuse_if_fronted(self) -> None:
        """The platform goes only when no payment API of the suffix fronts its processor."""
        platform, api = self.plan.name(PLATFORM), self.plan.name(PAYMENT_API)
        if PAYMENT_API not in self.plan.known:
            return
        deployer = self.flow(platform).deployer
        fronting = deployer.describe_stack(api)
        if (fronting is None) or (fronting["StackStatus"] == "DELETE_COMPLETE"):
            return
        described = deployer.describe_stack(platform)
        processor = output_value(described, PROCESSOR_OUTPUT) or self.plan.naming.name(
            PROCESSOR_BASE, Kind.FUNCTION
        )
        if deployed_parameters(fronting).get("ProcessorFunctionName") == processor:
            raise DependentStackError(
                stack=platform,
                reason=f"{api} still fronts its processor {processor}; destroy both "
                f"(python deploy.py --suffix {self.plan.naming.suffix} --destroy) or "
                f"{api} first (--stack {PAYMENT_API})",
            )

    def artifacts_in_use(self, store: ArtifactStore) -> set[str]:
        """Object keys under the suffix's prefix that a stack still standing refers to."""
        keep: set[str] = set()
        for base in self.plan.known:
            stack = self.flow(self.plan.name(base)).deployer.describe_stack(self.plan.name(base))
            if (stack is None) or (stack["StackStatus"] == "DELETE_COMPLETE"):
                continue
            keep |= {
                str(value)
                for value in deployed_parameters(stack).values()
                if str(value).startswith(f"{store.prefix}/")
            }
        return keep

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
        left = [failure for outcome in self.report.outcomes for failure in outcome.left_behind]
        if left:
            self.writer("left behind by successful operations (delete them yourself):")
            for failure in left:
                self.writer(f"  [{failure.stack}] {failure.line()}")

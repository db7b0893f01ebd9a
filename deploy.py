"""Deploy the payment stacks with CloudFormation change sets (CLI only; see docs/deployer.md)."""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

try:
    from deployer import inputs
    from deployer.aws import AwsSettings, make_clients
    from deployer.changeset import WaitConfig
    from deployer.config import load_config
    from deployer.errors import DeployError, InvalidInputError, NoRegionError, WrongRegionError
    from deployer.local import DEFAULT_PORT
    from deployer.outputs import outputs_document, write_json_atomically
    from deployer.packaging import DEFAULT_SOURCE
    from deployer.rollback import DEFAULT_MONITOR_MINUTES, MAX_MONITOR_MINUTES
    from deployer.run import DeployOptions, Plan, Report, Run, check_region, prepare
except KeyboardInterrupt:  # Ctrl-C while boto3 and moto load (seconds on a busy machine)
    print("deploy.py: interrupted (Ctrl-C) while starting; nothing was done", file=sys.stderr)
    sys.exit(130)

# --serve defaults (emulator.local_api.DEFAULT_PORT, emulator.functions.DEFAULT_MAX_WORKERS),
# kept here so that --help works without the dev extra.
SERVE_PORT = 3000
SERVE_WORKERS = 4
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
BAD_INPUT = (InvalidInputError, WrongRegionError, NoRegionError)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; every option is described in docs/deployer.md too."""
    parser = argparse.ArgumentParser(
        description="Package the Lambda code, preview and deploy the payment stacks with "
        "CloudFormation change sets (platform first, then payment-api). AWS settings come "
        "from the standard places: AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ~/.aws.",
    )
    parser.add_argument(
        "--suffix",
        help="environment suffix, e.g. qa or prod (required unless --local-server alone)",
    )
    parser.add_argument(
        "--stack",
        action="append",
        default=[],
        metavar="NAME",
        help="deploy only this stack (base name, e.g. payment-api); repeatable; default: all",
    )
    parser.add_argument("--yes", action="store_true", help="execute without asking (CI)")
    parser.add_argument(
        "--no-execute",
        action="store_true",
        help="create and preview the change sets, execute nothing (they stay for review)",
    )
    parser.add_argument(
        "--destroy", action="store_true", help="delete the stacks (payment-api first) and wait"
    )
    parser.add_argument(
        "--delete-artifacts",
        action="store_true",
        help="with --destroy: also delete every version of this suffix's zips and templates "
        "in the artifact bucket",
    )
    local = parser.add_argument_group(
        "offline emulator (development and tests; needs the dev extra)"
    )
    local.add_argument(
        "--local",
        action="store_true",
        help="deploy to the emulator running on 127.0.0.1:PORT (see --local-server), else to a "
        "throwaway one started in this process (its state is gone when the command ends)",
    )
    local.add_argument(
        "--local-server",
        action="store_true",
        help="run the emulator in the foreground on 127.0.0.1:PORT until Ctrl-C, state kept "
        "meanwhile; with --suffix, deploy into it first",
    )
    local.add_argument(
        "--local-port",
        type=int,
        default=DEFAULT_PORT,
        metavar="PORT",
        help="the emulator's loopback port for --local and --local-server (default: %(default)s)",
    )
    serve = parser.add_argument_group(
        "local API (--serve; development and tests; needs the dev extra)"
    )
    serve.add_argument(
        "--serve",
        action="store_true",
        help="with --local or --local-server: after deploying, serve each deployed REST API at "
        "http://127.0.0.1:PORT/<stage>/... with its functions run locally, until Ctrl-C",
    )
    serve.add_argument(
        "--serve-port",
        type=int,
        default=SERVE_PORT,
        metavar="PORT",
        help="port of the first API; each further API takes the next one; 0: ports the OS "
        "picks (default: %(default)s, as sam local start-api)",
    )
    serve.add_argument(
        "--serve-workers",
        type=int,
        default=SERVE_WORKERS,
        metavar="N",
        help="execution environments (worker processes) per function at most "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--artifact-bucket",
        metavar="BUCKET",
        help="existing bucket in the deploy region for zips and large templates "
        "(default: the bucket of the payment-infrastructure-bootstrap stack, created when missing)",
    )
    parser.add_argument(
        "--processor-function",
        metavar="NAME",
        help="Lambda the payment-api stack fronts (default: the platform's "
        "payment-processor-SUFFIX when the platform is deployed or exists, "
        "else the template's default)",
    )
    parser.add_argument(
        "--show-api-key",
        action="store_true",
        help="print the API key's value (and add it to --outputs-file) even when stdout is "
        "not a terminal; by default it is printed only to a terminal",
    )
    parser.add_argument(
        "--hide-api-key",
        action="store_true",
        help="never print the API key's value, not even to a terminal",
    )
    parser.add_argument(
        "--profile", help="AWS profile (default: AWS_PROFILE or the default profile)"
    )
    parser.add_argument(
        "--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's)"
    )
    parser.add_argument(
        "--retry-mode",
        choices=["standard", "adaptive"],
        default="standard",
        help="botocore retry mode; adaptive also rate-limits on the client (default: standard)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=WaitConfig.stack_timeout / 60,
        metavar="MINUTES",
        help="give up waiting for one stack operation after this long (default: %(default).0f)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=DEFAULT_SOURCE,
        help="handlers package to zip (default: src/handlers)",
    )
    add_operator_options(parser)
    return parser.parse_args(argv)


def add_operator_options(parser: argparse.ArgumentParser) -> None:
    """Parameters, tags, safety and rollback: what `aws cloudformation deploy` users expect."""
    group = parser.add_argument_group("stack settings and safety")
    group.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a template parameter for every stack declaring it; repeatable. Parameters "
        "not given keep their deployed value on update (else the template default)",
    )
    group.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="TOML file with one table per suffix (parameters, tags, ...); "
        "default: ./deploy.toml when present",
    )
    group.add_argument(
        "--tags",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="extra stack tags (beside Project and Environment); repeatable",
    )
    group.add_argument(
        "--role-arn", metavar="ARN", help="IAM role CloudFormation uses for the stack operations"
    )
    group.add_argument(
        "--notification-arns",
        action="extend",
        nargs="+",
        metavar="ARN",
        help="SNS topics that receive the stacks' events (default: keep the stacks' own)",
    )
    group.add_argument(
        "--allow-replacement",
        action="append",
        default=[],
        metavar="LOGICAL_ID",
        help="let the change set replace or remove this stateful resource (its data is "
        "lost); repeatable. Without it such a change set stops, even with --yes",
    )
    group.add_argument(
        "--monitor-minutes",
        type=int,
        metavar="MINUTES",
        help="after an update, keep watching the stack's critical alarms this long and roll "
        f"back if one fires (0-{MAX_MONITOR_MINUTES}; default {DEFAULT_MONITOR_MINUTES})",
    )
    group.add_argument(
        "--disable-rollback",
        action="store_true",
        help="keep a failed stack as it failed (CREATE_FAILED/UPDATE_FAILED) for debugging",
    )
    group.add_argument(
        "--outputs-file",
        type=Path,
        metavar="FILE",
        help='write the stacks\' outputs as JSON: {"<stack>": {"Outputs": {"<key>": "<value>"}}} '
        '(with --serve also "Local": {"InvokeUrl": ..., "ApiKeyValue": ...})',
    )


def deploy_options(
    args: argparse.Namespace, stdout_is_terminal: bool, *, local: bool = False
) -> DeployOptions:
    """The options from the command line and deploy.toml, every local value checked.

    `local`: deploying into an emulator of this process (--local-server with --suffix).
    """
    if args.show_api_key and args.hide_api_key:
        raise InvalidInputError(reason="--show-api-key and --hide-api-key contradict each other")
    if args.delete_artifacts and not args.destroy:
        raise InvalidInputError(reason="--delete-artifacts goes with --destroy")
    if args.no_execute and args.destroy:
        raise InvalidInputError(reason="--no-execute and --destroy do not go together")
    if args.destroy and (args.outputs_file or args.allow_replacement or args.parameter):
        raise InvalidInputError(
            reason="--outputs-file, --allow-replacement and --parameter do not go with --destroy"
        )
    config = load_config(args.config, args.suffix)
    monitor = args.monitor_minutes
    if monitor is None:
        monitor = (
            DEFAULT_MONITOR_MINUTES if config.monitor_minutes is None else config.monitor_minutes
        )
    notification_arns = (
        args.notification_arns if args.notification_arns is not None else config.notification_arns
    )
    return DeployOptions(
        suffix=args.suffix,
        stacks=tuple(args.stack),
        yes=args.yes,
        no_execute=args.no_execute,
        destroy=args.destroy,
        delete_artifacts=args.delete_artifacts,
        artifact_bucket=(
            inputs.check_bucket_name(args.artifact_bucket) if args.artifact_bucket else None
        ),
        processor_function=args.processor_function,
        local=args.local or local,
        source_dir=args.source if args.destroy else inputs.check_source(args.source),
        parameters=inputs.pairs(args.parameter, "--parameter"),
        config_parameters=config.parameters,
        tags=inputs.check_tags({**config.tags, **inputs.pairs(args.tags, "--tags")}),
        role_arn=inputs.check_role_arn(args.role_arn or config.role_arn),
        notification_arns=inputs.check_topic_arns(notification_arns),
        allow_replacement=frozenset(args.allow_replacement),
        monitor_minutes=inputs.check_monitor_minutes(monitor),
        disable_rollback=args.disable_rollback,
        show_api_key=args.show_api_key or (stdout_is_terminal and not args.hide_api_key),
    )


def write_outputs(path: Path, plan: Plan, report: Report, *, with_key_value: bool) -> None:
    """--outputs-file: the outputs of this run's stacks that exist (also after a failure).

    The API key's value goes in only with `with_key_value` (--show-api-key): a file outlives
    the terminal that showed it.
    """
    names = {plan.name(base) for base in plan.bases}
    stacks = [
        outcome.stack_description
        for outcome in report.outcomes
        if (outcome.stack in names) and (outcome.stack_description is not None)
    ]
    secrets = report.api_keys if with_key_value else {}
    try:
        write_json_atomically(path, outputs_document(stacks, secrets))
    except OSError as error:
        raise DeployError(reason=f"cannot write --outputs-file {path}: {error.strerror}") from None


def confirm_on_terminal(question: str) -> bool:
    """Ask on the terminal; only 'y' or 'yes' executes (end of input, Ctrl-D, is a no)."""
    try:
        answer = input(question)
    except EOFError:
        print()
        return False
    return answer.strip().lower() in {"y", "yes"}


def run_local_server(args: argparse.Namespace) -> int:
    """--local-server: the emulator in the foreground until Ctrl-C (with --suffix: deploy first)."""
    from deployer.local import LIMITS, emulator_server

    try:
        with emulator_server(args.local_port) as server:
            print(
                f"--local-server: emulator at {server.endpoint} (region us-east-1); state kept "
                "until Ctrl-C; nothing reaches AWS"
            )
            port = "" if args.local_port == DEFAULT_PORT else f" --local-port {args.local_port}"
            print(
                "--local-server: in another shell: python deploy.py --suffix SUFFIX --local "
                f"--yes{port}"
            )
            print(f"--local-server: {LIMITS}")
            code = 0
            if args.suffix:
                code = deploy(args, endpoint=server.endpoint)
            if args.serve:
                return code  # Ctrl-C ended --serve, and with it this emulator
            print("--local-server: serving; Ctrl-C stops it (its state goes with it)", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print("--local-server: stopped")
            return code
    except DeployError as error:
        print(f"deploy.py: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:  # while the emulator starts or stops (a deploy reports its own)
        print(
            "deploy.py: interrupted (Ctrl-C); --local-server stopped, its state is gone",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    """Parse, validate, deploy or destroy; return the exit code."""
    args = parse_args(argv)
    try:
        inputs.check_port(args.local_port, "--local-port")
    except InvalidInputError as error:
        print(f"deploy.py: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.local_server:
        if args.local or args.destroy or args.no_execute:
            print(
                "deploy.py: error: --local-server runs the emulator; deploy, preview or destroy "
                "from another shell with --local",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        return run_local_server(args)
    if not args.suffix:
        print("deploy.py: error: --suffix is required", file=sys.stderr)
        return EXIT_BAD_INPUT
    return deploy(args)


def check_serve_options(args: argparse.Namespace) -> None:
    """--serve serves what this run deployed to the emulator of this process."""
    if not args.serve:
        return
    if not (args.local or args.local_server):
        raise InvalidInputError(reason="--serve goes with --local or --local-server")
    if args.destroy or args.no_execute:
        raise InvalidInputError(
            reason="--serve serves a deployment: not with --destroy or --no-execute"
        )
    if not 0 <= args.serve_port <= 65535 or args.serve_workers < 1:
        raise InvalidInputError(reason="--serve-port is 0-65535 and --serve-workers at least 1")


def serve(args: argparse.Namespace, plan: Any, clients: Any, endpoint: str) -> int:
    """--serve: the deployed APIs over HTTP until Ctrl-C (emulator/local_api.py)."""
    from emulator import ACCOUNT_ID
    from emulator.local_api import ServeError, serve_stacks

    try:
        serve_stacks(
            clients=clients,
            endpoint=endpoint,
            account_id=ACCOUNT_ID,
            templates={plan.name(base): plan.templates[base] for base in plan.bases},
            port=args.serve_port,
            max_workers=args.serve_workers,
            outputs_file=args.outputs_file,
            show_key_value=not args.hide_api_key,
            write=lambda line: print(line, flush=True),
        )
    except ServeError as error:
        print(f"deploy.py: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def deploy(args: argparse.Namespace, endpoint: str | None = None) -> int:
    """Deploy or destroy as the arguments say (endpoint: an emulator of this process)."""
    try:
        return run(args, endpoint)
    except KeyboardInterrupt:
        # Before or after Run.execute (which reports what it left running itself).
        print("deploy.py: interrupted (Ctrl-C); no stack operation was running", file=sys.stderr)
        return EXIT_INTERRUPTED


def run(args: argparse.Namespace, endpoint: str | None) -> int:
    """The run behind deploy(), every failure one line on stderr."""
    try:
        options = deploy_options(args, sys.stdout.isatty(), local=endpoint is not None)
        wait = WaitConfig(stack_timeout=inputs.check_timeout(args.timeout) * 60)
        outputs_file = inputs.check_outputs_file(args.outputs_file)
        check_serve_options(args)
        if not (args.yes or args.no_execute or sys.stdin.isatty()):
            raise InvalidInputError(
                reason="no terminal to confirm on: pass --yes to execute, "
                "or --no-execute to preview"
            )
        plan = prepare(options)
        with ExitStack() as stack:
            settings = AwsSettings(
                profile=args.profile, region=args.region, retry_mode=args.retry_mode
            )
            if args.local or endpoint:
                from deployer.local import (
                    LIMITS,
                    LOCAL_ACCESS_KEY,
                    LOCAL_REGION,
                    LOCAL_SECRET_KEY,
                    local_target,
                )

                if endpoint is None:
                    target = stack.enter_context(local_target(args.local_port))
                    endpoint = target.endpoint
                    print(target.note)
                    print(f"--local: {LIMITS}")
                    if args.serve and target.kept:
                        # The functions' code is read from the emulator's own process.
                        raise InvalidInputError(
                            reason="--serve runs in the emulator's process, and the emulator "
                            f"on {endpoint} is another one: pass --serve to the --local-server "
                            "command instead (python deploy.py --local-server --suffix "
                            f"{args.suffix} --serve)"
                        )
                settings = AwsSettings(
                    region=LOCAL_REGION,
                    endpoint_url=endpoint,
                    access_key=LOCAL_ACCESS_KEY,
                    secret_key=LOCAL_SECRET_KEY,
                    retry_mode=args.retry_mode,
                )
            clients = make_clients(settings)
            check_region(plan, clients.region)
            report = Run(plan, options, clients, print, confirm_on_terminal, wait).execute()
            if outputs_file is not None:
                write_outputs(outputs_file, plan, report, with_key_value=args.show_api_key)
            if args.serve and report.ok:
                return serve(args, plan, clients, endpoint)
    except DeployError as error:
        print(f"deploy.py: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT if isinstance(error, BAD_INPUT) else EXIT_FAILED
    if report.error is not None:
        print(f"deploy.py: error: {report.error}", file=sys.stderr)
        if report.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_BAD_INPUT if isinstance(report.error, BAD_INPUT) else EXIT_FAILED
    return 0 if report.ok else EXIT_FAILED


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # outside a deploy (parsing, a module loaded on use)
        print("deploy.py: interrupted (Ctrl-C); no stack operation was running", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)

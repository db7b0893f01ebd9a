"""Deployer errors: each names the cause and the next step in one message.

Like aws-cli's deployer exceptions, each class carries a message template
(`fmt`) filled from keyword arguments, so callers raise with data, not prose.
"""

from __future__ import annotations

from typing import Any


class DeployError(Exception):
    """Base class: `str(error)` is the one message the person deploying reads."""

    fmt = "deployment failed: {reason}"

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        super().__init__(self.fmt.format(**kwargs))


class InvalidInputError(DeployError):
    """Bad command-line input (suffix, stack name, option combination)."""

    fmt = "{reason}"


class NoCredentialsError(DeployError):
    """No usable AWS credentials."""

    fmt = (
        "no usable AWS credentials ({reason}): configure a profile (aws configure, "
        "AWS_PROFILE=...) or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
        "or try the whole flow without an account with --local"
    )


class WrongRegionError(DeployError):
    """The platform stack refuses regions other than the one it is built for."""

    fmt = (
        "stack {stack} deploys only to {required} (its template's Rules refuse other "
        "regions) but the region is {region}: rerun with --region {required} "
        "(or AWS_REGION={required}), or deploy only --stack payment-api"
    )


class NoRegionError(DeployError):
    """No region configured."""

    fmt = "no AWS region configured: pass --region us-east-1 or set AWS_REGION"


class PinMismatchError(DeployError):
    """The installed runtime dependency differs from the version pinned for the zip."""

    fmt = (
        "{distribution} {installed} is installed but setup.cfg pins {pinned}; the zip ships "
        "the installed copy, so install the pin first: pip install '{distribution}=={pinned}'"
    )


class PackagingError(DeployError):
    """The Lambda package cannot be built."""

    fmt = "cannot build the Lambda package: {reason}"


class BucketAccessError(DeployError):
    """The artifact bucket is missing or not writable with these credentials."""

    fmt = (
        "cannot {action} s3://{bucket}/{key} ({code}: {message}): grant s3:GetObject and "
        "s3:PutObject on that bucket to this identity, or pass --artifact-bucket with a "
        "bucket you can write"
    )


class ChangeSetFailedError(DeployError):
    """CloudFormation refused to create a change set."""

    fmt = (
        "change set {change_set} for stack {stack} failed: {reason}. Fix the template or "
        "parameters (python generate.py --suffix ... lints them) and rerun"
    )


class StackNotOursError(DeployError):
    """A stack with our name that does not carry our tags: never updated, deleted or recreated."""

    fmt = (
        "stack {stack} ({status}) does not carry our tags (missing {missing}), so it may "
        "belong to someone else and is left alone: nothing was changed. Inspect it; if it is "
        "yours, add the tags, or delete it yourself "
        "(aws cloudformation delete-stack --stack-name {stack}) and rerun"
    )


class UpdateRollbackFailedError(DeployError):
    """A stack stuck in UPDATE_ROLLBACK_FAILED."""

    fmt = (
        "stack {stack} is UPDATE_ROLLBACK_FAILED: fix the cause shown in its events, then run "
        "aws cloudformation continue-update-rollback --stack-name {stack} --region {region} "
        "(add --resources-to-skip for resources that cannot roll back) and rerun this deploy"
    )


class StackUnusableError(DeployError):
    """A stack in a failed state the deployer will not repair by itself."""

    fmt = "stack {stack} is {status}: {next_step}"


class StackOperationFailedError(DeployError):
    """A create, update or delete ended in a status other than the one expected."""

    fmt = (
        "stack {stack} ended {status} (expected {expected}){reason}: see the failed "
        "resources below, fix the cause and rerun"
    )


class WaitTimeoutError(DeployError):
    """A stack or change set still in progress after the time allowed."""

    fmt = (
        "{what} still {status} after {seconds:.0f} s: it goes on in CloudFormation; "
        "rerun later (this deploy waits for it) or raise --timeout"
    )


class AwsCallError(DeployError):
    """An AWS call failed for a reason not covered by a more specific error."""

    fmt = "{operation} failed ({code}: {message}): {next_step}"


class DeclinedError(DeployError):
    """The person deploying answered no."""

    fmt = "{stack}: not executed (declined); {detail}"


class DataLossError(DeployError):
    """A change set would replace or remove a resource holding data."""

    fmt = (
        "{stack}: not executed, the change set would {losses}. Refused even with --yes; "
        "the change set was deleted and nothing changed. If the loss is intended, rerun with "
        "{flags}"
    )


class ProcessorMissingError(DeployError):
    """The Lambda function the payment API would front does not exist."""

    fmt = (
        "{stack} fronts Lambda function {function}, which does not exist in {region}: "
        "deploy the platform first (python deploy.py --suffix {suffix} --stack "
        "payment-platform) or name an existing function with --processor-function"
    )


class BootstrapBucketMissingError(DeployError):
    """The bootstrap stack exists but its bucket was deleted."""

    fmt = (
        "the artifact bucket {bucket} of stack {stack} no longer exists (deleted outside "
        "CloudFormation; the stack keeps it with DeletionPolicy Retain): delete the stack "
        "(aws cloudformation delete-stack --stack-name {stack} --region {region}) and rerun, "
        "which creates a new bucket and uploads again, or pass --artifact-bucket"
    )


class DependentStackError(DeployError):
    """A stack other stacks of the suffix still rely on."""

    fmt = "{stack} is not deleted: {reason}; nothing was deleted"


class RunInterruptedError(DeployError):
    """Ctrl-C: what is still running in CloudFormation and how to follow it."""

    fmt = "interrupted (Ctrl-C): {state}"

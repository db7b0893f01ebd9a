"""The artifact bucket (a small bootstrap stack) and content-addressed uploads to it."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from deployer.aws import AWS_ERRORS, call_failure, error_code, error_message
from deployer.errors import BootstrapBucketMissingError, BucketAccessError, InvalidInputError
from templates.naming import PROJECT

# One bootstrap stack per account and region, shared by every suffix; each suffix
# keeps its artifacts under its own prefix so --destroy can remove just those.
BOOTSTRAP_STACK = f"{PROJECT}-bootstrap"
# Bumped whenever bootstrap_template() changes; carried as a stack tag and read back
# from DescribeStacks, so an up-to-date bootstrap costs one call and no GetTemplate.
# (A tag rather than the description: moto reports no description after a change set.)
BOOTSTRAP_VERSION = 1
BOOTSTRAP_TAGS = {"Project": PROJECT, "BootstrapVersion": str(BOOTSTRAP_VERSION)}
# What makes a bootstrap stack ours whatever its version.
BOOTSTRAP_OWNER_TAGS = {"Project": PROJECT}
MISSING_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
BUCKET_LOGICAL_ID = "ArtifactBucket"
BOOTSTRAP_DESCRIPTION = (
    f"Artifact bucket for {PROJECT} deployments: Lambda zips and large templates "
    f"(bootstrap v{BOOTSTRAP_VERSION})"
)
NONCURRENT_DAYS = 30


def bootstrap_template() -> dict[str, Any]:
    """The bootstrap stack: one bucket, encrypted, versioned, private, TLS-only."""
    bucket_arn = {"Fn::GetAtt": [BUCKET_LOGICAL_ID, "Arn"]}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": BOOTSTRAP_DESCRIPTION,
        "Resources": {
            BUCKET_LOGICAL_ID: {
                "Type": "AWS::S3::Bucket",
                # Kept on stack deletion: other suffixes' artifacts may live in it.
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
                "Properties": {
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                    "LifecycleConfiguration": {
                        "Rules": [
                            {
                                "Id": "expire-old-versions",
                                "Status": "Enabled",
                                "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_DAYS},
                                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                            }
                        ]
                    },
                    "Tags": [{"Key": "Project", "Value": PROJECT}],
                },
            },
            "ArtifactBucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": BUCKET_LOGICAL_ID},
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "DenyInsecureTransport",
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:*",
                                "Resource": [
                                    bucket_arn,
                                    {"Fn::Sub": "${" + BUCKET_LOGICAL_ID + ".Arn}/*"},
                                ],
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ],
                    },
                },
            },
        },
        "Outputs": {
            BUCKET_LOGICAL_ID: {
                "Description": "Bucket holding Lambda zips and large templates",
                "Value": {"Ref": BUCKET_LOGICAL_ID},
            }
        },
    }


def bootstrap_is_current(stack: dict[str, Any] | None) -> bool:
    """True when the bootstrap stack exists, is stable, and has our template version."""
    if stack is None:
        return False
    stable = stack["StackStatus"] in {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
    tags = {tag["Key"]: tag["Value"] for tag in stack.get("Tags", [])}
    return stable and all(tags.get(key) == value for key, value in BOOTSTRAP_TAGS.items())


@dataclass(frozen=True)
class ArtifactStore:
    """Objects of one suffix in one bucket, stored under content-addressed keys.

    Every call names the account that must own the bucket (ExpectedBucketOwner), so a
    bucket of the same name in another account is never read from or written to.
    """

    s3: Any
    bucket: str
    prefix: str
    region: str
    owner: str | None = None
    # The bootstrap stack the bucket belongs to (None: --artifact-bucket).
    bootstrap: str | None = None

    def key(self, name: str) -> str:
        """The full object key of `name` below this suffix's prefix."""
        return f"{self.prefix}/{name}"

    def url(self, name: str) -> str:
        """The virtual-hosted HTTPS URL CloudFormation reads a TemplateURL from."""
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{self.key(name)}"

    @property
    def _owner(self) -> dict[str, str]:
        return {"ExpectedBucketOwner": self.owner} if self.owner else {}

    def exists(self, name: str) -> bool:
        """True when the object is already stored (so it is never uploaded twice)."""
        try:
            self.s3.head_object(Bucket=self.bucket, Key=self.key(name), **self._owner)
        except botocore.exceptions.ClientError as error:
            if error_code(error) in MISSING_CODES:
                self._check_bucket()  # HEAD says 404 for a missing bucket too
                return False
            raise self._access_error("read", name, error) from None
        except AWS_ERRORS as error:
            raise call_failure(f"s3:HeadObject on s3://{self.bucket}", error) from None
        return True

    def ensure(self, name: str, data: bytes, content_type: str) -> bool:
        """Upload `data` unless its key exists; return True when it was uploaded."""
        if self.exists(name):
            return False
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self.key(name),
                Body=data,
                ContentType=content_type,
                ChecksumSHA256=_b64_sha256(data),
                **self._owner,
            )
        except botocore.exceptions.ClientError as error:
            raise self._access_error("write", name, error) from None
        except AWS_ERRORS as error:
            raise call_failure(f"s3:PutObject on s3://{self.bucket}", error) from None
        return True

    def delete_unreferenced(self, keep: set[str]) -> int:
        """Delete every version of every object under the prefix except `keep`; return the count."""
        deleted = 0
        paginator = self.s3.get_paginator("list_object_versions")
        try:
            pages = paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/", **self._owner)
            for page in pages:
                doomed = [
                    {"Key": item["Key"], "VersionId": item["VersionId"]}
                    for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
                    if item["Key"] not in keep
                ]
                if doomed:
                    self.s3.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": doomed}, **self._owner
                    )
                    deleted += len(doomed)
        except botocore.exceptions.ClientError as error:
            raise self._access_error("delete", "", error) from None
        except AWS_ERRORS as error:
            raise call_failure(f"s3:DeleteObjects on s3://{self.bucket}", error) from None
        return deleted

    def _check_bucket(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket, **self._owner)
        except botocore.exceptions.ClientError as error:
            if (self.bootstrap is not None) and (error_code(error) in MISSING_CODES):
                raise BootstrapBucketMissingError(
                    bucket=self.bucket, stack=self.bootstrap, region=self.region
                ) from None
            raise self._access_error("use", "", error) from None

    def _access_error(
        self, action: str, name: str, error: botocore.exceptions.ClientError
    ) -> BucketAccessError:
        return BucketAccessError(
            action=action,
            bucket=self.bucket,
            key=self.key(name) if name else f"{self.prefix}/",
            code=error_code(error),
            message=error_message(error) or "no message",
        )


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def checked_bucket(s3: Any, bucket: str, region: str, owner: str | None) -> str:
    """An --artifact-bucket fit for code: ours, in the deploy region, encrypted at rest."""
    expected = {"ExpectedBucketOwner": owner} if owner else {}
    try:
        response = s3.head_bucket(Bucket=bucket, **expected)
    except botocore.exceptions.ClientError as error:
        code = error_code(error)
        if code in {"403", "AccessDenied"}:
            raise InvalidInputError(
                reason=f"--artifact-bucket {bucket} is not owned by account {owner} or not "
                "accessible to this identity (HeadBucket 403): give a bucket of this account "
                "you may read and write"
            ) from None
        if code in MISSING_CODES:
            raise InvalidInputError(
                reason=f"--artifact-bucket {bucket} does not exist: create it in {region} "
                "(encrypted) or drop the option to use the bootstrap stack's bucket"
            ) from None
        raise call_failure(f"s3:HeadBucket on {bucket}", error) from None
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    actual = str(headers.get("x-amz-bucket-region", "us-east-1"))
    if actual != region:
        raise InvalidInputError(
            reason=f"--artifact-bucket {bucket} is in {actual} but the stacks deploy to "
            f"{region}; Lambda reads code only from its own region: give a bucket in {region}"
        )
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket, **expected)[
            "ServerSideEncryptionConfiguration"
        ]["Rules"]
    except botocore.exceptions.ClientError as error:
        if error_code(error) != "ServerSideEncryptionConfigurationNotFoundError":
            raise call_failure(f"s3:GetEncryptionConfiguration on {bucket}", error) from None
        rules = []
    if not any(rule.get("ApplyServerSideEncryptionByDefault") for rule in rules):
        raise InvalidInputError(
            reason=f"--artifact-bucket {bucket} has no default encryption: enable it "
            f"(aws s3api put-bucket-encryption --bucket {bucket} ...) or give another bucket"
        )
    return bucket

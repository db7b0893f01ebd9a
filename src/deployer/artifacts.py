"""The artifact bucket (a small bootstrap stack) and content-addressed uploads to it."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from deployer.aws import error_code, error_message
from deployer.errors import BucketAccessError
from templates.naming import PROJECT

# One bootstrap stack per account and region, shared by every suffix; each suffix
# keeps its artifacts under its own prefix so --destroy can remove just those.
BOOTSTRAP_STACK = f"{PROJECT}-bootstrap"
# Bumped whenever bootstrap_template() changes; carried as a stack tag and read back
# from DescribeStacks, so an up-to-date bootstrap costs one call and no GetTemplate.
# (A tag rather than the description: moto reports no description after a change set.)
BOOTSTRAP_VERSION = 1
BOOTSTRAP_TAGS = {"Project": PROJECT, "BootstrapVersion": str(BOOTSTRAP_VERSION)}
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
    """Objects of one suffix in one bucket, stored under content-addressed keys."""

    s3: Any
    bucket: str
    prefix: str
    region: str

    def key(self, name: str) -> str:
        """The full object key of `name` below this suffix's prefix."""
        return f"{self.prefix}/{name}"

    def url(self, name: str) -> str:
        """The virtual-hosted HTTPS URL CloudFormation reads a TemplateURL from."""
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{self.key(name)}"

    def exists(self, name: str) -> bool:
        """True when the object is already stored (so it is never uploaded twice)."""
        try:
            self.s3.head_object(Bucket=self.bucket, Key=self.key(name))
        except botocore.exceptions.ClientError as error:
            if error_code(error) in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise self._access_error("read", name, error) from None
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
            )
        except botocore.exceptions.ClientError as error:
            raise self._access_error("write", name, error) from None
        return True

    def delete_all(self) -> int:
        """Delete every version of every object under this suffix's prefix; return the count."""
        deleted = 0
        paginator = self.s3.get_paginator("list_object_versions")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/"):
                doomed = [
                    {"Key": item["Key"], "VersionId": item["VersionId"]}
                    for item in page.get("Versions", []) + page.get("DeleteMarkers", [])
                ]
                if doomed:
                    self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": doomed})
                    deleted += len(doomed)
        except botocore.exceptions.ClientError as error:
            raise self._access_error("delete", "", error) from None
        return deleted

    def _access_error(
        self, action: str, name: str, error: botocore.exceptions.ClientError
    ) -> BucketAccessError:
        return BucketAccessError(
            action=action,
            bucket=self.bucket,
            key=self.key(name) if name else f"{self.prefix}/",
            code=error_code(error),
            message=error_message(error),
        )


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def bucket_region(s3: Any, bucket: str) -> str:
    """The region of an existing bucket given with --artifact-bucket (Lambda needs the same)."""
    try:
        response = s3.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as error:
        raise BucketAccessError(
            action="use",
            bucket=bucket,
            key="",
            code=error_code(error),
            message=error_message(error) or "bucket missing or not accessible",
        ) from None
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return str(headers.get("x-amz-bucket-region", "us-east-1"))

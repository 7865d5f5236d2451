"""`smartcity aws plan | apply | destroy`: make an account hold the desired state (:mod:`smartcity_aws.stack`),
idempotently, with boto3.

``plan`` compares what exists with what should and prints each difference; ``apply`` makes them so and a second
``apply`` changes nothing; ``destroy`` removes what ``apply`` made (buckets holding data are kept unless asked).
Clients find the account through the standard AWS chain and ``AWS_ENDPOINT_URL_<SERVICE>``, so the same commands
run against the test bed. An endpoint that is not AWS's own may lack a feature (SeaweedFS refuses lifecycle
transitions and the public access block): that is reported as ``unsupported`` and the rest goes on; on AWS it is
an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from smartcity.errors import PlatformError
from smartcity.settings import Settings
from smartcity_aws.access import KMS_KEY, render
from smartcity_aws.stack import Bucket, DesiredState, Role, desired_state

PUBLIC_ACCESS_BLOCK = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                       "RestrictPublicBuckets": True}  # fmt: skip


class Change(NamedTuple):
    action: str  # create, update, delete, keep (exists as it should), unsupported (by this endpoint), kept (data)
    kind: str
    name: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.action:11s} {self.kind:24s} {self.name}" + (f"  ({self.detail})" if self.detail else "")


@dataclass
class Account:
    """boto3 clients for one account and region, from the standard AWS chain."""

    settings: Settings

    def client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(service, region_name=self.settings.aws_region,
                            config=Config(retries={"max_attempts": 3, "mode": "standard"}))  # fmt: skip

    @cached_property
    def s3(self) -> Any:
        return self.client("s3")

    @cached_property
    def iam(self) -> Any:
        return self.client("iam")

    @cached_property
    def glue(self) -> Any:
        return self.client("glue")

    @cached_property
    def athena(self) -> Any:
        return self.client("athena")

    @cached_property
    def id(self) -> str:
        """The account's id; a failure (no credentials, an endpoint that does not answer) is told by the command
        line's entry point, as every AWS client error is (:mod:`smartcity.aws_errors`)."""
        return self.client("sts").get_caller_identity()["Account"]

    @cached_property
    def kms_key_arn(self) -> str | None:
        """The lake key's ARN, resolved from its id or alias (IAM policies name keys by ARN)."""
        key = self.settings.s3_kms_key_id
        if key is None or (key.startswith("arn:") and ":key/" in key):
            return key
        return self.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"]

    @property
    def on_aws(self) -> bool:
        """True unless an endpoint variable points somewhere else (the test bed)."""
        return not any(name.startswith("AWS_ENDPOINT_URL") and value for name, value in os.environ.items())

    def document(self, document: dict[str, Any] | None) -> dict[str, Any] | None:
        if document is None:
            return None
        has_key = KMS_KEY in json.dumps(document)
        return render(document, self.id, self.kms_key_arn if has_key else None)


MISSING = {
    "404", "NoSuchBucket", "NoSuchEntity", "EntityNotFoundException", "InvalidRequestException",
    "NoSuchLifecycleConfiguration", "NoSuchBucketPolicy", "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError", "OwnershipControlsNotFoundError", "NoSuchTagSet",
}  # fmt: skip
"""Error codes that mean "not there (yet)" when reading a setting."""


def _code(error: Exception) -> str:
    response = getattr(error, "response", {}) or {}
    code = response.get("Error", {}).get("Code", "")
    return str(code or response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def _missing(error: Exception) -> bool:
    return _code(error) in MISSING


def _unsupported(error: Exception, kind: str) -> bool:
    """What an S3-compatible server refuses: SeaweedFS answers PutBucketLogging as if it created the bucket."""
    code = _code(error)
    return code in {"NotImplemented", "501"} or (kind == "s3 access logging" and code == "BucketAlreadyOwnedByYou")


def _read(call: Callable[[], Any], default: Any = None) -> Any:
    """What a read returns, or ``default`` when the thing is not there."""
    from botocore.exceptions import ClientError

    try:
        return call()
    except ClientError as error:
        if _missing(error) or _code(error) in {"NotImplemented", "501"}:
            return default
        raise


class Deployment:
    """Compare, apply and remove the desired state in one account."""

    def __init__(self, settings: Settings, account: Account | None = None) -> None:
        self.settings = settings
        self.account = account or Account(settings)
        self.state: DesiredState = desired_state(settings)

    # ------------------------------------------------------------------ plan and apply
    def plan(self) -> list[Change]:
        return list(self._reconcile(write=False))

    def apply(self) -> list[Change]:
        return list(self._reconcile(write=True))

    def _reconcile(self, write: bool) -> Iterator[Change]:
        for bucket in self.state.buckets:  # the log bucket before the buckets that log to it
            if bucket.receives_logs:
                yield from self._bucket(bucket, write)
        for bucket in self.state.buckets:
            if not bucket.receives_logs:
                yield from self._bucket(bucket, write)
        for role in self.state.roles:
            yield from self._role(role, write)
        yield from self._database(write)
        yield from self._workgroup(write)

    def _step(self, write: bool, kind: str, name: str, current: Any, wanted: Any, put: Callable[[], Any]) -> Change:
        """Compare one setting, and when asked, make it so; an endpoint that cannot is reported, not fatal."""
        from botocore.exceptions import ClientError

        if current == wanted:
            return Change("keep", kind, name)
        action = "create" if current in (None, {}, []) else "update"
        if not write:
            return Change(action, kind, name)
        try:
            put()
        except ClientError as error:
            if _unsupported(error, kind) and not self.account.on_aws:
                return Change("unsupported", kind, name, f"this S3 endpoint refuses it: {_code(error)}")
            raise PlatformError(f"{action} {kind} {name} failed: {error}") from error
        return Change(action, kind, name)

    def _bucket(self, bucket: Bucket, write: bool) -> Iterator[Change]:
        s3, name = self.account.s3, bucket.name
        if not _read(lambda: s3.head_bucket(Bucket=name) or True, default=False):
            if write:
                region = self.settings.aws_region
                where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
                s3.create_bucket(Bucket=name, **where)
            yield Change("create", "s3 bucket", name)
            if not write:
                yield from (Change("create", kind, name) for kind, *_ in self._bucket_settings(bucket))
                return
        for kind, read, wanted, put in self._bucket_settings(bucket):
            yield self._step(write, kind, name, _read(read), wanted, put)

    def _bucket_settings(self, bucket: Bucket) -> list[tuple[str, Callable[[], Any], Any, Callable[[], Any]]]:
        """(what, read it, what it should be, make it so) for each setting of a bucket."""
        s3, name = self.account.s3, bucket.name
        policy = self.account.document(bucket.policy)
        settings: list[tuple[str, Callable[[], Any], Any, Callable[[], Any]]] = [
            (
                "s3 encryption",
                lambda: _encryption(s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]),
                _encryption(bucket.encryption),
                lambda: s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=bucket.encryption),
            ),
            (
                "s3 public access block",
                lambda: s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"],
                PUBLIC_ACCESS_BLOCK,
                lambda: s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK),
            ),
            (
                "s3 lifecycle",
                lambda: _lifecycle(s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]),
                _lifecycle(bucket.lifecycle),
                lambda: s3.put_bucket_lifecycle_configuration(
                    Bucket=name, LifecycleConfiguration={"Rules": bucket.lifecycle}
                ),
            ),
            (
                "s3 bucket policy",
                lambda: _canonical(json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])),
                _canonical(policy),
                lambda: s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy)),
            ),
        ]
        if bucket.versioned:
            settings.append((
                "s3 versioning",
                lambda: s3.get_bucket_versioning(Bucket=name).get("Status"),
                "Enabled",
                lambda: s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"}),
            ))  # fmt: skip
        if bucket.log_to:
            target = {"TargetBucket": bucket.log_to[0], "TargetPrefix": bucket.log_to[1]}
            settings.append((
                "s3 access logging",
                lambda: s3.get_bucket_logging(Bucket=name).get("LoggingEnabled"),
                target,
                lambda: s3.put_bucket_logging(Bucket=name, BucketLoggingStatus={"LoggingEnabled": target}),
            ))  # fmt: skip
        return settings

    def _role(self, role: Role, write: bool) -> Iterator[Change]:
        iam = self.account.iam
        trust = self.account.document(role.trusted)
        current = _read(lambda: iam.get_role(RoleName=role.name)["Role"])
        if current is None:
            if write:
                tags = [{"Key": key, "Value": value} for key, value in self.state.tags.items()]
                iam.create_role(
                    RoleName=role.name,
                    AssumeRolePolicyDocument=json.dumps(trust),
                    Description="smartcity: least privilege for one component",
                    Tags=tags,
                )
            yield Change("create", "iam role", role.name)
        else:
            yield self._step(
                write,
                "iam trust policy",
                role.name,
                _canonical(_policy(current["AssumeRolePolicyDocument"])),
                _canonical(trust),
                lambda: iam.update_assume_role_policy(RoleName=role.name, PolicyDocument=json.dumps(trust)),
            )
        if role.policy is None:
            return
        wanted = self.account.document(role.policy)
        name = f"{role.name}-access"
        existing = None if current is None else _read(lambda: iam.get_role_policy(RoleName=role.name, PolicyName=name))
        yield self._step(
            write,
            "iam role policy",
            role.name,
            existing and _canonical(_policy(existing["PolicyDocument"])),
            _canonical(wanted),
            lambda: iam.put_role_policy(RoleName=role.name, PolicyName=name, PolicyDocument=json.dumps(wanted)),
        )

    def _database(self, write: bool) -> Iterator[Change]:
        glue, name = self.account.glue, self.state.database
        current = _read(lambda: glue.get_database(Name=name)["Database"])
        wanted = {
            "Name": name,
            "LocationUri": self.state.database_location,
            "Description": "The smart-city lake's tables: raw, quarantine, processed and gold",
        }

        def put() -> None:
            if current is None:
                glue.create_database(DatabaseInput=wanted)
            else:
                glue.update_database(Name=name, DatabaseInput=wanted)

        have = None if current is None else {key: current.get(key) for key in wanted}
        yield self._step(write, "glue database", name, have, wanted, put)

    def _workgroup(self, write: bool) -> Iterator[Change]:
        athena, wanted = self.account.athena, self.state.workgroup
        current = _read(lambda: athena.get_work_group(WorkGroup=wanted["Name"]).get("WorkGroup"))

        def put() -> None:
            if current is None:
                tags = [{"Key": key, "Value": value} for key, value in self.state.tags.items()]
                athena.create_work_group(Name=wanted["Name"], Description=wanted["Description"],
                                         Configuration=wanted["Configuration"], Tags=tags)  # fmt: skip
            else:
                updates = _workgroup_update(wanted["Configuration"])
                athena.update_work_group(WorkGroup=wanted["Name"], ConfigurationUpdates=updates)

        have = None if current is None else _workgroup_settings(current.get("Configuration", {}))
        yield self._step(
            write, "athena workgroup", wanted["Name"], have, _workgroup_settings(wanted["Configuration"]), put
        )

    # ------------------------------------------------------------------ destroy
    def destroy(self, delete_data: bool = False) -> list[Change]:
        """Remove the workgroup, the database, the roles and the buckets; a bucket holding objects is kept unless
        ``delete_data`` (the lake is the platform's data, not its infrastructure), except the access-log bucket."""
        changes = []
        athena, glue, iam = self.account.athena, self.account.glue, self.account.iam
        name = self.state.workgroup["Name"]
        if _read(lambda: athena.get_work_group(WorkGroup=name).get("WorkGroup")) is not None:
            athena.delete_work_group(WorkGroup=name, RecursiveDeleteOption=True)
            changes.append(Change("delete", "athena workgroup", name))
        if _read(lambda: glue.get_database(Name=self.state.database)) is not None:
            glue.delete_database(Name=self.state.database)
            changes.append(Change("delete", "glue database", self.state.database))
        for role in self.state.roles:
            if _read(lambda role=role: iam.get_role(RoleName=role.name)) is None:
                continue
            for policy in iam.list_role_policies(RoleName=role.name)["PolicyNames"]:
                iam.delete_role_policy(RoleName=role.name, PolicyName=policy)
            iam.delete_role(RoleName=role.name)
            changes.append(Change("delete", "iam role", role.name))
        for bucket in sorted(self.state.buckets, key=lambda bucket: bucket.receives_logs):
            # the access-log bucket holds only the logs of the others: it goes with them
            changes += self._delete_bucket(bucket.name, delete_data or bucket.receives_logs)
        return changes

    def _delete_bucket(self, name: str, delete_data: bool) -> list[Change]:
        s3 = self.account.s3
        if not _read(lambda: s3.head_bucket(Bucket=name) or True, default=False):
            return []
        objects = _stored_versions(s3, name)
        if objects and not delete_data:
            return [Change("kept", "s3 bucket", name, "it holds data: --delete-data removes it too")]
        _read(lambda: s3.delete_bucket_policy(Bucket=name))  # the bucket goes: its policy first, then its objects
        for _ in range(100):  # a page of 1000 at a time; a bound, so a server that does not delete cannot loop us
            if not objects:
                break
            response = s3.delete_objects(Bucket=name, Delete={"Objects": objects, "Quiet": True})
            if response.get("Errors"):
                raise PlatformError(f"could not empty s3 bucket {name}: {response['Errors'][:3]}")
            objects = _stored_versions(s3, name)
        else:
            raise PlatformError(f"s3 bucket {name} still holds objects after deleting 100,000 of them")
        s3.delete_bucket(Bucket=name)
        return [Change("delete", "s3 bucket", name)]


def _stored_versions(s3: Any, bucket: str) -> list[dict[str, str]]:
    """Up to 1000 objects of ``bucket``, every version and delete marker of them, ready for DeleteObjects."""
    listed = s3.list_object_versions(Bucket=bucket, MaxKeys=1000)
    versions = listed.get("Versions", []) + listed.get("DeleteMarkers", [])
    return [{"Key": version["Key"], "VersionId": version["VersionId"]} for version in versions]


def _policy(document: Any) -> dict[str, Any]:
    """A policy document as IAM returns it (URL-encoded text, or already parsed)."""
    from urllib.parse import unquote

    return json.loads(unquote(document)) if isinstance(document, str) else document


def _canonical(document: Any) -> Any:
    """A policy in a comparable form: services return a one-element Action or Resource list as a string."""
    if isinstance(document, dict):
        return {key: sorted(_listed(value)) if key in LISTS else _canonical(value) for key, value in document.items()}
    if isinstance(document, list):
        return [_canonical(item) for item in document]
    return document


LISTS = {"Action", "NotAction", "Resource", "NotResource"}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _encryption(configuration: dict[str, Any]) -> list[dict[str, Any]]:
    """Default-encryption rules, comparable (a bucket key that is off may be spelled out or left out)."""
    return [{key: value for key, value in rule.items() if value is not False} for rule in configuration["Rules"]]


def _lifecycle(rules: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Lifecycle rules in a comparable form (sorted, without what the service adds on its own)."""
    if rules is None:
        return None
    keep = ("ID", "Status", "Filter", "Transitions", "Expiration", "AbortIncompleteMultipartUpload",
            "NoncurrentVersionExpiration")  # fmt: skip
    return sorted(({key: rule[key] for key in keep if key in rule} for rule in rules), key=lambda rule: rule["ID"])


def _workgroup_settings(configuration: dict[str, Any]) -> dict[str, Any]:
    """The parts of a workgroup's configuration the platform sets, comparable."""
    results = configuration.get("ResultConfiguration", {})
    return {
        "OutputLocation": results.get("OutputLocation"),
        "EncryptionConfiguration": results.get("EncryptionConfiguration"),
        "EnforceWorkGroupConfiguration": configuration.get("EnforceWorkGroupConfiguration"),
        "BytesScannedCutoffPerQuery": configuration.get("BytesScannedCutoffPerQuery"),
    }


def _workgroup_update(configuration: dict[str, Any]) -> dict[str, Any]:
    return {
        "ResultConfigurationUpdates": configuration["ResultConfiguration"],
        "EnforceWorkGroupConfiguration": configuration["EnforceWorkGroupConfiguration"],
        "PublishCloudWatchMetricsEnabled": configuration["PublishCloudWatchMetricsEnabled"],
        "BytesScannedCutoffPerQuery": configuration["BytesScannedCutoffPerQuery"],
    }

"""The aws profile's infrastructure as one desired state, generated from the settings: the lake's buckets (their
encryption, public access block, versioning, access logging, lifecycle and policy), a role and policy per
component (:mod:`smartcity_aws.access`), the Glue database and the Athena workgroup.

It renders as a CloudFormation template (`smartcity aws template`) that an AWS user can review, lint and deploy,
and it is what `smartcity aws plan | apply | destroy` (:mod:`smartcity_aws.deploy`) compares and applies: one
description, so the template and the applied resources cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from smartcity import aws_rules
from smartcity.lake_layout import QUARANTINE, RAW
from smartcity.settings import Settings
from smartcity_aws.access import KMS_KEY, ROLES, bucket_policy, lake_prefix, names, role_policies

LOG_EXPIRY_DAYS = 90
LOG_PREFIX = "s3-access/"
LOG_BUCKET_SKIPS = [
    {"id": "CKV_AWS_18", "comment": "the access-log bucket does not log its own access"},
    {"id": "CKV_AWS_21", "comment": "access logs are written once and expire: no versions to keep"},
]


@dataclass(frozen=True)
class Bucket:
    """One bucket as it should be."""

    name: str
    encryption: dict[str, Any]
    lifecycle: list[dict[str, Any]]
    policy: dict[str, Any]
    versioned: bool
    log_to: tuple[str, str] | None = None  # (bucket, prefix) receiving its access logs
    receives_logs: bool = False


@dataclass(frozen=True)
class Role:
    name: str
    trusted: dict[str, Any]
    policy: dict[str, Any] | None


@dataclass(frozen=True)
class DesiredState:
    buckets: list[Bucket]
    roles: list[Role]
    database: str
    database_location: str
    workgroup: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)


def encryption(settings: Settings) -> dict[str, Any]:
    """Default encryption of the lake's buckets: SSE-KMS with a bucket key when a key is set, else SSE-S3."""
    if settings.s3_kms_key_id:
        default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": settings.s3_kms_key_id}
        return {"Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}]}
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


def lake_lifecycle(settings: Settings, results_in_lake: bool) -> list[dict[str, Any]]:
    """Raw to STANDARD_IA after 30 days and GLACIER_IR after 90, expired after the retention; quarantine expired
    after 30 days; Athena results after 7; incomplete multipart uploads aborted after 1 day; old versions after 7."""
    prefix = lake_prefix(settings)
    rules = [
        {"ID": "raw-tiers-and-retention", "Status": "Enabled", "Filter": {"Prefix": f"{prefix}{RAW}/"},
         "Transitions": [{"Days": aws_rules.RAW_TO_STANDARD_IA_DAYS, "StorageClass": "STANDARD_IA"},
                         {"Days": aws_rules.RAW_TO_GLACIER_IR_DAYS, "StorageClass": "GLACIER_IR"}],
         "Expiration": {"Days": settings.retention_days}},
        {"ID": "quarantine-expiry", "Status": "Enabled", "Filter": {"Prefix": f"{prefix}{QUARANTINE}/"},
         "Expiration": {"Days": aws_rules.QUARANTINE_EXPIRY_DAYS}},
        {"ID": "lake-retention", "Status": "Enabled", "Filter": {"Prefix": prefix},
         "Expiration": {"Days": settings.retention_days}},
        {"ID": "abort-incomplete-uploads", "Status": "Enabled", "Filter": {"Prefix": ""},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": aws_rules.INCOMPLETE_UPLOAD_DAYS}},
        {"ID": "noncurrent-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
         "NoncurrentVersionExpiration": {"NoncurrentDays": aws_rules.NONCURRENT_VERSION_DAYS}},
    ]  # fmt: skip
    if results_in_lake:
        rules.insert(2, _results_rule(settings))
    return rules


def _results_rule(settings: Settings) -> dict[str, Any]:
    return {"ID": "athena-results-expiry", "Status": "Enabled",
            "Filter": {"Prefix": f"{urlparse(settings.athena_results).path.strip('/')}/"},
            "Expiration": {"Days": aws_rules.ATHENA_RESULTS_EXPIRY_DAYS}}  # fmt: skip


def desired_state(settings: Settings) -> DesiredState:
    """What `apply` makes exist and `destroy` removes, for these settings."""
    lake, logs = settings.lake_bucket, settings.log_bucket
    results = urlparse(settings.athena_results).netloc
    buckets = [
        Bucket(lake, encryption(settings), lake_lifecycle(settings, results == lake), bucket_policy(settings, lake),
               versioned=True, log_to=(logs, f"{LOG_PREFIX}{lake}/")),
        # S3 delivers access logs with SSE-S3 only; the log bucket keeps them for 90 days
        Bucket(logs, {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
               [{"ID": "log-expiry", "Status": "Enabled", "Filter": {"Prefix": ""},
                 "Expiration": {"Days": LOG_EXPIRY_DAYS}}],
               with_log_delivery(bucket_policy(settings, logs), logs, sorted({lake, results} - {logs})),
               versioned=False, receives_logs=True),
    ]  # fmt: skip
    if results not in (lake, logs):
        results_bucket = Bucket(results, encryption(settings), [_results_rule(settings)],
                                bucket_policy(settings, results), versioned=False,
                                log_to=(logs, f"{LOG_PREFIX}{results}/"))  # fmt: skip
        buckets.append(results_bucket)
    policies = role_policies(settings)
    roles = [Role(names(settings)[f"role:{role}"], _trust(role), policies.get(role)) for role in ROLES]
    results_encryption = (
        {"EncryptionOption": "SSE_KMS", "KmsKey": settings.s3_kms_key_id}
        if settings.s3_kms_key_id
        else {"EncryptionOption": "SSE_S3"}
    )
    output = {
        "OutputLocation": settings.athena_results.rstrip("/") + "/",
        "EncryptionConfiguration": results_encryption,
    }
    workgroup = {
        "Name": names(settings)["workgroup"],
        "Description": "The smart-city platform's Athena queries: results location, encryption and a scan limit "
        "enforced",
        "Configuration": {
            "ResultConfiguration": output,
            "EnforceWorkGroupConfiguration": True,
            "PublishCloudWatchMetricsEnabled": True,
            "BytesScannedCutoffPerQuery": settings.athena_bytes_scanned_cutoff,
        },
    }
    return DesiredState(
        buckets=buckets,
        roles=roles,
        database=names(settings)["database"],
        database_location=f"s3://{lake}/{lake_prefix(settings)}",
        workgroup=workgroup,
        tags={"project": "smartcity", "environment": settings.aws_environment},
    )


def _trust(role: str) -> dict[str, Any]:
    """Who may assume a role: Redshift for the loader (its COPY), principals of the account for the others (the
    compute each component runs on, given sts:AssumeRole by the account's administrators)."""
    principal = {"Service": "redshift.amazonaws.com"} if role == "loader" else {"AWS": "arn:aws:iam::{account}:root"}
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]}  # fmt: skip


def template(settings: Settings) -> dict[str, Any]:
    """The desired state as a CloudFormation template (JSON); ``{account}`` becomes ``${AWS::AccountId}``."""
    state = desired_state(settings)
    resources: dict[str, Any] = {}
    tags = [{"Key": key, "Value": value} for key, value in state.tags.items()]
    for bucket in state.buckets:
        logical = _logical(bucket.name, "Bucket")
        properties: dict[str, Any] = {
            "BucketName": bucket.name,
            "BucketEncryption": {"ServerSideEncryptionConfiguration": _cfn_encryption(bucket.encryption)},
            "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                               "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "LifecycleConfiguration": {"Rules": [_cfn_rule(rule) for rule in bucket.lifecycle]},
            "VersioningConfiguration": {"Status": "Enabled" if bucket.versioned else "Suspended"},
            "Tags": tags,
        }  # fmt: skip
        if bucket.log_to:
            destination, prefix = bucket.log_to
            properties["LoggingConfiguration"] = {
                "DestinationBucketName": {"Ref": _logical(destination, "Bucket")},
                "LogFilePrefix": prefix,
            }
        resources[logical] = {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",  # data outlives a deleted stack; `smartcity aws destroy` says what is kept
            "UpdateReplacePolicy": "Retain",
            "Properties": properties,
        }
        if bucket.receives_logs:
            resources[logical]["Metadata"] = {"checkov": {"skip": LOG_BUCKET_SKIPS}}
        resources[f"{logical}Policy"] = {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {"Bucket": {"Ref": logical}, "PolicyDocument": _sub(bucket.policy, settings.s3_kms_key_id)},
        }
    for role in state.roles:
        properties = {"RoleName": role.name, "AssumeRolePolicyDocument": _sub(role.trusted, None), "Tags": tags,
                      "Description": f"smartcity {role.name}: least privilege for one component"}  # fmt: skip
        if role.policy:
            properties["Policies"] = [
                {"PolicyName": f"{role.name}-access", "PolicyDocument": _sub(role.policy, settings.s3_kms_key_id)}
            ]
        resources[_logical(role.name, "Role")] = {"Type": "AWS::IAM::Role", "Properties": properties}
    database = {"Name": state.database, "LocationUri": state.database_location,
                "Description": "The smart-city lake's tables: raw, quarantine, processed and gold"}  # fmt: skip
    resources["GlueDatabase"] = {
        "Type": "AWS::Glue::Database",
        "Properties": {"CatalogId": {"Ref": "AWS::AccountId"}, "DatabaseInput": database},
    }
    workgroup = {"Name": state.workgroup["Name"], "Description": state.workgroup["Description"], "State": "ENABLED",
                 "WorkGroupConfiguration": state.workgroup["Configuration"], "Tags": tags}  # fmt: skip
    resources["AthenaWorkGroup"] = {"Type": "AWS::Athena::WorkGroup", "Properties": workgroup}
    key = settings.s3_kms_key_id or ""
    parameters = {}
    if key.startswith("alias/") or ":alias/" in key:
        parameters["LakeKeyArn"] = {
            "Type": "String",
            "AllowedPattern": "arn:aws[a-z-]*:kms:.*:key/.+",
            "Description": f"ARN of the KMS key behind {key} (IAM policies name keys by their ARN)",
        }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        **({"Parameters": parameters} if parameters else {}),
        "Description": f"smart-city data platform, environment {settings.aws_environment}: lake buckets, component "
        "roles, Glue database, Athena workgroup (generated by `smartcity aws template`)",
        "Resources": resources,
        "Outputs": {name: {"Value": {"Fn::GetAtt": [name, "Arn"]}} for name in resources if name.endswith("Role")},
    }


def with_log_delivery(policy: dict[str, Any], bucket: str, sources: list[str]) -> dict[str, Any]:
    """The access-log bucket's policy: S3's logging service may deliver each source bucket's logs under its own
    prefix, from this account only (it writes as itself, so the deny of other accounts is left out)."""
    delivery = [
        {"Sid": f"S3ServerAccessLogs{index}", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/{LOG_PREFIX}{source}/*",
         "Condition": {"StringEquals": {"aws:SourceAccount": "{account}"}}}
        for index, source in enumerate(sources)
    ]  # fmt: skip
    statements = [statement for statement in policy["Statement"] if statement["Sid"] != "DenyOtherAccounts"]
    return {**policy, "Statement": [*delivery, *statements]}


def _cfn_encryption(encryption: dict[str, Any]) -> list[dict[str, Any]]:
    """S3's encryption rules in CloudFormation's spelling."""
    return [
        {"ServerSideEncryptionByDefault": rule["ApplyServerSideEncryptionByDefault"],
         **({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {})}
        for rule in encryption["Rules"]
    ]  # fmt: skip


def _cfn_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """An S3 API lifecycle rule in CloudFormation's spelling."""
    cfn: dict[str, Any] = {"Id": rule["ID"], "Status": rule["Status"], "Prefix": rule["Filter"]["Prefix"]}
    if "Transitions" in rule:
        cfn["Transitions"] = [{"TransitionInDays": t["Days"], "StorageClass": t["StorageClass"]}
                              for t in rule["Transitions"]]  # fmt: skip
    if "Expiration" in rule:
        cfn["ExpirationInDays"] = rule["Expiration"]["Days"]
    if "AbortIncompleteMultipartUpload" in rule:
        cfn["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    if "NoncurrentVersionExpiration" in rule:
        cfn["NoncurrentVersionExpiration"] = rule["NoncurrentVersionExpiration"]
    return cfn


def _sub(value: Any, key: str | None) -> Any:
    """A policy document whose ``{account}`` and ``{kms_key}`` placeholders become CloudFormation references,
    string by string."""
    if isinstance(value, dict):
        return {name: _sub(item, key) for name, item in value.items()}
    if isinstance(value, list):
        return [_sub(item, key) for item in value]
    if isinstance(value, str) and KMS_KEY in value:
        return _key_arn(key or "")
    if isinstance(value, str) and "{account}" in value:
        return {"Fn::Sub": value.replace("{account}", "${AWS::AccountId}")}
    return value


def _key_arn(key: str) -> Any:
    """The lake key's ARN: itself, built from its id, or (for an alias) the ``LakeKeyArn`` parameter."""
    if key.startswith("arn:") and ":key/" in key:
        return key
    if key.startswith(("alias/", "arn:")):
        return {"Ref": "LakeKeyArn"}
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:kms:${{AWS::Region}}:${{AWS::AccountId}}:key/{key}"}


def _logical(name: str, kind: str) -> str:
    """A CloudFormation logical id from a resource name: ``city-lake`` → ``CityLakeBucket``."""
    return "".join(part.capitalize() for part in name.replace(".", "-").replace("_", "-").split("-")) + kind

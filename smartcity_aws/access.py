"""Who may do what on AWS: the lake bucket's policy and one least-privilege IAM policy per component.

One model, several renderings: the CloudFormation template (:mod:`smartcity_aws.stack`), `smartcity aws apply`,
and the test bed's S3 identities, which SeaweedFS enforces. Each role is scoped to the prefixes its component
touches, with every action named (no ``*`` action, no ``*`` resource where an ARN can be named):

- **stream**: writes ``raw/``, ``quarantine/``, its staging and its ``_stream/`` bookkeeping (the commit protocol
  copies staged objects, then deletes them; a replay takes back its leftovers).
- **processing**: reads ``raw/``, writes ``processed/`` and its staging.
- **dbt** (Athena): reads ``processed/``, writes its build tables under ``_staging/gold-build/`` and the Athena
  results prefix; reads the processed and writes the gold Glue tables (and drops its ``gold_build_*`` ones); runs
  queries in the platform's workgroup only.
- **loader** (Redshift's ``COPY`` assumes it): reads ``gold/`` and the load manifests the orchestrator stages.
- **orchestrator** (Dagster): lists and reads every zone (the sensor, the checks), publishes ``processed/`` and
  ``gold/`` hours and expires old ones, writes the database's Glue tables.
- **dashboard**: nothing in S3 or Glue; it reads the warehouse.

The stream's checkpoint stays on a file system with atomic renames (not S3), so no role writes it there.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from smartcity.lake_layout import GOLD, PROCESSED, QUARANTINE, RAW, STAGING, STREAM_STATE
from smartcity.settings import Settings

GOLD_BUILD = f"{STAGING}/gold-build"
"""Where Athena writes the gold models' build tables, from which the orchestrator publishes each hour into gold/."""
ROLES = ("stream", "processing", "dbt", "loader", "orchestrator", "dashboard")
READ = ("s3:GetObject",)
WRITE = ("s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
GLUE_READ = ("glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartition", "glue:GetPartitions",
             "glue:BatchGetPartition")  # fmt: skip
GLUE_WRITE = (*GLUE_READ, "glue:CreateTable", "glue:UpdateTable", "glue:BatchCreatePartition",
              "glue:BatchUpdatePartition", "glue:UpdatePartition", "glue:BatchDeletePartition")  # fmt: skip
ATHENA = ("athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
          "athena:StopQueryExecution", "athena:GetWorkGroup")  # fmt: skip


def names(settings: Settings) -> dict[str, str]:
    """The AWS names of this deployment's resources, from its environment name."""
    env = settings.aws_environment
    return {
        "stack": f"smartcity-{env}",
        "database": f"smartcity_{env}",
        "workgroup": f"smartcity-{env}",
        **{f"role:{role}": f"smartcity-{env}-{role}" for role in ROLES},
    }


def lake_prefix(settings: Settings) -> str:
    """The lake's prefix in its bucket, with a trailing slash ('' for a lake at the bucket's root)."""
    prefix = urlparse(settings.lake).path.strip("/")
    return f"{prefix}/" if prefix else ""


def _objects(settings: Settings, *patterns: str) -> list[str]:
    """ARNs of the lake's objects under these zones (``raw/*``) or key patterns (``_staging/batch-*``)."""
    return [f"arn:aws:s3:::{settings.lake_bucket}/{_key_pattern(settings, pattern)}" for pattern in patterns]


def _key_pattern(settings: Settings, pattern: str) -> str:
    """``raw`` → ``<lake prefix>raw/*``; a pattern ending in ``*`` is kept as it is, under the lake prefix."""
    return f"{lake_prefix(settings)}{pattern if pattern.endswith('*') else f'{pattern}/*'}"


def _results_objects(settings: Settings) -> list[str]:
    results = urlparse(settings.athena_results)
    return [f"arn:aws:s3:::{results.netloc}/{results.path.strip('/')}/*"]


def _list(settings: Settings, *zones: str) -> dict[str, Any]:
    """ListBucket on the lake's bucket, only under these zones' prefixes."""
    return {
        "Sid": "ListTheirPrefixes",
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": [f"arn:aws:s3:::{settings.lake_bucket}"],
        "Condition": {"StringLike": {"s3:prefix": [_key_pattern(settings, zone) for zone in zones]}},
    }


def _statement(sid: str, actions: tuple[str, ...], resources: list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": resources}


KMS_KEY = "{kms_key}"
"""Stands for the lake key's ARN until rendered: a policy can name a key by its ARN only, and an alias or a key id
is resolved to it when the policy is applied (:func:`render`) or deployed (the template's ``LakeKeyArn``)."""


def _kms(settings: Settings) -> list[dict[str, Any]]:
    """Writers and readers of SSE-KMS objects need the key; without a key (SSE-S3), no statement."""
    if not settings.s3_kms_key_id:
        return []
    return [_statement("UseTheLakeKey", ("kms:GenerateDataKey", "kms:Decrypt"), [KMS_KEY])]


def _workgroup_arn(settings: Settings) -> str:
    return f"arn:aws:athena:{settings.aws_region}:{{account}}:workgroup/{names(settings)['workgroup']}"


def _glue_arns(settings: Settings, *table_patterns: str) -> list[str]:
    """The catalog, the database and these of its tables: Glue checks a table action against all three."""
    glue, database = f"arn:aws:glue:{settings.aws_region}:{{account}}", names(settings)["database"]
    tables = [f"{glue}:table/{database}/{pattern}" for pattern in table_patterns]
    return [f"{glue}:catalog", f"{glue}:database/{database}", *tables]


def _glue(settings: Settings, actions: tuple[str, ...], table_zones: tuple[str, ...]) -> dict[str, Any]:
    return _statement("TheirGlueTables", actions, _glue_arns(settings, *(f"{zone}_*" for zone in table_zones)))


def role_policies(settings: Settings) -> dict[str, dict[str, Any]]:
    """The IAM policy document of each role (``{account}`` stands for the account id until rendered)."""
    stream_zones = (RAW, QUARANTINE, f"{STAGING}/batch-*", STREAM_STATE)  # the prefixes it may list
    statements: dict[str, list[dict[str, Any]]] = {
        "stream": [
            _statement("WriteLandedZones", WRITE, _objects(settings, RAW, QUARANTINE, STREAM_STATE)),
            _statement("StageBatches", WRITE, _objects(settings, f"{STAGING}/batch-*")),
            _list(settings, *stream_zones),
        ],
        "processing": [
            _statement("ReadRaw", READ, _objects(settings, RAW)),
            _statement("WriteProcessed", WRITE, _objects(settings, PROCESSED)),
            _statement("StageProcessed", WRITE, _objects(settings, f"{STAGING}/processed-*")),
            _list(settings, RAW, PROCESSED, STAGING),
        ],
        "dbt": [
            _statement("ReadProcessed", READ, _objects(settings, PROCESSED)),
            _statement("WriteBuildTables", WRITE, _objects(settings, GOLD_BUILD)),
            _statement("WriteQueryResults", WRITE, _results_objects(settings)),
            _list(settings, PROCESSED, GOLD_BUILD),
            _glue(settings, GLUE_WRITE, (PROCESSED, GOLD)),
            _statement("DropBuildTables", ("glue:DeleteTable",), _glue_arns(settings, "gold_build_*")),
            _statement("RunQueries", ATHENA, [_workgroup_arn(settings)]),
        ],
        "loader": [
            _statement("ReadGold", READ, _objects(settings, GOLD)),
            _statement("ReadLoadManifests", READ, _objects(settings, f"{STAGING}/warehouse-*")),
            _list(settings, GOLD),
        ],
        "orchestrator": [
            _statement("ReadEveryZone", READ, _objects(settings, RAW, QUARANTINE, STREAM_STATE)),
            _statement("PublishHours", WRITE, _objects(settings, PROCESSED, GOLD, STAGING)),
            _list(settings, RAW, QUARANTINE, PROCESSED, GOLD, STAGING, STREAM_STATE),
            _glue(settings, GLUE_WRITE, (RAW, QUARANTINE, PROCESSED, GOLD)),
        ],
    }
    for role in ("stream", "processing", "dbt", "loader", "orchestrator"):
        statements[role] += _kms(settings)
    return {role: {"Version": "2012-10-17", "Statement": found} for role, found in statements.items()}


def bucket_policy(settings: Settings, bucket: str) -> dict[str, Any]:
    """Deny any request without TLS, any put without the required encryption, and any principal outside the
    account (``{account}``)."""
    algorithm = "aws:kms" if settings.s3_kms_key_id else "AES256"
    everything = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "DenyWithoutTLS", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": everything,
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "DenyUnencryptedPuts", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
             "Resource": [f"arn:aws:s3:::{bucket}/*"],
             "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": algorithm}}},
            {"Sid": "DenyPutsWithoutEncryptionHeader", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
             "Resource": [f"arn:aws:s3:::{bucket}/*"],
             "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}},
            {"Sid": "DenyOtherAccounts", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": everything,
             "Condition": {"StringNotEquals": {"aws:PrincipalAccount": "{account}"}}},
        ],
    }  # fmt: skip


def render(document: dict[str, Any], account: str, kms_key_arn: str | None = None) -> dict[str, Any]:
    """A policy with its account and key placeholders filled in."""
    text = json.dumps(document).replace("{account}", account)
    if KMS_KEY in text:
        if kms_key_arn is None:
            raise ValueError("the policy names the lake's KMS key: its ARN is needed to render it")
        text = text.replace(KMS_KEY, kms_key_arn)
    return json.loads(text)


def seaweedfs_identities(settings: Settings, keys: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """The roles' S3 statements as SeaweedFS identities (``Read:bucket/prefix*``, ``Write:…``, ``List:bucket``),
    so the test bed enforces the same scopes; SeaweedFS's Write includes deletion."""
    identities = []
    for role, policy in role_policies(settings).items():
        actions: set[str] = set()
        for statement in policy["Statement"]:
            for resource in statement["Resource"]:
                if not resource.startswith("arn:aws:s3:::"):
                    continue
                path = resource.removeprefix("arn:aws:s3:::")
                if "s3:ListBucket" in statement["Action"]:
                    actions.add(f"List:{path}")
                if "s3:GetObject" in statement["Action"]:
                    actions.add(f"Read:{path}")
                if "s3:PutObject" in statement["Action"]:
                    actions.add(f"Write:{path}")
        access, secret = keys[role]
        identities.append({"name": role, "credentials": [{"accessKey": access, "secretKey": secret}],
                           "actions": sorted(actions)})  # fmt: skip
    access, secret = keys["dashboard"]
    identities.append({"name": "dashboard", "credentials": [{"accessKey": access, "secretKey": secret}], "actions": []})
    return identities

"""The aws profile's infrastructure as code: the template passes the policy linters, `plan`/`apply`/`destroy` are
idempotent against an account's APIs (moto), and the bucket policy and the roles' scopes are enforced by a real S3
server (SeaweedFS)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from parliament import analyze_policy_string

from smartcity.settings import Settings
from smartcity_aws.access import ROLES, bucket_policy, names, render, role_policies
from smartcity_aws.deploy import Deployment
from smartcity_aws.stack import desired_state, template
from smartcity_aws.testbed import ACCOUNT, Testbed
from tests.conftest import settings_from

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEYS = [None, "alias/smartcity-lake", "1234abcd-12ab-34cd-56ef-1234567890ab", KEY_ARN]
CHECKOV = [sys.executable.replace("python", "uv"), "tool", "run", "--quiet", "--from", "checkov==3.3.30", "checkov"]


def aws_settings(key: str | None = None) -> Settings:
    key_setting = {"SMARTCITY_S3_KMS_KEY_ID": key} if key else {}
    return settings_from({"SMARTCITY_PROFILE": "aws", "SMARTCITY_LAKE_URI": "s3://city-lake/lake", **key_setting})


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    directory = tmp_path_factory.mktemp("templates")
    paths = []
    for index, key in enumerate(KEYS):
        path = directory / f"stack-{index}.json"
        path.write_text(json.dumps(template(aws_settings(key)), indent=2))
        paths.append(path)
    return paths


def test_the_template_passes_cfn_lint(templates: list[Path]) -> None:
    result = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), *map(str, templates)],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_finds_nothing_on_encryption_tls_public_access_or_iam_wildcards(templates: list[Path]) -> None:
    for path in templates[:2]:  # SSE-S3, and SSE-KMS by alias (the key's forms differ only in its ARN)
        command = [*CHECKOV, "-f", str(path), "--framework", "cloudformation", "--output", "json"]
        result = subprocess.run([*command, "--skip-download"], capture_output=True, text=True, timeout=600)
        report = json.loads(result.stdout)
        failed = [(check["check_id"], check["resource"]) for check in report["results"]["failed_checks"]]
        assert failed == [], failed
        passed = {check["check_id"] for check in report["results"]["passed_checks"]}
        # encryption, public access, logging, versioning, and no wildcard action on the roles' inline policies
        assert {"CKV_AWS_19", "CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56", "CKV_AWS_63"} <= passed


def test_parliament_finds_nothing_in_any_generated_policy() -> None:
    for key in KEYS:
        settings = aws_settings(key)
        documents = [*role_policies(settings).values(), bucket_policy(settings, settings.lake_bucket)]
        for document in documents:
            rendered = json.dumps(render(document, "111122223333", KEY_ARN))
            findings = analyze_policy_string(rendered, include_community_auditors=True).findings
            assert [(f.issue, f.detail) for f in findings] == [], rendered


def test_no_role_has_a_wildcard_action_or_a_wildcard_resource_where_an_arn_can_be_named() -> None:
    settings = aws_settings("alias/smartcity-lake")
    for role, document in role_policies(settings).items():
        for statement in document["Statement"]:
            assert all(action != "*" and not action.endswith(":*") for action in statement["Action"]), role
            assert all(resource != "*" for resource in statement["Resource"]), role
    assert set(role_policies(settings)) == set(ROLES) - {"dashboard"}, "the dashboard reads nothing in S3"


def test_the_lifecycle_follows_the_settings() -> None:
    settings = settings_from({"SMARTCITY_PROFILE": "aws", "SMARTCITY_LAKE_URI": "s3://city-lake/lake",
                              "SMARTCITY_RETENTION_DAYS": "400"})  # fmt: skip
    rules = {rule["ID"]: rule for rule in desired_state(settings).buckets[0].lifecycle}
    raw = rules["raw-tiers-and-retention"]
    assert raw["Filter"] == {"Prefix": "lake/raw/"} and raw["Expiration"] == {"Days": 400}
    assert [(t["Days"], t["StorageClass"]) for t in raw["Transitions"]] == [(30, "STANDARD_IA"), (90, "GLACIER_IR")]
    assert rules["quarantine-expiry"]["Expiration"] == {"Days": 30}
    results = rules["athena-results-expiry"]
    assert results["Filter"] == {"Prefix": "athena-results/"} and results["Expiration"] == {"Days": 7}
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rules["noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}


def test_plan_apply_twice_and_destroy_on_an_account(on_testbed: dict[str, str], aws_testbed: Testbed,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Against moto for every service (its S3 keeps lifecycle and public access block, which SeaweedFS refuses)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws_testbed.moto_endpoint())
    settings = settings_from(on_testbed)
    deployment = Deployment(settings)
    state = desired_state(settings)
    planned = deployment.plan()
    assert {change.action for change in planned} == {"create"}
    assert {(c.kind, c.name) for c in planned} >= {("s3 bucket", b.name) for b in state.buckets} | {
        ("iam role", role.name) for role in state.roles} | {("glue database", state.database),
        ("athena workgroup", state.workgroup["Name"])}  # fmt: skip
    assert {c.kind for c in planned if c.name == settings.lake_bucket} >= {
        "s3 encryption", "s3 public access block", "s3 lifecycle", "s3 bucket policy", "s3 versioning",
        "s3 access logging"}  # fmt: skip

    applied = deployment.apply()
    assert [c for c in applied if c.action not in ("create", "update")] == []
    assert {c.action for c in Deployment(settings).apply()} == {"keep"}, "a second apply changes nothing"
    assert {c.action for c in Deployment(settings).plan()} == {"keep"}

    s3 = boto3.client("s3", region_name=settings.aws_region)
    lake = state.buckets[0]
    assert s3.get_bucket_lifecycle_configuration(Bucket=lake.name)["Rules"] == lake.lifecycle
    encryption = s3.get_bucket_encryption(Bucket=lake.name)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert encryption["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert s3.get_bucket_versioning(Bucket=lake.name)["Status"] == "Enabled"
    iam = boto3.client("iam", region_name=settings.aws_region)
    stream = iam.get_role_policy(
        RoleName=names(settings)["role:stream"], PolicyName=f"{names(settings)['role:stream']}-access"
    )
    assert stream["PolicyDocument"] == render(role_policies(settings)["stream"], ACCOUNT)
    workgroup = boto3.client("athena", region_name=settings.aws_region).get_work_group(
        WorkGroup=names(settings)["workgroup"]
    )
    configuration = workgroup["WorkGroup"]["Configuration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == settings.athena_bytes_scanned_cutoff

    removed = Deployment(settings).destroy()
    assert {c.action for c in removed} == {"delete"}, [c for c in removed if c.action != "delete"]
    assert len(removed) == len(state.buckets) + len(state.roles) + 2
    assert {c.action for c in Deployment(settings).plan()} == {"create"}, "destroy leaves nothing"
    assert not any(b["Name"] in {x.name for x in state.buckets} for b in s3.list_buckets()["Buckets"])


def test_a_bucket_holding_data_is_kept_unless_asked(on_testbed: dict[str, str], aws_testbed: Testbed,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws_testbed.moto_endpoint())
    settings = settings_from(on_testbed)
    s3 = boto3.client("s3", region_name=settings.aws_region)
    s3.create_bucket(Bucket=settings.lake_bucket)  # data first: moto's S3 applies a TLS-only Deny to every request
    s3.put_object(Bucket=settings.lake_bucket, Key="lake/raw/x.parquet", Body=b"data", ServerSideEncryption="AES256")
    Deployment(settings).apply()
    kept = [c for c in Deployment(settings).destroy() if c.action == "kept"]
    assert [c.name for c in kept] == [settings.lake_bucket]
    deleted = Deployment(settings).destroy(delete_data=True)
    assert [c.name for c in deleted] == [settings.lake_bucket]


def seaweed_client(endpoint: str, keys: tuple[str, str], verify: str | bool) -> object:
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=keys[0], aws_secret_access_key=keys[1],
                        region_name="us-east-1", verify=verify,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))  # fmt: skip


def denied(call: object) -> bool:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"] in ("AccessDenied", "403")
    return False


def test_seaweedfs_enforces_tls_encryption_and_each_roles_scope(on_testbed: dict[str, str],
                                                                aws_testbed: Testbed) -> None:  # fmt: skip
    """`apply` on the test bed's S3: its bucket policy refuses plain HTTP and unencrypted puts, and a key limited to
    the stream's policy writes raw/ but not processed/, and deletes nothing outside its prefixes."""
    testbed = aws_testbed
    settings = settings_from({**on_testbed, **testbed.platform_environment()})  # the bucket its identities name
    changes = Deployment(settings).apply()
    assert {c.kind for c in changes if c.action == "unsupported"} <= {"s3 public access block", "s3 lifecycle",
                                                                       "s3 access logging"}  # fmt: skip
    bucket, certificate = settings.lake_bucket, str(testbed.certificate)
    admin = seaweed_client(testbed.s3_endpoint(), testbed.admin_keys(), certificate)
    assert admin.put_object(Bucket=bucket, Key="lake/processed/x.parquet", Body=b"1", ServerSideEncryption="AES256")
    assert admin.head_object(Bucket=bucket, Key="lake/processed/x.parquet")["ServerSideEncryption"] == "AES256"
    assert denied(lambda: admin.put_object(Bucket=bucket, Key="lake/processed/y.parquet", Body=b"1")), "unencrypted"
    plain = seaweed_client(testbed.plain_s3_endpoint(), testbed.admin_keys(), False)
    assert denied(lambda: plain.get_object(Bucket=bucket, Key="lake/processed/x.parquet")), "without TLS"
    with pytest.raises(urllib.error.HTTPError):  # anonymous, too
        urllib.request.urlopen(f"{testbed.plain_s3_endpoint()}/{bucket}/lake/processed/x.parquet", timeout=10)

    keys = testbed.role_keys()
    stream = seaweed_client(testbed.s3_endpoint(), keys["stream"], certificate)
    put = {"Body": b"1", "ServerSideEncryption": "AES256"}
    assert stream.put_object(Bucket=bucket, Key="lake/raw/vehicle_data/part.parquet", **put)
    assert denied(lambda: stream.put_object(Bucket=bucket, Key="lake/processed/vehicle/part.parquet", **put))
    assert denied(lambda: stream.delete_object(Bucket=bucket, Key="lake/processed/x.parquet"))
    dashboard = seaweed_client(testbed.s3_endpoint(), keys["dashboard"], certificate)
    assert denied(lambda: dashboard.get_object(Bucket=bucket, Key="lake/processed/x.parquet"))
    processing = seaweed_client(testbed.s3_endpoint(), keys["processing"], certificate)
    assert processing.get_object(Bucket=bucket, Key="lake/raw/vehicle_data/part.parquet")["Body"].read() == b"1"
    assert denied(lambda: processing.put_object(Bucket=bucket, Key="lake/raw/vehicle_data/other.parquet", **put))

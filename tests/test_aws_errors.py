"""An AWS client failure reaches the user as one line naming the fix and exit status 1, never botocore's traceback:
no credentials, an endpoint that does not answer, a bucket that was never created."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import SMARTCITY, free_port


def smartcity_on_s3(*args: str, home: Path, bucket: str = "never-created", **aws: str) -> subprocess.CompletedProcess:
    """The installed command with an S3 lake, in an environment holding only ``aws`` of AWS's variables."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    environment |= {
        "HOME": str(home),  # no ~/.aws
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance role to ask for on this machine
        "AWS_MAX_ATTEMPTS": "1",
        "SMARTCITY_PROFILE": "aws",
        "SMARTCITY_LAKE_URI": f"s3://{bucket}/lake",
        **aws,
    }
    return subprocess.run([SMARTCITY, *args], env=environment, capture_output=True, text=True, timeout=120)


def assert_one_line(result: subprocess.CompletedProcess, *expected: str, status: int = 1) -> None:
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert all(text in line for text in expected), line


@pytest.mark.parametrize("command", [("aws", "cost"), ("aws", "plan")])
def test_no_credentials_name_the_variables_and_the_test_bed(command: tuple[str, ...], tmp_path: Path) -> None:
    result = smartcity_on_s3(*command, home=tmp_path)
    assert_one_line(result, "no AWS credentials", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "smartcity aws testbed start")


def test_an_endpoint_that_does_not_answer_is_named(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    keys = {"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"}
    result = smartcity_on_s3("aws", "cost", home=tmp_path, AWS_ENDPOINT_URL_S3=endpoint, **keys)
    assert_one_line(result, "cannot reach the AWS endpoint", endpoint, "AWS_ENDPOINT_URL_<SERVICE>", status=69)


def test_a_bucket_never_created_points_at_apply(s3_endpoint: str, tmp_path: Path) -> None:
    keys = {"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"}
    bucket = f"absent-{uuid.uuid4().hex[:8]}"
    result = smartcity_on_s3("aws", "cost", home=tmp_path, bucket=bucket, AWS_ENDPOINT_URL_S3=s3_endpoint, **keys)
    assert_one_line(result, "NoSuchBucket", "smartcity aws apply")

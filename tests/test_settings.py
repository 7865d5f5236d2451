"""Configuration: defaults, and every error path naming its variable with a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcity.errors import ConfigError
from smartcity.settings import Settings, load_settings
from tests.conftest import run_cli


def test_defaults_describe_the_local_profile(settings: Settings) -> None:
    assert settings.profile == "local"
    assert settings.bootstrap_servers == f"127.0.0.1:{settings.kafka_port}"
    assert settings.kafka_partitions == 3
    assert list(settings.topics.values()) == [
        "vehicle_data",
        "gps_data",
        "traffic_data",
        "weather_data",
        "emergency_data",
    ]
    assert settings.lake == str(settings.var_dir / "lake")
    assert settings.warehouse == f"duckdb:///{settings.var_dir / 'warehouse.duckdb'}"


def test_config_command_prints_effective_values(settings: Settings) -> None:
    result = run_cli("config")
    assert result.returncode == 0, result.stderr
    assert f"SMARTCITY_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{settings.kafka_port}" in result.stdout.splitlines()
    assert "SMARTCITY_PROFILE=local" in result.stdout.splitlines()


def test_aws_profile_accepts_s3_lake() -> None:
    settings = load_settings(profile="aws", lake_uri="s3://city-lake/prod", warehouse_url="redshift://wh/db",
                             redshift_iam_role="arn:aws:iam::123456789012:role/smartcity-prod-loader")  # fmt: skip
    assert settings.lake == "s3://city-lake/prod"


def test_passwords_are_redacted_in_output() -> None:
    settings = load_settings(warehouse_url="postgresql://city:hunter2@127.0.0.1:5432/city")
    assert "hunter2" not in str(settings.public_items())
    assert settings.public_items()["SMARTCITY_WAREHOUSE_URL"] == "postgresql://city:***@127.0.0.1:5432/city"


@pytest.mark.parametrize(
    ("variable", "value", "hint"),
    [
        ("SMARTCITY_PROFILE", "gcp", "'local' or 'aws'"),
        ("SMARTCITY_KAFKA_PARTITIONS", "abc", "integer"),
        ("SMARTCITY_KAFKA_PARTITIONS", "0", "1-1000"),
        ("SMARTCITY_KAFKA_PORT", "70000", "1-65535"),
        ("SMARTCITY_LAKE_URI", "ftp://host/lake", "s3://bucket/prefix"),
        ("SMARTCITY_LAKE_URI", "s3://", "needs a bucket"),
        ("SMARTCITY_CHECKPOINT_URI", "gs://bucket/cp", "atomic renames"),
        ("SMARTCITY_CHECKPOINT_URI", "s3://bucket/cp", "a local or mounted directory"),
        ("SMARTCITY_WAREHOUSE_URL", "mysql://127.0.0.1/city", "duckdb:///"),
        ("SMARTCITY_TRINO_URL", "127.0.0.1:8080", "http://host:port"),
        ("SMARTCITY_SPARK_CONNECT_URL", "http://10.0.0.5:15002", "sc://host:port/;token="),
        ("SMARTCITY_VEHICLE_TOPIC", "bad topic!", "Kafka topic name"),
        ("SMARTCITY_DAGSTER_PORT", "web", "integer"),
        ("SMARTCITY_LAKE_URI", "s3://Bad_Bucket/lake", "not a valid S3 bucket name"),
        ("SMARTCITY_LAKE_URI", "s3://192.168.1.7/lake", "not shaped like an IP address"),
        ("SMARTCITY_AWS_REGION", "europe", "not an AWS region name"),
        ("SMARTCITY_S3_KMS_KEY_ID", "my-key", "a KMS key is a key id"),
        ("SMARTCITY_S3_KMS_KEY_ID", "arn:aws:kms:eu-west-1:12345:key/x", "a key ARN"),
        ("SMARTCITY_AWS_ENVIRONMENT", "Prod!", "lowercase letters"),
        ("SMARTCITY_S3_LOG_BUCKET", "x", "not a valid S3 bucket name"),
        ("SMARTCITY_ATHENA_RESULTS_URI", "https://results", "s3://bucket/prefix"),
        ("SMARTCITY_ATHENA_BYTES_SCANNED_CUTOFF", "1000", "10 MB"),
    ],
)
def test_invalid_value_names_the_variable(variable: str, value: str, hint: str) -> None:
    result = run_cli("config", env={variable: value})
    assert result.returncode == 1
    assert f"{variable}={value!r} is invalid" in result.stderr
    assert hint in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_variable_is_rejected_with_the_known_ones() -> None:
    result = run_cli("config", env={"SMARTCITY_KAFKA_PARTITION": "5"})
    assert result.returncode == 1
    assert "unknown setting(s) SMARTCITY_KAFKA_PARTITION" in result.stderr
    assert "SMARTCITY_KAFKA_PARTITIONS" in result.stderr


def test_aws_profile_requires_an_s3_lake() -> None:
    result = run_cli("config", env={"SMARTCITY_PROFILE": "aws"})
    assert result.returncode == 1
    assert "SMARTCITY_LAKE_URI must be an s3:// URI when SMARTCITY_PROFILE=aws" in result.stderr


def test_same_port_for_broker_and_controller_is_rejected() -> None:
    with pytest.raises(ConfigError, match="SMARTCITY_KAFKA_PORT and SMARTCITY_KAFKA_CONTROLLER_PORT"):
        load_settings(kafka_port=9092, kafka_controller_port=9092)


def test_unwritable_var_dir_names_the_variable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_cli("setup", env={"SMARTCITY_VAR_DIR": str(blocker / "var")})
    assert result.returncode == 1
    assert "SMARTCITY_VAR_DIR" in result.stderr
    assert str(blocker / "var") in result.stderr


@pytest.mark.parametrize(
    "key",
    ["1234abcd-12ab-34cd-56ef-1234567890ab", "alias/smartcity-lake", "mrk-1234abcd12ab34cd56ef1234567890ab",
     "arn:aws:kms:eu-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
     "arn:aws:kms:eu-west-2:111122223333:alias/smartcity-lake"],
)  # fmt: skip
def test_every_form_of_kms_key_is_accepted(key: str) -> None:
    assert load_settings(s3_kms_key_id=key).s3_kms_key_id == key


def test_aws_retention_must_outlast_the_lifecycle_transitions() -> None:
    environment = {"SMARTCITY_PROFILE": "aws", "SMARTCITY_LAKE_URI": "s3://city-lake/lake"}
    result = run_cli("config", env={**environment, "SMARTCITY_RETENTION_DAYS": "60"})
    assert result.returncode == 1
    assert "SMARTCITY_RETENTION_DAYS=60 is too short for the aws profile's lifecycle" in result.stderr
    assert "GLACIER_IR after 90" in result.stderr
    assert run_cli("config", env={**environment, "SMARTCITY_RETENTION_DAYS": "91"}).returncode == 0


def test_the_log_bucket_and_athena_results_default_from_the_lake_bucket() -> None:
    settings = load_settings(profile="aws", lake_uri="s3://city-lake/lake")
    assert (settings.lake_bucket, settings.log_bucket) == ("city-lake", "city-lake-logs")
    assert settings.athena_results == "s3://city-lake/athena-results"
    with pytest.raises(ConfigError, match=r"SMARTCITY_S3_LOG_BUCKET: the default 'a{60}-logs' is not a valid"):
        load_settings(lake_uri=f"s3://{'a' * 60}/lake")

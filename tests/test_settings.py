"""Configuration: defaults, and every error path naming its variable with a non-zero exit."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from smartcity import settings as settings_module
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


def test_config_command_prints_effective_values_and_where_each_came_from(settings: Settings) -> None:
    result = run_cli("config", env={"SMARTCITY_KAFKA_PARTITIONS": "5"})
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert lines[f"SMARTCITY_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{settings.kafka_port}"] == "# default"
    assert lines["SMARTCITY_PROFILE=local"] == "# default"
    assert lines["SMARTCITY_KAFKA_PARTITIONS=5"] == "# environment"
    assert lines[f"SMARTCITY_KAFKA_PORT={settings.kafka_port}"] == "# environment"  # the session's own port
    java = shutil.which("java")
    home = Path(os.environ["JAVA_HOME"]) if os.environ.get("JAVA_HOME") else java and Path(java).resolve().parents[1]
    (java_line,) = [line for line in lines if line.startswith("SMARTCITY_JAVA_HOME=")]
    if home:  # the JDK that will be used, not a blank
        assert java_line == f"SMARTCITY_JAVA_HOME={home.resolve()}" and lines[java_line].startswith("# "), java_line
    else:
        assert lines[java_line].startswith("# none usable: no Java runtime found")


def test_dotenv_may_hold_other_tools_variables_and_its_unknown_settings_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = tmp_path / ".env"
    monkeypatch.setattr(settings_module, "ENV_FILE", dotenv)
    monkeypatch.setitem(Settings.model_config, "env_file", dotenv)
    dotenv.write_text("AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nSMARTCITY_DASHBOARD_REFRESH_SECONDS=30\n")
    assert load_settings().dashboard_refresh_seconds == 30
    assert settings_module.setting_sources()["dashboard_refresh_seconds"] == ".env"
    dotenv.write_text("SMARTCITY_FOO=1\n")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert (
        str(raised.value)
        == f"unknown setting SMARTCITY_FOO (in {dotenv}): `smartcity config --help` lists every setting"
    )
    dotenv.write_text("SMARTCITY_SPARK_CONNECT_URL=http://host:15002/;token=s3cret\n")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "SMARTCITY_SPARK_CONNECT_URL is invalid" in str(raised.value) and "s3cret" not in str(raised.value)


def test_two_services_on_one_port_are_refused_by_config(settings: Settings) -> None:
    result = run_cli("config", env={"SMARTCITY_DASHBOARD_PORT": str(settings.dagster_port)})
    assert result.returncode == 78
    assert result.stderr == (f"error: SMARTCITY_DAGSTER_PORT and SMARTCITY_DASHBOARD_PORT are both "
                             f"{settings.dagster_port}: each service needs its own port\n")  # fmt: skip


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
        ("SMARTCITY_PROFILE", "gcp", "(expected 'local' (embedded services) or 'aws')"),
        ("SMARTCITY_KAFKA_PARTITIONS", "abc", "not a whole number (expected partitions per topic, 1-1000)"),
        ("SMARTCITY_KAFKA_PARTITIONS", "0", "must be at least 1"),
        ("SMARTCITY_KAFKA_PORT", "70000", "must be at most 65535"),
        ("SMARTCITY_LAKE_URI", "ftp://host/lake", "s3://bucket/prefix"),
        ("SMARTCITY_LAKE_URI", "s3://", "needs a bucket"),
        ("SMARTCITY_CHECKPOINT_URI", "gs://bucket/cp", "atomic renames"),
        ("SMARTCITY_CHECKPOINT_URI", "s3://bucket/cp", "a local or mounted directory"),
        ("SMARTCITY_WAREHOUSE_URL", "mysql://127.0.0.1/city", "duckdb:///"),
        ("SMARTCITY_TRINO_URL", "127.0.0.1:8080", "http://host:port"),
        ("SMARTCITY_SPARK_CONNECT_URL", "http://10.0.0.5:15002", "sc://host:port/;token="),
        ("SMARTCITY_VEHICLE_TOPIC", "bad topic!", "Kafka topic name"),
        ("SMARTCITY_DAGSTER_PORT", "web", "not a whole number"),
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
    assert result.returncode == 78
    secret = variable == "SMARTCITY_SPARK_CONNECT_URL"  # may carry a token: named, never printed
    assert f"error: {variable}{'' if secret else f'={value!r}'} is invalid: " in result.stderr, result.stderr
    assert (value in result.stderr) is not secret
    assert hint in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_a_validators_own_message_is_not_repeated_by_the_description() -> None:
    result = run_cli("config", env={"SMARTCITY_WAREHOUSE_URL": "mysql://city:hunter2@127.0.0.1/city"})
    assert result.stderr.count("postgresql://user@host:port/db") == 1, result.stderr
    assert "hunter2" not in result.stderr and "city:***@" in result.stderr


@pytest.mark.parametrize(("typo", "meant"), [("SMARTCITY_KAFKA_PARTITION", "SMARTCITY_KAFKA_PARTITIONS"),
                                             ("SMARTCITY_KAFKA_PROT", "SMARTCITY_KAFKA_PORT")])  # fmt: skip
def test_an_unknown_variable_suggests_the_close_one(typo: str, meant: str) -> None:
    result = run_cli("config", env={typo: "5"})
    assert result.returncode == 78
    assert result.stderr == f"error: unknown setting {typo} (in the environment): did you mean {meant}?\n"


def test_an_unknown_variable_far_from_any_points_at_the_help() -> None:
    result = run_cli("config", env={"SMARTCITY_WHATEVER": "5"})
    assert "unknown setting SMARTCITY_WHATEVER" in result.stderr and "smartcity config --help" in result.stderr
    assert "did you mean" not in result.stderr
    described = run_cli("config", "--help")
    assert "SMARTCITY_KAFKA_TIMEOUT_SECONDS: how long a command waits" in described.stdout


def test_aws_profile_requires_an_s3_lake() -> None:
    result = run_cli("config", env={"SMARTCITY_PROFILE": "aws"})
    assert result.returncode == 78
    assert "SMARTCITY_LAKE_URI must be an s3:// URI when SMARTCITY_PROFILE=aws" in result.stderr


def test_same_port_for_broker_and_controller_is_rejected() -> None:
    with pytest.raises(ConfigError, match="SMARTCITY_KAFKA_PORT and SMARTCITY_KAFKA_CONTROLLER_PORT"):
        load_settings(kafka_port=9092, kafka_controller_port=9092)


def test_unwritable_var_dir_names_the_variable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_cli("setup", env={"SMARTCITY_VAR_DIR": str(blocker / "var")})
    assert result.returncode == 78
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
    assert result.returncode == 78
    assert "SMARTCITY_RETENTION_DAYS=60 is too short for the aws profile's lifecycle" in result.stderr
    assert "GLACIER_IR after 90" in result.stderr
    assert run_cli("config", env={**environment, "SMARTCITY_RETENTION_DAYS": "91"}).returncode == 0


def test_the_log_bucket_and_athena_results_default_from_the_lake_bucket() -> None:
    settings = load_settings(profile="aws", lake_uri="s3://city-lake/lake")
    assert (settings.lake_bucket, settings.log_bucket) == ("city-lake", "city-lake-logs")
    assert settings.athena_results == "s3://city-lake/athena-results"
    with pytest.raises(ConfigError, match=r"SMARTCITY_S3_LOG_BUCKET: the default 'a{60}-logs' is not a valid"):
        load_settings(lake_uri=f"s3://{'a' * 60}/lake")

"""The platform's configuration: one typed object, read from ``SMARTCITY_*`` environment variables.

Every component (CLI, broker, simulator, Spark job, Dagster resources, dashboard) reads its settings from
:func:`load_settings`, so the ``local`` and ``aws`` profiles are chosen by configuration, never by code edits.
Values come from the environment first, then from an optional ``.env`` file in the project root.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import AfterValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from smartcity import aws_rules, contracts
from smartcity.errors import ConfigError
from smartcity.warehouse_url import parse_warehouse_url, redact

ENV_PREFIX = "SMARTCITY_"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = PROJECT_ROOT / ".env"

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def _topic_name(value: str) -> str:
    if not _TOPIC_NAME.match(value) or value in {".", ".."}:
        raise ValueError("a Kafka topic name is 1-249 characters of letters, digits, '.', '_' or '-'")
    return value


def _lake_uri(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme in ("s3", "s3a"):
        if not parsed.netloc:
            raise ValueError("an s3:// URI needs a bucket, e.g. s3://my-bucket/lake")
        aws_rules.bucket_name(parsed.netloc)
        return value
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"scheme '{parsed.scheme}://' is not supported; use a local path or s3://bucket/prefix")
    return value


def _checkpoint_uri(value: str) -> str:
    if urlparse(value).scheme not in ("", "file"):
        raise ValueError(
            "the checkpoint needs a file system with atomic renames: a local or mounted directory, not "
            f"'{value}' (the lake itself may be on S3)"
        )
    return value


def s3_endpoint(explicit: str | None = None) -> str | None:
    """``explicit``, else the S3 endpoint of the standard variables (``AWS_ENDPOINT_URL_S3``, then
    ``AWS_ENDPOINT_URL``), else None for AWS's own: for clients that, unlike boto3, do not read them."""
    return explicit or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def _s3_uri(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError("an s3://bucket/prefix URI")
    aws_rules.bucket_name(parsed.netloc)
    return value


def _postgres_url(value: str) -> str:
    if urlparse(value).scheme not in ("postgresql", "postgres"):
        raise ValueError("use postgresql://user:password@host:port/database")
    return value


def _trino_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or not parsed.port or parsed.path.strip("/"):
        raise ValueError("use http://host:port (or https://) of a Trino coordinator")
    return value


def _spark_connect_url(value: SecretStr) -> SecretStr:
    parsed = urlparse(value.get_secret_value())
    if parsed.scheme != "sc" or not parsed.hostname:
        raise ValueError("use sc://host:port/;token=… (Spark Connect)")
    return value


def _warehouse_url(value: str) -> str:
    parse_warehouse_url(value)
    return value


TopicName = Annotated[str, AfterValidator(_topic_name)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Settings(BaseSettings):
    """Effective platform settings. Field ``foo_bar`` is set by ``SMARTCITY_FOO_BAR``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=ENV_FILE,
        extra="ignore",  # .env may hold other tools' variables (AWS keys); unknown SMARTCITY_* ones are refused below
        frozen=True,
    )

    profile: Literal["local", "aws"] = Field("local", description="'local' (embedded services) or 'aws'")
    var_dir: Path = Field(
        PROJECT_ROOT / "var", description="directory for everything written at run time (broker, lake, logs)"
    )

    kafka_bootstrap_servers: str | None = Field(
        None, description="host:port[,host:port…] of the brokers; defaults to the local broker's listener"
    )
    kafka_listen_host: str = Field("127.0.0.1", description="address the local broker listens on")
    kafka_port: Port = Field(9092, description="port of the local broker's client listener (1-65535)")
    kafka_controller_port: Port = Field(9093, description="port of the local KRaft controller (1-65535)")
    kafka_partitions: int = Field(3, ge=1, le=1000, description="partitions per topic, 1-1000")
    kafka_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="how long a command waits for the brokers to answer; a local broker known to be "
        "down is reported at once",
    )

    vehicle_topic: TopicName = Field(contracts.VEHICLE.default_topic, description="topic of vehicle events")
    gps_topic: TopicName = Field(contracts.GPS.default_topic, description="topic of GPS events")
    traffic_topic: TopicName = Field(contracts.TRAFFIC.default_topic, description="topic of traffic-camera events")
    weather_topic: TopicName = Field(contracts.WEATHER.default_topic, description="topic of weather-station events")
    emergency_topic: TopicName = Field(contracts.EMERGENCY.default_topic, description="topic of emergency events")

    lake_uri: Annotated[str, AfterValidator(_lake_uri)] | None = Field(
        None, description="lake root: a local path or s3://bucket/prefix; defaults to <var_dir>/lake"
    )
    checkpoint_uri: Annotated[str, AfterValidator(_checkpoint_uri)] | None = Field(
        None, description="Spark checkpoint root, a local or mounted directory; defaults to <var_dir>/checkpoints"
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3 API endpoint for an S3-compatible server (http://host:port); defaults to AWS's own"
    )
    aws_region: Annotated[str, AfterValidator(aws_rules.region)] = Field(
        "us-east-1", description="AWS region of the lake's bucket, e.g. eu-west-2"
    )
    s3_kms_key_id: Annotated[str, AfterValidator(aws_rules.kms_key)] | None = Field(
        None, description="KMS key (id, ARN or alias) for SSE-KMS on every object written to S3; without it, SSE-S3"
    )
    aws_environment: Annotated[str, AfterValidator(aws_rules.environment)] = Field(
        "dev", description="the deployment's name in AWS resource names (Glue database smartcity_<name>)"
    )
    s3_log_bucket: Annotated[str, AfterValidator(aws_rules.bucket_name)] | None = Field(
        None, description="bucket for the lake bucket's access logs; defaults to <lake bucket>-logs"
    )
    athena_results_uri: Annotated[str, AfterValidator(_s3_uri)] | None = Field(
        None, description="s3://bucket/prefix for Athena query results; defaults to s3://<lake bucket>/athena-results"
    )
    athena_bytes_scanned_cutoff: int = Field(
        10 * 2**30,
        ge=aws_rules.MIN_ATHENA_BYTES_SCANNED_CUTOFF,
        description="bytes one Athena query may scan in the platform's workgroup before it is cancelled (≥ 10 MB)",
    )
    trino_url: Annotated[str, AfterValidator(_trino_url)] | None = Field(
        None,
        description="http://host:port of a Trino on the Glue catalog and the lake (the test bed's) to run the gold "
        "models in the place of Athena; unset, the aws profile runs them on Athena",
    )
    warehouse_url: Annotated[str, AfterValidator(_warehouse_url)] | None = Field(
        None,
        description="duckdb:///relative.duckdb or duckdb:////absolute.duckdb, postgresql://… or redshift://…; "
        "defaults to <var_dir>/warehouse.duckdb",
    )
    dagster_storage_url: Annotated[str, AfterValidator(_postgres_url)] | None = Field(
        None,
        description="postgresql://… for Dagster's runs, events, schedules and sensor cursors; "
        "defaults to SQLite under <var_dir>/dagster",
    )
    redshift_iam_role: Annotated[str, AfterValidator(aws_rules.role_arn)] | None = Field(
        None, description="ARN of the loader role Redshift assumes for COPY from the lake (a redshift:// warehouse)"
    )

    spark_master: str = Field("local[*]", description="Spark master URL, e.g. local[*] or spark://host:7077")
    spark_driver_memory: str = Field("2g", description="Spark driver memory, e.g. 2g")
    spark_connect_url: Annotated[SecretStr, AfterValidator(_spark_connect_url)] | None = Field(
        None,
        description="sc://host:port/;token=… of a Spark Connect server on a cluster (EMR, standalone, Databricks) "
        "for the processing step; unset, the platform's own server, else a local session",
    )
    spark_connect_port: Port = Field(
        15002, description="loopback port of the platform's Spark Connect server, used by the processing step"
    )
    stream_trigger_seconds: float = Field(10.0, gt=0, le=3600, description="micro-batch interval in seconds")
    stream_max_offsets_per_trigger: int = Field(
        500_000, ge=1, description="upper bound of Kafka records per micro-batch (at least 1)"
    )

    simulator_vehicles: int = Field(
        50, ge=1, description="fleet of the simulator the main job runs; each vehicle and its GPS send about 2 events/s"
    )

    partitions_start: date = Field(date(2026, 1, 1), description="first day (UTC) of the hourly partitions, YYYY-MM-DD")
    late_data_days: int = Field(2, ge=1, le=30, description="days back the lake sensor looks for late data (1-30)")
    future_tolerance_hours: float = Field(
        24.0,
        gt=0,
        description="how far an event's time may lie ahead of its ingestion, hours; further (a wrong "
        "clock) is quarantined as implausible_time. The simulator's fast mode runs its clock ahead of real time",
    )
    retention_days: int = Field(
        365, ge=1, description="days of lake partitions and warehouse rows kept (mirrors the S3 lifecycle)"
    )
    run_history_days: int = Field(
        7, ge=2, description="days of finished Dagster runs kept with their logs (more than SMARTCITY_LATE_DATA_DAYS)"
    )

    dagster_host: str = Field("127.0.0.1", description="address the Dagster UI listens on")
    dagster_port: Port = Field(3000, description="port of the Dagster UI (1-65535)")
    dashboard_host: str = Field("127.0.0.1", description="address the Streamlit dashboard listens on")
    dashboard_port: Port = Field(8501, description="port of the Streamlit dashboard (1-65535)")
    dashboard_refresh_seconds: int = Field(
        5, ge=5, le=3600, description="how often the dashboard reloads its data, seconds (5-3600)"
    )
    dashboard_stale_minutes: int = Field(
        15, ge=1, description="the dashboard warns when the newest event is older than this, minutes"
    )
    java_home: Path | None = Field(None, description="JDK 17+ to use; defaults to JAVA_HOME, then PATH")

    @model_validator(mode="after")
    def _profile_consistency(self) -> Settings:
        if self.profile == "aws" and not str(self.lake_uri or "").startswith(("s3://", "s3a://")):
            raise ValueError("SMARTCITY_LAKE_URI must be an s3:// URI when SMARTCITY_PROFILE=aws")
        if self.profile == "aws" and self.retention_days <= aws_rules.RAW_TO_GLACIER_IR_DAYS:
            raise ValueError(
                f"SMARTCITY_RETENTION_DAYS={self.retention_days} is too short for the aws profile's lifecycle: raw "
                f"data moves to STANDARD_IA after {aws_rules.RAW_TO_STANDARD_IA_DAYS} days and to GLACIER_IR after "
                f"{aws_rules.RAW_TO_GLACIER_IR_DAYS}, so it must be kept longer than that"
            )
        if self.run_history_days <= self.late_data_days:
            raise ValueError(
                f"SMARTCITY_RUN_HISTORY_DAYS={self.run_history_days} must be more than SMARTCITY_LATE_DATA_DAYS="
                f"{self.late_data_days}: automation reads the runs of the hours it may still re-process"
            )
        if self.lake_on_s3 and self.s3_log_bucket is None:
            try:
                aws_rules.bucket_name(self.log_bucket)
            except ValueError as error:
                raise ValueError(f"SMARTCITY_S3_LOG_BUCKET: the default {error}; set it explicitly") from None
        self._check_ports()
        self._check_redshift()
        return self

    def _check_ports(self) -> None:
        """Two of the platform's own listeners on one port: the second would fail to start, long after `config`."""
        owners: dict[int, str] = {}
        for name in PORT_SETTINGS:
            port = getattr(self, name)
            if port in owners:
                raise ValueError(
                    f"{owners[port]} and {variable_of(name)} are both {port}: each service needs its own port"
                )
            owners[port] = variable_of(name)

    def _check_redshift(self) -> None:
        """Redshift copies gold from S3 with the loader role: both must be there for a redshift:// warehouse."""
        if parse_warehouse_url(self.warehouse).engine != "redshift":
            return
        missing = [name for name, unset in (("SMARTCITY_PROFILE=aws", self.profile != "aws"),
                   ("SMARTCITY_REDSHIFT_IAM_ROLE (the ARN of the loader role `smartcity aws apply` creates)",
                    self.redshift_iam_role is None)) if unset]  # fmt: skip
        if missing:
            raise ValueError(
                f"a redshift:// SMARTCITY_WAREHOUSE_URL loads gold from the S3 lake: it needs {' and '.join(missing)}"
            )

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap_servers or self._local_broker

    @property
    def uses_local_broker(self) -> bool:
        """Whether the platform's own broker is the one to use: false when the bootstrap servers name another
        cluster, which the platform then neither starts nor stops."""
        return self.kafka_bootstrap_servers in (None, self._local_broker)

    @property
    def _local_broker(self) -> str:
        return f"{self.kafka_listen_host}:{self.kafka_port}"

    @property
    def topics(self) -> dict[str, str]:
        """Stream name (as in the data contracts) → Kafka topic name."""
        return {
            "vehicle": self.vehicle_topic,
            "gps": self.gps_topic,
            "traffic": self.traffic_topic,
            "weather": self.weather_topic,
            "emergency": self.emergency_topic,
        }

    @property
    def lake(self) -> str:
        return self.lake_uri or str(self.var_dir / "lake")

    @property
    def lake_on_s3(self) -> bool:
        return urlparse(self.lake).scheme in ("s3", "s3a")

    @property
    def lake_bucket(self) -> str:
        """The lake's bucket (an S3 lake only)."""
        return urlparse(self.lake).netloc

    @property
    def log_bucket(self) -> str:
        return self.s3_log_bucket or f"{self.lake_bucket}-logs"

    @property
    def athena_results(self) -> str:
        return self.athena_results_uri or f"s3://{self.lake_bucket}/athena-results"

    @property
    def s3_endpoint(self) -> str | None:
        """The S3 endpoint when not AWS's own: the setting, else the standard ``AWS_ENDPOINT_URL_S3`` or
        ``AWS_ENDPOINT_URL`` variable (which boto3 reads by itself; Spark's S3A needs it spelled out)."""
        return s3_endpoint(self.s3_endpoint_url)

    @property
    def checkpoints(self) -> str:
        return self.checkpoint_uri or str(self.var_dir / "checkpoints")

    @property
    def warehouse(self) -> str:
        return self.warehouse_url or f"duckdb:///{self.var_dir / 'warehouse.duckdb'}"

    @cached_property
    def paths(self) -> RuntimePaths:
        return RuntimePaths(self.var_dir)

    def public_items(self) -> dict[str, str]:
        """Every setting with its effective value, keyed by environment variable, for `smartcity config`."""
        items = {variable_of(name): getattr(self, name) for name in type(self).model_fields}
        items[f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap_servers
        items[f"{ENV_PREFIX}LAKE_URI"] = self.lake
        items[f"{ENV_PREFIX}CHECKPOINT_URI"] = self.checkpoints
        items[f"{ENV_PREFIX}WAREHOUSE_URL"] = redact(self.warehouse)
        items[f"{ENV_PREFIX}DAGSTER_STORAGE_URL"] = self.dagster_storage_url and redact(self.dagster_storage_url)
        return {key: "" if value is None else str(value) for key, value in items.items()}


class RuntimePaths:
    """Where each component writes under ``var/``; one place so logs and state are easy to find."""

    def __init__(self, var_dir: Path) -> None:
        self.root = var_dir.resolve()
        self.logs = self.root / "logs"
        self.run = self.root / "run"  # a pid file per service
        self.jars = self.root / "jars"
        self.kafka = self.root / "kafka"
        self.kafka_data = self.kafka / "data"
        self.dagster_home = self.root / "dagster"
        self.stream = self.root / "stream"
        self.catalog = self.root / "catalog.duckdb"
        self.athena = self.root / "athena.duckdb"
        self.dbt = self.root / "dbt"

    def ensure(self) -> None:
        """Create the runtime directories, failing with a clear message when ``var/`` is not writable.

        Each directory is also written to, since an existing directory on a read-only mount passes ``mkdir``.
        """
        for directory in (self.logs, self.run, self.jars, self.kafka_data, self.dagster_home, self.stream):
            try:
                directory.mkdir(parents=True, exist_ok=True)
                tempfile.TemporaryFile(dir=directory).close()
            except OSError as exc:
                raise ConfigError(
                    f"cannot create {directory}: {exc.strerror}. Make {self.root} writable or point "
                    f"{ENV_PREFIX}VAR_DIR at a writable directory."
                ) from exc


PORT_SETTINGS = ("kafka_port", "kafka_controller_port", "spark_connect_port", "dagster_port", "dashboard_port")
"""The settings naming a port one of the platform's own services listens on."""

SECRET_SETTINGS = frozenset({"spark_connect_url"})
"""Settings whose values may hold a token: never printed (URLs with a password are printed with ``***``)."""

PLAIN_ERRORS = {
    "int_parsing": "not a whole number",
    "int_from_float": "not a whole number",
    "float_parsing": "not a number",
    "bool_parsing": "not true or false",
    "date_from_datetime_parsing": "not a date (YYYY-MM-DD)",
    "date_parsing": "not a date (YYYY-MM-DD)",
    "literal_error": "not one of the allowed values",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
}
"""Pydantic's error types in the words of the command line; a validator's own message is used as it is."""


def dotenv_variables() -> dict[str, str]:
    """The ``SMARTCITY_*`` variables set in the project's ``.env`` file."""
    from dotenv import dotenv_values

    values = dotenv_values(ENV_FILE) if ENV_FILE.is_file() else {}
    return {key: value or "" for key, value in values.items() if key.startswith(ENV_PREFIX)}


def variable_of(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def setting_sources() -> dict[str, str]:
    """Setting → where its value comes from: 'environment', '.env' or 'default' (the environment wins)."""
    dotenv = dotenv_variables()
    sources = {}
    for name in Settings.model_fields:
        variable = variable_of(name)
        sources[name] = "environment" if variable in os.environ else ".env" if variable in dotenv else "default"
    return sources


def _unknown_variable(variables: dict[str, str]) -> str | None:
    """What is wrong with the first unknown ``SMARTCITY_*`` variable (environment or .env), with the nearest known."""
    known = [name.upper() for name in Settings.model_fields]
    for key in sorted(variables):
        if key.startswith(ENV_PREFIX) and key.removeprefix(ENV_PREFIX) not in known:
            where = "in the environment" if key in os.environ else f"in {ENV_FILE}"
            close = difflib.get_close_matches(key.removeprefix(ENV_PREFIX), known, n=1, cutoff=0.75)
            hint = f"did you mean {ENV_PREFIX}{close[0]}?" if close else "`smartcity config --help` lists every setting"
            return f"unknown setting {key} ({where}): {hint}"
    return None


def _describe(error: dict) -> str:
    """One problem, naming the variable, the value given (unless it may be secret) and what is allowed."""
    field = str(error["loc"][0]) if error["loc"] else ""
    message = error["msg"].removeprefix("Value error, ")
    if field not in Settings.model_fields:
        return message
    variable = variable_of(field)
    given = "" if field in SECRET_SETTINGS else f"={redact(str(error.get('input')))!r}"
    if error["type"] == "value_error":  # our own validator's message says what is expected
        return f"{variable}{given} is invalid: {message}"
    plain = PLAIN_ERRORS.get(error["type"], message).format(**error.get("ctx", {}))
    return f"{variable}{given} is invalid: {plain} (expected {Settings.model_fields[field].description})"


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings; any problem raises :class:`ConfigError` naming the variable."""
    if unexpected := set(overrides) - set(Settings.model_fields):
        raise TypeError(f"not settings: {sorted(unexpected)}")
    if (unknown := _unknown_variable({**dotenv_variables(), **os.environ})) is not None:
        raise ConfigError(unknown)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors(include_url=False)]
        if len(problems) == 1:
            raise ConfigError(problems[0]) from None
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None

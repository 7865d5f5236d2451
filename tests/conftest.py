"""Shared fixtures: an isolated ``var/`` and free ports per test session, and a real local Kafka broker.

The session's settings are exported as ``SMARTCITY_*`` variables, so code under test, in-process or in a
subprocess, sees the same configuration a user would set. Resolved jars are shared with the project's own
``var/jars`` so a test run never downloads them twice.

Tests come in tiers, one marker each (``pyproject.toml``): ``unit`` (no JVM: the default for a test without a
tier), ``spark``, ``broker`` and ``e2e``. Only JVM tiers may request the ``jars`` fixture, so the unit tier
(`make check`) runs without a JDK.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from smartcity import postgres
from smartcity.jars import resolve_all
from smartcity.kafka.broker import broker_service
from smartcity.object_store import S3Storage
from smartcity.postgres import postgres_service
from smartcity.services import Service
from smartcity.settings import ENV_PREFIX, PORT_SETTINGS, RuntimePaths, Settings, load_settings, variable_of
from smartcity_aws.testbed import Testbed
from smartcity_dagster.resources.dbt import prepare_dbt_project
from tests.spark_cluster import WORKERS, SparkCluster, spark_cluster

for _name in [name for name in os.environ if name.startswith(ENV_PREFIX)]:
    del os.environ[_name]
SHARED_JARS = load_settings().paths.jars
SMARTCITY = str(Path(sys.executable).with_name("smartcity"))
TIERS = ("unit", "spark", "broker", "e2e")
JVM_TIERS = TIERS[1:]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test has one tier (``unit`` unless marked); a unit test must not need the JVM's jars."""
    for item in items:
        tiers = [tier for tier in TIERS if item.get_closest_marker(tier)]
        if len(tiers) > 1:
            raise pytest.UsageError(f"{item.nodeid} is marked {', '.join(tiers)}: give it one tier")
        if not tiers:
            item.add_marker("unit")
        if "jars" in item.fixturenames and tiers[:1] in ([], ["unit"]):
            raise pytest.UsageError(f"{item.nodeid} needs the JVM (the jars fixture): mark it {' or '.join(JVM_TIERS)}")


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: each probe stays bound until all are chosen (one at a time, the kernel may
    hand out the same port twice, and the settings refuse two services on one port)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


def free_port() -> int:
    return free_ports(1)[0]


def isolated_environment(var_dir: Path) -> dict[str, str]:
    """``SMARTCITY_*`` variables for a private var/ and free ports, with the shared jars linked in."""
    var_dir.mkdir(parents=True, exist_ok=True)
    if not (var_dir / "jars").exists():
        (var_dir / "jars").symlink_to(SHARED_JARS, target_is_directory=True)
    ports = free_ports(len(PORT_SETTINGS))
    return {
        f"{ENV_PREFIX}VAR_DIR": str(var_dir),
        **{variable_of(name): str(port) for name, port in zip(PORT_SETTINGS, ports, strict=True)},
    }


def processes_of(var_dir: Path) -> list[str]:
    """The live processes of a platform with this var/: their command line names it, or their environment sets it
    (a Dagster code server's command line names neither). Zombies and this process are left out."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.pid == os.getpid() or process.status() == psutil.STATUS_ZOMBIE:
                continue
            command = " ".join(process.cmdline())
            if str(var_dir) in command or process.environ().get(f"{ENV_PREFIX}VAR_DIR") == str(var_dir):
                found.append(f"pid {process.pid}: {command[:160]}")
    return found


def settings_from(environment: dict[str, str]) -> Settings:
    return load_settings(**{key.removeprefix(ENV_PREFIX).lower(): value for key, value in environment.items()})


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed ``smartcity`` console script, as a user would."""
    return subprocess.run(
        [SMARTCITY, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session", autouse=True)
def session_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Export the session's isolated settings into ``os.environ`` for every test; the dbt manifest is prepared
    (as `smartcity setup` does) before any test builds the definitions."""
    prepare_dbt_project(load_settings())
    environment = isolated_environment(tmp_path_factory.mktemp("var"))
    os.environ.update(environment)
    yield environment
    for name in environment:
        os.environ.pop(name, None)


@pytest.fixture(scope="session")
def settings(session_environment: dict[str, str]) -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def jars() -> None:
    """The JVM jars (Kafka broker, Spark's Kafka connector), resolved once into the shared ``var/jars``."""
    resolve_all(load_settings())


@pytest.fixture(scope="session")
def broker(jars: None, settings: Settings) -> Iterator[Service]:
    """The real broker, started once for the session and stopped at its end."""
    local = broker_service(settings)
    local.start()
    yield local
    local.stop()


@pytest.fixture
def private_environment(tmp_path: Path) -> dict[str, str]:
    """Settings for a second, private platform instance (own var/ and ports) within one test."""
    return isolated_environment(tmp_path / "var")


@pytest.fixture(scope="module")
def spark_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    """A Spark standalone master and two one-core workers on loopback (:mod:`tests.spark_cluster`), stopped after
    the module."""
    paths = RuntimePaths(tmp_path_factory.mktemp("spark-cluster"))
    paths.ensure()
    cluster = spark_cluster(paths, free_ports(2 + WORKERS))
    try:
        for service in cluster.services:
            service.start()
        cluster.wait_for_workers()
        yield cluster
    finally:
        for service in reversed(cluster.services):
            service.stop()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL server on loopback for the session (the system's package), trust auth."""
    root = tmp_path_factory.mktemp("postgres")
    port = free_port()
    paths = RuntimePaths(root)
    paths.ensure()
    server = postgres_service(paths, "postgres", root / "data", port, root / "port")
    server.start()
    yield postgres.url(port, "postgres")
    server.stop()
    shutil.rmtree(postgres.data_directory(root / "data"), ignore_errors=True)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API server on loopback for the session (moto's server), standing in for AWS S3.

    Buckets get no default encryption, so an object is encrypted only when the code asks for it.
    """
    from moto.server import ThreadedMotoServer

    credentials = {"AWS_ACCESS_KEY_ID": "loopback", "AWS_SECRET_ACCESS_KEY": "loopback"}  # any value will do
    os.environ.update(credentials)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
    for name in credentials:
        os.environ.pop(name, None)


def s3_lake_environment(endpoint: str) -> dict[str, str]:
    """Settings for a lake under a new bucket on the loopback S3 server."""
    import boto3

    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return {
        f"{ENV_PREFIX}LAKE_URI": f"s3://{bucket}/lake",
        f"{ENV_PREFIX}S3_ENDPOINT_URL": endpoint,
        f"{ENV_PREFIX}AWS_REGION": "us-east-1",
    }  # credentials: the AWS_* variables the s3_endpoint fixture exported


@pytest.fixture
def s3_settings(s3_endpoint: str) -> Settings:
    """The session's settings with the lake in a fresh bucket on the loopback S3 server."""
    return settings_from(s3_lake_environment(s3_endpoint))


def unencrypted_objects(storage: S3Storage) -> list[str]:
    """Keys under the lake whose object S3 did not encrypt with SSE-S3 (AES256)."""
    return [
        key
        for key in storage.list_files("")
        if storage.client.head_object(Bucket=storage.bucket, Key=storage.key(key)).get("ServerSideEncryption")
        != "AES256"
    ]


@pytest.fixture(scope="session")
def aws_testbed(settings: Settings) -> Iterator[Testbed]:
    """The aws test bed of the session's var/ (SeaweedFS for S3, moto for Glue, IAM, STS, CloudFormation, Athena),
    started once and shared, as the broker is."""
    testbed = Testbed(settings)
    *servers, _trino = testbed.services()
    for service in servers:
        service.start()
    yield testbed
    for service in testbed.services():
        service.stop()


@pytest.fixture(scope="module")
def trino_starting(aws_testbed: Testbed) -> Iterator[Service]:
    """The test bed's Trino, started without waiting (30-70 s on two cores, which a slow fixture can overlap), and
    stopped after the module: an idle Trino still takes CPU from the tests after it."""
    service = aws_testbed.trino().service()
    service.start(wait=False)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def trino(aws_testbed: Testbed, trino_starting: Service) -> str:
    """The test bed's Trino (Athena's engine on its Glue and S3), once it can run queries; its URL."""
    trino_starting.start()  # returns once it is ready
    return aws_testbed.trino().url


def point_clients_at(testbed: Testbed, patch: pytest.MonkeyPatch) -> None:
    """This process's AWS clients on the test bed: its endpoints, certificate and profile, and no exported keys
    (they would win over its profile)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        patch.delenv(name, raising=False)
    for name, value in testbed.client_environment().items():
        patch.setenv(name, value)


@pytest.fixture
def on_testbed(aws_testbed: Testbed, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This test's AWS clients point at the test bed (its endpoints, certificate, credentials); returns the
    platform's settings for a deployment of its own (unique environment and lake bucket)."""
    point_clients_at(aws_testbed, monkeypatch)
    unique = uuid.uuid4().hex[:8]
    return {
        "SMARTCITY_PROFILE": "aws",
        "SMARTCITY_LAKE_URI": f"s3://lake-{unique}/lake",
        "SMARTCITY_AWS_ENVIRONMENT": f"t{unique}",
    }

"""The platform's Spark Connect server: a run's processing step uses it (and gives the rows a local session
gives), a client without the token is refused, and the service exits when its JVM dies so the watcher restarts it.
On a Spark standalone cluster (a master, two workers), a step that names the server by its URL gives those rows too.

Clients run in subprocesses: a Spark Connect session and the local session other tests use cannot share a process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest

from simulator.city import Scenario
from simulator.lake_fixture import write_raw_fixture
from smartcity.lake_layout import Hour
from smartcity.settings import Settings
from smartcity_dagster.assets.keys import catalog_key, processed_key
from smartcity_dagster.services import prepare_instance
from smartcity_dagster.spark_connect import platform_server_url, spark_connect_service, token_file
from tests.conftest import isolated_environment, settings_from
from tests.spark_cluster import SparkCluster
from tests.test_dagster_assets import FAULTS

pytestmark = pytest.mark.spark

STREAMS = ("vehicle", "emergency")  # emergency: window functions, a join and the incident lookback


def materialize(environment: dict[str, str], hour: Hour, rebuild: bool = False) -> subprocess.CompletedProcess:
    """The catalog and processed steps of ``hour`` as a Dagster run in a new process, as the daemon launches one."""
    settings = settings_from(environment)
    keys = [key.to_user_string() for s in STREAMS for key in (catalog_key("raw", s), processed_key(s))]
    command = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m",
               "smartcity_dagster.definitions", "--select", ",".join(keys), "--partition", hour.key]  # fmt: skip
    if rebuild:
        command += ["--config-json", json.dumps({"ops": {"processed_tables": {"config": {"rebuild": True}}}})]
    env = {**os.environ, "DAGSTER_HOME": str(prepare_instance(settings)), **environment}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def processed_rows(settings: Settings, stream: str, hour: Hour) -> pd.DataFrame:
    files = sorted((Path(settings.lake) / "processed" / stream / hour.relative_dir).glob("*.parquet"))
    assert files, f"no processed {stream} files"
    frame = pd.concat([pq.read_table(file).to_pandas() for file in files])
    return frame.sort_values("event_id").reset_index(drop=True)


def newest_metadata(settings: Settings, stream: str) -> dict:
    with dg.DagsterInstance.from_config(str(settings.paths.dagster_home)) as instance:
        event = instance.get_latest_materialization_event(processed_key(stream))
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def server_url(settings: Settings) -> str | None:
    return platform_server_url(settings.paths, settings.spark_connect_port)


def loaded_step(environment: dict[str, str]) -> subprocess.Popen[str]:
    """A process that loads the definitions and then, told to on stdin, runs the processing step's Spark: which
    Spark and what a query gives."""
    script = (
        "from smartcity_dagster.definitions import defs; spark = defs.resources['pyspark']\n"
        "print('loaded', flush=True); input(); count = spark.spark_session.range(7).count(); print(spark.kind, count)"
    )
    step = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, **environment}, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    assert step.stdout.readline().strip() == "loaded"
    return step


def connect_client(url: str) -> subprocess.CompletedProcess:
    script = "import sys; from pyspark.sql import SparkSession as S; print(S.builder.remote(sys.argv[1]).create()"
    script += ".range(7).count())"
    return subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True, timeout=120)


def assert_a_local_session_gives(rows: dict[str, pd.DataFrame], environment: dict[str, str], hour: Hour) -> None:
    """The hour processed again from scratch in a local session gives exactly ``rows``."""
    settings = settings_from(environment)
    for stream in STREAMS:
        shutil.rmtree(Path(settings.lake) / "processed" / stream)
    local = materialize(environment, hour, rebuild=True)
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-3000:]
    for stream in STREAMS:
        assert newest_metadata(settings, stream)["spark_session"] == "local"
        pd.testing.assert_frame_equal(rows[stream], processed_rows(settings, stream, hour), check_exact=True)


@pytest.mark.timeout(900)
def test_processing_runs_on_the_platform_spark_server_with_the_rows_a_local_session_gives(
    private_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in private_environment.items():  # the services started here read their settings from it
        monkeypatch.setenv(name, value)
    settings = settings_from(private_environment)
    settings.paths.ensure()
    start = datetime.now(UTC).replace(minute=5, second=0, microsecond=0) - timedelta(hours=2)
    write_raw_fixture(
        Path(settings.lake),
        settings.topics,
        seed=5,
        start=start,
        max_events=6_000,
        faults=FAULTS,
        scenario=Scenario(incidents_per_hour=3_000),
    )  # incidents within the fixture's minutes
    hour = Hour(start.replace(minute=0))
    assert server_url(settings) is None, "no server runs yet"
    step = loaded_step(private_environment)  # a code location loaded before the server starts
    server = spark_connect_service(settings)
    started = server.start()
    try:
        url = server_url(settings)
        assert url == f"sc://localhost:{settings.spark_connect_port}/;token={token_file(settings.paths).read_text()}"
        assert token_file(settings.paths).stat().st_mode & 0o777 == 0o600, "only its owner may read the token"
        ran, _ = step.communicate("go\n", timeout=300)
        assert ran.splitlines()[-1] == "Spark Connect (the platform's server) 7", "chosen when the step runs"

        on_server = materialize(private_environment, hour)
        assert on_server.returncode == 0, on_server.stdout[-3000:] + on_server.stderr[-3000:]
        for stream in STREAMS:
            assert newest_metadata(settings, stream)["spark_session"] == "Spark Connect (the platform's server)"
        remote = {stream: processed_rows(settings, stream, hour) for stream in STREAMS}

        assert connect_client(url).stdout.strip() == "7", "a client with the token is served"
        refused = connect_client(url.replace("token=", "token=not-"))
        assert refused.returncode != 0 and "UNAUTHENTICATED" in refused.stderr, refused.stderr[-2000:]
        assert connect_client(url.split("/;")[0]).returncode != 0, "a client without a token is served"

        jvm = psutil.Process(started.pid).children()
        assert jvm, "the server's JVM is not a child of its service"
        for child in jvm:
            child.send_signal(signal.SIGKILL)
        assert started.process.wait(timeout=60) != 0, "the service must exit when its JVM dies"
        log = (settings.paths.logs / "spark.log").read_text()
        assert "the Spark Connect server's JVM exited" in log, log[-2000:]
    finally:
        step.kill()
        server.stop()
    assert server_url(settings) is None, "the stopped server must not be used"

    assert_a_local_session_gives(remote, private_environment, hour)


@pytest.mark.timeout(900)
def test_processing_on_a_standalone_cluster_gives_the_rows_of_a_local_session(
    private_environment: dict[str, str], spark_standalone: SparkCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform's Spark Connect server with its driver on the cluster (``SMARTCITY_SPARK_MASTER``) serves a
    platform of another var/, whose step names it only by ``SMARTCITY_SPARK_CONNECT_URL``."""
    server_environment = {**private_environment, "SMARTCITY_SPARK_MASTER": spark_standalone.master_url}
    for name, value in server_environment.items():  # the server started here reads its settings from them
        monkeypatch.setenv(name, value)
    server_settings = settings_from(server_environment)
    server_settings.paths.ensure()
    client = isolated_environment(tmp_path / "client" / "var")
    settings = settings_from(client)
    start = datetime.now(UTC).replace(minute=5, second=0, microsecond=0) - timedelta(hours=2)
    write_raw_fixture(Path(settings.lake), settings.topics, seed=9, start=start, max_events=4_000, faults=FAULTS,
                      scenario=Scenario(incidents_per_hour=3_000))  # fmt: skip
    hour = Hour(start.replace(minute=0))
    server = spark_connect_service(server_settings)
    server.start()
    try:
        port, token = server_settings.spark_connect_port, token_file(server_settings.paths).read_text()
        on_cluster = materialize(
            {**client, "SMARTCITY_SPARK_CONNECT_URL": f"sc://localhost:{port}/;token={token}"}, hour
        )
        assert on_cluster.returncode == 0, on_cluster.stdout[-3000:] + on_cluster.stderr[-3000:]
        assert token not in on_cluster.stdout + on_cluster.stderr
        apps = spark_standalone.state()["activeapps"]
        assert [(app["name"], app["cores"]) for app in apps] == [("smartcity-processing", 2)], apps
    finally:
        server.stop()
    for stream in STREAMS:
        assert newest_metadata(settings, stream)["spark_session"] == f"Spark Connect (localhost:{port})"
    ran_tasks = [work for work in spark_standalone.work_dirs if "Finished task" in _executor_logs(work)]
    assert len(ran_tasks) == 2, "both workers' executors ran tasks"
    on_cluster_rows = {stream: processed_rows(settings, stream, hour) for stream in STREAMS}

    assert_a_local_session_gives(on_cluster_rows, client, hour)


def _executor_logs(work_dir: Path) -> str:
    return "".join(log.read_text(errors="replace") for log in work_dir.glob("app-*/*/stderr"))

"""Dagster's own state in PostgreSQL (``SMARTCITY_DAGSTER_STORAGE_URL``): a real daemon, killed with SIGKILL,
resumes its sensor from the cursor it had stored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from smartcity.settings import Settings
from smartcity_dagster.services import prepare_instance
from tests.conftest import isolated_environment, settings_from

HEARTBEAT = """
import json, os
import dagster as dg

@dg.sensor(minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING)
def heartbeat(context):
    count = json.loads(context.cursor)["count"] if context.cursor else 0
    context.update_cursor(json.dumps({"count": count + 1, "daemon": os.getppid()}))
    return dg.SkipReason("counting")

defs = dg.Definitions(sensors=[heartbeat])
"""


@pytest.fixture
def storage_url(postgres_url: str) -> Iterator[str]:
    """A database of its own on the test PostgreSQL."""
    name = f"dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE {name} WITH (FORCE)")


def cursor(home: Path) -> dict | None:
    """The heartbeat sensor's stored cursor, read through a fresh instance."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for state in instance.all_instigator_state():
            if state.name == "heartbeat" and state.instigator_data and state.instigator_data.cursor:
                return json.loads(state.instigator_data.cursor)
    return None


def wait_for_cursor(home: Path, done, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := cursor(home)) is not None and done(found):
            return found
        time.sleep(1)
    raise AssertionError(f"the sensor's cursor did not get there in {timeout:.0f} s: {cursor(home)}")


def start_daemon(home: Path, code: Path) -> subprocess.Popen:
    daemon = str(Path(sys.executable).with_name("dagster-daemon"))
    return subprocess.Popen([daemon, "run", "-f", str(code)], env={**os.environ, "DAGSTER_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def test_the_instance_on_postgres_survives_a_daemon_sigkill(storage_url: str, tmp_path: Path) -> None:
    settings: Settings = settings_from({**isolated_environment(tmp_path / "var"),
                                        "SMARTCITY_DAGSTER_STORAGE_URL": storage_url})  # fmt: skip
    home = prepare_instance(settings)
    assert (home / "dagster.yaml").stat().st_mode & 0o777 == 0o600  # it holds the URL
    with dg.DagsterInstance.from_config(str(home)) as instance:  # an event, as every run writes them (with NOTIFY)
        instance.report_runless_asset_event(dg.AssetMaterialization("probe", metadata={"rows": 3}))
        assert (
            instance.get_latest_materialization_event(dg.AssetKey("probe")).asset_materialization.metadata["rows"].value
            == 3
        )
    code = tmp_path / "heartbeat.py"
    code.write_text(HEARTBEAT)
    daemon = start_daemon(home, code)
    try:
        before = wait_for_cursor(home, lambda found: found["count"] >= 2)
    finally:
        os.killpg(daemon.pid, signal.SIGKILL)  # the daemon and its code server, with no chance to clean up
        daemon.wait()
    stored = cursor(home)
    assert stored is not None and stored["count"] >= before["count"]
    restarted = start_daemon(home, code)
    try:
        resumed = wait_for_cursor(home, lambda found: found["daemon"] != stored["daemon"])
    finally:
        os.killpg(restarted.pid, signal.SIGKILL)
        restarted.wait()
    assert resumed["count"] == stored["count"] + 1  # counting on from the stored cursor, not from zero
    assert not list(home.rglob("*.db"))  # nothing went to SQLite
    with psycopg.connect(storage_url) as connection:
        tables = {row[0] for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"runs", "event_logs", "instigators", "job_ticks"} <= tables

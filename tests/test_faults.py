"""The platform in the background (`smartcity up`/`down`), faults during its run, then an exact reconciliation.

A seeded simulator run with every fault kind goes to the broker while the stream and the Dagster daemon (lake
sensor, automation, run retries, the run-worker watchdog) carry it to the warehouse. Meanwhile the broker is
stopped and started again, and later the stream and the daemon (with its code server and run workers) are
SIGKILLed during a Dagster run and brought back by `smartcity up`. Afterwards the warehouse must equal, exactly,
the numbers computed from the simulator's dry run restricted to what the broker acknowledged: no acknowledged
event lost, none counted twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from dashboard.warehouse import NoData, WarehouseUnavailable, query
from smartcity.settings import Settings
from smartcity_ops.services import SERVICES
from tests.conftest import SMARTCITY, processes_of, run_cli, settings_from
from tests.pipeline import (
    FAULTS,
    dry_run_events,
    events_per_stream_and_hour,
    ledger_rows,
    loaded_quarantine,
    quarantined_per_stream_and_reason,
)
from tests.test_cli import COMPONENTS

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("jars")]


def loaded_events(settings: Settings) -> dict[tuple[str, datetime], int]:
    with contextlib.suppress(NoData, WarehouseUnavailable):
        loaded = query(settings.warehouse, "SELECT stream, hour_start, events FROM gold.events_hourly")
        return {(r.stream, r.hour_start.to_pydatetime()): r.events for r in loaded.itertuples()}
    return {}


def wait_for_started_run(settings: Settings, timeout: float) -> str:
    """The id of a Dagster run in progress (its worker computing), waiting for one to start."""
    deadline = time.monotonic() + timeout
    with dg.DagsterInstance.from_config(str(settings.paths.dagster_home)) as instance:
        while time.monotonic() < deadline:
            runs = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
            if runs:
                return runs[0].run_id
            time.sleep(1)
    raise AssertionError(f"no Dagster run started within {timeout:.0f}s; see {settings.paths.logs}/daemon.log")


def sigkill(settings: Settings, name: str) -> None:
    pid = SERVICES[name](settings).pid()
    assert pid is not None, f"{name} is not running"
    os.killpg(pid, signal.SIGKILL)


def run_status(settings: Settings, run_id: str) -> dg.DagsterRunStatus:
    with dg.DagsterInstance.from_config(str(settings.paths.dagster_home)) as instance:
        return instance.get_run_by_id(run_id).status


@pytest.mark.timeout(1500)
def test_warehouse_reconciles_after_a_broker_restart_and_sigkills_of_stream_and_daemon(
    private_environment: dict[str, str], tmp_path: Path
) -> None:
    environment = {**private_environment, "SMARTCITY_STREAM_TRIGGER_SECONDS": "5"}
    settings = settings_from(environment)
    start = (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S")
    scenario = ["--seed", "29", "--start", start, "--max-events", "12000", "--incidents-per-hour", "300", *FAULTS]
    dry, ledger = tmp_path / "events.jsonl", tmp_path / "ledger.csv"
    assert run_cli("simulate", "--no-progress", "--dry-run", str(dry), *scenario, env=environment).returncode == 0
    try:
        started = run_cli("up", "--no-simulate", env=environment, timeout=600)
        assert started.returncode == 0, started.stdout + started.stderr
        assert all(f"  {name:10s} started" in started.stdout for name in COMPONENTS), started.stdout
        assert run_cli("up", "--no-simulate", env=environment).stdout.count("already up") == len(COMPONENTS)
        sending = ["simulate", "--speedup", "0", "--rate", "400", "--no-progress", "--ledger", str(ledger), *scenario]
        simulator = subprocess.Popen(
            [SMARTCITY, *sending], env={**os.environ, **environment}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        time.sleep(8)  # the broker goes away while the simulator sends and the stream reads
        assert run_cli("kafka", "stop", env=environment).returncode == 0
        time.sleep(5)
        restarted = run_cli("kafka", "start", env=environment)
        assert restarted.returncode == 0, restarted.stderr
        output, _ = simulator.communicate(timeout=300)
        assert simulator.returncode == 0, output

        killed_run = wait_for_started_run(settings, timeout=300)
        sigkill(settings, "stream")
        sigkill(settings, "daemon")
        status = run_cli("status", env=environment).stdout
        assert "  stream     down" in status and "  daemon     down" in status, status
        again = run_cli("up", "--no-simulate", env=environment, timeout=600)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "  stream     started" in again.stdout and "  daemon     started" in again.stdout, again.stdout
        assert again.stdout.count("already up") == len(COMPONENTS) - 2, again.stdout

        rows = ledger_rows(ledger)
        acknowledged = {row["event_id"] for row in rows if row["valid"] == "true"}
        events = dry_run_events(dry, acknowledged, settings.topics)
        expected = events_per_stream_and_hour(events)
        expected_quarantine = quarantined_per_stream_and_reason(rows, settings.topics)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and (
            loaded_events(settings) != expected or loaded_quarantine(settings.warehouse) != expected_quarantine
        ):
            time.sleep(10)
        loaded = loaded_events(settings)
        wrong = {key: (count, loaded.get(key)) for key, count in expected.items() if loaded.get(key) != count}
        assert loaded == expected, f"(expected, loaded) per (stream, hour): {wrong}; see {settings.paths.logs}"
        assert loaded_quarantine(settings.warehouse) == expected_quarantine, "quarantine per (stream, reason)"
        assert run_status(settings, killed_run) != dg.DagsterRunStatus.STARTED, "the killed run was never failed"
        with dg.DagsterInstance.from_config(str(settings.paths.dagster_home)) as instance:
            records = instance.fetch_materializations(dg.AssetKey(["processed", "vehicle"]), limit=10_000).records
        sessions = {record.asset_materialization.metadata["spark_session"].value for record in records}
        # A re-run of an hour with nothing new starts no Spark; every run that read data used the platform's server.
        assert sessions - {"none (nothing to read)"} == {"Spark Connect (the platform's server)"}, sessions
        status = run_cli("status", env=environment).stdout
        assert all(f"  {component:10s} up" in status for component in COMPONENTS), status
    finally:
        stopped = run_cli("down", env=environment, timeout=300)
    assert all(f"  {name:10s} stopped" in stopped.stdout for name in COMPONENTS), stopped.stdout
    assert "  simulator  not running" in stopped.stdout, stopped.stdout
    status = run_cli("status", env=environment).stdout
    assert all(f"  {component:10s} down" in status for component in COMPONENTS), status
    assert processes_of(settings.var_dir) == [], "the platform left processes behind after down"

    assert len(rows) == len(dry.read_text().splitlines()), "every message sent was acknowledged despite the restart"
    vehicles = query(settings.warehouse, "SELECT hour_start, vehicles_reporting FROM gold.fleet_hourly")
    expected_vehicles = events["vehicle"].groupby("hour_start")["device_id"].nunique()
    assert vehicles.set_index("hour_start")["vehicles_reporting"].sort_index().to_dict() == expected_vehicles.to_dict()
    incidents = query(settings.warehouse, "SELECT incident_type, status, count(*) AS n FROM gold.incident_events "
                                          "GROUP BY ALL")  # fmt: skip
    expected_incidents = events["emergency"].groupby(["incident_type", "status"]).size().to_dict()
    assert {(r.incident_type, r.status): r.n for r in incidents.itertuples()} == expected_incidents

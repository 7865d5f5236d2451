"""The whole pipeline, exactly: a seeded simulator run with every fault kind → the real broker → the stream
(available-now) → every Dagster asset for the hours the lake sensor requests → the warehouse → the dashboard.

The expected numbers come from the simulator's dry run of the same seed and start (the same bytes), restricted
to what the broker acknowledged (the ledger), and are computed here with pandas, independently of Spark, dbt
and the warehouse.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from dashboard.warehouse import query
from smartcity.services import Service
from smartcity.settings import Settings
from smartcity_dagster.definitions import build_definitions
from tests.browser import ARTIFACTS, chromium, drawn_charts, expected_tiles, served_dashboard, tile_values
from tests.conftest import run_cli, settings_from
from tests.graph import run_graph, sensor_hours
from tests.pipeline import (
    FAULTS,
    MALFORMED,
    drain,
    dry_run_events,
    events_per_stream_and_hour,
    ledger_rows,
    loaded_quarantine,
    quarantined_per_stream_and_reason,
    simulate,
    stream_environment,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("jars")]


@pytest.fixture(scope="module")
def pipeline(broker: Service, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("e2e")
    environment = stream_environment(settings, root, SMARTCITY_STREAM_MAX_OFFSETS_PER_TRIGGER="10000")
    start = (datetime.now(UTC) - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%S")
    scenario = ["--seed", "13", "--start", start, "--max-events", "20000", "--incidents-per-hour", "300", *FAULTS]
    dry = root / "events.jsonl"
    result = run_cli("simulate", "--no-progress", "--dry-run", str(dry), *scenario, env=environment)
    assert result.returncode == 0, result.stderr
    ledger = root / "ledger.csv"
    simulate(environment, ledger, *scenario)
    drain(environment)
    ours = settings_from(environment)
    defs = build_definitions(ours)
    with dg.instance_for_test() as instance:
        hours = sensor_hours(defs, instance)
        assert run_graph(defs, instance, hours[0], hours[-1]).success
    rows = ledger_rows(ledger)
    acknowledged = {row["event_id"] for row in rows if row["valid"] == "true"}
    return {
        "environment": environment,
        "settings": ours,
        "rows": rows,
        "events": dry_run_events(dry, acknowledged, ours.topics),
    }


def warehouse(pipeline: dict, sql: str) -> pd.DataFrame:
    return query(pipeline["settings"].warehouse, sql)


def test_events_per_stream_and_hour_are_exact(pipeline: dict) -> None:
    loaded = warehouse(pipeline, "SELECT stream, hour_start, events FROM gold.events_hourly")
    assert {(r.stream, r.hour_start.to_pydatetime()): r.events for r in loaded.itertuples()} == (
        events_per_stream_and_hour(pipeline["events"])
    )


def test_distinct_vehicles_and_mean_speeds_per_hour_are_exact(pipeline: dict) -> None:
    vehicle = pipeline["events"]["vehicle"].groupby("hour_start")
    fleet = warehouse(pipeline, "SELECT * FROM gold.fleet_hourly ORDER BY hour_start").set_index("hour_start")
    assert fleet["vehicles_reporting"].to_dict() == vehicle["device_id"].nunique().to_dict()
    speeds = vehicle["speed_kmh"].mean()
    assert fleet["mean_speed_kmh"].to_numpy() == pytest.approx(speeds.to_numpy(), abs=1e-9, rel=0)
    traffic = pipeline["events"]["traffic"].groupby(["hour_start", "camera_id"])["mean_speed_kmh"].mean().dropna()
    cameras = warehouse(pipeline, "SELECT hour_start, camera_id, mean_speed_kmh FROM gold.traffic_hourly")
    loaded = cameras.set_index(["hour_start", "camera_id"])["mean_speed_kmh"].dropna().sort_index()
    assert loaded.index.tolist() == traffic.sort_index().index.tolist()
    assert loaded.to_numpy() == pytest.approx(traffic.sort_index().to_numpy(), abs=1e-9, rel=0)


def test_incidents_by_type_and_status_are_exact(pipeline: dict) -> None:
    emergency = pipeline["events"]["emergency"]
    expected = emergency.groupby(["incident_type", "status"]).size().to_dict()
    loaded = warehouse(pipeline, "SELECT incident_type, status, count(*) AS n FROM gold.incident_events GROUP BY ALL")
    assert {(r.incident_type, r.status): r.n for r in loaded.itertuples()} == expected
    assert emergency["incident_id"].nunique() > 5


def test_quarantined_records_by_stream_and_reason_equal_the_faults_injected(pipeline: dict) -> None:
    injected = quarantined_per_stream_and_reason(pipeline["rows"], pipeline["settings"].topics)
    assert loaded_quarantine(pipeline["settings"].warehouse) == injected
    assert {reason for _, reason in injected} == MALFORMED, "every malformed kind should be injected"


def test_the_dashboard_shows_the_same_numbers_in_a_real_browser(pipeline: dict) -> None:
    quarantined = sum(quarantined_per_stream_and_reason(pipeline["rows"], pipeline["settings"].topics).values())
    expected = expected_tiles(pipeline["events"], quarantined)
    with served_dashboard(pipeline["environment"]) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        assert tile_values(page) == expected
        page.get_by_text("Quarantined records, last 24 hours").wait_for(timeout=30_000)
        assert drawn_charts(page, 2) == 2, "the last 24 hours' traffic, and the quarantine by reason"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / "end-to-end-overview.png", full_page=True)

"""The dashboard over a warehouse built by the real graph from a seeded fixture: data layer, pages, browser."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import data
from simulator.city import Scenario
from simulator.faults import FaultRates
from simulator.lake_fixture import write_raw_fixture
from smartcity.lake_layout import Hour
from smartcity.settings import PROJECT_ROOT, Settings
from smartcity.zones import ZONES
from smartcity_dagster.definitions import build_definitions
from smartcity_dagster.resources.warehouse import warehouse_from_url
from tests.browser import ARTIFACTS, chromium, every_page_shows_data, expected_tiles, served_dashboard, serving
from tests.conftest import free_port, isolated_environment, settings_from
from tests.dockerfile import Image, build
from tests.graph import run_graph

pytestmark = pytest.mark.spark  # its warehouse comes from running the graph
APP = str(PROJECT_ROOT / "dashboard" / "app.py")


def deduplicated(settings: Settings, stream: str, before: datetime) -> pd.DataFrame:
    """The fixture's raw rows of one stream, deduplicated on event_id, with event time before ``before``."""
    files = sorted((Path(settings.lake) / "raw" / settings.topics[stream]).rglob("*.parquet"))
    frame = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True).drop_duplicates("event_id")
    return frame[frame["event_time"] < pd.Timestamp(before)]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A seeded city loaded for its busy hour and the three before it (late events); incidents left open."""
    environment = isolated_environment(tmp_path_factory.mktemp("dashboard") / "var")
    settings = settings_from(environment)
    hour = Hour((datetime.now(UTC) - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0))
    write_raw_fixture(
        Path(settings.lake), settings.topics, seed=21, start=hour.start + timedelta(minutes=20), max_events=20_000,
        scenario=Scenario(incidents_per_hour=600), faults=FaultRates.build(0.0, duplicate=0.02, late=0.01),
    )  # fmt: skip
    first = Hour(hour.start - timedelta(hours=3))
    assert run_graph(build_definitions(settings), dg.DagsterInstance.ephemeral(), first.key, hour.key).success
    end = hour.start + timedelta(hours=1)  # later hours (incidents resolving) are not loaded: those stay open
    expected = expected_tiles({stream: deduplicated(settings, stream, end) for stream in settings.topics})
    return {"environment": environment, "settings": settings, "hour": hour, "expected": expected}


def test_kpis_equal_an_independent_computation_from_the_fixture(city: dict) -> None:
    kpis = data.kpis(city["settings"].warehouse)
    expected = city["expected"]
    assert kpis.latest_hour == city["hour"].start.replace(tzinfo=None)
    assert f"{kpis.vehicles_reporting:,}" == expected["Vehicles reporting"]
    assert f"{kpis.mean_speed_kmh:.1f} km/h" == expected["Mean speed"]
    assert f"{kpis.open_incidents:,}" == expected["Open incidents"] != "0"
    assert f"AQI {kpis.worst_aqi}" == expected["Worst air quality"]
    assert f"{kpis.events_last_hour:,}" == expected["Events, latest hour"]
    assert f"{kpis.quarantined_last_day:,}" == expected["Quarantined, 24 h"] == "0"


def app_test(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], page: str | None = None) -> AppTest:
    """The app under AppTest with ``environment`` set for this test (and every later ``run()`` of it)."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    test = AppTest.from_file(APP, default_timeout=60)
    test.run()
    if page:
        test.switch_page(page).run()
    return test


def test_overview_page_shows_the_tiles_and_the_freshness_line(monkeypatch: pytest.MonkeyPatch, city: dict) -> None:
    test = app_test(monkeypatch, city["environment"])
    assert not test.exception
    assert {metric.label: metric.value for metric in test.metric} == city["expected"]
    assert test.warning and "Data as of" in test.warning[0].value  # the fixture's hour is hours old: stale


@pytest.mark.parametrize("page", ["map", "trends", "incidents", "vehicles"])
def test_every_page_renders_without_error(monkeypatch: pytest.MonkeyPatch, city: dict, page: str) -> None:
    test = app_test(monkeypatch, city["environment"], f"pages/{page}.py")
    assert not test.exception and not test.error, (test.exception, test.error)


def test_the_map_draws_the_corridor_under_the_data(monkeypatch: pytest.MonkeyPatch, city: dict) -> None:
    """Offline no base tiles load: the zones' areas, the road, the junctions and their names come first."""
    test = app_test(monkeypatch, city["environment"], "pages/map.py")
    [chart] = test.get("deck_gl_json_chart")
    layers = json.loads(chart.proto.json)["layers"]
    assert [layer["id"] for layer in layers] == ["zones", "road", "junctions", "names",
                                                 "vehicles", "cameras", "stations", "incidents"]  # fmt: skip
    names = next(layer for layer in layers if layer["id"] == "names")
    assert [row["zone"] for row in names["data"]] == [zone.name for zone in ZONES]


def test_trend_filters_apply_to_every_chart(monkeypatch: pytest.MonkeyPatch, city: dict) -> None:
    test = app_test(monkeypatch, city["environment"], "pages/trends.py")
    zones = test.multiselect[0].options
    assert zones
    test.multiselect[0].select(zones[0]).run()
    assert not test.exception
    assert len(test.get("vega_lite_chart")) == 5


def test_incident_filters_narrow_the_table(monkeypatch: pytest.MonkeyPatch, city: dict) -> None:
    test = app_test(monkeypatch, city["environment"], "pages/incidents.py")
    everything = int(test.metric[0].value)
    test.multiselect[2].select("resolved").run()
    resolved = int(test.metric[0].value)
    assert 0 < resolved < everything


def test_an_empty_warehouse_says_what_to_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    test = app_test(monkeypatch, isolated_environment(tmp_path / "var"))
    assert not test.exception
    assert "No data in the warehouse yet" in test.info[0].value and "make run" in test.info[0].value


def test_an_unreachable_warehouse_says_what_to_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environment = {**isolated_environment(tmp_path / "var"),
                   "SMARTCITY_WAREHOUSE_URL": "postgresql://reader:secret@127.0.0.1:9/warehouse"}  # fmt: skip
    test = app_test(monkeypatch, environment)
    assert not test.exception
    assert "cannot be reached" in test.error[0].value and "secret" not in test.error[0].value


@pytest.fixture(scope="module")
def served(city: dict) -> Iterator[str]:
    with served_dashboard(city["environment"]) as url:
        yield url


def test_a_real_browser_shows_the_numbers_the_map_and_the_charts(city: dict, served: str) -> None:
    with chromium() as browser:
        every_page_shows_data(browser, served, city["expected"], ARTIFACTS)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return build(PROJECT_ROOT / "dashboard" / "Dockerfile", PROJECT_ROOT, tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def served_image(city: dict, image: Image) -> Iterator[tuple[str, dict[str, str]]]:
    """The dashboard served by the image's own CMD, files and packages, over the city's warehouse."""
    port = free_port()
    environment = image.environment({**city["environment"], "SMARTCITY_DASHBOARD_HOST": "127.0.0.1",
                                     "SMARTCITY_DASHBOARD_PORT": str(port)})  # fmt: skip
    log = city["settings"].var_dir / "image-dashboard.log"
    with serving(image.dockerfile.command(), environment, port, log, cwd=image.root) as url:
        yield url, environment


def test_the_image_serves_every_page_from_its_own_files_and_packages(
    city: dict, image: Image, served_image: tuple[str, dict[str, str]]
) -> None:
    """The image's COPY lines and its pip line are enough: every page shows the city's data in a real browser."""
    url, environment = served_image
    with chromium() as browser:
        every_page_shows_data(browser, url, city["expected"], ARTIFACTS / "image")
    probe = "import sys; print(sys.prefix); import dagster"  # the image holds the dashboard, not the platform
    result = subprocess.run(["python", "-c", probe], env=environment, cwd=image.root, capture_output=True, text=True)
    assert result.stdout.strip() == str(image.venv) and "No module named 'dagster'" in result.stderr


def test_the_image_health_check_probes_the_served_dashboard(
    image: Image, served_image: tuple[str, dict[str, str]]
) -> None:
    _, environment = served_image
    health = image.dockerfile.command("HEALTHCHECK")
    assert subprocess.run(health, env=environment, cwd=image.root).returncode == 0
    closed = subprocess.run(health, env={**environment, "SMARTCITY_DASHBOARD_PORT": "9"}, capture_output=True)
    assert closed.returncode != 0


LOADER = """
import sys, time
from datetime import UTC, datetime, timedelta
import pyarrow as pa
from smartcity_dagster.resources.warehouse import warehouse_from_url
loader, day = warehouse_from_url(sys.argv[1]), datetime(2026, 1, 1, tzinfo=UTC)
rows = pa.table({"hour_start": pa.array([datetime(2026, 1, 1)] * 1000, pa.timestamp("us")), "value": range(1000)})
loads, deadline = 0, time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    loader.replace_window("load_probe", rows, day, day + timedelta(days=1))
    loads += 1
print(loads)
"""


def test_queries_keep_answering_while_the_loader_writes(city: dict) -> None:
    """Another process loading the DuckDB warehouse in a loop (as Dagster does): reads wait out its lock."""
    url = city["settings"].warehouse
    loader = subprocess.Popen([sys.executable, "-c", LOADER, url, "15"], stdout=subprocess.PIPE, text=True)
    answers = []
    while loader.poll() is None:
        answers.append(data.kpis(url).events_last_hour)
    assert loader.returncode == 0 and int(loader.stdout.read()) > 10, "the loader failed or barely ran"
    assert len(answers) > 10 and len(set(answers)) == 1 and answers[0] > 0


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Same values compare equal whatever the driver's datetime resolution (DuckDB µs, psycopg ns)."""
    return frame.reset_index(drop=True).apply(
        lambda column: column.astype("datetime64[ns]") if pd.api.types.is_datetime64_any_dtype(column) else column
    )


def test_every_page_query_gives_the_same_answer_on_postgresql(city: dict, postgres_url: str) -> None:
    """The query layer is portable: the warehouse copied into PostgreSQL answers every page's queries alike."""
    duck = city["settings"].warehouse
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS gold CASCADE")
    loader, ever = (
        warehouse_from_url(postgres_url),
        (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)),
    )
    names = warehouse_from_url(duck).tables()
    with duckdb.connect(str(city["settings"].var_dir / "warehouse.duckdb"), read_only=True) as db:
        tables = {table: db.execute(f"SELECT * FROM gold.{table}").fetch_arrow_table() for table in names}
    for table, rows in tables.items():  # typed Arrow, as the loader gets it (an empty table keeps its types)
        loader.replace_window(table, rows, *ever)
    span = data.hour_range(duck)
    assert data.hour_range(postgres_url) == span
    assert data.kpis(postgres_url) == data.kpis(duck)
    calls = [("vehicle_positions",), ("cameras",), ("stations",), ("open_incidents",), ("zones",), ("vehicles",),
             ("quarantine",), ("traffic_trend", *span, []), ("weather_trend", *span, []), ("incident_trend", *span, []),
             ("incidents", span[0], span[1] + timedelta(hours=1))]  # fmt: skip
    for name, *args in calls:
        expected, found = getattr(data, name)(duck, *args), getattr(data, name)(postgres_url, *args)
        if isinstance(expected, list):
            assert found == expected, name
        else:
            pd.testing.assert_frame_equal(comparable(found), comparable(expected), check_dtype=False,
                                          check_exact=False, rtol=1e-9, obj=name)  # fmt: skip
            # numbers stay numbers (PostgreSQL's numeric arrives as Decimal objects, which a chart takes for labels)
            numeric = [column for column in expected if pd.api.types.is_numeric_dtype(expected[column])]
            assert [column for column in numeric if not pd.api.types.is_numeric_dtype(found[column])] == [], name

"""The cost report prices a lake from its inventory: each figure below is worked out by hand from the dated price
table (us-east-1 list prices), so a change to the arithmetic or the lifecycle it assumes shows up here."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from smartcity.object_store import LocalStorage
from smartcity.settings import Settings
from smartcity_aws.cost import PRICES, lake_report, raw_tiers, render
from smartcity_dagster.assets.cost import build_lake_cost
from smartcity_dagster.resources.lake import LocalLake
from tests.conftest import run_cli

GIB = 2**30
HOUR = "event_date=2026-11-30/event_hour=10"


def sparse(root: Path, key: str, size: int) -> None:
    """A file of ``size`` bytes that takes no disk space."""
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        file.truncate(size)


@pytest.fixture
def lake(tmp_path: Path) -> LocalStorage:
    """One hour: three 1 GiB raw batches, 1 GiB processed, two 1 KiB gold tables, and the stream's bookkeeping."""
    for batch in range(3):
        sparse(tmp_path, f"raw/vehicle_data/{HOUR}/part-b{batch:012d}.parquet", GIB)
    sparse(tmp_path, f"processed/vehicle/{HOUR}/part-b000000000002-00000.parquet", GIB)
    for model in ("traffic_hourly", "fleet_hourly"):
        sparse(tmp_path, f"gold/{model}/{HOUR}/part-0.parquet", 1024)
    sparse(tmp_path, "_stream/manifests/000000000002.json", 100)
    return LocalStorage(tmp_path)


def test_storage_now_is_priced_per_zone_and_class(lake: LocalStorage, settings: Settings) -> None:
    report = lake_report(lake.inventory(), settings.model_copy(update={"retention_days": 365}))
    by_zone = {usage.zone: usage for usage in report.usage}
    assert {zone: (u.storage_class, u.objects, u.bytes) for zone, u in by_zone.items()} == {
        "raw": ("STANDARD", 3, 3 * GIB),
        "processed": ("STANDARD", 1, GIB),
        "gold": ("STANDARD", 2, 2048),
        "state and staging": ("STANDARD", 1, 100),
    }
    assert by_zone["raw"].monthly_usd == pytest.approx(3 * 0.023)
    assert by_zone["processed"].monthly_usd == pytest.approx(0.023)
    assert report.bytes == 4 * GIB + 2148


def test_objects_per_partition_show_the_small_files(lake: LocalStorage, settings: Settings) -> None:
    partitions = {p.zone: p for p in lake_report(lake.inventory(), settings).partitions}
    assert (partitions["raw"].partitions, partitions["raw"].objects, partitions["raw"].max_objects) == (1, 3, 3)
    assert partitions["raw"].busiest == f"raw/vehicle_data/{HOUR}" and partitions["raw"].small_objects == 0
    assert (partitions["gold"].partitions, partitions["gold"].median_objects, partitions["gold"].small_objects) == (
        2,
        1,
        2,
    )
    assert "state and staging" not in partitions


def test_the_steady_state_follows_the_lifecycle_and_the_price_table(lake: LocalStorage, settings: Settings) -> None:
    report = lake_report(lake.inventory(), settings.model_copy(update={"retention_days": 365}))
    lines = {line.item.split(":")[0]: line for line in report.steady_state if line.item != "raw: lifecycle transitions"}
    # raw: 3 GiB an hour, 30 days STANDARD, 60 STANDARD_IA, 275 GLACIER_IR
    assert lines["raw"].monthly_usd == pytest.approx(24 * 3 * (30 * 0.023 + 60 * 0.0125 + 275 * 0.004))
    assert lines["processed"].monthly_usd == pytest.approx(24 * 365 * 0.023)
    assert lines["quarantine"].monthly_usd == 0
    assert lines["gold"].monthly_usd == pytest.approx(24 * 365 * 2048 / GIB * 0.023)
    raw_transitions = next(line for line in report.steady_state if line.item == "raw: lifecycle transitions")
    assert raw_transitions.quantity == 2 * 730 and raw_transitions.monthly_usd == pytest.approx(730 * 0.03 / 1000)
    # Athena: two gold queries an hour read the hour's 1 GiB of processed data (above the 2 x 10 MB minimum)
    assert lines["Athena"].quantity == pytest.approx(730 / 1024) and lines["Athena"].monthly_usd == pytest.approx(
        730 / 1024 * 5
    )
    glue = lines["Glue Data Catalog objects"]
    assert glue.quantity == 4 * (1 + 24 * 365) and glue.monthly_usd == 0  # within the free million
    assert report.steady_state_usd == pytest.approx(sum(line.monthly_usd for line in report.steady_state))


def test_small_hours_stay_standard_and_athena_bills_its_minimum(tmp_path: Path, settings: Settings) -> None:
    sparse(tmp_path, f"raw/weather_data/{HOUR}/part-b000000000000.parquet", 64 * 2**10)
    sparse(tmp_path, f"processed/weather/{HOUR}/part-b000000000000-00000.parquet", 2**20)
    for model in ("weather_hourly", "events_hourly", "incidents_hourly"):
        sparse(tmp_path, f"gold/{model}/{HOUR}/part-0.parquet", 512)
    report = lake_report(LocalStorage(tmp_path).inventory(), settings.model_copy(update={"retention_days": 365}))
    raw, transitions, athena = (next(line for line in report.steady_state if line.item.startswith(prefix))
                                for prefix in ("raw: tiered", "raw: lifecycle", "Athena"))  # fmt: skip
    assert raw.monthly_usd == pytest.approx(24 * 365 * 64 * 2**10 / GIB * 0.023)  # under 128 KB: never moved
    assert transitions.quantity == 0 and transitions.monthly_usd == 0
    assert athena.quantity == pytest.approx(3 * 10 * 2**20 * 730 / 2**40)  # 3 queries x the 10 MB minimum


def test_a_short_retention_never_reaches_the_colder_tiers() -> None:
    assert raw_tiers(7) == {"STANDARD": 7, "STANDARD_IA": 0, "GLACIER_IR": 0}
    assert raw_tiers(120) == {"STANDARD": 30, "STANDARD_IA": 60, "GLACIER_IR": 30}


def test_the_report_renders_every_zone_with_the_price_date(lake: LocalStorage, settings: Settings) -> None:
    text = render(lake_report(lake.inventory(), settings))
    assert f"read on {PRICES.as_of}" in text
    for heading in ("Storage now", "Objects per partition", "Monthly at the observed volume"):
        assert heading in text
    assert "raw/vehicle_data/" + HOUR in text


def test_the_command_prices_the_configured_lake_or_says_it_is_empty(lake: LocalStorage, tmp_path: Path) -> None:
    result = run_cli("aws", "cost", "--json", env={"SMARTCITY_LAKE_URI": str(lake.root)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["totals"]["bytes"] == 4 * GIB + 2148 and report["prices"]["as_of"] == PRICES.as_of.isoformat()
    empty = tmp_path / "empty"
    result = run_cli("aws", "cost", env={"SMARTCITY_LAKE_URI": str(empty)})
    assert result.returncode != 0 and "holds no objects yet" in result.stderr


def test_the_asset_reports_the_lake_in_the_dagster_ui(lake: LocalStorage, settings: Settings) -> None:
    asset, _job, schedule = build_lake_cost(settings)
    result = dg.materialize([asset], resources={"lake": LocalLake(root=str(lake.root), checkpoint="/nonexistent")})
    (materialization,) = result.asset_materializations_for_node(asset.op.name)
    metadata = materialization.metadata
    assert metadata["bytes"].value == 4 * GIB + 2148 and metadata["objects"].value == 7
    assert metadata["storage_now_usd_per_month"].value == pytest.approx(4 * 0.023, abs=1e-4)
    assert "raw/vehicle_data/" + HOUR in metadata["objects_per_partition"].value
    assert "| processed | STANDARD | 1 | 1,073,741,824 | $0.0230 |" in metadata["storage_now"].value
    assert schedule.cron_schedule == "0 6 * * *"

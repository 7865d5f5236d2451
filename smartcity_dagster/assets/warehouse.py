"""Warehouse tables (Redshift): each gold aggregate loaded per hour window from its Parquet in the lake."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
from dagster import AssetExecutionContext

from smartcity.duckdb_files import connect
from smartcity.settings import Settings
from smartcity_dagster.assets.raw import OWNERS
from smartcity_dagster.automation import hourly_eager
from smartcity_dagster.partitions import window_hours
from smartcity_dagster.resources.lake import LocalLake
from smartcity_dagster.resources.warehouse import SCHEMA, Warehouse

WAREHOUSE_POOL = "warehouse"  # one loader at a time: the DuckDB warehouse file has a single writer


def warehouse_key(model: str) -> dg.AssetKey:
    return dg.AssetKey(["warehouse", model])


def read_gold(files: list[str]) -> pa.Table | None:
    """The rows of these gold Parquet files (like Redshift's COPY from S3), or None when there are none."""
    if not files:
        return None
    with duckdb.connect() as db:
        db.execute("SET TimeZone = 'UTC'")
        query = "SELECT * FROM read_parquet(?, hive_partitioning = false) ORDER BY ALL"
        return db.execute(query, [files]).fetch_arrow_table()


def empty_gold(athena: Path, model: str) -> pa.Table | None:
    """No rows, with the gold model's columns: the table exists in the warehouse before its first event does."""
    if not athena.exists():
        return None
    with connect(athena, read_only=True) as db:
        return db.execute(f"SELECT * FROM gold.{model} LIMIT 0").fetch_arrow_table()


def build_warehouse(
    settings: Settings, partitions: dg.PartitionsDefinition, gold_keys: list[dg.AssetKey]
) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(
            key=warehouse_key(key.path[-1]),
            deps=[key],
            description=f"Warehouse table {SCHEMA}.{key.path[-1]}, loaded from the gold aggregate hour by hour.",
            group_name="warehouse",
            kinds={"redshift", "duckdb"},
            owners=OWNERS,
            automation_condition=hourly_eager(timedelta(days=settings.late_data_days)),
            partitions_def=partitions,
        )
        for key in gold_keys
    ]

    @dg.multi_asset(
        name="warehouse_tables",
        specs=specs,
        can_subset=True,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
    )
    def warehouse_tables(
        context: AssetExecutionContext, lake: LocalLake, warehouse: Warehouse
    ) -> Iterator[dg.MaterializeResult]:
        hours = window_hours(context)
        dates = sorted({hour.start.date() for hour in hours})
        start, end = hours[0].start, hours[-1].start + timedelta(hours=1)
        for key in sorted(context.selected_asset_keys):
            model = key.path[-1]
            listed = {h: f for h, f in lake.list_hours("gold", model, dates).items() if h in hours}
            rows = read_gold([file.path for files in listed.values() for file in files])
            if rows is None:
                rows = empty_gold(settings.paths.athena, model)
            loaded = warehouse.replace_window(model, rows, start, end)
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={"table": f"{SCHEMA}.{model}", "rows_loaded": loaded, "hours_with_data": len(listed),
                          "window": f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"},
            )  # fmt: skip

    return warehouse_tables

"""Warehouse tables (Redshift): each gold aggregate loaded per hour window from its Parquet in the lake."""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import pyarrow as pa
from dagster import AssetExecutionContext

from smartcity.lake_layout import GOLD
from smartcity.settings import Settings
from smartcity_dagster.assets.groups import WAREHOUSE
from smartcity_dagster.assets.keys import OWNERS, warehouse_key
from smartcity_dagster.automation import hourly_eager
from smartcity_dagster.partitions import window_hours
from smartcity_dagster.resources.lake import LakeStorage
from smartcity_dagster.resources.query_engine import QueryEngine
from smartcity_dagster.resources.warehouse import SCHEMA, GoldWindow, Warehouse

WAREHOUSE_POOL = "warehouse"  # one loader at a time: the DuckDB warehouse file has a single writer


def build_warehouse(
    settings: Settings, partitions: dg.PartitionsDefinition, gold_keys: list[dg.AssetKey]
) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(
            key=warehouse_key(key.path[-1]),
            deps=[key],
            description=f"Warehouse table {SCHEMA}.{key.path[-1]}, loaded from the gold aggregate hour by hour.",
            group_name=WAREHOUSE,
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
        context: AssetExecutionContext, lake: LakeStorage, athena: QueryEngine, warehouse: Warehouse
    ) -> Iterator[dg.MaterializeResult]:
        hours = window_hours(context)
        start, end = hours[0].start, hours[-1].start + timedelta(hours=1)
        for key in sorted(context.selected_asset_keys):
            model = key.path[-1]
            listed = lake.files_of(GOLD, model, hours)
            # the model's columns for a window without files, so the table exists from the start
            gold = GoldWindow(lake, [file for files in listed.values() for file in files],
                              lambda model=model: _schema(athena.empty_table(model)))  # fmt: skip
            loaded = warehouse.load_window(model, gold, start, end)
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={"table": f"{SCHEMA}.{model}", "rows_loaded": loaded, "hours_with_data": len(listed),
                          "window": f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"},
            )  # fmt: skip

    return warehouse_tables


def _schema(table: pa.Table | None) -> pa.Schema | None:
    return None if table is None else table.schema

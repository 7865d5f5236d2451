"""Gold aggregates (the "Athena" step): dbt models run by dagster-dbt, one hour window per run.

The models run on the profile's query engine (:mod:`smartcity_dagster.resources.query_engine`: DuckDB locally,
with the catalog's processed tables attached as ``glue``, the way Athena queries Glue tables). After
``dbt build`` (models and their tests, which Dagster shows as asset checks), each hour of each model is published
to ``gold/<model>/event_date=…/event_hour=…`` as Parquet, replacing the hour whole, and registered in the
catalog, where the warehouse load reads it.
"""

from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any

import dagster as dg
import yaml
from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DbtProject, dbt_assets

from smartcity.lake_layout import GOLD
from smartcity.settings import Settings
from smartcity_dagster.assets.catalog import CATALOG_POOL, partition_entries
from smartcity_dagster.assets.groups import GOLD as GOLD_GROUP
from smartcity_dagster.assets.keys import OWNERS, catalog_key, gold_key, processed_key
from smartcity_dagster.automation import hourly_eager
from smartcity_dagster.partitions import window_hours
from smartcity_dagster.resources.catalog import GlueCatalog
from smartcity_dagster.resources.dbt import DBT_PROJECT_DIR, GoldDbt
from smartcity_dagster.resources.lake import LakeStorage
from smartcity_dagster.resources.query_engine import QueryEngine
from smartcity_dagster.tables import PROCESSED_TABLES, QUARANTINE_TABLES, TableSchema

SOURCES_FILE = DBT_PROJECT_DIR / "models" / "sources.yml"
GOLD_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(hours=2))


ON_GLUE = "target.type in ('athena', 'trino')"
"""Athena and Trino read the Glue catalog itself (``awsdatacatalog.<database>.<zone>_<table>``); DuckDB reads it
attached as ``glue`` with a schema per zone."""


def _per_engine(on_glue: str, attached: str) -> str:
    return f"{{{{ '{on_glue}' if {ON_GLUE} else '{attached}' }}}}"


def source_tables(
    zone: str, tables: Mapping[str, TableSchema], key: Callable[[str], dg.AssetKey]
) -> list[dict[str, Any]]:
    """One dbt source table per stream, mapped to the Dagster asset ``key(stream)`` that produces it."""
    return [
        {
            "name": table.name,
            "identifier": _per_engine(f"{zone}_{table.name}", table.name),
            "description": table.description,
            "meta": {"dagster": {"asset_key": list(key(stream).path)}},
            "columns": [{"name": c.name, "description": c.comment, "data_type": c.type} for c in table.columns],
        }
        for stream, table in tables.items()
    ]


def render_sources() -> str:
    """dbt sources for the processed and quarantine tables, generated from the contracts (committed; a test keeps
    it in sync)."""
    document = {
        "version": 2,
        "sources": [
            {
                "name": "processed",
                "description": "Processed tables registered in the catalog (Glue).",
                "database": _per_engine("awsdatacatalog", "glue"),
                "schema": f"{{{{ target.schema if {ON_GLUE} else 'processed' }}}}",
                "tables": source_tables("processed", PROCESSED_TABLES, processed_key),
            },
            {
                "name": "quarantine",
                "description": "Quarantine tables in the catalog (Glue): rejected records with their reason.",
                "database": _per_engine("awsdatacatalog", "glue"),
                "schema": f"{{{{ target.schema if {ON_GLUE} else 'quarantine' }}}}",
                "tables": source_tables(
                    "quarantine", QUARANTINE_TABLES, lambda stream: catalog_key("quarantine", stream)
                ),
            },
        ],
    }
    header = "# Generated from smartcity/contracts.py by smartcity_dagster.assets.gold.render_sources; do not edit.\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=120)


class GoldTranslator(DagsterDbtTranslator):
    """Sources map to the processed assets; models become gold assets with automation and freshness."""

    def __init__(self, lookback: timedelta) -> None:
        super().__init__()
        self.lookback = lookback

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] != "model":
            return spec
        return spec.replace_attributes(
            key=gold_key(props["name"]),
            group_name=GOLD_GROUP,
            owners=OWNERS,
            automation_condition=hourly_eager(self.lookback),
            freshness_policy=GOLD_FRESHNESS,
        ).merge_attributes(kinds={"athena"})


def build_gold(settings: Settings, partitions: dg.PartitionsDefinition, project: DbtProject) -> dg.AssetsDefinition:
    lookback = timedelta(days=settings.late_data_days)

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        name="gold_aggregates",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        dagster_dbt_translator=GoldTranslator(lookback),
        pool=CATALOG_POOL,
    )
    def gold_aggregates(
        context: AssetExecutionContext, dbt: GoldDbt, athena: QueryEngine, lake: LakeStorage, catalog: GlueCatalog
    ) -> Iterator[Any]:
        hours = window_hours(context)
        events = dbt.build_window(context, hours)
        for key in sorted(context.selected_asset_keys):
            model = key.path[-1]
            columns = athena.publish_hours(model, hours, lake)
            table = TableSchema(GOLD, model, f"Gold aggregate {model} (dbt model).", tuple(columns))
            listed = lake.files_of(GOLD, model, hours)
            catalog.register_table(table, lake.location(GOLD, model), partition_entries(lake, listed), hours)
        yield from events

    return gold_aggregates

"""Dagster definitions of the smart-city platform, loaded through ``workspace.yaml``.

The flow, one asset group per step: Kafka topics and raw tables (external, landed by the stream) → catalog
(Glue tables) → processed tables (PySpark) → gold aggregates (dbt) → warehouse tables. The lake sensor drives
the first two steps per hour; declarative automation carries each changed hour on to the warehouse.
"""

from __future__ import annotations

import dagster as dg

from smartcity.settings import Settings, load_settings
from smartcity_dagster.assets.catalog import build_landed_catalog, catalog_key
from smartcity_dagster.assets.gold import build_gold, dbt_project, dbt_resource
from smartcity_dagster.assets.processed import build_processed, processed_key, spark_resource
from smartcity_dagster.assets.raw import LANDED_ZONES, kafka_topic_specs, landed_table_specs
from smartcity_dagster.assets.warehouse import build_warehouse
from smartcity_dagster.maintenance import build_maintenance
from smartcity_dagster.partitions import hourly_partitions
from smartcity_dagster.resources.catalog import DuckDbCatalog
from smartcity_dagster.resources.lake import LocalLake
from smartcity_dagster.resources.warehouse import warehouse_from_url
from smartcity_dagster.sensors import build_lake_sensor
from smartcity_dagster.watchdog import run_worker_watchdog


def resources(settings: Settings) -> dict[str, object]:
    """The local profile's resources; the aws profile swaps these for S3, Glue, Athena and Redshift ones."""
    return {
        "lake": LocalLake(root=settings.lake),
        "catalog": DuckDbCatalog(path=str(settings.paths.catalog)),
        "warehouse": warehouse_from_url(settings.warehouse),
        "pyspark": spark_resource(settings),
        "dbt": dbt_resource(dbt_project(settings)),
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions = hourly_partitions(settings)
    catalog = build_landed_catalog(settings, partitions)
    processed = build_processed(settings, partitions)
    gold = build_gold(settings, partitions)
    warehouse = build_warehouse(settings, partitions, sorted(gold.keys))
    jobs, schedules = build_maintenance(settings)
    ingest = dg.AssetSelection.assets(
        *[catalog_key(zone, stream) for zone in LANDED_ZONES for stream in settings.topics],
        *[processed_key(stream) for stream in settings.topics],
    )
    sensor = build_lake_sensor(settings, partitions, ingest)
    automation = dg.AutomationConditionSensorDefinition(
        "gold_and_warehouse_automation",
        target=dg.AssetSelection.groups("gold", "warehouse"),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Runs each gold and warehouse hour whose upstream hour changed (late data included).",
    )
    return dg.Definitions(
        assets=[*kafka_topic_specs(settings), *landed_table_specs(settings, partitions), catalog, processed,
                gold, warehouse],
        jobs=jobs,
        schedules=schedules,
        sensors=[sensor, automation, run_worker_watchdog],
        resources=resources(settings),
    )  # fmt: skip


defs = build_definitions(load_settings())

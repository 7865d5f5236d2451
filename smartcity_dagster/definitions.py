"""Dagster definitions of the smart-city platform, loaded through ``workspace.yaml``.

The flow, one asset group per step: Kafka topics, raw and quarantine tables (external, landed by the stream) →
catalog (Glue tables) → processed tables (PySpark) → gold aggregates (dbt) → warehouse tables. The lake sensor
runs every step for each hour with new data, in one run; declarative automation carries an hour changed any other
way (by hand, or after a failed run) on to the warehouse.
"""

from __future__ import annotations

import dagster as dg

from smartcity.errors import ConfigError
from smartcity.settings import Settings, load_settings
from smartcity_dagster.assets.catalog import build_landed_catalog
from smartcity_dagster.assets.gold import build_gold, dbt_project, dbt_resource
from smartcity_dagster.assets.processed import build_processed, spark_resource
from smartcity_dagster.assets.raw import kafka_topic_specs, landed_table_specs
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
    if settings.lake_on_s3:
        raise ConfigError(
            f"SMARTCITY_LAKE_URI={settings.lake} is on S3: the stream lands an S3 lake, but the assets' S3 lake, "
            "Glue, Athena and Redshift resources (the aws profile) are not built yet. Use a local lake path."
        )
    return {
        "lake": LocalLake(root=settings.lake),
        "catalog": DuckDbCatalog(path=str(settings.paths.catalog)),
        "warehouse": warehouse_from_url(settings.warehouse),
        "pyspark": spark_resource(settings),
        "dbt": dbt_resource(dbt_project(settings)),
    }


STEPS = ("catalog", "processed", "gold", "warehouse")  # the asset groups Dagster computes, in flow order


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions = hourly_partitions(settings)
    catalog = build_landed_catalog(settings, partitions)
    processed = build_processed(settings, partitions)
    gold = build_gold(settings, partitions)
    warehouse = build_warehouse(settings, partitions, sorted(gold.keys))
    jobs, schedules = build_maintenance(settings)
    # New data goes catalog → processed → gold → warehouse in one run: no automation tick, no second run launch.
    sensor = build_lake_sensor(settings, partitions, dg.AssetSelection.groups(*STEPS))
    automation = dg.AutomationConditionSensorDefinition(
        "gold_and_warehouse_automation",
        target=dg.AssetSelection.groups("gold", "warehouse"),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Runs each gold and warehouse hour whose upstream hour changed outside the lake sensor's runs "
        "(a processed hour run by hand, or a gold run that failed).",
    )
    return dg.Definitions(
        assets=[*kafka_topic_specs(settings), *landed_table_specs(settings, partitions), catalog, processed,
                gold, warehouse],
        jobs=jobs,
        schedules=schedules,
        sensors=[sensor, automation, run_worker_watchdog],
        resources=resources(settings),
        # The steps of a run are a chain sharing single-writer pools, so they never run side by side: a process
        # per step (the default) only added a code load of several seconds to each step of every run.
        executor=dg.in_process_executor,
    )  # fmt: skip


defs = build_definitions(load_settings())

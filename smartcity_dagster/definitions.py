"""Dagster definitions of the smart-city platform, loaded through ``workspace.yaml``.

The flow, one asset group per step: Kafka topics, raw and quarantine tables (external, landed by the stream) →
catalog (Glue tables) → processed tables (PySpark) → gold aggregates (dbt) → warehouse tables. The lake sensor
runs every step for each hour with new data, in one run; declarative automation carries an hour changed any other
way (by hand, or after a failed run) on to the warehouse.

One code location for every profile: the assets are written against interfaces (the lake, the catalog, the
query engine, the warehouse, dbt and Spark), and :data:`RESOURCES_BY_PROFILE` picks their implementations for
``SMARTCITY_PROFILE``, the way Dagster's reference projects pick resources per deployment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from smartcity.errors import ConfigError
from smartcity.settings import Settings, load_settings
from smartcity_aws.access import names
from smartcity_dagster.assets.catalog import build_landed_catalog
from smartcity_dagster.assets.cost import build_lake_cost
from smartcity_dagster.assets.gold import build_gold
from smartcity_dagster.assets.groups import GOLD, STEPS, WAREHOUSE
from smartcity_dagster.assets.processed import build_processed
from smartcity_dagster.assets.raw import kafka_topic_specs, landed_table_specs
from smartcity_dagster.assets.warehouse import build_warehouse
from smartcity_dagster.maintenance import build_maintenance
from smartcity_dagster.partitions import hourly_partitions
from smartcity_dagster.resources.athena import AthenaQueryEngine
from smartcity_dagster.resources.catalog import DuckDbCatalog
from smartcity_dagster.resources.dbt import dbt_project, gold_dbt, loadable_project
from smartcity_dagster.resources.glue import GlueDataCatalog
from smartcity_dagster.resources.lake import LocalLake
from smartcity_dagster.resources.query_engine import DuckDbQueryEngine
from smartcity_dagster.resources.redshift import warehouse_of
from smartcity_dagster.resources.s3_lake import S3Lake
from smartcity_dagster.resources.spark import ProcessingSpark
from smartcity_dagster.resources.warehouse import warehouse_from_url
from smartcity_dagster.sensors import build_lake_sensor
from smartcity_dagster.spark_settings import RUNTIME_SETTINGS, driver_settings
from smartcity_dagster.watchdog import run_worker_watchdog
from spark_streaming.paths import StreamPaths

RESOURCE_KEYS = ("lake", "catalog", "athena", "warehouse", "pyspark", "dbt")
"""What every profile provides, each behind the interface the assets are typed against."""


def local_resources(settings: Settings) -> dict[str, Any]:
    """The embedded profile: a lake directory, DuckDB for the catalog and Athena, DuckDB or PostgreSQL for the
    warehouse, Spark on this machine (the platform's Spark Connect server when it runs)."""
    if settings.lake_on_s3:
        raise ConfigError(
            f"SMARTCITY_LAKE_URI={settings.lake} is on S3: the local profile's assets read a lake directory. "
            "An S3 lake is the aws profile's (SMARTCITY_PROFILE=aws)."
        )
    return {
        "lake": LocalLake(root=settings.lake, checkpoint=str(StreamPaths.of(settings).checkpoint)),
        "catalog": DuckDbCatalog(path=str(settings.paths.catalog)),
        "athena": DuckDbQueryEngine(path=str(settings.paths.athena)),
        "warehouse": warehouse_from_url(settings.warehouse),
        "pyspark": processing_spark(settings),
        "dbt": gold_dbt(settings, dbt_project(settings), target="local"),
    }


def aws_resources(settings: Settings) -> dict[str, Any]:
    """The aws profile: the lake on S3, the AWS Glue Data Catalog, Spark through S3A, the gold models on Athena (or
    the Trino at SMARTCITY_TRINO_URL, as on the test bed)."""
    aws_names = names(settings)
    return {
        "lake": S3Lake(root=settings.lake, s3=S3Resource(region_name=settings.aws_region,
                                                         endpoint_url=settings.s3_endpoint_url),
                       kms_key_id=settings.s3_kms_key_id, closed_after_days=settings.late_data_days),
        "catalog": GlueDataCatalog(database=aws_names["database"], region=settings.aws_region,
                                   partitions_start=f"{settings.partitions_start:%Y-%m-%d}"),
        "athena": AthenaQueryEngine(database=aws_names["database"], region=settings.aws_region,
                                    work_group=aws_names["workgroup"], results_uri=settings.athena_results,
                                    trino_url=settings.trino_url),
        "warehouse": warehouse_of(settings),
        "pyspark": processing_spark(settings),
        "dbt": gold_dbt(settings, dbt_project(settings), target="aws"),
    }  # fmt: skip


def processing_spark(settings: Settings) -> ProcessingSpark:
    """The processing step's Spark: a cluster's Spark Connect server when configured, else the platform's when it
    runs, else a local session."""
    return ProcessingSpark(
        local_config=driver_settings(settings, "smartcity-processed"),
        connect_config=RUNTIME_SETTINGS,
        server_var_dir=str(settings.paths.root),
        server_port=settings.spark_connect_port,
        on_cluster=settings.spark_connect_url is not None,
    )


RESOURCES_BY_PROFILE: Mapping[str, Callable[[Settings], dict[str, Any]]] = {
    "local": local_resources,
    "aws": aws_resources,
}


def build_definitions(settings: Settings, resources: Mapping[str, Any] | None = None) -> dg.Definitions:
    """The definitions for ``settings``, with the profile's resources unless ``resources`` are given."""
    partitions = hourly_partitions(settings)
    gold = build_gold(settings, partitions, loadable_project(settings))
    jobs, schedules = build_maintenance(settings)
    lake_cost, cost_job, cost_schedule = build_lake_cost(settings)
    # New data goes catalog → processed → gold → warehouse in one run: no automation tick, no second run launch.
    sensor = build_lake_sensor(settings, partitions, dg.AssetSelection.groups(*STEPS))
    automation = dg.AutomationConditionSensorDefinition(
        "gold_and_warehouse_automation",
        target=dg.AssetSelection.groups(GOLD, WAREHOUSE),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Runs each gold and warehouse hour whose upstream hour changed outside the lake sensor's runs "
        "(a processed hour run by hand, or a gold run that failed).",
    )
    return dg.Definitions(
        assets=[
            *kafka_topic_specs(settings),
            *landed_table_specs(settings, partitions),
            build_landed_catalog(settings, partitions),
            build_processed(settings, partitions),
            gold,
            build_warehouse(settings, partitions, sorted(gold.keys)),
            lake_cost,
        ],
        jobs=[*jobs, cost_job],
        schedules=[*schedules, cost_schedule],
        sensors=[sensor, automation, run_worker_watchdog],
        resources=dict(resources) if resources is not None else RESOURCES_BY_PROFILE[settings.profile](settings),
        # The steps of a run are a chain sharing single-writer pools, so they never run side by side: a process
        # per step (the default) only added a code load of several seconds to each step of every run.
        executor=dg.in_process_executor,
    )


defs = build_definitions(load_settings())

"""Processed tables (the Glue ETL step): PySpark per hour window, adding new stream batches (or rebuilding).

Checks run in DuckDB over the published files: every distinct raw event is processed exactly once
(reconciliation), ``event_id`` is unique, and every value is within its contract. All are blocking, so a
bad hour never reaches the gold aggregates.
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pydantic
from dagster import AssetExecutionContext
from dagster_pyspark import LazyPySparkResource

from smartcity.settings import Settings
from smartcity_dagster.assets.catalog import CATALOG_POOL, catalog_key, partition_entries
from smartcity_dagster.assets.raw import OWNERS
from smartcity_dagster.partitions import Hour, window_hours
from smartcity_dagster.processing import process_hours
from smartcity_dagster.quality import duplicate_event_ids, range_violations, reconcile
from smartcity_dagster.resources.catalog import GlueCatalog
from smartcity_dagster.resources.lake import LakeFile, LocalLake
from smartcity_dagster.spark_connect import RUNTIME_SETTINGS, driver_settings, remote_url
from smartcity_dagster.tables import PROCESSED_TABLES

RECONCILES = "reconciles_with_raw"
UNIQUE = "event_id_unique"
IN_RANGE = "values_within_contract"


def processed_key(stream: str) -> dg.AssetKey:
    return dg.AssetKey(["processed", stream])


class ProcessingSpark(LazyPySparkResource):
    """The processing step's Spark session: a client of the platform's Spark Connect server when one runs
    (``spark.remote`` in the config), else a local session started on first use."""

    @property
    def kind(self) -> str:
        return "Spark Connect (the platform's server)" if "spark.remote" in self.spark_config else "local"

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._spark_session is not None and "spark.remote" in self.spark_config:
            self._spark_session.stop()  # frees the session on the server now, not after its idle timeout


def spark_resource(settings: Settings) -> ProcessingSpark:
    """Connect to the platform's warm Spark when it runs; otherwise a local session, loopback only."""
    if (url := remote_url(settings)) is not None:
        return ProcessingSpark(spark_config={"spark.remote": url, **RUNTIME_SETTINGS})
    return ProcessingSpark(spark_config=driver_settings(settings, "smartcity-processed"))


def _check_specs(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(RECONCILES, asset=key, blocking=True,
                          description="Per hour: processed rows = distinct raw events; raw = processed + duplicates."),
        dg.AssetCheckSpec(UNIQUE, asset=key, blocking=True, description="No event_id appears twice."),
        dg.AssetCheckSpec(IN_RANGE, asset=key, blocking=True,
                          description="Every value is within its contract's range and allowed values."),
    ]  # fmt: skip


class ProcessingConfig(dg.Config):
    rebuild: bool = pydantic.Field(
        False, description="Rebuild each hour from all its raw files instead of adding only the new stream batches."
    )


def _paths(listed: dict[Hour, list[LakeFile]]) -> list[str]:
    return [file.path for files in listed.values() for file in files]


def build_processed(settings: Settings, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(
            key=processed_key(stream),
            deps=[catalog_key("raw", stream)],
            description=PROCESSED_TABLES[stream].description,
            group_name="processed",
            kinds={"pyspark", "parquet", "glue"},
            owners=OWNERS,
            partitions_def=partitions,
        )
        for stream in settings.topics
    ]

    @dg.multi_asset(
        name="processed_tables",
        specs=specs,
        check_specs=[check for spec in specs for check in _check_specs(spec.key)],
        can_subset=True,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=CATALOG_POOL,
    )
    def processed_tables(
        context: AssetExecutionContext,
        config: ProcessingConfig,
        pyspark: ProcessingSpark,
        lake: LocalLake,
        catalog: GlueCatalog,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        hours = window_hours(context)
        dates = sorted({hour.start.date() for hour in hours})
        for key in sorted(context.selected_asset_keys):
            stream, topic = key.path[-1], settings.topics[key.path[-1]]
            raw_listed = {h: f for h, f in lake.list_hours("raw", topic, dates).items() if h in hours}
            inputs = {hour: [Path(file.path) for file in files] for hour, files in raw_listed.items()}
            outcome = process_hours(
                lambda: pyspark.spark_session, Path(lake.root), topic, stream, hours, inputs, config.rebuild
            )
            location = lake.location("processed", stream)
            listed = {h: f for h, f in lake.list_hours("processed", stream, dates).items() if h in hours}
            catalog.register_table(PROCESSED_TABLES[stream], location, partition_entries(lake, location, listed), hours)
            yield from _results(context, key, stream, raw_listed, listed, outcome, pyspark.kind)

    return processed_tables


def _results(
    context: AssetExecutionContext,
    key: dg.AssetKey,
    stream: str,
    raw_listed: dict[Hour, list[LakeFile]],
    listed: dict[Hour, list[LakeFile]],
    outcome: dict[Hour, str],
    spark_kind: str,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    per_hour = {hour: reconcile(_paths({hour: raw_listed.get(hour, [])}), _paths({hour: listed.get(hour, [])}))
                for hour in sorted(raw_listed.keys() | listed.keys())}  # fmt: skip
    unbalanced = {hour.key: tuple(r) for hour, r in per_hour.items() if not r.balanced}
    duplicates = duplicate_event_ids(_paths(listed))
    violations = range_violations(stream, _paths(listed))
    context.log.info(
        f"{stream}: {len(listed)} hour(s) written, {sum(r.processed_rows for r in per_hour.values())} rows"
    )
    yield dg.MaterializeResult(
        asset_key=key,
        metadata={
            "table": f"processed.{stream}",
            "hours_with_data": len(listed),
            "raw_rows": sum(r.raw_rows for r in per_hour.values()),
            "rows": sum(r.processed_rows for r in per_hour.values()),
            "duplicates_removed": sum(r.duplicates_removed for r in per_hour.values()),
            "files": sum(len(files) for files in listed.values()),
            "spark_session": spark_kind,
            **{
                f"hours_{what}": sum(1 for done in outcome.values() if done == what)
                for what in ("appended", "rebuilt", "removed")
            },
        },
    )
    yield dg.AssetCheckResult(
        asset_key=key, check_name=RECONCILES, passed=not unbalanced,
        description=f"unbalanced hours (raw rows, raw distinct ids, processed rows): {unbalanced}" if unbalanced
        else "every distinct raw event is processed exactly once",
        metadata={"hours_checked": len(per_hour)},
    )  # fmt: skip
    yield dg.AssetCheckResult(
        asset_key=key, check_name=UNIQUE, passed=duplicates == 0, metadata={"duplicate_rows": duplicates}
    )
    yield dg.AssetCheckResult(
        asset_key=key, check_name=IN_RANGE, passed=not violations,
        description=f"rows out of contract by field: {violations}" if violations else "all values within contract",
        metadata={"violating_fields": len(violations)},
    )  # fmt: skip

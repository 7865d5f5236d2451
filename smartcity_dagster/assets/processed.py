"""Processed tables (the Glue ETL step): PySpark per hour window, adding new stream batches (or rebuilding).

Checks run in DuckDB over the published files: every distinct raw event is processed exactly once
(reconciliation), ``event_id`` is unique, and every value is within its contract. All are blocking, so a
bad hour never reaches the gold aggregates.
"""

from collections import Counter
from collections.abc import Iterator

import dagster as dg
import pydantic
from dagster import AssetExecutionContext

from smartcity.lake_layout import PROCESSED, RAW, Hour
from smartcity.settings import Settings
from smartcity_dagster.assets.catalog import CATALOG_POOL, partition_entries
from smartcity_dagster.assets.keys import OWNERS, catalog_key, processed_key
from smartcity_dagster.partitions import window_hours
from smartcity_dagster.processing import process_hours
from smartcity_dagster.quality import Reconciliation, duplicate_event_ids, range_violations, reconcile
from smartcity_dagster.resources.catalog import GlueCatalog
from smartcity_dagster.resources.lake import LakeFile, LakeStorage
from smartcity_dagster.resources.spark import ProcessingSpark
from smartcity_dagster.tables import PROCESSED_TABLES

RECONCILES = "reconciles_with_raw"
UNIQUE = "event_id_unique"
IN_RANGE = "values_within_contract"


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


def build_processed(settings: Settings, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(
            key=processed_key(stream),
            deps=[catalog_key("raw", stream)],
            description=PROCESSED_TABLES[stream].description,
            group_name=PROCESSED,
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
        lake: LakeStorage,
        catalog: GlueCatalog,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        hours = window_hours(context)
        for key in sorted(context.selected_asset_keys):
            stream, topic = key.path[-1], settings.topics[key.path[-1]]
            raw = lake.files_of(RAW, topic, hours)
            outcome = process_hours(lambda: pyspark.spark_session, lake, topic, stream, hours, raw, config.rebuild)
            listed = lake.files_of(PROCESSED, stream, hours)
            location = lake.location(PROCESSED, stream)
            catalog.register_table(PROCESSED_TABLES[stream], location, partition_entries(lake, listed), hours)
            with lake.duckdb() as db:
                per_hour = {hour: reconcile(db, _uris(lake, raw.get(hour, [])), _uris(lake, listed.get(hour, [])))
                            for hour in sorted(raw.keys() | listed.keys())}  # fmt: skip
                written = [file for files in listed.values() for file in files]
                checks = list(_checks(key, per_hour, duplicate_event_ids(db, _uris(lake, written)),
                                      range_violations(db, stream, _uris(lake, written))))  # fmt: skip
            rows, done = sum(r.processed_rows for r in per_hour.values()), Counter(outcome.values())
            context.log.info(f"{stream}: {len(listed)} hour(s) written, {rows} rows")
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "table": f"processed.{stream}",
                    "hours_with_data": len(listed),
                    "raw_rows": sum(r.raw_rows for r in per_hour.values()),
                    "rows": rows,
                    "duplicates_removed": sum(r.duplicates_removed for r in per_hour.values()),
                    "files": len(written),
                    "spark_session": pyspark.kind,
                    **{f"hours_{what}": done[what] for what in ("appended", "rebuilt", "removed")},
                },
            )
            yield from checks

    return processed_tables


def _uris(lake: LakeStorage, files: list[LakeFile]) -> list[str]:
    return [lake.uri(file.key) for file in files]


def _checks(
    key: dg.AssetKey, per_hour: dict[Hour, Reconciliation], duplicates: int, violations: dict[str, int]
) -> Iterator[dg.AssetCheckResult]:
    unbalanced = {hour.key: tuple(r) for hour, r in per_hour.items() if not r.balanced}
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

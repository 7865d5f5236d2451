"""Glue tables for the raw and quarantine zones: register each table and its hour partitions, check schema drift."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetExecutionContext

from smartcity.settings import Settings
from smartcity_dagster.assets.raw import LANDED_ZONES, OWNERS
from smartcity_dagster.partitions import EVENT_PARTITION, Hour, window_hours
from smartcity_dagster.resources.catalog import GlueCatalog, PartitionEntry, SchemaDriftError
from smartcity_dagster.resources.lake import LakeFile, LakeStorage
from smartcity_dagster.tables import QUARANTINE_TABLES, RAW_TABLES, TableSchema

LANDED_TABLES = {"raw": RAW_TABLES, "quarantine": QUARANTINE_TABLES}  # zone → stream → table the stream lands
CATALOG_DESCRIPTIONS = {
    "raw": "columns from the data contract, one partition per event hour.",
    "quarantine": "rejected records with their reason and payload, one partition per ingest hour.",
}

SCHEMA_CHECK = "matches_contract"
CATALOG_POOL = "lake_catalog"  # the DuckDB catalog has one writer at a time: its steps queue, not collide


def catalog_key(database: str, table: str) -> dg.AssetKey:
    return dg.AssetKey(["catalog", database, table])


def glue_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_floating(arrow_type):
        return "double"
    if pa.types.is_int64(arrow_type):
        return "bigint"
    if pa.types.is_integer(arrow_type):
        return "int"
    return str(arrow_type)


def file_schema_problems(table: TableSchema, files: list[str]) -> list[str]:
    """Where the files' columns disagree with the table's contract-derived schema, naming each column."""
    problems = []
    for file in files:
        schema = pq.read_schema(file)
        found = {field.name: glue_type(field.type) for field in schema}
        for column in table.columns:
            if column.name not in found:
                if column.required:
                    problems.append(f"column '{column.name}' is missing from {Path(file).name}")
            elif found[column.name] != column.type:
                problems.append(
                    f"column '{column.name}' is {found[column.name]} in {Path(file).name}, "
                    f"the contract says {column.type}"
                )
    return sorted(set(problems))


def partition_entries(
    lake: LakeStorage, location: str, listed: dict[Hour, list[LakeFile]], keys: tuple[str, str] = EVENT_PARTITION
) -> list[PartitionEntry]:
    return [
        PartitionEntry(
            hour=hour,
            location=f"{location}/{hour.directory(keys)}",
            files=len(files),
            rows=sum(lake.row_count(file) for file in files),
            bytes=sum(file.size for file in files),
        )
        for hour, files in sorted(listed.items())
    ]


def build_landed_catalog(settings: Settings, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(
            key=catalog_key(zone, stream),
            deps=[LANDED_ZONES[zone](stream)],
            description=f"Glue table {zone}.{stream}: {CATALOG_DESCRIPTIONS[zone]}",
            group_name="catalog",
            kinds={"glue", "duckdb"},
            owners=OWNERS,
            partitions_def=partitions,
        )
        for zone in LANDED_ZONES
        for stream in settings.topics
    ]
    checks = [
        dg.AssetCheckSpec(
            SCHEMA_CHECK,
            asset=spec.key,
            blocking=True,
            description="The files' columns and types match the table's schema; a change names the column.",
        )
        for spec in specs
    ]

    @dg.multi_asset(
        name="landed_catalog",
        specs=specs,
        check_specs=checks,
        can_subset=True,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=CATALOG_POOL,
    )
    def landed_catalog(
        context: AssetExecutionContext, lake: LakeStorage, catalog: GlueCatalog
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        hours = window_hours(context)
        dates = sorted({hour.start.date() for hour in hours})
        for key in sorted(context.selected_asset_keys):
            zone, stream = key.path[1:]
            table, location = LANDED_TABLES[zone][stream], lake.location(zone, settings.topics[stream])
            listed = {
                h: files for h, files in lake.list_hours(zone, settings.topics[stream], dates).items() if h in hours
            }
            entries = partition_entries(lake, location, listed, table.partition_keys)
            problems = file_schema_problems(table, [files[-1].path for files in listed.values()])
            added: list[str] = []
            if not problems:
                try:
                    added = catalog.register_table(table, location, entries, hours)
                except SchemaDriftError as error:
                    problems = [str(error)]
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "table": f"{zone}.{stream}",
                    "location": location,
                    "partitions": len(entries),
                    "rows": sum(entry.rows for entry in entries),
                    "files": sum(entry.files for entry in entries),
                    "added_columns": ", ".join(added) or "none",
                    "registered": not problems,
                },
            )
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=SCHEMA_CHECK,
                passed=not problems,
                severity=dg.AssetCheckSeverity.ERROR,
                description="; ".join(problems) or "columns and types match the contract",
                metadata={"problems": len(problems)},
            )

    return landed_catalog

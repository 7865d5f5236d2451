"""Glue tables for the raw and quarantine zones: register each table and its hour partitions, check schema drift."""

import posixpath
from collections.abc import Iterator

import dagster as dg
import pyarrow as pa
from dagster import AssetExecutionContext

from smartcity.lake_layout import QUARANTINE, RAW, Hour
from smartcity.settings import Settings
from smartcity_dagster.assets.groups import CATALOG
from smartcity_dagster.assets.keys import LANDED_KEYS, OWNERS, catalog_key
from smartcity_dagster.partitions import window_hours
from smartcity_dagster.resources.catalog import GlueCatalog, PartitionEntry, SchemaDriftError
from smartcity_dagster.resources.lake import LakeFile, LakeStorage
from smartcity_dagster.tables import QUARANTINE_TABLES, RAW_TABLES, TableSchema

LANDED_TABLES = {RAW: RAW_TABLES, QUARANTINE: QUARANTINE_TABLES}  # zone → stream → table the stream lands
CATALOG_DESCRIPTIONS = {
    RAW: "columns from the data contract, one partition per event hour.",
    QUARANTINE: "rejected records with their reason and payload, one partition per ingest hour.",
}

SCHEMA_CHECK = "matches_contract"
CATALOG_POOL = "lake_catalog"  # the DuckDB catalog has one writer at a time: its steps queue, not collide


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


def file_schema_problems(table: TableSchema, lake: LakeStorage, files: list[LakeFile]) -> list[str]:
    """Where the files' columns disagree with the table's contract-derived schema, naming each column."""
    problems = []
    for file in files:
        found = {field.name: glue_type(field.type) for field in lake.read_schema(file)}
        for column in table.columns:
            if column.name not in found:
                if column.required:
                    problems.append(f"column '{column.name}' is missing from {file.name}")
            elif found[column.name] != column.type:
                problems.append(
                    f"column '{column.name}' is {found[column.name]} in {file.name}, the contract says {column.type}"
                )
    return sorted(set(problems))


def partition_entries(lake: LakeStorage, listed: dict[Hour, list[LakeFile]]) -> list[PartitionEntry]:
    """Catalog partitions for the listed hours: where each hour's files are, how many, rows and bytes."""
    return [
        PartitionEntry(
            hour=hour,
            location=lake.uri(posixpath.dirname(files[0].key)),
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
            deps=[LANDED_KEYS[zone](stream)],
            description=f"Glue table {zone}.{stream}: {CATALOG_DESCRIPTIONS[zone]}",
            group_name=CATALOG,
            kinds={"glue", "duckdb"},
            owners=OWNERS,
            partitions_def=partitions,
        )
        for zone in LANDED_KEYS
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
        for key in sorted(context.selected_asset_keys):
            zone, stream = key.path[1:]
            table, topic = LANDED_TABLES[zone][stream], settings.topics[stream]
            listed = lake.files_of(zone, topic, hours)
            entries = partition_entries(lake, listed)
            problems = file_schema_problems(table, lake, [files[-1] for files in listed.values()])
            added: list[str] = []
            if not problems:
                try:
                    added = catalog.register_table(table, lake.location(zone, topic), entries, hours)
                except SchemaDriftError as error:
                    problems = [str(error)]
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "table": f"{zone}.{stream}",
                    "location": lake.location(zone, topic),
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

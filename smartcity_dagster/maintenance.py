"""Maintenance jobs: retention (lake partitions, catalog entries and warehouse rows) and small-file compaction.

Retention defaults to 365 days, mirroring the S3 lifecycle rule of the aws profile; compaction rewrites the
stream's per-batch files of each raw and quarantine hour into one file (readers see the old hour or the new one).
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from dagster import OpExecutionContext

from smartcity.atomic import replace_directory
from smartcity.settings import Settings
from smartcity_dagster.assets.catalog import CATALOG_POOL
from smartcity_dagster.partitions import Hour
from smartcity_dagster.resources.catalog import GlueCatalog
from smartcity_dagster.resources.lake import LocalLake
from smartcity_dagster.resources.warehouse import Warehouse
from spark_streaming.control import compact


def expired_directories(lake_root: Path, cutoff: Hour) -> list[Path]:
    """Hour directories of the raw, processed and gold zones, and quarantine days, older than ``cutoff``."""
    expired = [
        hour_dir
        for zone in ("raw", "processed", "gold")
        for hour_dir in sorted(lake_root.glob(f"{zone}/*/event_date=*/event_hour=*"))
        if Hour.of_directory(
            hour_dir.parent.name.removeprefix("event_date="), hour_dir.name.removeprefix("event_hour=")
        )
        < cutoff
    ]
    expired += [
        day_dir
        for day_dir in sorted(lake_root.glob("quarantine/*/ingest_date=*"))
        if day_dir.name.removeprefix("ingest_date=") < cutoff.date
    ]
    return expired


def build_maintenance(settings: Settings) -> tuple[list[dg.JobDefinition], list[dg.ScheduleDefinition]]:
    @dg.op(
        description=f"Delete lake partitions, catalog entries and warehouse rows older than "
        f"{settings.retention_days} days."
    )
    def apply_retention(
        context: OpExecutionContext, lake: LocalLake, catalog: GlueCatalog, warehouse: Warehouse
    ) -> None:
        cutoff = Hour(
            datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=settings.retention_days)
        )
        directories = expired_directories(Path(lake.root), cutoff)
        for directory in directories:
            replace_directory(None, directory)
        partitions = catalog.drop_partitions_before(cutoff)
        rows = {table: warehouse.delete_before(table, cutoff.start) for table in warehouse.tables()}
        context.log.info(
            f"retention before {cutoff.key}: {len(directories)} lake directories, {partitions} catalog partitions, "
            f"warehouse rows {rows}"
        )

    # In the catalog's pool: never while a catalog or processing step reads the raw files it would swap away.
    @dg.op(description="Compact each raw and quarantine hour's committed batch files into one.", pool=CATALOG_POOL)
    def compact_lake_hours(context: OpExecutionContext) -> None:
        compacted = compact(settings)
        context.log.info(f"compacted {len(compacted)} hour(s)")

    @dg.job(description="Retention: drop what is older than the configured policy everywhere it is stored.")
    def retention_job() -> None:
        apply_retention()

    @dg.job(description="Compaction of the raw and quarantine zones' small files, hour by hour.")
    def compaction_job() -> None:
        compact_lake_hours()

    schedules = [
        dg.ScheduleDefinition(job=retention_job, cron_schedule="30 3 * * *",
                              default_status=dg.DefaultScheduleStatus.RUNNING),
        dg.ScheduleDefinition(job=compaction_job, cron_schedule="15 * * * *",
                              default_status=dg.DefaultScheduleStatus.RUNNING),
    ]  # fmt: skip
    return [retention_job, compaction_job], schedules

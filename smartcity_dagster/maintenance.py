"""Maintenance jobs: retention (lake partitions, catalog entries and warehouse rows), small-file compaction, and
the retention of Dagster's own run history.

Retention defaults to 365 days, mirroring the S3 lifecycle rule of the aws profile; compaction rewrites the
stream's per-batch files of each raw and quarantine hour into one file (readers see the old hour or the new one).
"""

from datetime import UTC, datetime, timedelta
from itertools import groupby

import dagster as dg
from dagster import OpExecutionContext

from smartcity.lake_layout import Hour
from smartcity.settings import Settings
from smartcity_dagster.assets.catalog import CATALOG_POOL, LANDED_TABLES, partition_entries
from smartcity_dagster.resources.catalog import GlueCatalog
from smartcity_dagster.resources.lake import LakeStorage
from smartcity_dagster.resources.warehouse import Warehouse
from smartcity_dagster.run_history import purge_runs_before


def build_maintenance(settings: Settings) -> tuple[list[dg.JobDefinition], list[dg.ScheduleDefinition]]:
    @dg.op(
        description=f"Delete lake partitions, catalog entries and warehouse rows older than "
        f"{settings.retention_days} days."
    )
    def apply_retention(
        context: OpExecutionContext, lake: LakeStorage, catalog: GlueCatalog, warehouse: Warehouse
    ) -> None:
        cutoff = Hour(
            datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=settings.retention_days)
        )
        hours = lake.delete_before(cutoff)
        partitions = catalog.drop_partitions_before(cutoff)
        rows = {table: warehouse.delete_before(table, cutoff.start) for table in warehouse.tables()}
        context.log.info(
            f"retention before {cutoff.key}: {hours} lake hours, {partitions} catalog partitions, warehouse rows {rows}"
        )

    # In the catalog's pool: never while a catalog or processing step reads the raw files it would swap away.
    @dg.op(
        description="Compact each raw and quarantine hour's committed batch files into one, and register the "
        "compacted hours in the catalog again.",
        pool=CATALOG_POOL,
    )
    def compact_lake_hours(context: OpExecutionContext, lake: LakeStorage, catalog: GlueCatalog) -> None:
        compacted = lake.compact_landed_hours()
        streams = {topic: stream for stream, topic in settings.topics.items()}
        for (zone, topic), group in groupby(sorted(compacted), key=lambda compacted: compacted[:2]):
            hours = [compacted_hour.hour for compacted_hour in group]
            entries = partition_entries(lake, lake.files_of(zone, topic, hours))
            catalog.register_table(LANDED_TABLES[zone][streams[topic]], lake.location(zone, topic), entries, hours)
        context.log.info(f"compacted {len(compacted)} hour(s)")

    @dg.op(description=f"Delete finished Dagster runs older than {settings.run_history_days} days, with their "
           "event logs and captured output.")  # fmt: skip
    def purge_run_history(context: OpExecutionContext) -> None:
        cutoff = datetime.now(UTC) - timedelta(days=settings.run_history_days)
        purged = purge_runs_before(context.instance, cutoff)
        context.log.info(f"run history before {cutoff:%Y-%m-%d %H:%M} UTC: {purged.runs} run(s) deleted, "
                         f"{purged.bytes_freed / 1e6:.1f} MB freed")  # fmt: skip

    @dg.job(description="Retention: drop what is older than the configured policy everywhere it is stored.")
    def retention_job() -> None:
        apply_retention()

    @dg.job(description="Run history retention: the instance keeps finished runs for SMARTCITY_RUN_HISTORY_DAYS.")
    def run_history_job() -> None:
        purge_run_history()

    @dg.job(description="Compaction of the raw and quarantine zones' small files, hour by hour.")
    def compaction_job() -> None:
        compact_lake_hours()

    schedules = [
        dg.ScheduleDefinition(job=retention_job, cron_schedule="30 3 * * *",
                              default_status=dg.DefaultScheduleStatus.RUNNING),
        dg.ScheduleDefinition(job=compaction_job, cron_schedule="15 * * * *",
                              default_status=dg.DefaultScheduleStatus.RUNNING),
        dg.ScheduleDefinition(job=run_history_job, cron_schedule="45 * * * *",
                              default_status=dg.DefaultScheduleStatus.RUNNING),
    ]  # fmt: skip
    return [retention_job, compaction_job, run_history_job], schedules

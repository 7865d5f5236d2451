"""The lake sensor: notices newly committed raw and quarantined data per hour and requests the partitions it affects.

Each tick lists only the recent date prefixes of every raw and quarantine table (``late_data_days`` back), and
compares the stream batch ids found per hour with the JSON cursor (table and hour → newest batch seen). Because
the stream publishes batches in order and names files after their batch, "a batch id above the cursor" means
"new data", while a compaction (which rewrites files of batches already seen) does not. Late data for an hour
that was already processed shows up as a new batch in that hour and requests it again. Consecutive hours go in
one run, and an hour that already has a run waiting in the queue gets no second one (that run will read the new
files)."""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from smartcity.lake_layout import LANDED_ZONES, RAW, Hour
from smartcity.settings import Settings
from smartcity_dagster.assets.keys import LANDED_KEYS
from smartcity_dagster.partitions import contiguous_ranges, hours_of_range
from smartcity_dagster.resources.lake import LakeFile, LakeStorage


@dataclass(frozen=True)
class HourUpdate:
    """New data in one hour of one table the stream lands (a raw or a quarantine table)."""

    zone: str
    stream: str
    hour: Hour
    newest_batch: int
    new_files: int
    new_rows: int
    new_bytes: int
    files: int
    bytes: int

    def metadata(self) -> dict[str, int]:
        return {
            "new_files": self.new_files,
            "new_rows": self.new_rows,
            "new_bytes": self.new_bytes,
            "files": self.files,
            "bytes": self.bytes,
            "newest_batch": self.newest_batch,
        }


def cursor_key(zone: str, stream: str, hour: Hour) -> str:
    """``<stream>/<hour>`` for raw tables (as cursors before the quarantine had partitions), else with the zone."""
    return f"{stream}/{hour.key}" if zone == RAW else f"{zone}/{stream}/{hour.key}"


def scan(
    lake: LakeStorage, topics: dict[str, str], now: datetime, days: int, seen: dict[str, int]
) -> tuple[list[HourUpdate], dict[str, int]]:
    """Updates since ``seen`` in the last ``days`` days, and the cursor to store (older hours pruned)."""
    dates = [(now - timedelta(days=back)).date() for back in range(days, -1, -1)]
    oldest = Hour(datetime.combine(dates[0], datetime.min.time(), tzinfo=UTC))
    cursor = {key: batch for key, batch in seen.items() if Hour.of_key(key.rsplit("/", 1)[1]) >= oldest}
    updates = []
    for zone in LANDED_ZONES:
        for stream, topic in topics.items():
            for hour, files in lake.list_hours(zone, topic, dates).items():
                key = cursor_key(zone, stream, hour)
                new = [file for file in files if file.batch > seen.get(key, -1)]
                if new and (update := _update(lake, zone, stream, hour, files, new)) is not None:
                    updates.append(update)
                    cursor[key] = update.newest_batch
    return updates, cursor


def _update(
    lake: LakeStorage, zone: str, stream: str, hour: Hour, files: list[LakeFile], new: list[LakeFile]
) -> HourUpdate | None:
    try:
        new_rows = sum(lake.row_count(file) for file in new)
    except FileNotFoundError:
        return None  # compaction swapped the hour since the listing: the next tick sees the compacted file
    return HourUpdate(
        zone=zone,
        stream=stream,
        hour=hour,
        newest_batch=max(file.batch for file in files),
        new_files=len(new),
        new_rows=new_rows,
        new_bytes=sum(file.size for file in new),
        files=len(files),
        bytes=sum(file.size for file in files),
    )


def hours_with_a_queued_run(instance: dg.DagsterInstance) -> set[Hour]:
    """Hours covered by this sensor's runs still waiting in the queue."""
    waiting = instance.get_runs(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED],
                      tags={"dagster/sensor_name": SENSOR_NAME})
    )  # fmt: skip
    hours: set[Hour] = set()
    for run in waiting:
        first, last = run.tags.get(ASSET_PARTITION_RANGE_START_TAG), run.tags.get(ASSET_PARTITION_RANGE_END_TAG)
        if first and last:
            hours.update(hours_of_range(first, last))
    return hours


def range_request(first: Hour, last: Hour, updates: list[HourUpdate]) -> dg.RunRequest:
    """One run for consecutive hours: the steps take partition ranges in a single run (``BackfillPolicy``), so a
    catch-up after downtime starts one Spark job, not one per hour."""
    covered = sorted(f"{u.zone}/{u.stream}/{u.hour.key}@{u.newest_batch}" for u in updates
                     if first.start <= u.hour.start <= last.start)  # fmt: skip
    digest = hashlib.sha1("|".join(covered).encode()).hexdigest()[:12]  # raw and quarantine of one batch differ
    return dg.RunRequest(
        run_key=f"{first.key}..{last.key}#{digest}",
        tags={ASSET_PARTITION_RANGE_START_TAG: first.key, ASSET_PARTITION_RANGE_END_TAG: last.key},
    )


SENSOR_NAME = "raw_lake_sensor"


def build_lake_sensor(
    settings: Settings,
    partitions: dg.HourlyPartitionsDefinition,
    target: dg.AssetSelection,
) -> dg.SensorDefinition:
    """A sensor recording raw and quarantine materializations and requesting ``target`` for every hour with new
    data."""

    @dg.sensor(
        name=SENSOR_NAME,
        description=(
            "Lists the recent date prefixes of the raw and quarantine zones, records newly committed data per hour "
            "as materializations (files, rows, bytes) and runs every step for those hours, catalog to warehouse."
        ),
        target=target,
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def raw_lake_sensor(context: dg.SensorEvaluationContext, lake: LakeStorage) -> dg.SensorResult:
        now = datetime.now(UTC)
        seen = json.loads(context.cursor) if context.cursor else {}
        updates, cursor = scan(lake, settings.topics, now, settings.late_data_days, seen)
        valid_keys = set(partitions.get_partition_keys(current_time=now))
        outside = [u for u in updates if u.hour.key not in valid_keys]
        # Ahead of the clock (the stream quarantines what lies further ahead than SMARTCITY_FUTURE_TOLERANCE_HOURS
        # as implausible_time): run once the clock reaches their hour.
        for update in outside:
            context.log.warning(
                f"{update.zone}.{update.stream} has data for {update.hour.key}, outside the hourly partitions"
            )
            key = cursor_key(update.zone, update.stream, update.hour)
            cursor.pop(key, None)
            if (previous := seen.get(key)) is not None:
                cursor[key] = previous
        accepted = [u for u in updates if u.hour.key in valid_keys]
        hours = sorted({u.hour for u in accepted})
        if not hours:
            return dg.SensorResult(skip_reason="no new raw data", cursor=json.dumps(cursor, sort_keys=True))
        events = [
            dg.AssetMaterialization(LANDED_KEYS[u.zone](u.stream), partition=u.hour.key, metadata=u.metadata())
            for u in accepted
        ]
        # A queued run lists its raw files when it starts, so it will read these too: one more run would only
        # grow the queue while the stream publishes faster than processing finishes.
        queued = hours_with_a_queued_run(context.instance)
        to_run = [hour for hour in hours if hour not in queued]
        requests = [range_request(first, last, accepted) for first, last in contiguous_ranges(to_run)]
        context.log.info(
            f"new raw data in {len(hours)} hour(s): {', '.join(h.key for h in hours)}"
            + (f"; already queued: {', '.join(h.key for h in hours if h in queued)}" if queued else "")
        )
        return dg.SensorResult(run_requests=requests, asset_events=events, cursor=json.dumps(cursor, sort_keys=True))

    return raw_lake_sensor

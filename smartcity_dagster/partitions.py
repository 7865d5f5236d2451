"""Hourly partitions on event time, and the lake's hour directories they map to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import dagster as dg

from smartcity.settings import Settings

PARTITION_FORMAT = "%Y-%m-%d-%H:%M"
EVENT_PARTITION = ("event_date", "event_hour")
# Quarantined records may carry no readable event time: the quarantine zone is partitioned by ingest hour.
INGEST_PARTITION = ("ingest_date", "ingest_hour")


def zone_partition(zone: str) -> tuple[str, str]:
    """The (date, hour) directory keys of a lake zone."""
    return INGEST_PARTITION if zone == "quarantine" else EVENT_PARTITION


class Hour(NamedTuple):
    """One hour: the partition key, and the lake's ``event_date=…/event_hour=…`` (or ingest hour) directory."""

    start: datetime

    @classmethod
    def of_key(cls, key: str) -> Hour:
        return cls(datetime.strptime(key, PARTITION_FORMAT).replace(tzinfo=UTC))

    @classmethod
    def of_directory(cls, event_date: str, event_hour: str) -> Hour:
        return cls(datetime.strptime(f"{event_date} {event_hour}", "%Y-%m-%d %H").replace(tzinfo=UTC))

    @property
    def key(self) -> str:
        return self.start.strftime(PARTITION_FORMAT)

    @property
    def date(self) -> str:
        return self.start.strftime("%Y-%m-%d")

    @property
    def hour(self) -> str:
        return self.start.strftime("%H")

    @property
    def relative_dir(self) -> str:
        return self.directory(EVENT_PARTITION)

    def directory(self, keys: tuple[str, str]) -> str:
        return f"{keys[0]}={self.date}/{keys[1]}={self.hour}"


def contiguous_ranges(hours: list[Hour]) -> list[tuple[Hour, Hour]]:
    """Sorted, distinct ``hours`` grouped into runs of consecutive hours: (first, last) of each."""
    ranges: list[tuple[Hour, Hour]] = []
    for hour in sorted(set(hours)):
        if ranges and hour.start - ranges[-1][1].start == timedelta(hours=1):
            ranges[-1] = (ranges[-1][0], hour)
        else:
            ranges.append((hour, hour))
    return ranges


def hourly_partitions(settings: Settings) -> dg.HourlyPartitionsDefinition:
    """Hours from the configured start up to and including the current one (the stream lands into it)."""
    return dg.HourlyPartitionsDefinition(
        start_date=settings.partitions_start.strftime(PARTITION_FORMAT), timezone="UTC", end_offset=1
    )


def hours_between(start: datetime, end: datetime) -> list[Hour]:
    """The hours of the half-open window [start, end)."""
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    count = int((end - first) / timedelta(hours=1))
    return [Hour(first + timedelta(hours=i)) for i in range(count)]


def hours_of_range(first_key: str, last_key: str) -> list[Hour]:
    """The hours of a partition key range, both ends included (as in a range run's tags)."""
    return hours_between(Hour.of_key(first_key).start, Hour.of_key(last_key).start + timedelta(hours=1))


def window_hours(context: dg.AssetExecutionContext) -> list[Hour]:
    """The hours a run covers: one partition, or a whole range when a backfill runs as one run."""
    window = context.partition_time_window
    return hours_between(window.start, window.end)

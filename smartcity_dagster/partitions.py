"""Hourly partitions on event time, as Dagster sees them; the hours themselves are the lake's
(:class:`smartcity.lake_layout.Hour`)."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from smartcity.lake_layout import PARTITION_FORMAT, Hour, hours_between
from smartcity.settings import Settings


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


def hours_of_range(first_key: str, last_key: str) -> list[Hour]:
    """The hours of a partition key range, both ends included (as in a range run's tags)."""
    return hours_between(Hour.of_key(first_key).start, Hour.of_key(last_key).start + timedelta(hours=1))


def window_hours(context: dg.AssetExecutionContext) -> list[Hour]:
    """The hours a run covers: one partition, or a whole range when a backfill runs as one run."""
    window = context.partition_time_window
    return hours_between(window.start, window.end)

"""The lake's layout, shared by the stream that lands data and the steps that read and publish it.

Zones under one root (a directory or an S3 prefix), each a set of tables partitioned into hour directories:

    raw/<topic>/event_date=YYYY-MM-DD/event_hour=HH/part-b<batch>.parquet          (the stream)
    quarantine/<topic>/ingest_date=YYYY-MM-DD/ingest_hour=HH/part-b<batch>.parquet (the stream)
    processed/<stream>/event_date=…/event_hour=…/part-b<newest batch>-NNNNN.parquet
    gold/<model>/event_date=…/event_hour=…/part-00000.parquet

File names carry the stream batch they hold (or the newest one they include), which is how readers tell new
data from data already seen without reading it.
"""

from __future__ import annotations

import posixpath
import re
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

RAW, QUARANTINE, PROCESSED, GOLD = "raw", "quarantine", "processed", "gold"
LANDED_ZONES = (RAW, QUARANTINE)
"""The zones the stream writes; every other zone is written by the asset graph."""
STAGING = "_staging"
"""Where writers stage files before publishing them (never read as data)."""
STREAM_STATE = "_stream"
"""The stream's own bookkeeping: batch manifests, publication intents, the compaction lock."""
VERSIONS = "_versions"
"""On an object store, versions of a table's hours live beside its hour directories, under
``<zone>/<table>/_versions/<date>=…/<hour>=…/v=<time>/``, never inside them: an hour directory is the catalog
location of the stream's files until the catalog points at a version, and a reader that lists a location with its
subfolders (as Athena does) would otherwise see both."""

EVENT_PARTITION = ("event_date", "event_hour")
# Quarantined records may carry no readable event time: the quarantine zone is partitioned by ingest hour.
INGEST_PARTITION = ("ingest_date", "ingest_hour")
PARTITION_FORMAT = "%Y-%m-%d-%H:%M"
"""An hour's partition key, as Dagster's hourly partitions spell it."""

_BATCH = re.compile(r"^(?:part|compacted)-b(\d{12})")


def zone_partition(zone: str) -> tuple[str, str]:
    """The (date, hour) directory keys of a lake zone."""
    return INGEST_PARTITION if zone == QUARANTINE else EVENT_PARTITION


class Hour(NamedTuple):
    """One hour: a partition key, and the lake's ``event_date=…/event_hour=…`` (or ingest hour) directory."""

    start: datetime

    @classmethod
    def of_key(cls, key: str) -> Hour:
        return cls(datetime.strptime(key, PARTITION_FORMAT).replace(tzinfo=UTC))

    @classmethod
    def of_directory(cls, day: str, hour: str) -> Hour:
        return cls(datetime.strptime(f"{day} {hour}", "%Y-%m-%d %H").replace(tzinfo=UTC))

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


def hours_between(start: datetime, end: datetime) -> list[Hour]:
    """The hours of the half-open window [start, end)."""
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    count = int((end - first) / timedelta(hours=1))
    return [Hour(first + timedelta(hours=i)) for i in range(count)]


def table_prefix(zone: str, table: str) -> str:
    """Key of a table's root under the lake root, e.g. ``raw/vehicle_data``."""
    return f"{zone}/{table}"


def date_prefix(zone: str, table: str, day: str) -> str:
    """Key of one day of a table, e.g. ``raw/vehicle_data/event_date=2026-12-01``."""
    return f"{table_prefix(zone, table)}/{zone_partition(zone)[0]}={day}"


def hour_prefix(zone: str, table: str, hour: Hour) -> str:
    """Key of one hour directory of a table."""
    return f"{table_prefix(zone, table)}/{hour.directory(zone_partition(zone))}"


def versions_prefix(prefix: str) -> str:
    """Where the versions of the hours under a table's date or hour ``prefix`` live (see :data:`VERSIONS`)."""
    zone, table, rest = prefix.split("/", 2)
    return f"{zone}/{table}/{VERSIONS}/{rest}"


def hour_of_key(zone: str, key: str) -> Hour | None:
    """The hour a file key of ``zone`` lies in (``<zone>/<table>/<date>=…/<hour>=…/<file>``), or None."""
    parts = key.split("/")
    date_key, hour_key = zone_partition(zone)
    if len(parts) != 5 or not parts[2].startswith(f"{date_key}=") or not parts[3].startswith(f"{hour_key}="):
        return None
    try:
        return Hour.of_directory(parts[2].removeprefix(f"{date_key}="), parts[3].removeprefix(f"{hour_key}="))
    except ValueError:
        return None


def table_uri(root: str, zone: str, table: str) -> str:
    """Where a table lives, for people and catalogs: ``<lake root>/<zone>/<table>`` (a path or an s3:// URI)."""
    return posixpath.join(root.rstrip("/"), table_prefix(zone, table))


def batch_file_name(batch_id: int, index: int = 0) -> str:
    """A stream batch's file in one hour directory: ``part-b<batch>.parquet`` (``-<index>`` for more than one)."""
    return f"part-b{batch_id:012d}.parquet" if index == 0 else f"part-b{batch_id:012d}-{index}.parquet"


def compacted_file_name(newest_batch: int) -> str:
    """The one file compaction leaves in an hour: every committed batch up to ``newest_batch``."""
    return f"compacted-b{newest_batch:012d}.parquet"


def processed_file_name(newest_batch: int, index: int) -> str:
    """A processed file: the newest raw batch it includes, numbered within its hour."""
    return f"part-b{newest_batch:012d}-{index:05d}.parquet"


def batch_of(name: str) -> int | None:
    """The stream batch a file name carries (``part-b<batch>…`` or ``compacted-b<batch>…``), or None."""
    match = _BATCH.match(name)
    return int(match.group(1)) if match else None


def is_compacted(name: str) -> bool:
    return name.startswith("compacted-b")

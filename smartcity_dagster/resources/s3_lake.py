"""The lake on S3 (the aws profile), behind the same :class:`LakeStorage` interface as a local lake.

S3 cannot swap a directory, so an hour is never rewritten in place. A rebuilt hour is written to a new version
prefix beside the hour directories (``<zone>/<table>/_versions/…/event_hour=HH/v=<time>/``, see
:data:`~smartcity.lake_layout.VERSIONS`) and made current by a marker written last; the catalog partition is then
pointed at that prefix in one call, so a reader going through the catalog sees the old hour or the new one,
never a mix. An hour's files are those of its newest complete version, or, before it has one, the files the
stream published at its root. What a new version supersedes is recorded, and deleted once a grace period has
passed (a reader planned against the old location may still be listing it). Files added to an hour (the
processing step's increments) go into its current version, each appearing whole.

The landed zones are compacted the same way once an hour is closed: older than the late-data window, which the
lake sensor no longer watches. Expiry of old hours is the S3 lifecycle's job on AWS; :meth:`delete_before`
does the same for a store without one.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from smartcity.duckdb_s3 import enable_s3
from smartcity.lake_layout import (
    LANDED_ZONES,
    QUARANTINE,
    VERSIONS,
    Hour,
    compacted_file_name,
    date_prefix,
    hour_prefix,
    versions_prefix,
    zone_partition,
)
from smartcity.object_store import S3Storage
from smartcity_dagster.resources.lake import CompactedHour, LakeFile, LakeStorage, StagedFile

VERSION = "v="
PUBLISHED = "_published.json"
RETIRED = "_lake/retired"
"""One record per superseded set of objects: which, and when they may go."""


class HourObjects(NamedTuple):
    """What one hour prefix holds: the files at its root, and each version's files (with whether it is complete)."""

    root: list[LakeFile]
    versions: dict[str, list[LakeFile]]
    complete: set[str]

    @property
    def current_version(self) -> str | None:
        return max(self.complete, default=None)

    @property
    def files(self) -> list[LakeFile]:
        """The hour's files: its newest complete version's, else its root's."""
        version = self.current_version
        return self.versions.get(version, []) if version else self.root


class S3Lake(LakeStorage):
    """The lake under ``s3://bucket/prefix``: hours versioned by prefix, superseded versions deleted after a grace."""

    root: str
    """``s3://bucket/prefix``"""
    s3: S3Resource
    """dagster-aws's S3 client: its region, and an S3-compatible endpoint (by default ``AWS_ENDPOINT_URL_S3`` or
    AWS's own)."""
    kms_key_id: str | None = None
    grace_minutes: int = 30
    """How long a superseded version stays readable for readers planned against it."""
    closed_after_days: int = 2
    """An hour of a landed zone is closed (and compacted) this long after it ends: the late-data window."""
    _store: S3Storage | None = PrivateAttr(default=None)

    @property
    def store(self) -> S3Storage:
        if self._store is None:
            parsed = urlparse(self.root)
            self._store = S3Storage(parsed.netloc, parsed.path, self.region, self.kms_key_id, self.s3.endpoint_url,
                                    client=self.s3.get_client())  # fmt: skip
        return self._store

    @property
    def region(self) -> str:
        if not self.s3.region_name:
            raise ValueError("the lake's S3Resource names no region_name")
        return self.s3.region_name

    # ----------------------------------------------------------------- listing
    def list_hours(self, zone: str, table: str, dates: Sequence[date]) -> dict[Hour, list[LakeFile]]:
        listed = {}
        for day in dates:
            for hour, objects in self._hours(zone, date_prefix(zone, table, f"{day:%Y-%m-%d}")).items():
                if objects.files:
                    listed[hour] = objects.files
        return listed

    def _hours(self, zone: str, prefix: str) -> dict[Hour, HourObjects]:
        """Every hour under a date or hour prefix: the files at its root, and its versions (listed beside)."""
        found: dict[Hour, HourObjects] = {}
        date_key, hour_key = zone_partition(zone)
        for stored in [*self.store.list_objects(prefix), *self.store.list_objects(versions_prefix(prefix))]:
            parts = stored.key.split("/")
            if len(parts) > 2 and parts[2] == VERSIONS:
                del parts[2]  # a version's key, read as if it were inside its hour
            if len(parts) not in (5, 6) or not parts[3].startswith(f"{hour_key}="):
                continue
            hour = Hour.of_directory(parts[2].removeprefix(f"{date_key}="), parts[3].removeprefix(f"{hour_key}="))
            objects = found.setdefault(hour, HourObjects([], {}, set()))
            if len(parts) == 5 and stored.key.endswith(".parquet"):
                objects.root.append(LakeFile(*stored))
            elif len(parts) == 6 and parts[4].startswith(VERSION):
                if parts[5] == PUBLISHED:
                    objects.complete.add(parts[4])
                elif stored.key.endswith(".parquet"):
                    objects.versions.setdefault(parts[4], []).append(LakeFile(*stored))
        return found

    def _hour(self, zone: str, table: str, hour: Hour) -> HourObjects:
        return self._hours(zone, hour_prefix(zone, table, hour)).get(hour, HourObjects([], {}, set()))

    # ----------------------------------------------------------------- publishing
    def replace_hour(self, zone: str, table: str, hour: Hour, files: Sequence[StagedFile]) -> None:
        """The files become a new version of the hour, current once its marker is written; the previous one
        retires."""
        previous = self._hour(zone, table, hour)
        version = f"{VERSION}{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
        versions = versions_prefix(hour_prefix(zone, table, hour))
        base = f"{versions}/{version}"
        for staged, name in files:
            self.store.publish_file(staged, f"{base}/{name}")
        self.store.write_json(f"{base}/{PUBLISHED}", {"files": [name for _, name in files]})
        superseded = [file.key for file in previous.root]
        for old in previous.versions.keys() | previous.complete:
            superseded += [file.key for file in previous.versions.get(old, [])]
            superseded.append(f"{versions}/{old}/{PUBLISHED}")
        self._retire(superseded)

    def add_to_hour(self, zone: str, table: str, hour: Hour, files: Sequence[StagedFile]) -> None:
        """Into the hour's current version (or its root before it has one); each file appears whole."""
        version = self._hour(zone, table, hour).current_version
        hour_directory = hour_prefix(zone, table, hour)
        base = f"{versions_prefix(hour_directory)}/{version}" if version else hour_directory
        for staged, name in files:
            self.store.publish_file(staged, f"{base}/{name}")

    def _retire(self, keys: list[str]) -> None:
        if keys:
            after = datetime.now(UTC) + timedelta(minutes=self.grace_minutes)
            record = f"{RETIRED}/{after:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.json"
            self.store.write_json(record, {"after": after.isoformat(), "keys": sorted(keys)})

    def vacuum(self) -> int:
        """Delete what was superseded more than the grace period ago; how many objects."""
        deleted, now = 0, datetime.now(UTC)
        for record in self.store.list_files(RETIRED, ".json"):
            retired = self.store.read_json(record)
            if retired is None or datetime.fromisoformat(retired["after"]) > now:
                continue
            self.store.delete(retired["keys"])
            self.store.delete([record])
            deleted += len(retired["keys"])
        return deleted

    # ----------------------------------------------------------------- maintenance
    def delete_before(self, cutoff: Hour) -> int:
        """Hours (quarantine: days) older than ``cutoff``, every zone, by prefix; then the superseded versions."""
        removed = 0
        for zone in (*LANDED_ZONES, "processed", "gold"):
            for table in self.store.list_directories(zone):
                days = self.store.list_directories(table)
                versions = f"{table}/{VERSIONS}"
                for day in [*(day for day in days if day != versions), *self.store.list_directories(versions)]:
                    removed += self._delete_old(zone, day, cutoff)
        self.vacuum()
        return removed

    def _delete_old(self, zone: str, day: str, cutoff: Hour) -> int:
        day_value = day.rsplit("=", 1)[-1]
        if day_value < cutoff.date:
            self.store.delete_prefix(day)
            return 1
        if zone == QUARANTINE or day_value > cutoff.date:
            return 0
        old = [hour for hour in self.store.list_directories(day) if hour.rsplit("=", 1)[-1] < cutoff.hour]
        for hour in old:
            self.store.delete_prefix(hour)
        return len(old)

    def compact_landed_hours(self) -> list[CompactedHour]:
        """Closed hours of the raw and quarantine zones with several stream files become one compacted version."""
        self.vacuum()
        closed_before = datetime.now(UTC) - timedelta(days=self.closed_after_days)
        days = sorted({(closed_before - timedelta(days=back)).date() for back in (0, 1)})
        compacted = []
        for zone in LANDED_ZONES:
            for table in (directory.rsplit("/", 1)[-1] for directory in self.store.list_directories(zone)):
                for day in days:
                    for hour, objects in self._hours(zone, date_prefix(zone, table, f"{day:%Y-%m-%d}")).items():
                        closed = hour.start + timedelta(hours=1) <= closed_before
                        if closed and objects.current_version is None and len(objects.root) >= 2:
                            self._compact(zone, table, hour, objects.root)
                            compacted.append(CompactedHour(zone, table, hour))
        return compacted

    def _compact(self, zone: str, table: str, hour: Hour, files: list[LakeFile]) -> None:
        tables = [pq.ParquetFile(self.store.open_input(file.key)).read() for file in files]
        newest = max(file.batch for file in files)
        with tempfile.TemporaryDirectory(prefix="smartcity-compact-") as scratch, self.staging("compact") as stage:
            local = Path(scratch) / "compacted.parquet"
            # INT96 timestamps, as Spark itself writes them: Spark cannot read the nanosecond INT64 pyarrow would write
            merged = pa.concat_tables(tables, promote_options="default")
            pq.write_table(merged, local, compression="zstd", use_deprecated_int96_timestamps=True)
            staged = f"{stage}/{compacted_file_name(newest)}"
            self.upload(local, staged)
            self.replace_hour(zone, table, hour, [(staged, compacted_file_name(newest))])

    # ----------------------------------------------------------------- reading
    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """DuckDB reading the lake's ``s3://`` URIs as boto3 does."""
        connection = super().duckdb()
        enable_s3(connection, self.region, self.s3.endpoint_url)
        return connection

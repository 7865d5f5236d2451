"""The lake as the asset graph sees it: tables of hour partitions in zones (:mod:`smartcity.lake_layout`), read
file by file and published an hour at a time.

:class:`LakeStorage` is the interface every step is written against. Listing, reading and adding files work the
same on any object store (:mod:`smartcity.object_store`); what differs is how a whole hour is replaced so that
readers never see a mix, how old hours expire, and how small files are compacted. :class:`LocalLake` does those
for a lake in a local directory (the embedded profile) with atomic directory swaps.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import NamedTuple

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from smartcity.atomic import replace_directory
from smartcity.lake_layout import (
    GOLD,
    PROCESSED,
    QUARANTINE,
    RAW,
    STAGING,
    Hour,
    batch_of,
    date_prefix,
    hour_of_key,
    hour_prefix,
    table_prefix,
    zone_partition,
)
from smartcity.object_store import LocalStorage, Storage, local_root


class LakeFile(NamedTuple):
    key: str
    """Relative to the lake root: ``<zone>/<table>/<date>=…/<hour>=…/<name>``."""
    size: int

    @property
    def name(self) -> str:
        return posixpath.basename(self.key)

    @property
    def batch(self) -> int:
        """The stream batch that published the file, or the newest one it includes (0 when the name has none)."""
        return batch_of(self.name) or 0


class CompactedHour(NamedTuple):
    zone: str
    table: str
    hour: Hour


StagedFile = tuple[str, str]
"""A file staged in the lake (its key) and the name it is to have in its hour."""


class LakeStorage(dg.ConfigurableResource, ABC):
    """List, read and publish the hour partitions of the lake's tables."""

    @property
    @abstractmethod
    def store(self) -> Storage:
        """The object store under the lake root."""

    @abstractmethod
    def replace_hour(self, zone: str, table: str, hour: Hour, files: Sequence[StagedFile]) -> None:
        """Make the hour hold exactly ``files`` (nothing, when empty); a reader sees the old hour or the new."""

    @abstractmethod
    def delete_before(self, cutoff: Hour) -> int:
        """Delete the hours older than ``cutoff`` (quarantine: whole ingest days) in every zone; how many."""

    @abstractmethod
    def compact_landed_hours(self) -> list[CompactedHour]:
        """Merge the stream's per-batch files of raw and quarantine hours; the hours compacted, so the catalog can
        register them again (their files, and on some stores their location, changed)."""

    # ----------------------------------------------------------------- where
    def location(self, zone: str, table: str) -> str:
        """Where a table's partitions live (a directory or an ``s3://`` prefix)."""
        return self.store.uri(table_prefix(zone, table))

    def uri(self, key: str) -> str:
        """Where readers other than Spark (DuckDB, pyarrow, people) find ``key``."""
        return self.store.uri(key)

    def spark_uri(self, key: str) -> str:
        return self.store.spark_uri(key)

    def key_of(self, uri: str) -> str:
        """The key of a file an engine names by its URI (``s3://…`` or a path) under the lake's root."""
        root = self.store.uri("").rstrip("/") + "/"
        normalized = uri.replace("s3a://", "s3://", 1)
        if not normalized.startswith(root):
            raise ValueError(f"{uri} is not in the lake {root}")
        return normalized[len(root) :]

    # ----------------------------------------------------------------- listing
    def list_hours(self, zone: str, table: str, dates: Sequence[date]) -> dict[Hour, list[LakeFile]]:
        """The Parquet files of each hour of ``dates``, listing only those date prefixes."""
        listed: dict[Hour, list[LakeFile]] = {}
        for day in dates:
            for stored in self.store.list_objects(date_prefix(zone, table, f"{day:%Y-%m-%d}"), ".parquet"):
                if (hour := hour_of_key(zone, stored.key)) is not None:
                    listed.setdefault(hour, []).append(LakeFile(*stored))
        return listed

    def files_of(self, zone: str, table: str, hours: Sequence[Hour]) -> dict[Hour, list[LakeFile]]:
        """The Parquet files of each of ``hours`` that has any."""
        wanted = set(hours)
        dates = sorted({hour.start.date() for hour in wanted})
        return {hour: files for hour, files in self.list_hours(zone, table, dates).items() if hour in wanted}

    # ----------------------------------------------------------------- reading
    def row_count(self, file: LakeFile) -> int:
        """Rows in one Parquet file, from its footer."""
        return pq.ParquetFile(self.store.open_input(file.key)).metadata.num_rows

    def read_schema(self, file: LakeFile) -> pa.Schema:
        return pq.ParquetFile(self.store.open_input(file.key)).schema_arrow

    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB session that can read the lake's URIs, for checks that read files independently
        of the code that wrote them."""
        connection = duckdb.connect()
        connection.execute("SET TimeZone = 'UTC'")
        return connection

    def read_table(self, files: Sequence[LakeFile]) -> pa.Table | None:
        """The rows of these Parquet files in a stable order, or None when there are none."""
        if not files:
            return None
        with self.duckdb() as db:
            query = "SELECT * FROM read_parquet(?, hive_partitioning = false) ORDER BY ALL"
            return db.execute(query, [[self.uri(file.key) for file in files]]).fetch_arrow_table()

    # ----------------------------------------------------------------- writing
    @contextmanager
    def staging(self, name: str) -> Iterator[str]:
        """A fresh staging prefix in the lake for a writer (Spark) to fill; removed afterwards."""
        prefix = f"{STAGING}/{name}-{uuid.uuid4().hex}"
        try:
            yield prefix
        finally:
            self.store.delete_prefix(prefix)

    def staged_files(self, prefix: str) -> list[str]:
        """Keys of the Parquet files a writer left under ``prefix`` (not its checksums or markers)."""
        return self.store.list_files(prefix, ".parquet")

    def upload(self, local_file: Path, key: str) -> None:
        """Put a file written on this machine (by DuckDB, pyarrow) at ``key``, typically under a staging prefix."""
        self.store.put_file(local_file, key)

    def add_to_hour(self, zone: str, table: str, hour: Hour, files: Sequence[StagedFile]) -> None:
        """Add files to the hour; each appears whole, at once, next to what the hour holds."""
        for staged, name in files:
            self.store.publish_file(staged, f"{hour_prefix(zone, table, hour)}/{name}")


class LocalLake(LakeStorage):
    """The lake in a local directory: hours are swapped whole with an atomic directory exchange."""

    root: str
    checkpoint: str
    """The stream query's checkpoint: compaction touches only the batches its commit log holds."""

    @property
    def store(self) -> LocalStorage:
        return LocalStorage(local_root(self.root))

    def replace_hour(self, zone: str, table: str, hour: Hour, files: Sequence[StagedFile]) -> None:
        target = self.store.path(hour_prefix(zone, table, hour))
        if not files:
            replace_directory(None, target)
            return
        new = self.store.path(f"{STAGING}/hour-{uuid.uuid4().hex}")
        new.mkdir(parents=True)
        for staged, name in files:
            os.replace(self.store.path(staged), new / name)
        replace_directory(new, target)

    def delete_before(self, cutoff: Hour) -> int:
        expired = expired_directories(self.store.root, cutoff)
        for directory in expired:
            replace_directory(None, directory)
        return len(expired)

    def compact_landed_hours(self) -> list[CompactedHour]:
        from spark_streaming.lake import Lake, compact_lake

        store = self.store
        compacted = [str(file.relative_to(store.root)) for file in compact_lake(Lake(store), Path(self.checkpoint))]
        return [CompactedHour(key.split("/")[0], key.split("/")[1], hour)
                for key in compacted if (hour := hour_of_key(key.split("/")[0], key)) is not None]  # fmt: skip


def expired_directories(root: Path, cutoff: Hour) -> list[Path]:
    """Hour directories of the raw, processed and gold zones, and quarantine days, older than ``cutoff``."""
    date_key, hour_key = zone_partition(RAW)
    expired = [
        hour_dir
        for zone in (RAW, PROCESSED, GOLD)
        for hour_dir in sorted(root.glob(f"{zone}/*/{date_key}=*/{hour_key}=*"))
        if Hour.of_directory(hour_dir.parent.name.split("=", 1)[1], hour_dir.name.split("=", 1)[1]) < cutoff
    ]
    ingest_date = zone_partition(QUARANTINE)[0]
    expired += [
        day_dir
        for day_dir in sorted(root.glob(f"{QUARANTINE}/*/{ingest_date}=*"))
        if day_dir.name.split("=", 1)[1] < cutoff.date
    ]
    return expired

"""The lake as the assets see it: zones of tables, partitioned into ``event_date=…/event_hour=…`` directories
(``ingest_date=…/ingest_hour=…`` in the quarantine).

:class:`LakeStorage` is the interface; :class:`LocalLake` implements it over a local directory (the embedded
profile). An S3 implementation lists with ``dagster_aws.s3.sensor.get_objects`` under the same interface.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from datetime import date
from pathlib import Path
from typing import NamedTuple

import dagster as dg
import pyarrow.parquet as pq

from smartcity_dagster.partitions import Hour, zone_partition

# part-b<batch>[-n].parquet (a stream batch), compacted-b<batch>.parquet (batches up to <batch>); others → 0.
_BATCH = re.compile(r"^(?:part|compacted)-b(\d{12})")


def batch_of(name: str) -> int | None:
    """The stream batch a file name carries (``part-b<batch>…`` or ``compacted-b<batch>…``), or None."""
    match = _BATCH.match(name)
    return int(match.group(1)) if match else None


class LakeFile(NamedTuple):
    path: str
    size: int

    @property
    def batch(self) -> int:
        """The stream batch that published the file (0 when the name carries none)."""
        return batch_of(Path(self.path).name) or 0


class LakeStorage(dg.ConfigurableResource, ABC):
    """List and locate the hour partitions of the lake's tables."""

    @abstractmethod
    def list_hours(self, zone: str, table: str, dates: list[date]) -> dict[Hour, list[LakeFile]]:
        """The Parquet files of each hour of ``dates`` (listing only those date prefixes)."""

    @abstractmethod
    def location(self, zone: str, table: str) -> str:
        """Where the table's partitions live (a directory or an s3:// prefix)."""

    @abstractmethod
    def row_count(self, file: LakeFile) -> int:
        """Rows in one Parquet file, from its footer."""


class LocalLake(LakeStorage):
    """The lake in a local directory."""

    root: str

    @property
    def path(self) -> Path:
        return Path(self.root)

    def location(self, zone: str, table: str) -> str:
        return str(self.path / zone / table)

    def list_hours(self, zone: str, table: str, dates: list[date]) -> dict[Hour, list[LakeFile]]:
        listed: dict[Hour, list[LakeFile]] = {}
        date_key, hour_key = zone_partition(zone)
        for day in dates:
            day_dir = self.path / zone / table / f"{date_key}={day:%Y-%m-%d}"
            for hour_dir in sorted(day_dir.glob(f"{hour_key}=*")):
                files = [file for f in sorted(hour_dir.glob("*.parquet")) if (file := _stat(f))]
                if files:
                    listed[Hour.of_directory(f"{day:%Y-%m-%d}", hour_dir.name.removeprefix(f"{hour_key}="))] = files
        return listed

    def row_count(self, file: LakeFile) -> int:
        return pq.ParquetFile(file.path).metadata.num_rows


def _stat(path: Path) -> LakeFile | None:
    """The file with its size, or None when compaction swapped it away since the directory was listed."""
    try:
        return LakeFile(str(path), path.stat().st_size)
    except FileNotFoundError:
        return None

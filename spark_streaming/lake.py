"""The lake's commit protocol: readers that list files see only complete, committed, unique files.

Spark's file sink is exactly-once only for readers of its ``_spark_metadata`` log; a DuckDB glob or a
Glue/Athena table over a prefix would see partial files and files of batches that were retried. So each
micro-batch is written by Spark to a private staging prefix, then *published*: every staged file is moved
(a rename on a local file system, a server-side copy on S3: either way the file appears whole in one step) to
a name derived from the batch id alone, ``part-b<batch>.parquet``, one per partition directory.
A batch replayed after a crash has the same Kafka offsets (Spark's offset log), so it rewrites the same names
with the same records: a replay replaces, it never adds. See docs/streaming.md.

Compaction rewrites an hour's files of *committed* batches into one file and swaps the directory with an
atomic exchange (``renameat2(RENAME_EXCHANGE)``), so a reader sees the old hour or the new one, never both;
S3 has no such swap, so compaction is for a local lake only.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from smartcity.atomic import exchange, exclusive
from smartcity.errors import PlatformError
from smartcity.lake_layout import (
    LANDED_ZONES,
    QUARANTINE,
    RAW,
    STAGING,
    STREAM_STATE,
    batch_file_name,
    batch_of,
    compacted_file_name,
    is_compacted,
    zone_partition,
)
from smartcity.object_store import LocalStorage, Storage

log = logging.getLogger(__name__)
_COMPACTION = "compact-"
"""Prefix of a compaction's staging directory under ``_staging``."""


@dataclass(frozen=True)
class Lake:
    """The lake's zones under one root, addressed by keys relative to it (see :mod:`smartcity.object_store`)."""

    storage: Storage
    raw = RAW
    quarantine = QUARANTINE
    staging = STAGING
    batches = f"{STREAM_STATE}/batches"
    """One JSON manifest per published batch: rows per table and partition, quarantine reasons."""
    intents = f"{STREAM_STATE}/intents"
    """Per batch, the files its publication creates: what a replay of that batch takes back if it does not
    publish them again."""
    compaction_lock_file = f"{STREAM_STATE}/compaction.lock"

    def stage(self, batch_id: int) -> str:
        return f"{self.staging}/batch-{batch_id:012d}"

    def plan(self, staged: str, target: str, batch_id: int) -> list[tuple[str, str]]:
        """(staged file, final file) for every staged Parquet file, named after the batch alone."""
        by_directory: dict[str, list[str]] = {}
        for file in self.storage.list_files(staged, ".parquet"):
            by_directory.setdefault(posixpath.dirname(posixpath.relpath(file, staged)), []).append(file)
        return [
            (file, posixpath.join(target, directory, batch_file_name(batch_id, index)))
            for directory, files in sorted(by_directory.items())
            for index, file in enumerate(sorted(files))
        ]

    def publish(self, batch_id: int, moves: list[tuple[str, str]]) -> None:
        """Record the intent, then move each staged file into place (each one appears complete at once).

        A replay of an interrupted attempt has the same offsets, so it publishes the same rows under the same
        names: each file replaces its earlier self, and a reader never sees the batch's rows vanish. Files of
        the earlier attempt that this one does not publish are taken back first (missing rows for a moment
        rather than rows twice); the intent covers both attempts until then, so a crash in between loses none.
        """
        finals = [final for _, final in moves]
        earlier = self.storage.read_json(self._intent(batch_id)) or []
        leftovers = sorted(set(earlier) - set(finals))
        self.storage.write_json(self._intent(batch_id), sorted(set(earlier) | set(finals)))
        self.storage.delete(leftovers)
        for staged, final in moves:
            self.storage.publish_file(staged, final)

    def forget_intents(self, before: int) -> None:
        """Intents of committed batches are no longer needed: a committed batch is never replayed."""
        self.storage.delete(key for key in self.storage.list_files(self.intents, ".json") if _json_batch(key) < before)

    def write_manifest(self, batch_id: int, manifest: dict) -> None:
        self.storage.write_json(f"{self.batches}/{batch_id:012d}.json", manifest)

    def manifests(self) -> list[dict]:
        return [self.storage.read_json(key) for key in self.storage.list_files(self.batches, ".json")]

    def local_root(self) -> Path:
        """The lake's directory, for the operations that need a local file system (compaction)."""
        if not isinstance(self.storage, LocalStorage):
            raise PlatformError(
                f"compaction works on a local lake only, not {self.storage!r}: a reader listing S3 (a DuckDB glob, "
                "an Athena table over the prefix) cannot see several object changes as one, so swapping an hour's "
                "files would show its rows twice or not at all. On S3, keep files few with a longer trigger "
                "interval (SMARTCITY_STREAM_TRIGGER_SECONDS); see docs/streaming.md"
            )
        return self.storage.root

    def _intent(self, batch_id: int) -> str:
        return f"{self.intents}/{batch_id:012d}.json"


def _json_batch(key: str) -> int:
    return int(posixpath.basename(key).removesuffix(".json"))


def row_counts(storage: Storage, files: Iterable[str], zone: str) -> dict[str, int]:
    """Rows per partition directory (relative to ``zone``), read from the Parquet footers only."""
    counts: dict[str, int] = {}
    for file in files:
        key = posixpath.relpath(posixpath.dirname(file), zone)
        counts[key] = counts.get(key, 0) + pq.ParquetFile(storage.open_input(file)).metadata.num_rows
    return counts


def quarantine_reasons(storage: Storage, files: Iterable[str], zone: str) -> dict[str, int]:
    """Quarantined rows per ``<topic>/<reason>``, read from the published quarantine files."""
    counts: dict[str, int] = {}
    for file in files:
        topic = posixpath.relpath(file, zone).split("/", 1)[0]
        reasons = pq.ParquetFile(storage.open_input(file)).read(columns=["reason"]).column("reason").to_pylist()
        for reason in reasons:
            counts[f"{topic}/{reason}"] = counts.get(f"{topic}/{reason}", 0) + 1
    return counts


def last_committed_batch(checkpoint: Path) -> int | None:
    """The newest batch id in Spark's commit log (``<checkpoint>/commits/<id>``), or None."""
    commits = checkpoint / "commits"
    ids = [int(path.name) for path in commits.glob("*") if path.name.isdigit()] if commits.exists() else []
    return max(ids, default=None)


def batch_timestamp(checkpoint: Path, batch_id: int) -> datetime:
    """When Spark planned batch ``batch_id``: ``batchTimestampMs`` of its offset log entry, written before the batch
    runs and kept for its replays (``<checkpoint>/offsets/<id>``: a version line, this metadata, the offsets)."""
    entry = checkpoint / "offsets" / str(batch_id)
    try:
        metadata = json.loads(entry.read_text().splitlines()[1])
    except (OSError, IndexError, ValueError) as exc:
        raise PlatformError(f"cannot read batch {batch_id}'s timestamp from Spark's offset log {entry}: {exc}") from exc
    return datetime.fromtimestamp(metadata["batchTimestampMs"] / 1000, UTC)


def compact_hour(lake: Lake, hour_dir: Path, checkpoint: Path) -> Path | None:
    """Rewrite the committed batch files of one hour directory as one file; readers see old or new, never both.

    Files of batches not yet in Spark's commit log are left alone (a replay may rewrite them) and carried over.
    Returns the compacted file, or None when there was nothing to compact.
    """
    committed = last_committed_batch(checkpoint)
    root = lake.local_root()
    files = sorted(hour_dir.glob("*.parquet"))
    inputs = [f for f in files if _is_committed(f, committed)]
    if len(inputs) < 2:
        return None
    newest = max(_batch_of(f) for f in inputs)
    staging = root / lake.staging / f"{_COMPACTION}{os.getpid()}-{time.monotonic_ns()}"
    new_dir = staging / hour_dir.relative_to(root)  # the hour's own path: what recover_compactions needs
    new_dir.mkdir(parents=True)
    table = pa.concat_tables([pq.ParquetFile(f).read() for f in inputs], promote_options="default")
    compacted = new_dir / compacted_file_name(newest)
    # INT96 timestamps, as Spark itself writes them: Spark cannot read the nanosecond INT64 pyarrow would write
    pq.write_table(table, compacted, compression="zstd", use_deprecated_int96_timestamps=True)
    for file in files:  # carry over what was not compacted (uncommitted batches)
        if file not in inputs:
            shutil.copy2(file, new_dir / file.name)
    exchange(new_dir, hour_dir)
    old_dir = new_dir  # after the exchange, this path holds the previous contents
    for late in sorted(set(old_dir.glob("*.parquet")) - {old_dir / f.name for f in files}):
        os.replace(late, hour_dir / late.name)  # a batch published while we compacted
    shutil.rmtree(staging)
    return hour_dir / compacted.name


def recover_compactions(lake: Lake) -> list[Path]:
    """Finish compactions that died: move batch files stranded in their staging directories back into the lake.

    A compaction that dies after its swap leaves the hour's previous directory in staging, and in it any batch
    file published during the rewrite. Such a file is newer than the hour's compacted file and missing from
    the hour, so it is moved back; the compaction's inputs, and its own new directory when it died before the
    swap, are only deleted. Call it holding the compaction lock (:func:`compaction_lock`), never beside a
    running compaction. Returns the files moved back.
    """
    root = lake.local_root()
    moved = []
    for staging in sorted((root / lake.staging).glob(f"{_COMPACTION}*")):
        for stranded in sorted(staging.glob("*/*/*/*")):  # <zone>/<topic>/<date>/<hour>, as in the lake
            hour_dir = root / stranded.relative_to(staging)
            compacted = [_batch_of(f) for f in hour_dir.glob("compacted-b*.parquet")]
            newest = max(compacted, default=-1)
            for file in sorted(stranded.glob("part-b*.parquet")):
                if _batch_of(file) > newest and not (hour_dir / file.name).exists():
                    hour_dir.mkdir(parents=True, exist_ok=True)
                    os.replace(file, hour_dir / file.name)
                    moved.append(hour_dir / file.name)
        shutil.rmtree(staging)
    return moved


def compact_lake(lake: Lake, checkpoint: Path, min_files: int = 2) -> list[Path]:
    """Compact every raw and quarantine hour directory holding at least ``min_files`` committed batch files,
    after finishing any compaction that died; one compaction at a time per lake."""
    root = lake.local_root()
    compacted = []
    with compaction_lock(lake):
        for moved in recover_compactions(lake):
            log.warning("moved %s back into the lake: an interrupted compaction had stranded it", moved)
        hour_dirs = [
            hour_dir
            for zone in LANDED_ZONES
            for hour_dir in sorted((root / zone).glob("*/{}=*/{}=*".format(*zone_partition(zone))))
        ]
        for hour_dir in hour_dirs:
            if len(list(hour_dir.glob("*.parquet"))) >= min_files and (
                result := compact_hour(lake, hour_dir, checkpoint)
            ):
                compacted.append(result)
    return compacted


def compaction_lock(lake: Lake) -> AbstractContextManager[None]:
    """One compaction at a time per lake (the CLI and the Dagster schedule may both run one)."""
    return exclusive(lake.local_root() / lake.compaction_lock_file)


def _batch_of(file: Path) -> int:
    batch = batch_of(file.name)
    if batch is None:
        raise PlatformError(f"unexpected file in the lake: {file}")
    return batch


def _is_committed(file: Path, committed: int | None) -> bool:
    if is_compacted(file.name):
        return True
    return committed is not None and _batch_of(file) <= committed

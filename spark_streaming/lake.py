"""The lake's commit protocol: readers that list files see only complete, committed, unique files.

Spark's file sink is exactly-once only for readers of its ``_spark_metadata`` log; a DuckDB glob or a
Glue/Athena table over a prefix would see partial files and files of batches that were retried. So each
micro-batch is written by Spark to a private staging prefix, then *published*: every staged file is renamed
(atomic on a local file system) to a name derived from the batch id alone, ``part-b<batch>.parquet``, one per
partition directory. A batch replayed after a crash has the same Kafka offsets (Spark's offset log), so it
rewrites the same names with the same records: a replay replaces, it never adds. See docs/streaming.md.

Compaction rewrites an hour's files of *committed* batches into one file and swaps the directory with an
atomic exchange (``renameat2(RENAME_EXCHANGE)``), so a reader sees the old hour or the new one, never both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from smartcity.atomic import exchange, write_json_atomically
from smartcity.errors import PlatformError

_BATCH_FILE = re.compile(r"^part-b(\d{12})(?:-\d+)?\.parquet$")
_COMPACTED_FILE = re.compile(r"^compacted-b(\d{12})\.parquet$")


def local_root(uri: str) -> Path:
    """The local directory of a lake or checkpoint URI; S3 publishing comes with the aws profile."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else uri).resolve()
    raise PlatformError(
        f"the streaming commit protocol supports a local lake for now, not {uri!r}; "
        "S3 publishing (copy to batch-derived keys) is part of the aws profile work"
    )


def batch_file_name(batch_id: int, index: int = 0) -> str:
    return f"part-b{batch_id:012d}.parquet" if index == 0 else f"part-b{batch_id:012d}-{index}.parquet"


@dataclass(frozen=True)
class Lake:
    """The lake's zones under one root directory."""

    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def staging(self) -> Path:
        return self.root / "_staging"

    @property
    def batches(self) -> Path:
        """One JSON manifest per published batch: rows per table and partition, quarantine reasons."""
        return self.root / "_stream" / "batches"

    def stage(self, batch_id: int) -> Path:
        return self.staging / f"batch-{batch_id:012d}"

    @property
    def intents(self) -> Path:
        """Per batch, the files its publication will create: what a replay of that batch takes back first."""
        return self.root / "_stream" / "intents"

    def plan(self, staged: Path, target: Path, batch_id: int) -> list[tuple[Path, Path]]:
        """(staged file, final file) for every staged Parquet file, named after the batch alone."""
        moves = []
        for directory in sorted({file.parent for file in staged.rglob("*.parquet")}):
            destination = target / directory.relative_to(staged)
            for index, file in enumerate(sorted(directory.glob("*.parquet"))):
                moves.append((file, destination / batch_file_name(batch_id, index)))
        return moves

    def publish(self, batch_id: int, moves: list[tuple[Path, Path]]) -> None:
        """Record the intent, then rename each staged file into place (each rename is atomic)."""
        write_json_atomically(self.intents / f"{batch_id:012d}.json", [str(final) for _, final in moves])
        for staged, final in moves:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, final)

    def undo_publish(self, batch_id: int) -> list[Path]:
        """Delete what an earlier, uncommitted attempt of ``batch_id`` published; return the deleted files."""
        intent = self.intents / f"{batch_id:012d}.json"
        if not intent.exists():
            return []
        removed = [Path(name) for name in json.loads(intent.read_text())]
        for file in removed:
            file.unlink(missing_ok=True)
        intent.unlink()
        return removed

    def forget_intents(self, before: int) -> None:
        """Intents of committed batches are no longer needed: a committed batch is never replayed."""
        for intent in self.intents.glob("*.json") if self.intents.exists() else []:
            if int(intent.stem) < before:
                intent.unlink(missing_ok=True)

    def write_manifest(self, batch_id: int, manifest: dict) -> None:
        write_json_atomically(self.batches / f"{batch_id:012d}.json", manifest)

    def manifests(self) -> list[dict]:
        if not self.batches.exists():
            return []
        return [json.loads(path.read_text()) for path in sorted(self.batches.glob("*.json"))]


def row_counts(files: Iterable[Path], root: Path) -> dict[str, int]:
    """Rows per partition directory (relative to ``root``), read from the Parquet footers only."""
    counts: dict[str, int] = {}
    for file in files:
        key = str(file.parent.relative_to(root))
        counts[key] = counts.get(key, 0) + pq.ParquetFile(file).metadata.num_rows
    return counts


def quarantine_reasons(files: Iterable[Path], root: Path) -> dict[str, int]:
    """Quarantined rows per ``<topic>/<reason>``, read from the published quarantine files."""
    counts: dict[str, int] = {}
    for file in files:
        topic = file.relative_to(root).parts[0]
        for reason in pq.ParquetFile(file).read(columns=["reason"]).column("reason").to_pylist():
            counts[f"{topic}/{reason}"] = counts.get(f"{topic}/{reason}", 0) + 1
    return counts


def last_committed_batch(checkpoint: Path) -> int | None:
    """The newest batch id in Spark's commit log (``<checkpoint>/commits/<id>``), or None."""
    commits = checkpoint / "commits"
    ids = [int(path.name) for path in commits.glob("*") if path.name.isdigit()] if commits.exists() else []
    return max(ids, default=None)


def compact_hour(lake: Lake, hour_dir: Path, checkpoint: Path) -> Path | None:
    """Rewrite the committed batch files of one hour directory as one file; readers see old or new, never both.

    Files of batches not yet in Spark's commit log are left alone (a replay may rewrite them) and carried over.
    Returns the compacted file, or None when there was nothing to compact.
    """
    committed = last_committed_batch(checkpoint)
    files = sorted(hour_dir.glob("*.parquet"))
    inputs = [f for f in files if _is_committed(f, committed)]
    if len(inputs) < 2:
        return None
    newest = max(_batch_of(f) for f in inputs)
    staging = lake.staging / f"compact-{os.getpid()}-{time.monotonic_ns()}"
    new_dir = staging / hour_dir.name
    new_dir.mkdir(parents=True)
    table = pa.concat_tables([pq.ParquetFile(f).read() for f in inputs], promote_options="default")
    compacted = new_dir / f"compacted-b{newest:012d}.parquet"
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


def _batch_of(file: Path) -> int:
    match = _BATCH_FILE.match(file.name) or _COMPACTED_FILE.match(file.name)
    if match is None:
        raise PlatformError(f"unexpected file in the lake: {file}")
    return int(match.group(1))


def _is_committed(file: Path, committed: int | None) -> bool:
    if _COMPACTED_FILE.match(file.name):
        return True
    return committed is not None and _batch_of(file) <= committed

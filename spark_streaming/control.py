"""Operate the ingestion stream: run it in the foreground or background, stop it gracefully, report its state."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from smartcity.errors import PlatformError
from smartcity.kafka.admin import topic_offsets
from smartcity.processes import graceful_stop, live_pid, spawn, terminate
from smartcity.settings import Settings
from spark_streaming.lake import compact_hour, compaction_lock, last_committed_batch, recover_compactions

log = logging.getLogger(__name__)
MARKER = "spark_streaming"


def pid_file(settings: Settings) -> Path:
    return settings.paths.stream / "stream.pid"


def log_file(settings: Settings) -> Path:
    return settings.paths.logs / "stream.log"


def running_pid(settings: Settings) -> int | None:
    """The pid of the stream (background or foreground) if it is alive (a stale pid file is removed)."""
    return live_pid(pid_file(settings), MARKER)


def run_foreground(settings: Settings, available_now: bool) -> None:
    from spark_streaming.job import run_stream

    settings.paths.ensure()
    own_pid = str(os.getpid())
    if (other := running_pid(settings)) is not None and str(other) != own_pid:
        raise PlatformError(
            f"a stream already runs (pid {other}) on this checkpoint; two queries on one checkpoint would corrupt "
            "it. Stop it first with `smartcity stream stop`."
        )
    pid_file(settings).write_text(own_pid)  # so `stream status` and `stream stop` find a foreground run too
    try:
        with graceful_stop() as stop:  # SIGTERM/SIGINT: the running batch commits, then the query stops
            run_stream(settings, available_now, stop)
    finally:
        if pid_file(settings).exists() and pid_file(settings).read_text() == own_pid:
            pid_file(settings).unlink()


def start_background(settings: Settings, timeout: float = 180.0) -> tuple[int, bool]:
    """Start the continuous stream as a background process; return (pid, already running)."""
    settings.paths.ensure()
    pid = running_pid(settings)
    if pid is not None:
        return pid, True
    heartbeat = settings.paths.stream / "heartbeat.json"
    heartbeat.unlink(missing_ok=True)
    process = spawn([sys.executable, "-m", MARKER, "--mode", "continuous"], log_file(settings))
    pid_file(settings).write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pid_file(settings).unlink(missing_ok=True)
            tail = "\n".join(log_file(settings).read_text(errors="replace").splitlines()[-15:])
            raise PlatformError(f"the stream exited during start-up (status {process.returncode}):\n{tail}")
        if heartbeat.exists() and json.loads(heartbeat.read_text()).get("pid") == process.pid:
            return process.pid, False
        time.sleep(0.5)
    raise PlatformError(f"the stream did not start within {timeout:.0f}s; see {log_file(settings)}")


def stop_background(settings: Settings, timeout: float = 120.0) -> int | None:
    """Ask the background stream to stop after its running batch; SIGKILL only if it ignores that."""
    pid = running_pid(settings)
    if pid is None:
        return None
    terminate(pid, pid_file(settings), timeout, "stream")
    return pid


@dataclass
class StreamStatus:
    pid: int | None
    last_batch: int | None
    last_commit_age_s: float | None
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    end_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    raw_rows: Counter = field(default_factory=Counter)
    quarantined: Counter = field(default_factory=Counter)

    @property
    def lag(self) -> dict[tuple[str, int], int]:
        return {key: end - self.committed.get(key, 0) for key, end in self.end_offsets.items()}


def committed_offsets(checkpoint: Path, batch_id: int | None) -> dict[tuple[str, int], int]:
    """The Kafka end offsets (exclusive) that batch ``batch_id`` read up to, from Spark's offset log."""
    if batch_id is None:
        return {}
    lines = (checkpoint / "offsets" / str(batch_id)).read_text().splitlines()
    offsets = json.loads(lines[-1])  # v1 / metadata / one line per source
    return {(topic, int(p)): int(o) for topic, parts in offsets.items() for p, o in parts.items()}


def stream_status(settings: Settings) -> StreamStatus:
    from spark_streaming.job import StreamPaths

    paths = StreamPaths.of(settings)
    last = last_committed_batch(paths.checkpoint)
    age = time.time() - (paths.checkpoint / "commits" / str(last)).stat().st_mtime if last is not None else None
    status = StreamStatus(pid=running_pid(settings), last_batch=last, last_commit_age_s=age,
                          committed=committed_offsets(paths.checkpoint, last))  # fmt: skip
    status.end_offsets = {(row.topic, row.partition): row.high for row in topic_offsets(settings)}
    for manifest in paths.lake.manifests():
        for partition, count in manifest["raw_rows"].items():  # "<topic>/event_date=…/event_hour=…"
            status.raw_rows[partition.split("/", 1)[0]] += count
        for key, count in manifest["quarantine_rows"].items():
            status.quarantined[key] += count
    return status


def compact(settings: Settings, min_files: int = 2) -> list[Path]:
    """Compact every raw and quarantine hour directory holding at least ``min_files`` committed batch files."""
    from spark_streaming.job import StreamPaths

    paths = StreamPaths.of(settings)
    root = paths.lake.local_root()
    compacted = []
    with compaction_lock(paths.lake):
        for moved in recover_compactions(paths.lake):
            log.warning("moved %s back into the lake: an interrupted compaction had stranded it", moved)
        hour_dirs = [
            *sorted((root / paths.lake.raw).glob("*/event_date=*/event_hour=*")),
            *sorted((root / paths.lake.quarantine).glob("*/ingest_date=*/ingest_hour=*")),
        ]
        for hour_dir in hour_dirs:
            if len(list(hour_dir.glob("*.parquet"))) >= min_files and (result := compact_hour(
                paths.lake, hour_dir, paths.checkpoint
            )):  # fmt: skip
                compacted.append(result)
    return compacted

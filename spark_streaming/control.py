"""Operate the ingestion stream: the platform service that runs it, a run in the foreground, its state, and the
compaction of what it landed."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from smartcity.atomic import exclusive
from smartcity.errors import PlatformError
from smartcity.kafka.admin import topic_offsets
from smartcity.processes import graceful_stop
from smartcity.services import Service
from smartcity.settings import Settings
from spark_streaming.lake import last_committed_batch
from spark_streaming.paths import StreamPaths

if TYPE_CHECKING:
    from spark_streaming.job import BatchListener

log = logging.getLogger(__name__)
MARKER = "spark_streaming"


def stream_service(settings: Settings) -> Service:
    """The continuous stream as a platform service: ready once its query runs (its heartbeat names its pid)."""
    return Service(
        name="stream",
        title="stream",
        summary=f"Kafka → {settings.lake} (smartcity stream status)",
        paths=settings.paths,
        command=lambda: [sys.executable, "-m", MARKER, "--mode", "continuous"],
        markers=(MARKER,),
        by_hand=("smartcity", "stream", "start"),
        ready=lambda pid: StreamPaths.of(settings).heartbeat_pid() == pid,
        stop_timeout=120.0,
        needs=("kafka",),
    )


def run_foreground(
    settings: Settings, available_now: bool, on_batch: BatchListener | None = None, quiet_jvm: bool = False
) -> None:
    """Run the stream in this process until stopped (or, ``available_now``, until Kafka is drained); ``on_batch`` is
    told of each committed batch; ``quiet_jvm`` sends the JVM's own output to the stream's log file."""
    from spark_streaming.job import run_stream

    settings.paths.ensure()
    service, own_pid = stream_service(settings), os.getpid()
    with exclusive(settings.paths.run / "stream.lock", wait=False) as sole:  # held for the stream's whole life
        if not sole:
            other = service.pid()
            holder = f"(pid {other})" if other is not None else "(it holds var/run/stream.lock)"
            raise PlatformError(
                f"a stream already runs {holder} on this checkpoint; two queries on one checkpoint would corrupt "
                "it. Stop it first with `smartcity stream stop`."
            )
        service.pid_file.write_text(str(own_pid))  # so `stream status` and `stream stop` find a foreground run too
        try:
            with graceful_stop() as stop:  # SIGTERM/SIGINT: the running batch commits, then the query stops
                run_stream(settings, available_now, stop, on_batch, service.log_file if quiet_jvm else None)
        finally:
            if service.pid_file.exists() and service.pid_file.read_text() == str(own_pid):
                service.pid_file.unlink()


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
    paths = StreamPaths.of(settings)
    last = last_committed_batch(paths.checkpoint)
    age = time.time() - (paths.checkpoint / "commits" / str(last)).stat().st_mtime if last is not None else None
    status = StreamStatus(pid=stream_service(settings).pid(), last_batch=last, last_commit_age_s=age,
                          committed=committed_offsets(paths.checkpoint, last))  # fmt: skip
    status.end_offsets = {(row.topic, row.partition): row.high for row in topic_offsets(settings)}
    for manifest in paths.lake.manifests():
        for partition, count in manifest["raw_rows"].items():  # "<topic>/event_date=…/event_hour=…"
            status.raw_rows[partition.split("/", 1)[0]] += count
        for key, count in manifest["quarantine_rows"].items():
            status.quarantined[key] += count
    return status

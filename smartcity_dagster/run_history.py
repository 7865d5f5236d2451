"""Bounded run history: finished Dagster runs older than ``SMARTCITY_RUN_HISTORY_DAYS`` are deleted with their
event logs and captured output.

The lake sensor starts a run every few stream batches, and each run keeps its event log (on SQLite one database
file per run, a few hundred KB) and its captured stdout/stderr, so an instance grows by gigabytes a week. Dagster
purges only sensor and schedule ticks by itself. Nothing that decides what to run reads older history: the lake
sensor keeps its own cursor and automation looks back ``SMARTCITY_LATE_DATA_DAYS`` (the settings require the
history to be longer). Runs still queued or in progress are never touched.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
BATCH = 500


@dataclass(frozen=True)
class Purged:
    runs: int
    bytes_freed: int
    """Under the instance's directory: SQLite event logs and captured output (0 for what lives in a database)."""


def purge_runs_before(instance: dg.DagsterInstance, cutoff: datetime) -> Purged:
    """Delete every finished run created before ``cutoff``, with its events and captured output."""
    root = Path(instance.root_directory)
    used = _disk_use(root)
    runs = 0
    while records := instance.get_run_records(
        filters=dg.RunsFilter(statuses=FINISHED, created_before=cutoff), limit=BATCH
    ):
        for record in records:
            _delete(instance, record.dagster_run.run_id)
            runs += 1
    return Purged(runs, max(used - _disk_use(root), 0))


def _delete(instance: dg.DagsterInstance, run_id: str) -> None:
    """The run, its events, and what ``delete_run`` leaves on disk: the emptied per-run SQLite file, the output."""
    instance.delete_run(run_id)
    if isinstance(instance.event_log_storage, SqliteEventLogStorage):
        shard = Path(instance.event_log_storage.path_for_shard(run_id))
        for path in (shard, *(shard.with_name(shard.name + suffix) for suffix in ("-wal", "-shm"))):
            path.unlink(missing_ok=True)
    if isinstance(instance.compute_log_manager, LocalComputeLogManager):
        instance.compute_log_manager.delete_logs(prefix=[run_id])


def _disk_use(root: Path) -> int:
    total = 0
    for file in root.rglob("*"):
        with contextlib.suppress(OSError):  # a file a running run removes meanwhile
            if file.is_file():
                total += file.stat().st_size
    return total

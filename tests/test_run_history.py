"""Run history retention: finished runs older than the cutoff go with their event logs and captured output; runs
still queued, newer runs and what automation reads (the latest materialization) stay."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from smartcity.settings import ConfigError, load_settings
from smartcity_dagster.run_history import purge_runs_before


@dg.asset
def counted() -> int:
    print("captured output of the step")  # what the compute log manager keeps per run
    return 1


def on_disk(instance: dg.DagsterInstance, run_id: str) -> list[Path]:
    """The per-run files of a local instance: the SQLite event log and the captured output."""
    root = Path(instance.root_directory)
    return [path for path in (root / "history" / "runs" / f"{run_id}.db", root / "storage" / run_id) if path.exists()]


def size(paths: list[Path]) -> int:
    files = [file for path in paths for file in ([path] if path.is_file() else path.rglob("*")) if file.is_file()]
    return sum(os.path.getsize(file) for file in files)


def test_finished_runs_before_the_cutoff_go_with_their_files_and_the_rest_stays(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.local_temp(tempdir=str(tmp_path))
    running = instance.add_run(dg.DagsterRun(job_name="in_progress", run_id=str(uuid.uuid4()),
                                            status=dg.DagsterRunStatus.STARTED))  # fmt: skip
    old = [dg.materialize([counted], instance=instance).run_id for _ in range(3)]
    cutoff = datetime.now(UTC)
    newer = dg.materialize([counted], instance=instance).run_id
    old_files = [path for run_id in old for path in on_disk(instance, run_id)]
    expected_freed = size(old_files)
    assert len(old_files) == 6 and len(on_disk(instance, newer)) == 2

    purged = purge_runs_before(instance, cutoff)

    assert purged.runs == 3
    assert {record.dagster_run.run_id for record in instance.get_run_records()} == {running.run_id, newer}
    assert [path for path in old_files if path.exists()] == []
    assert purged.bytes_freed == expected_freed > 0
    assert len(on_disk(instance, newer)) == 2
    assert instance.get_latest_materialization_event(counted.key).run_id == newer
    assert purge_runs_before(instance, cutoff).runs == 0


def test_history_shorter_than_the_late_data_window_is_refused() -> None:
    with pytest.raises(ConfigError, match="SMARTCITY_RUN_HISTORY_DAYS=3 must be more than SMARTCITY_LATE_DATA_DAYS=3"):
        load_settings(run_history_days=3, late_data_days=3)

"""The run-worker watchdog: a run whose worker process died is marked failed, so it is retried.

A killed daemon takes its code server and the run workers it started with it (one process group), and the
operating system may kill a worker on its own (out of memory). Dagster's default run launcher cannot check a
worker's health, so run monitoring would leave such a run STARTED, holding its pool slots and blocking every
later run of the pool, until its maximum runtime. Each run logs its worker's pid ("Started process for run");
on this single machine, a pid that no longer runs means a dead worker. The run is failed, its pool slots
freed, and run retries (``run_retries`` in dagster.yaml) re-execute it.
"""

import dagster as dg

from smartcity.processes import is_alive

WORKER_STARTED = "Started process for run"


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the run's worker, from its engine event; None before the worker has started."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        if event is None or not entry.message.startswith(WORKER_STARTED):
            continue
        pid = event.engine_event_data.metadata.get("pid")
        if pid is not None:
            return int(pid.value)
    return None


def fail_runs_with_dead_workers(instance: dg.DagsterInstance) -> list[str]:
    """Mark every STARTED run whose worker no longer runs as failed; the ids of those runs."""
    failed = []
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        pid = worker_pid(instance, run.run_id)
        if pid is None or is_alive(pid):
            continue
        latest = instance.get_run_by_id(run.run_id)
        if latest is None or latest.status != dg.DagsterRunStatus.STARTED:  # it finished while we looked
            continue
        instance.report_run_failed(
            run, f"the run worker (pid {pid}) is gone: its process was killed (daemon or code server crash?)"
        )
        # The worker is dead, so its pool slots are free now; the daemon would otherwise free them a poll later.
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        failed.append(run.run_id)
    return failed


@dg.sensor(
    name="run_worker_watchdog",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks runs whose worker process died as failed, so their pool slots free and run retries "
    "re-execute them (the default run launcher cannot see a dead worker).",
)
def run_worker_watchdog(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    failed = fail_runs_with_dead_workers(context.instance)
    for run_id in failed:
        context.log.warning("run %s: worker gone, marked failed for retry", run_id)
    return dg.SkipReason(f"{len(failed)} run(s) with a dead worker marked failed" if failed else "all workers alive")

"""Running the asset graph in tests: every executable step (catalog → warehouse) for a range of hours, one run."""

from __future__ import annotations

import dagster as dg

from smartcity_dagster.assets.groups import STEPS
from smartcity_dagster.partitions import hours_of_range

REBUILD = {"ops": {"processed_tables": {"config": {"rebuild": True}}}}  # run config: rebuild processed hours


def run_graph(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    first: str,
    last: str | None = None,
    raise_on_error: bool = True,
    run_config: dict | None = None,
    steps: tuple[str, ...] = STEPS,
) -> dg.ExecuteInProcessResult:
    """Materialize the hours ``first``..``last`` (partition keys) of ``steps`` as one run, as a single-run backfill
    does."""
    selection = [key for key in defs.resolve_asset_graph().get_all_asset_keys() if key.path[0] in steps]
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last or first}
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=selection, tags=tags, raise_on_error=raise_on_error, run_config=run_config
    )


def sensor_hours(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[str]:
    """Every hour (partition key) the lake sensor's first tick requests, its ranges expanded."""
    with dg.build_sensor_context(instance=instance, resources={"lake": defs.resources["lake"]}) as context:
        requests = defs.get_sensor_def("raw_lake_sensor")(context).run_requests or []
    ranges = [request.partition_key_range for request in requests]
    return sorted({hour.key for r in ranges for hour in hours_of_range(r.start, r.end)})

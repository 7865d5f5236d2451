"""The Dagster definitions load, both in-process and through workspace.yaml as the webserver loads them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster_dbt import DbtCliResource

from smartcity.errors import ConfigError
from smartcity.platform import dagster_environment
from smartcity.settings import PROJECT_ROOT, Settings
from smartcity_dagster.assets.gold import SOURCES_FILE, dbt_project, dbt_resource, render_sources
from smartcity_dagster.definitions import STEPS, build_definitions
from tests.conftest import isolated_environment, settings_from

GROUPS = {"ingestion", "catalog", "processed", "gold", "warehouse"}


def test_every_asset_is_described_grouped_owned_and_hourly(settings: Settings) -> None:
    graph = build_definitions(settings).resolve_asset_graph()
    streams = set(settings.topics)
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    for prefix in ("kafka", "raw", "catalog/raw", "processed"):
        assert {f"{prefix}/{stream}" for stream in streams} <= keys
    gold = {
        "traffic_hourly",
        "fleet_hourly",
        "weather_hourly",
        "incidents_hourly",
        "vehicle_trips",
        "events_hourly",
        "incident_events",
    }
    assert {f"gold/{m}" for m in gold} | {f"warehouse/{m}" for m in gold} <= keys
    for node in graph.asset_nodes:
        assert node.description and node.group_name in GROUPS and node.owners and node.kinds, node.key
        if node.key.path[0] != "kafka":
            assert isinstance(node.partitions_def, dg.HourlyPartitionsDefinition), node.key


def test_gold_and_warehouse_run_by_automation_and_gold_has_freshness(settings: Settings) -> None:
    graph = build_definitions(settings).resolve_asset_graph()
    for node in graph.asset_nodes:
        automated = node.automation_condition is not None
        assert automated == (node.group_name in ("gold", "warehouse")), node.key
        if node.group_name == "gold":
            assert node.freshness_policy is not None


def test_dbt_sources_are_generated_from_the_contracts() -> None:
    assert SOURCES_FILE.read_text() == render_sources(), "regenerate models/sources.yml with render_sources()"


def test_workspace_validates_with_the_dagster_cli(settings: Settings) -> None:
    environment = dagster_environment(settings)
    assert os.path.exists(os.path.join(environment["DAGSTER_HOME"], "dagster.yaml"))
    command = [sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(PROJECT_ROOT / "workspace.yaml")]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_sensors_and_schedules_are_on_by_default(settings: Settings) -> None:
    defs = build_definitions(settings)
    sensors = {sensor.name: sensor.default_status for sensor in defs.sensors}
    assert sensors == {
        "raw_lake_sensor": dg.DefaultSensorStatus.RUNNING,
        "gold_and_warehouse_automation": dg.DefaultSensorStatus.RUNNING,
        "run_worker_watchdog": dg.DefaultSensorStatus.RUNNING,
    }
    schedules = {schedule.job_name: schedule.default_status for schedule in defs.schedules}
    assert schedules == {
        "retention_job": dg.DefaultScheduleStatus.RUNNING,
        "compaction_job": dg.DefaultScheduleStatus.RUNNING,
    }


def test_the_lake_sensor_runs_every_step_from_catalog_to_warehouse(settings: Settings) -> None:
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    (target,) = defs.get_sensor_def("raw_lake_sensor").targets
    targeted = target.resolvable_to_job.selection.resolve(graph)
    computed = {node.key for node in graph.asset_nodes if node.is_materializable}
    assert targeted == computed and {key.path[0] for key in targeted} == set(STEPS)


def test_an_s3_lake_is_refused_with_what_is_missing(settings: Settings) -> None:
    on_s3 = settings.model_copy(update={"lake_uri": "s3://city-lake/lake"})
    with pytest.raises(ConfigError, match="the aws profile\\) are not built yet"):
        build_definitions(on_s3)


def test_code_servers_loading_at_once_share_one_whole_dbt_manifest(tmp_path: Path) -> None:
    """The daemon's and the UI's code servers load the definitions together on a fresh var/: before the parse
    lock, both parsed into the same manifest.json and the interleaved file broke every later code load."""
    environment = isolated_environment(tmp_path / "var")
    load = "import logging, orjson; logging.basicConfig(level=logging.INFO); from smartcity.settings import "
    load += "load_settings; from smartcity_dagster.assets.gold import dbt_project; "
    load += "orjson.loads(dbt_project(load_settings()).manifest_path.read_bytes())"
    loaders = [subprocess.Popen([sys.executable, "-c", load], env={**os.environ, **environment},
                                stderr=subprocess.PIPE, text=True) for _ in range(3)]  # fmt: skip
    errors = [loader.communicate(timeout=300)[1] for loader in loaders]
    assert [loader.returncode for loader in loaders] == [0, 0, 0], errors
    assert sum("parsing the dbt project" in error for error in errors) == 1, "one parses, the others wait for it"
    dbt_dir = settings_from(environment).paths.dbt
    assert not list(dbt_dir.glob("parse-*")), "a parse's staging directory was left behind"


def test_the_dbt_version_handed_to_dagster_dbt_is_what_the_executable_reports(settings: Settings) -> None:
    assert "_cli_version" in vars(DbtCliResource), "dagster-dbt no longer asks for the version: drop the override"
    resource = dbt_resource(dbt_project(settings))
    reported = subprocess.run([resource.dbt_executable, "--version"], capture_output=True, text=True, check=True)
    assert f"installed: {resource._cli_version}" in reported.stdout, reported.stdout

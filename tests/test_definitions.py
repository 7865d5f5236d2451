"""The Dagster definitions load, both in-process and through workspace.yaml as the webserver loads them, for every
profile from one code location."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
from abc import ABC
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster_dbt import DbtCliResource

from smartcity.errors import ConfigError
from smartcity.settings import PROJECT_ROOT, Settings
from smartcity_aws.access import names
from smartcity_dagster.assets.gold import SOURCES_FILE, render_sources
from smartcity_dagster.assets.groups import STEPS
from smartcity_dagster.assets.keys import LAKE_COST_KEY
from smartcity_dagster.definitions import RESOURCE_KEYS, build_definitions
from smartcity_dagster.resources import dbt
from smartcity_dagster.resources.athena import AthenaQueryEngine
from smartcity_dagster.resources.catalog import GlueCatalog
from smartcity_dagster.resources.dbt import GoldDbt, dbt_project, gold_dbt, loadable_project, prepare_dbt_project
from smartcity_dagster.resources.glue import GlueDataCatalog
from smartcity_dagster.resources.lake import LakeStorage
from smartcity_dagster.resources.query_engine import QueryEngine
from smartcity_dagster.resources.s3_lake import S3Lake
from smartcity_dagster.resources.spark import ProcessingSpark
from smartcity_dagster.resources.warehouse import Warehouse
from smartcity_dagster.services import prepare_instance

GROUPS = {"ingestion", "catalog", "processed", "gold", "warehouse", "cost"}


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
        if node.key.path[0] not in ("kafka", "cost"):
            assert isinstance(node.partitions_def, dg.HourlyPartitionsDefinition), node.key


def test_gold_and_warehouse_run_by_automation_and_gold_has_freshness(settings: Settings) -> None:
    graph = build_definitions(settings).resolve_asset_graph()
    for node in graph.asset_nodes:
        automated = node.automation_condition is not None
        assert automated == (node.group_name in ("gold", "warehouse")), node.key
        if node.group_name == "gold":
            assert node.freshness_policy is not None


def test_dbt_does_not_send_usage_statistics() -> None:
    from dbt.config.project import read_project_flags

    assert read_project_flags(str(dbt.DBT_PROJECT_DIR), "/nonexistent").send_anonymous_usage_stats is False


def test_dbt_sources_are_generated_from_the_contracts() -> None:
    assert SOURCES_FILE.read_text() == render_sources(), "regenerate models/sources.yml with render_sources()"


def test_workspace_validates_with_the_dagster_cli(settings: Settings) -> None:
    environment = {**os.environ, "DAGSTER_HOME": str(prepare_instance(settings))}
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
        "run_history_job": dg.DefaultScheduleStatus.RUNNING,
        "lake_cost_job": dg.DefaultScheduleStatus.RUNNING,
    }


def test_the_lake_sensor_runs_every_step_from_catalog_to_warehouse(settings: Settings) -> None:
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    (target,) = defs.get_sensor_def("raw_lake_sensor").targets
    targeted = target.resolvable_to_job.selection.resolve(graph)
    pipeline = {node.key for node in graph.asset_nodes if node.is_materializable and node.key.path[0] in STEPS}
    # The cost report is daily and lists the whole lake: a new batch must not run it.
    assert targeted == pipeline and {key.path[0] for key in targeted} == set(STEPS)
    assert {node.key for node in graph.asset_nodes if node.is_materializable} - pipeline == {LAKE_COST_KEY}


INTERFACES = {"lake": LakeStorage, "catalog": GlueCatalog, "athena": QueryEngine, "warehouse": Warehouse,
              "pyspark": ProcessingSpark, "dbt": GoldDbt}  # fmt: skip
"""What the assets are typed against, by resource key: a profile provides an implementation of each."""


def _double(interface: type) -> object:
    """A stand-in that is an instance of ``interface`` and implements nothing."""
    if interface is ProcessingSpark:
        return ProcessingSpark(local_config={}, connect_config={}, server_var_dir="/nonexistent", server_port=1)
    if interface is GoldDbt:
        return GoldDbt(project_dir=str(dbt.DBT_PROJECT_DIR), runs_dir="/nonexistent", target="aws",
                       dbt_executable=sys.executable)  # fmt: skip
    double = type(f"Double{interface.__name__}", (interface,), {})
    double.__abstractmethods__ = frozenset()
    return double()


def aws_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"profile": "aws", "lake_uri": "s3://city-lake/lake"})


def test_the_aws_profile_builds_the_same_graph_from_the_same_asset_code(settings: Settings) -> None:
    local = build_definitions(settings)
    doubles = {key: _double(interface) for key, interface in INTERFACES.items()}
    aws = build_definitions(aws_settings(settings), resources=doubles)
    assert set(INTERFACES) == set(RESOURCE_KEYS) == set(local.resources)
    local_graph, aws_graph = local.resolve_asset_graph(), aws.resolve_asset_graph()
    assert aws_graph.get_all_asset_keys() == local_graph.get_all_asset_keys()
    assert aws_graph.asset_check_keys == local_graph.asset_check_keys
    for node in aws_graph.asset_nodes:
        assert node.group_name == local_graph.get(node.key).group_name, node.key
    for key, resource in local.resources.items():
        assert isinstance(resource, INTERFACES[key]), f"the local {key} does not implement {INTERFACES[key]}"


def test_every_step_is_typed_against_interfaces_not_a_local_implementation(settings: Settings) -> None:
    """A step whose parameter names a local class would break on another profile's resources: only interfaces."""
    defs = build_definitions(settings)
    steps = [assets.op for assets in defs.assets if isinstance(assets, dg.AssetsDefinition) and assets.is_executable]
    ops = [job for job in defs.jobs if isinstance(job, dg.JobDefinition)]  # the maintenance ops; not asset jobs
    steps += [node for job in ops for node in job.graph.node_defs]
    for step in steps:
        for name, parameter in inspect.signature(step.compute_fn.decorated_fn).parameters.items():
            if name in RESOURCE_KEYS:
                annotation = getattr(parameter.annotation, "__name__", parameter.annotation)  # a class or its name
                assert annotation == INTERFACES[name].__name__, (step.name, name, annotation)
                interface = INTERFACES[name]
                assert interface in (ProcessingSpark, GoldDbt) or ABC in interface.__mro__, interface


def test_the_aws_profile_builds_on_s3_and_the_glue_catalog(settings: Settings) -> None:
    """No service is reached while the definitions load: the webserver can show the aws graph before the lake exists."""
    aws = aws_settings(settings)
    resources = build_definitions(aws).resources
    assert isinstance(resources["lake"], S3Lake) and resources["lake"].root == "s3://city-lake/lake"
    assert isinstance(resources["catalog"], GlueDataCatalog)
    assert resources["catalog"].database == names(aws)["database"]
    assert resources["dbt"].target == "aws"
    assert resources["dbt"].build_location == "s3://city-lake/lake/_staging/gold-build"
    assert isinstance(resources["athena"], AthenaQueryEngine) and resources["athena"].trino_url is None
    athena = yaml.safe_load((aws.paths.dbt / "profiles.yml").read_text())["smartcity"]["outputs"]["aws"]
    assert athena["type"] == "athena" and athena["work_group"] == names(aws)["workgroup"]
    assert athena["s3_staging_dir"] == aws.athena_results and athena["schema"] == names(aws)["database"]


def test_a_trino_url_puts_trino_in_the_place_of_athena(settings: Settings) -> None:
    aws = aws_settings(settings).model_copy(update={"trino_url": "http://127.0.0.1:8089"})
    assert build_definitions(aws).resources["athena"].trino_url == "http://127.0.0.1:8089"
    trino = yaml.safe_load((aws.paths.dbt / "profiles.yml").read_text())["smartcity"]["outputs"]["aws"]
    assert (trino["type"], trino["host"], trino["port"], trino["database"]) == ("trino", "127.0.0.1", 8089,
                                                                                "awsdatacatalog")  # fmt: skip


def test_an_s3_lake_on_the_local_profile_is_refused_naming_the_profile(settings: Settings) -> None:
    on_s3 = settings.model_copy(update={"lake_uri": "s3://city-lake/lake"})
    with pytest.raises(ConfigError, match="An S3 lake is the aws profile's"):
        build_definitions(on_s3)


@pytest.fixture
def dbt_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the dbt project without a manifest, in place of the project's own."""
    copy = tmp_path / "dbt_project"
    shutil.copytree(dbt.DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    monkeypatch.setattr(dbt, "DBT_PROJECT_DIR", copy)
    return copy


def test_definitions_need_a_prepared_manifest_and_setup_prepares_it_once(settings: Settings, dbt_copy: Path) -> None:
    with pytest.raises(ConfigError, match=r"dbt manifest .* is missing: run `smartcity setup`"):
        loadable_project(settings)
    assert prepare_dbt_project(settings), "the first preparation parses"
    manifest = dbt_project(settings).manifest_path
    assert manifest.is_relative_to(dbt_copy) and loadable_project(settings).manifest_path == manifest
    parsed_at = manifest.stat().st_mtime
    assert not prepare_dbt_project(settings), "a current manifest is not parsed again"
    model = next((dbt_copy / "models").rglob("*.sql"))
    os.utime(model, (parsed_at + 5, parsed_at + 5))
    assert prepare_dbt_project(settings), "an edited model makes the manifest stale"


def test_code_servers_only_read_the_manifest(settings: Settings) -> None:
    """The daemon's and the UI's code servers load the definitions together: they must not write the manifest
    (two parses into one file once broke every later code load)."""
    manifest = dbt_project(settings).manifest_path
    before = manifest.stat().st_mtime_ns
    load = "from smartcity_dagster.definitions import defs; defs.resolve_asset_graph()"
    loaders = [subprocess.Popen([sys.executable, "-c", load], stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [loader.communicate(timeout=300)[1] for loader in loaders]
    assert [loader.returncode for loader in loaders] == [0, 0], errors
    assert manifest.stat().st_mtime_ns == before


def test_the_dbt_version_handed_to_dagster_dbt_is_what_the_executable_reports(settings: Settings) -> None:
    assert "_cli_version" in vars(DbtCliResource), "dagster-dbt no longer asks for the version: drop the override"
    resource = gold_dbt(settings, dbt_project(settings), target="local")
    reported = subprocess.run([resource.dbt_executable, "--version"], capture_output=True, text=True, check=True)
    assert f"installed: {resource._cli_version}" in reported.stdout, reported.stdout

"""The Dagster definitions load, both in-process and through workspace.yaml as the webserver loads them."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg

from smartcity.platform import dagster_environment
from smartcity.settings import PROJECT_ROOT, Settings
from smartcity_dagster.definitions import defs


def test_definitions_resolve_with_the_kafka_topics(settings: Settings) -> None:
    repository = defs.get_repository_def()
    keys = {spec.key for spec in repository.asset_graph.asset_nodes}
    assert keys == {dg.AssetKey(["kafka", topic]) for topic in settings.topics.values()}
    for node in repository.asset_graph.asset_nodes:
        assert node.description and node.group_name == "ingestion" and "kafka" in node.kinds


def test_workspace_validates_with_the_dagster_cli(settings: Settings) -> None:
    environment = dagster_environment(settings)
    assert os.path.exists(os.path.join(environment["DAGSTER_HOME"], "dagster.yaml"))
    command = [sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(PROJECT_ROOT / "workspace.yaml")]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr

"""dbt for the gold step: the project, its profile, the preparation of its manifest, and the CLI resource that
builds one window of hours.

The manifest (the models, their sources and tests, which Dagster turns into assets and checks) is prepared the
way dagster-dbt prepares a project for deployment (``dagster-dbt project prepare-and-package``): by
`smartcity setup`, which the README's commands run, into the project's ``target/``. It does not depend on the
settings, so every var/ (and every test) shares it. Code servers only read it; under ``dagster dev``,
:meth:`DbtProject.prepare_if_dev` parses it again as dagster-dbt does. Each run builds into a directory of its
own under ``var/dbt/runs``, removed after the run.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dagster as dg
import orjson
import yaml
from dagster_dbt import DbtCliResource, DbtProject
from dagster_dbt.cli.app import prepare_and_package
from packaging import version

from smartcity.errors import ConfigError
from smartcity.lake_layout import Hour
from smartcity.object_store import storage_for
from smartcity.settings import Settings
from smartcity_aws.access import GOLD_BUILD, names

log = logging.getLogger(__name__)
DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
PROFILE = "smartcity"
SOURCE_DIRS = ("models", "macros", "tests", "seeds", "snapshots", "analyses")


def local_target(settings: Settings) -> dict[str, Any]:
    """The local profile's dbt target: DuckDB (Athena's stand-in) with the catalog attached as ``glue``."""
    return {
        "type": "duckdb",
        "path": str(settings.paths.athena),
        "threads": 2,
        "settings": {"TimeZone": "UTC"},
        "attach": [{"path": str(settings.paths.catalog), "alias": "glue", "read_only": True}],
    }


def glue_target(settings: Settings) -> dict[str, Any]:
    """The aws profile's target: Athena on the Glue catalog, or Trino (Athena's engine) where ``SMARTCITY_TRINO_URL``
    names one, as on the test bed. Both build in the environment's Glue database."""
    common = {"database": "awsdatacatalog", "schema": names(settings)["database"], "threads": 2}
    if settings.trino_url:
        url = urlparse(settings.trino_url)
        return {**common, "type": "trino", "method": "none", "user": "smartcity", "host": url.hostname,
                "port": url.port, "http_scheme": url.scheme}  # fmt: skip
    return {**common, "type": "athena", "region_name": settings.aws_region, "s3_staging_dir": settings.athena_results,
            "work_group": names(settings)["workgroup"]}  # fmt: skip


def build_location(settings: Settings) -> str:
    """Where Athena and Trino write a run's build tables: the lake's staging prefix, which the lifecycle expires."""
    return storage_for(settings.lake, settings).uri(GOLD_BUILD)


def write_profiles(settings: Settings) -> Path:
    """profiles.yml written under var/ from the settings (no paths in the repository); its directory."""
    directory = settings.paths.dbt
    directory.mkdir(parents=True, exist_ok=True)
    outputs = {
        "local": local_target(settings),
        **({"aws": glue_target(settings)} if settings.lake_on_s3 else {}),
    }
    text = yaml.safe_dump({PROFILE: {"target": "local", "outputs": outputs}}, sort_keys=False)
    path = directory / "profiles.yml"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return directory


def dbt_project(settings: Settings) -> DbtProject:
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=write_profiles(settings))


def manifest_is_current(project: DbtProject) -> bool:
    """True when the manifest is newer than every model, macro and project file, and is whole JSON."""
    sources = [DBT_PROJECT_DIR / "dbt_project.yml"]
    sources += [file for name in SOURCE_DIRS for file in (DBT_PROJECT_DIR / name).rglob("*") if file.is_file()]
    manifest = project.manifest_path
    if not manifest.exists() or manifest.stat().st_mtime < max(path.stat().st_mtime for path in sources):
        return False
    try:
        orjson.loads(manifest.read_bytes())
    except orjson.JSONDecodeError:
        return False
    return True


def prepare_dbt_project(settings: Settings) -> bool:
    """Parse the dbt project into its manifest with dagster-dbt's own preparation, unless it is current; True when
    it parsed. Concurrent preparations wait for each other (dagster-dbt's update guard)."""
    project = dbt_project(settings)
    if manifest_is_current(project):
        return False
    log.info("preparing the dbt project (dbt parse) into %s", project.manifest_path)
    with _environment_scripts_on_path():
        prepare_and_package(project)
    return True


@contextmanager
def _environment_scripts_on_path() -> Iterator[None]:
    """dagster-dbt's preparer runs ``dbt`` from PATH, which need not hold this environment's scripts (the platform
    runs as ``.venv/bin/smartcity``): put them first while it runs."""
    previous = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), previous])
    try:
        yield
    finally:
        os.environ["PATH"] = previous


def loadable_project(settings: Settings) -> DbtProject:
    """The project for building the asset graph: prepared here under ``dagster dev``, else by `smartcity setup`."""
    project = dbt_project(settings)
    project.prepare_if_dev()
    if not project.manifest_path.exists():
        raise ConfigError(f"the dbt manifest {project.manifest_path} is missing: run `smartcity setup` to prepare it")
    if not manifest_is_current(project):
        log.warning("the dbt manifest is older than the models; run `smartcity setup` to prepare it again")
    return project


def dbt_vars(hours: list[Hour], build_location: str = "") -> str:
    """The window a run rebuilds, as dbt --vars (the models replace exactly this window), and where Athena and Trino
    write it."""
    end = hours[-1].start + timedelta(hours=1)
    window = {"window_start": f"{hours[0].start:%Y-%m-%d %H:%M:%S}", "window_end": f"{end:%Y-%m-%d %H:%M:%S}"}
    return json.dumps({**window, "build_location": build_location} if build_location else window)


class GoldDbt(DbtCliResource):
    """dbt from this environment, building one window of hours per run.

    dagster-dbt learns the dbt version by running ``dbt --version`` in every run (3 s or more of a gold step that
    takes about 12 s); the executable is this environment's, so its dbt-core package says the same at once.
    """

    runs_dir: str
    """Each run builds into ``<runs_dir>/<run id>``, removed afterwards."""
    build_location: str = ""
    """Where Athena and Trino write the build tables (:func:`build_location`); unused by DuckDB."""

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def build_window(self, context: dg.AssetExecutionContext, hours: list[Hour]) -> list[Any]:
        """``dbt build`` of the window (models and their tests); the events Dagster turns into results."""
        artifacts = Path(self.runs_dir) / context.run.run_id
        try:
            arguments = ["build", "--vars", dbt_vars(hours, self.build_location)]
            return list(self.cli(arguments, context=context, target_path=artifacts).stream())
        finally:
            shutil.rmtree(artifacts, ignore_errors=True)


def gold_dbt(settings: Settings, project: DbtProject, target: str) -> GoldDbt:
    return GoldDbt(
        project_dir=project,
        target=target,
        dbt_executable=str(Path(sys.executable).with_name("dbt")),
        runs_dir=str(settings.paths.dbt / "runs"),
        build_location=build_location(settings) if settings.lake_on_s3 else "",
    )

"""Gold aggregates (the "Athena" step): dbt models run by dagster-dbt, one hour window per run.

Locally the models run on DuckDB (dbt-duckdb) against the catalog's processed tables, attached read-only as
``glue``, the way Athena queries Glue tables. After ``dbt build`` (models and their tests, which Dagster shows as
asset checks), each hour of each model is exported to ``gold/<model>/event_date=…/event_hour=…`` as Parquet,
swapped in atomically, and registered in the catalog, where the warehouse load reads it.
"""

import importlib.metadata
import json
import logging
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
import orjson
import yaml
from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from packaging import version

from smartcity.atomic import exclusive, replace_directory
from smartcity.duckdb_files import connect
from smartcity.settings import Settings
from smartcity_dagster.assets.catalog import CATALOG_POOL, catalog_key, partition_entries
from smartcity_dagster.assets.processed import processed_key
from smartcity_dagster.assets.raw import OWNERS
from smartcity_dagster.automation import hourly_eager
from smartcity_dagster.partitions import Hour, window_hours
from smartcity_dagster.resources.catalog import GLUE_TYPES, GlueCatalog
from smartcity_dagster.resources.lake import LocalLake
from smartcity_dagster.tables import PROCESSED_TABLES, QUARANTINE_TABLES, Column, TableSchema

log = logging.getLogger(__name__)
DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
SOURCES_FILE = DBT_PROJECT_DIR / "models" / "sources.yml"
GOLD_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(hours=2))


def gold_key(model: str) -> dg.AssetKey:
    return dg.AssetKey(["gold", model])


def source_tables(tables: Mapping[str, TableSchema], key: Callable[[str], dg.AssetKey]) -> list[dict[str, Any]]:
    """One dbt source table per stream, mapped to the Dagster asset ``key(stream)`` that produces it."""
    return [
        {
            "name": table.name,
            "description": table.description,
            "meta": {"dagster": {"asset_key": list(key(stream).path)}},
            "columns": [{"name": c.name, "description": c.comment, "data_type": c.type} for c in table.columns],
        }
        for stream, table in tables.items()
    ]


def render_sources() -> str:
    """dbt sources for the processed and quarantine tables, generated from the contracts (committed; a test keeps
    it in sync)."""
    document = {
        "version": 2,
        "sources": [
            {
                "name": "processed",
                "description": "Processed tables registered in the catalog (Glue), attached as 'glue'.",
                "database": "glue",
                "schema": "processed",
                "tables": source_tables(PROCESSED_TABLES, processed_key),
            },
            {
                "name": "quarantine",
                "description": "Quarantine tables in the catalog (Glue): rejected records with their reason.",
                "database": "glue",
                "schema": "quarantine",
                "tables": source_tables(QUARANTINE_TABLES, lambda stream: catalog_key("quarantine", stream)),
            },
        ],
    }
    header = "# Generated from smartcity/contracts.py by smartcity_dagster.assets.gold.render_sources; do not edit.\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=120)


def write_profiles(settings: Settings) -> Path:
    """profiles.yml for the local profile, written under var/ from the settings (no paths in the repository)."""
    directory = settings.paths.dbt
    directory.mkdir(parents=True, exist_ok=True)
    profile = {
        "smartcity": {
            "target": "local",
            "outputs": {
                "local": {
                    "type": "duckdb",
                    "path": str(settings.paths.athena),
                    "threads": 2,
                    "settings": {"TimeZone": "UTC"},
                    "attach": [{"path": str(settings.paths.catalog), "alias": "glue", "read_only": True}],
                }
            },
        }
    }
    text = yaml.safe_dump(profile, sort_keys=False)
    path = directory / "profiles.yml"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return directory


def dbt_project(settings: Settings) -> DbtProject:
    """The dbt project, with its manifest parsed again whenever a model, macro or the project file changed."""
    project = DbtProject(
        project_dir=DBT_PROJECT_DIR, profiles_dir=write_profiles(settings), target_path=settings.paths.dbt / "target"
    )
    # The daemon's and the UI's code servers load the definitions at the same time: one parses, the other waits
    # and then finds the manifest fresh. The manifest is replaced atomically, so no reader sees half of it.
    with exclusive(settings.paths.dbt / "parse.lock"):
        if not _manifest_is_current(project.manifest_path):
            log.info("parsing the dbt project into %s", project.manifest_path)
            staging = settings.paths.dbt / f"parse-{uuid.uuid4().hex}"
            try:
                dbt_resource(project).cli(["parse", "--quiet"], target_path=staging).wait()
                project.manifest_path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / "manifest.json", project.manifest_path)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return project


def _manifest_is_current(manifest: Path) -> bool:
    """True when the manifest is newer than every model, macro and project file, and is whole JSON."""
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", *DBT_PROJECT_DIR.rglob("*.sql"), *DBT_PROJECT_DIR.rglob("*.yml")]
    if not manifest.exists() or manifest.stat().st_mtime < max(path.stat().st_mtime for path in sources):
        return False
    try:
        orjson.loads(manifest.read_bytes())
    except orjson.JSONDecodeError:  # e.g. written by two parses at once before this lock existed
        return False
    return True


class LocalDbtCli(DbtCliResource):
    """dbt from this environment, found next to the interpreter (PATH may not include the virtualenv).

    dagster-dbt learns the dbt version by running ``dbt --version`` in every run (3 s or more of a gold step that
    takes about 12 s); the executable is this environment's, so its dbt-core package says the same at once.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))


def dbt_resource(project: DbtProject) -> LocalDbtCli:
    return LocalDbtCli(project_dir=project, dbt_executable=str(Path(sys.executable).with_name("dbt")))


class GoldTranslator(DagsterDbtTranslator):
    """Sources map to the processed assets; models become gold assets with automation and freshness."""

    def __init__(self, lookback: timedelta) -> None:
        super().__init__()
        self.lookback = lookback

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] != "model":
            return spec
        return spec.replace_attributes(
            key=gold_key(props["name"]),
            group_name="gold",
            owners=OWNERS,
            automation_condition=hourly_eager(self.lookback),
            freshness_policy=GOLD_FRESHNESS,
        ).merge_attributes(kinds={"athena"})


def dbt_vars(hours: list[Hour]) -> str:
    """The window a run rebuilds, as dbt --vars (the models delete and re-insert exactly this window)."""
    end = hours[-1].start + timedelta(hours=1)
    return json.dumps({"window_start": f"{hours[0].start:%Y-%m-%d %H:%M:%S}", "window_end": f"{end:%Y-%m-%d %H:%M:%S}"})


def export_hours(athena: Path, lake_root: Path, model: str, hours: list[Hour]) -> list[Column]:
    """Write each hour of a gold model to the lake as Parquet (swapped in atomically); return its columns."""
    stage = lake_root / "_staging" / f"gold-{model}-{uuid.uuid4().hex}"
    try:
        with connect(athena, read_only=True) as db:
            described = db.execute(f"DESCRIBE gold.{model}").fetchall()
            for hour in hours:
                rows = db.execute(
                    f"SELECT count(*) FROM gold.{model} WHERE hour_start = ?", [hour.start.replace(tzinfo=None)]
                ).fetchone()[0]
                staged = stage / hour.relative_dir
                if rows:
                    staged.mkdir(parents=True)
                    start = f"{hour.start:%Y-%m-%d %H:%M:%S}"
                    db.execute(
                        f"COPY (SELECT * FROM gold.{model} WHERE hour_start = TIMESTAMP '{start}' ORDER BY ALL) "
                        f"TO '{staged / 'part-00000.parquet'}' (FORMAT parquet, COMPRESSION zstd)"
                    )
                replace_directory(staged if rows else None, lake_root / "gold" / model / hour.relative_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [Column(name, GLUE_TYPES.get(kind, "string"), "") for name, kind, *_ in described]


def build_gold(settings: Settings, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    project = dbt_project(settings)
    lookback = timedelta(days=settings.late_data_days)

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        name="gold_aggregates",
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        dagster_dbt_translator=GoldTranslator(lookback),
        pool=CATALOG_POOL,
    )
    def gold_aggregates(
        context: AssetExecutionContext, dbt: LocalDbtCli, lake: LocalLake, catalog: GlueCatalog
    ) -> Iterator[Any]:
        hours = window_hours(context)
        artifacts = settings.paths.dbt / "runs" / context.run.run_id
        try:
            invocation = dbt.cli(["build", "--vars", dbt_vars(hours)], context=context, target_path=artifacts)
            events = list(invocation.stream())
        finally:
            shutil.rmtree(artifacts, ignore_errors=True)
        dates = sorted({hour.start.date() for hour in hours})
        for key in sorted(context.selected_asset_keys):
            model = key.path[-1]
            columns = export_hours(settings.paths.athena, Path(lake.root), model, hours)
            location = lake.location("gold", model)
            listed = {h: f for h, f in lake.list_hours("gold", model, dates).items() if h in hours}
            table = TableSchema("gold", model, f"Gold aggregate {model} (dbt model).", tuple(columns))
            catalog.register_table(table, location, partition_entries(lake, location, listed), hours)
        yield from events

    return gold_aggregates

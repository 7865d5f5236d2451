"""SQL on the lake (Athena's role): the engine dbt builds the gold models in, and how their hours reach the lake.

:class:`QueryEngine` is the interface the gold and warehouse steps use. :class:`DuckDbQueryEngine` implements it
for the local profile: dbt-duckdb builds the models in a DuckDB file, and each hour of each model is then
exported as Parquet to the lake's gold zone, replacing the hour whole, where the catalog registers it and the
warehouse load reads it.
"""

from __future__ import annotations

import shutil
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

import dagster as dg
import pyarrow as pa
from duckdb import DuckDBPyConnection

from smartcity.duckdb_files import connect
from smartcity.lake_layout import GOLD, Hour
from smartcity_dagster.resources.catalog import GLUE_TYPES
from smartcity_dagster.resources.lake import LakeStorage
from smartcity_dagster.tables import Column

SCHEMA = "gold"
EXPORTED_FILE = "part-00000.parquet"


class QueryEngine(dg.ConfigurableResource, ABC):
    """Where the gold models are built, and how their hours are published to the lake."""

    @abstractmethod
    def publish_hours(self, model: str, hours: list[Hour], lake: LakeStorage) -> list[Column]:
        """Make each of ``hours`` of ``model`` in the lake's gold zone hold what the engine built; its columns."""

    @abstractmethod
    def empty_table(self, model: str) -> pa.Table | None:
        """No rows, with the model's columns (None before its first build): a warehouse table can then exist
        before its first event does."""


class DuckDbQueryEngine(QueryEngine):
    """The local profile's engine: a DuckDB file that dbt-duckdb builds the models in."""

    path: str

    def publish_hours(self, model: str, hours: list[Hour], lake: LakeStorage) -> list[Column]:
        scratch = Path(tempfile.mkdtemp(prefix=f"smartcity-gold-{model}-"))
        try:
            with connect(Path(self.path), read_only=True) as db, lake.staging(f"gold-{model}") as stage:
                described = db.execute(f"DESCRIBE {SCHEMA}.{model}").fetchall()
                for hour in hours:
                    staged = []
                    if (local := _export_hour(db, model, hour, scratch)) is not None:
                        key = f"{stage}/{hour.relative_dir}/{EXPORTED_FILE}"
                        lake.upload(local, key)
                        staged.append((key, EXPORTED_FILE))
                    lake.replace_hour(GOLD, model, hour, staged)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return [Column(name, GLUE_TYPES.get(kind, "string"), "") for name, kind, *_ in described]

    def empty_table(self, model: str) -> pa.Table | None:
        if not Path(self.path).exists():
            return None
        with connect(Path(self.path), read_only=True) as db:
            return db.execute(f"SELECT * FROM {SCHEMA}.{model} LIMIT 0").fetch_arrow_table()


def _export_hour(db: DuckDBPyConnection, model: str, hour: Hour, directory: Path) -> Path | None:
    """The hour's rows of ``model`` as one Parquet file in ``directory``, or None when it has none."""
    start = hour.start.replace(tzinfo=None)
    if not db.execute(f"SELECT count(*) FROM {SCHEMA}.{model} WHERE hour_start = ?", [start]).fetchone()[0]:
        return None
    local = directory / f"{hour.start:%Y%m%d%H}.parquet"
    rows = f"SELECT * FROM {SCHEMA}.{model} WHERE hour_start = TIMESTAMP '{start}' ORDER BY ALL"
    db.execute(f"COPY ({rows}) TO '{local}' (FORMAT parquet, COMPRESSION zstd)")
    return local

"""The warehouse (Redshift): gold aggregates loaded per hour window, idempotently (the window is replaced).

:class:`Warehouse` is the interface; :class:`DuckDbWarehouse` implements it for the local profile. Every table
has an ``hour_start`` column; loading a window deletes its rows and inserts the new ones in one transaction,
so loading twice leaves the same rows and a reader never sees the window half-loaded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import pyarrow as pa

from smartcity.errors import ConfigError
from smartcity_dagster.resources.duckdb_files import connect

SCHEMA = "gold"


class Warehouse(dg.ConfigurableResource, ABC):
    """Load gold tables by hour window and apply retention."""

    @abstractmethod
    def replace_window(self, table: str, rows: pa.Table | None, start: datetime, end: datetime) -> int:
        """Replace the rows of [start, end) in ``table`` with ``rows`` (None: none); return the rows loaded."""

    @abstractmethod
    def delete_before(self, table: str, cutoff: datetime) -> int:
        """Delete rows with ``hour_start`` before ``cutoff``; return how many."""

    @abstractmethod
    def tables(self) -> list[str]:
        """The gold tables present in the warehouse."""


def _naive_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


class DuckDbWarehouse(Warehouse):
    """The local warehouse: one DuckDB file, tables in schema ``gold``."""

    path: str

    def replace_window(self, table: str, rows: pa.Table | None, start: datetime, end: datetime) -> int:
        if rows is None and table not in self.tables():
            return 0
        window = [_naive_utc(start), _naive_utc(end)]
        with connect(Path(self.path)) as db:
            db.execute("SET TimeZone = 'UTC'")
            db.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            if rows is not None:
                db.register("incoming", rows)
                db.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{table} AS SELECT * FROM incoming WHERE false")
            db.execute("BEGIN")
            db.execute(f"DELETE FROM {SCHEMA}.{table} WHERE hour_start >= ? AND hour_start < ?", window)
            if rows is not None:
                db.execute(f"INSERT INTO {SCHEMA}.{table} BY NAME SELECT * FROM incoming")
            db.execute("COMMIT")
        return 0 if rows is None else rows.num_rows

    def delete_before(self, table: str, cutoff: datetime) -> int:
        if table not in self.tables():
            return 0
        with connect(Path(self.path)) as db:
            return (
                db.execute(f"DELETE FROM {SCHEMA}.{table} WHERE hour_start < ? RETURNING 1", [_naive_utc(cutoff)])
                .fetchall()
                .__len__()
            )

    def tables(self) -> list[str]:
        if not Path(self.path).exists():
            return []
        with connect(Path(self.path), read_only=True) as db:
            rows = db.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY 1", [SCHEMA]
            ).fetchall()
        return [row[0] for row in rows]


def warehouse_from_url(url: str) -> Warehouse:
    """The warehouse implementation for a ``SMARTCITY_WAREHOUSE_URL``."""
    parsed = urlparse(url)
    if parsed.scheme == "duckdb":
        return DuckDbWarehouse(path=parsed.path)
    raise ConfigError(
        f"SMARTCITY_WAREHOUSE_URL={url!r}: only duckdb:/// warehouses are implemented in the local profile so far "
        "(PostgreSQL and Redshift loaders are not built yet)"
    )

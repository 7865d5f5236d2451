"""The warehouse (Redshift): gold aggregates loaded per hour window, idempotently (the window is replaced).

:class:`Warehouse` is the interface the loader asset is written against: it hands over the window's gold files
in the lake (:class:`GoldWindow`). :class:`DuckDbWarehouse` (the default) and :class:`PostgresWarehouse` read
those rows here and insert them; Redshift copies the files from S3 itself (:mod:`.redshift`). Every table has
an ``hour_start`` column; loading a window deletes its rows and inserts the new ones in one transaction, so
loading twice leaves the same rows and a reader never sees the window half-loaded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import dagster as dg
import psycopg
import pyarrow as pa

from smartcity.duckdb_files import connect
from smartcity.errors import ConfigError, PlatformError
from smartcity.warehouse_url import parse_warehouse_url, redact
from smartcity_dagster.resources.lake import LakeFile, LakeStorage

SCHEMA = "gold"


class GoldWindow(NamedTuple):
    """One gold table's files in the lake for a load window, and the table's columns (for a window with none)."""

    lake: LakeStorage
    files: list[LakeFile]
    model_schema: Callable[[], pa.Schema | None]
    """The model's columns (None before its first build), asked only for a window without files."""

    def rows(self) -> pa.Table | None:
        """The window's rows, read here (what Redshift's ``COPY`` does on its side); None when there are none
        and the model has never been built."""
        if (rows := self.lake.read_table(self.files)) is not None:
            return rows
        schema = self.model_schema()
        return None if schema is None else schema.empty_table()


class Warehouse(dg.ConfigurableResource, ABC):
    """Load gold tables by hour window and apply retention."""

    @abstractmethod
    def load_window(self, table: str, gold: GoldWindow, start: datetime, end: datetime) -> int:
        """Replace the rows of [start, end) in ``table`` with the window's gold files; return the rows loaded."""

    @abstractmethod
    def delete_before(self, table: str, cutoff: datetime) -> int:
        """Delete rows with ``hour_start`` before ``cutoff``; return how many."""

    @abstractmethod
    def tables(self) -> list[str]:
        """The gold tables present in the warehouse."""


class RowLoadingWarehouse(Warehouse, ABC):
    """A warehouse that takes the rows from the loader (it cannot read the lake itself)."""

    def load_window(self, table: str, gold: GoldWindow, start: datetime, end: datetime) -> int:
        return self.replace_window(table, gold.rows(), start, end)

    @abstractmethod
    def replace_window(self, table: str, rows: pa.Table | None, start: datetime, end: datetime) -> int:
        """Replace the rows of [start, end) in ``table`` with ``rows`` (None: none); return the rows loaded."""


def _naive_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


class DuckDbWarehouse(RowLoadingWarehouse):
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


_POSTGRES_TYPES = (
    (pa.types.is_string, "text"),
    (pa.types.is_large_string, "text"),
    (pa.types.is_int64, "bigint"),
    (pa.types.is_integer, "integer"),
    (pa.types.is_floating, "double precision"),
    (pa.types.is_timestamp, "timestamp"),
    (pa.types.is_date, "date"),
    (pa.types.is_boolean, "boolean"),
)


def postgres_type(arrow_type: pa.DataType) -> str:
    for matches, name in _POSTGRES_TYPES:
        if matches(arrow_type):
            return name
    raise ConfigError(f"no PostgreSQL type for the Arrow type {arrow_type}")


class PostgresWarehouse(RowLoadingWarehouse):
    """The warehouse in PostgreSQL (psycopg 3): the local stand-in for Redshift, which speaks the same SQL here."""

    url: str

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, connect_timeout=10)
        except psycopg.OperationalError as error:
            raise PlatformError(
                f"cannot reach the PostgreSQL warehouse at {redact(self.url)}: {str(error).strip()}. "
                "Check SMARTCITY_WAREHOUSE_URL and that the server is running."
            ) from error

    def replace_window(self, table: str, rows: pa.Table | None, start: datetime, end: datetime) -> int:
        if rows is None and table not in self.tables():
            return 0
        window = (_naive_utc(start), _naive_utc(end))
        with self._connect() as connection, connection.transaction():
            if rows is not None:
                columns = ", ".join(f'"{f.name}" {postgres_type(f.type)}' for f in rows.schema)
                connection.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
                connection.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{table} ({columns})")
            connection.execute(f"DELETE FROM {SCHEMA}.{table} WHERE hour_start >= %s AND hour_start < %s", window)
            if rows is not None:
                names = ", ".join(f'"{name}"' for name in rows.column_names)
                with connection.cursor().copy(f"COPY {SCHEMA}.{table} ({names}) FROM STDIN") as copy:
                    for row in rows.to_pylist():
                        copy.write_row([_naive(value) for value in row.values()])
        return 0 if rows is None else rows.num_rows

    def delete_before(self, table: str, cutoff: datetime) -> int:
        if table not in self.tables():
            return 0
        with self._connect() as connection:
            cursor = connection.execute(f"DELETE FROM {SCHEMA}.{table} WHERE hour_start < %s", (_naive_utc(cutoff),))
            return cursor.rowcount

    def tables(self) -> list[str]:
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1", (SCHEMA,)
            ).fetchall()
        return [row[0] for row in rows]


def _naive(value: object) -> object:
    return _naive_utc(value) if isinstance(value, datetime) else value


def warehouse_from_url(url: str) -> Warehouse:
    """The warehouse implementation for a ``SMARTCITY_WAREHOUSE_URL``."""
    warehouse = parse_warehouse_url(url)
    if warehouse.engine == "duckdb":
        return DuckDbWarehouse(path=str(warehouse.duckdb_file))
    if warehouse.engine == "postgresql":
        return PostgresWarehouse(url=warehouse.url)
    raise ConfigError(
        f"SMARTCITY_WAREHOUSE_URL={warehouse.redacted!r}: the local profile loads duckdb:/// or postgresql:// "
        "warehouses; Redshift is the aws profile's (SMARTCITY_PROFILE=aws)"
    )

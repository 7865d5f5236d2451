"""The dashboard's query layer: read-only SQL against the warehouse, DuckDB, PostgreSQL or Redshift (which speaks
PostgreSQL's protocol, over TLS), behind one function.

The DuckDB warehouse file has one writer at a time (the Dagster load). Each query opens a read-only connection,
runs, and closes, retrying while the loader holds the lock, so the dashboard keeps serving while a partition
loads and never holds the file long enough to block the loader. Failures become :class:`WarehouseUnavailable`
or :class:`NoData` with a message that says what to run or check.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import psycopg

from smartcity.duckdb_files import connect
from smartcity.errors import PlatformError
from smartcity.warehouse_url import parse_warehouse_url, redact

LOCK_WAIT_S = 30.0


class WarehouseUnavailable(Exception):
    """The warehouse cannot be reached or opened."""


class NoData(Exception):
    """The warehouse is reachable but the gold tables are not there (yet)."""


def _duckdb_query(path: Path, sql: str, params: list) -> pd.DataFrame:
    if not path.exists():
        raise NoData(f"the warehouse file {path} does not exist yet")
    try:
        with connect(path, read_only=True, wait_s=LOCK_WAIT_S) as db:
            db.execute("SET TimeZone = 'UTC'")
            return db.execute(sql, params).df()
    except duckdb.CatalogException as error:
        raise NoData(str(error).splitlines()[0]) from error
    except PlatformError as error:
        raise WarehouseUnavailable(str(error)) from error


NUMERIC_TYPES = {
    psycopg.postgres.types[name].oid: kind
    for names, kind in ((("numeric", "float4", "float8"), "float64"), (("int2", "int4", "int8"), "int64"))
    for name in names
}
"""PostgreSQL's (and Redshift's) numeric types, by type OID, and the dtype their column gets."""


def _typed_frame(rows: list[tuple], description: list[psycopg.Column]) -> pd.DataFrame:
    """The rows with numeric columns as numbers, even with no rows: ``sum`` of integers and ``avg`` are
    ``numeric``, which arrive as Decimal objects, and a chart takes an object column for labels (an axis in text
    order). An integer column with nulls becomes float, as DuckDB gives it."""
    frame = pd.DataFrame(rows, columns=[column.name for column in description])
    for column in description:
        kind = NUMERIC_TYPES.get(column.type_code)
        if kind is not None:
            values = frame[column.name]
            frame[column.name] = values.astype("float64" if kind == "float64" or values.isna().any() else kind)
    return frame


def _postgres_query(url: str, sql: str, params: list) -> pd.DataFrame:
    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            cursor = connection.execute(sql.replace("?", "%s"), params)
            return _typed_frame(cursor.fetchall(), cursor.description or [])
    except psycopg.errors.UndefinedTable as error:
        raise NoData(str(error).splitlines()[0]) from error
    except psycopg.OperationalError as error:
        raise WarehouseUnavailable(f"cannot reach {redact(url)}: {str(error).strip()}") from error


def query(url: str, sql: str, params: list | None = None) -> pd.DataFrame:
    """Run a read-only query (``?`` placeholders, portable SQL) against the warehouse at ``url``."""
    warehouse = parse_warehouse_url(url)
    if warehouse.engine == "duckdb":
        return _duckdb_query(warehouse.duckdb_file, sql, params or [])
    return _postgres_query(warehouse.libpq_url, sql, params or [])

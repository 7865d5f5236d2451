"""The Glue Data Catalog: databases, tables (columns, location) and hour partitions of the lake's zones.

:class:`GlueCatalog` is the interface the assets use. :class:`DuckDbCatalog` implements it for the local profile
in a DuckDB file that any DuckDB session can attach and query by name (``ATTACH 'var/catalog.duckdb' AS glue
(READ_ONLY); SELECT * FROM glue.raw.vehicle``): each table is a view over its Parquet files, and the
``glue_meta`` schema holds the columns and partitions, like Glue's GetTable and GetPartitions.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import dagster as dg
from duckdb import DuckDBPyConnection

from smartcity.duckdb_files import connect
from smartcity.errors import PlatformError
from smartcity.lake_layout import Hour
from smartcity_dagster.tables import Column, TableSchema

DUCKDB_TYPES = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "double": "DOUBLE",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "binary": "BLOB",
}
GLUE_TYPES = {
    "VARCHAR": "string",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "DOUBLE": "double",
    "FLOAT": "double",
    "BIGINT": "bigint",
    "HUGEINT": "bigint",
    "INTEGER": "int",
    "DATE": "date",
    "BOOLEAN": "boolean",
    "BLOB": "binary",
}


class SchemaDriftError(PlatformError):
    """A registered column would change type: readers of the table would break or silently read nulls."""


class PartitionEntry(NamedTuple):
    hour: Hour
    location: str
    files: int
    rows: int
    bytes: int


def schema_changes(registered: dict[str, str], table: TableSchema) -> tuple[list[str], list[str]]:
    """(added columns, incompatible changes) between a registered column list and ``table``."""
    added = [column.name for column in table.columns if column.name not in registered]
    incompatible = [
        f"column '{column.name}' is registered as {registered[column.name]} but is now {column.type}"
        for column in table.columns
        if column.name in registered and registered[column.name] != column.type
    ]
    return added, incompatible


class GlueCatalog(dg.ConfigurableResource, ABC):
    """Register tables and their hour partitions; read back what is registered."""

    @abstractmethod
    def register_table(
        self, table: TableSchema, location: str, partitions: list[PartitionEntry], hours: list[Hour]
    ) -> list[str]:
        """Create or evolve ``table``, set the partitions of ``hours`` to ``partitions``; return added columns.

        Hours in ``hours`` without an entry in ``partitions`` are unregistered (their data is gone). Raises
        :class:`SchemaDriftError` naming the column when a registered column would change type.
        """

    @abstractmethod
    def registered_columns(self, database: str, name: str) -> dict[str, str] | None:
        """Column name → type of a registered table, or None when it is not registered."""

    @abstractmethod
    def drop_partitions_before(self, cutoff: Hour) -> int:
        """Unregister every partition older than ``cutoff`` (retention); return how many."""


class DuckDbCatalog(GlueCatalog):
    """The local profile's catalog: a DuckDB file of views over the lake plus Glue-like metadata tables."""

    path: str

    def _connect(self) -> AbstractContextManager[DuckDBPyConnection]:
        return connect(Path(self.path))

    def register_table(
        self, table: TableSchema, location: str, partitions: list[PartitionEntry], hours: list[Hour]
    ) -> list[str]:
        with self._connect() as db:
            _ensure_metadata(db, table.database)
            registered = _columns(db, table.database, table.name)
            added, incompatible = schema_changes(registered or {}, table)
            if incompatible:
                raise SchemaDriftError(f"{table.database}.{table.name}: " + "; ".join(incompatible))
            columns = list(table.columns) + [
                Column(name, kind, "kept from an earlier registration")
                for name, kind in (registered or {}).items()
                if name not in table.column_types
            ]
            db.execute("BEGIN")
            _write_table(db, table, columns, location)
            _write_partitions(db, table, partitions, hours)
            _write_view(db, table, columns, location)
            db.execute("COMMIT")
        return added if registered is not None else []

    def registered_columns(self, database: str, name: str) -> dict[str, str] | None:
        if not Path(self.path).exists():
            return None
        with self._connect() as db:
            _ensure_metadata(db, database)
            return _columns(db, database, name)

    def drop_partitions_before(self, cutoff: Hour) -> int:
        if not Path(self.path).exists():
            return 0
        with self._connect() as db:
            _ensure_metadata(db, "raw")
            older = "FROM glue_meta.partitions WHERE event_date || ' ' || event_hour < ?"
            bound = f"{cutoff.date} {cutoff.hour}"
            count = db.execute(f"SELECT count(*) {older}", [bound]).fetchone()[0]
            db.execute(f"DELETE {older}", [bound])
            return count


def _ensure_metadata(db: DuckDBPyConnection, database: str) -> None:
    db.execute("CREATE SCHEMA IF NOT EXISTS glue_meta")
    db.execute(f'CREATE SCHEMA IF NOT EXISTS "{database}"')
    db.execute(
        "CREATE TABLE IF NOT EXISTS glue_meta.tables (database VARCHAR, table_name VARCHAR, description VARCHAR, "
        "location VARCHAR, columns JSON, partition_keys JSON, updated_at TIMESTAMP, "
        "PRIMARY KEY (database, table_name))"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS glue_meta.partitions (database VARCHAR, table_name VARCHAR, event_date VARCHAR, "
        "event_hour VARCHAR, location VARCHAR, files BIGINT, rows BIGINT, bytes BIGINT, registered_at TIMESTAMP, "
        "PRIMARY KEY (database, table_name, event_date, event_hour))"
    )


def _columns(db: DuckDBPyConnection, database: str, name: str) -> dict[str, str] | None:
    row = db.execute(
        "SELECT columns FROM glue_meta.tables WHERE database = ? AND table_name = ?", [database, name]
    ).fetchone()
    return None if row is None else {column["name"]: column["type"] for column in json.loads(row[0])}


def _write_table(db: DuckDBPyConnection, table: TableSchema, columns: list[Column], location: str) -> None:
    described = [{"name": c.name, "type": c.type, "comment": c.comment} for c in columns]
    db.execute(
        "INSERT OR REPLACE INTO glue_meta.tables VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            table.database,
            table.name,
            table.description,
            location,
            json.dumps(described),
            json.dumps(list(table.partition_keys)),
            datetime.now(UTC).replace(tzinfo=None),
        ],
    )


def _write_partitions(
    db: DuckDBPyConnection, table: TableSchema, partitions: list[PartitionEntry], hours: list[Hour]
) -> int:
    present = {entry.hour for entry in partitions}
    gone = [hour for hour in hours if hour not in present]
    for hour in gone:
        db.execute(
            "DELETE FROM glue_meta.partitions WHERE database = ? AND table_name = ? AND event_date = ? "
            "AND event_hour = ?",
            [table.database, table.name, hour.date, hour.hour],
        )
    now = datetime.now(UTC).replace(tzinfo=None)
    for entry in partitions:
        db.execute(
            "INSERT OR REPLACE INTO glue_meta.partitions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [table.database, table.name, entry.hour.date, entry.hour.hour, entry.location, entry.files,
             entry.rows, entry.bytes, now],
        )  # fmt: skip


def _write_view(db: DuckDBPyConnection, table: TableSchema, columns: list[Column], location: str) -> None:
    """A view over the table's files when it has partitions, else a typed empty view (a glob of nothing fails)."""
    has_data = db.execute(
        "SELECT count(*) FROM glue_meta.partitions WHERE database = ? AND table_name = ?",
        [table.database, table.name],
    ).fetchone()[0]
    name = f'"{table.database}"."{table.name}"'
    if has_data:
        glob = f"{location}/*/*/*.parquet".replace("'", "''")
        source = f"read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
        db.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {source}")
        return
    typed = ", ".join(f'CAST(NULL AS {DUCKDB_TYPES.get(c.type, "VARCHAR")}) AS "{c.name}"' for c in columns)
    keys = ", ".join(f'CAST(NULL AS VARCHAR) AS "{key}"' for key in table.partition_keys)
    db.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT {typed}, {keys} WHERE false")

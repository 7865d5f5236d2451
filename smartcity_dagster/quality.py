"""Data-quality queries behind the asset checks, run by DuckDB over the published Parquet files.

They read the files the way any lake reader would, independently of the Spark code that wrote them, so a
bug in processing shows up as a failed check rather than as agreeing with itself. Each takes a DuckDB session
that can read the lake's URIs (:meth:`LakeStorage.duckdb`) and the URIs of the files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from duckdb import DuckDBPyConnection

from smartcity.contracts import CONTRACTS, Field


class Reconciliation(NamedTuple):
    raw_rows: int
    raw_distinct_ids: int
    processed_rows: int

    @property
    def duplicates_removed(self) -> int:
        return self.raw_rows - self.processed_rows

    @property
    def balanced(self) -> bool:
        """Every distinct raw event is processed once, and nothing else is."""
        return self.processed_rows == self.raw_distinct_ids


def _files(files: Sequence[str]) -> str:
    return "[" + ", ".join("'" + file.replace("'", "''") + "'" for file in files) + "]"


def reconcile(db: DuckDBPyConnection, raw_files: Sequence[str], processed_files: Sequence[str]) -> Reconciliation:
    raw_rows, raw_ids = (
        db.execute(f"SELECT count(*), count(DISTINCT event_id) FROM read_parquet({_files(raw_files)})").fetchone()
        if raw_files
        else (0, 0)
    )
    processed = (
        db.execute(f"SELECT count(*) FROM read_parquet({_files(processed_files)})").fetchone()[0]
        if processed_files
        else 0
    )
    return Reconciliation(raw_rows, raw_ids, processed)


def duplicate_event_ids(db: DuckDBPyConnection, files: Sequence[str]) -> int:
    """Rows beyond the first of each event_id (0 when event_id is unique)."""
    if not files:
        return 0
    return db.execute(f"SELECT count(*) - count(DISTINCT event_id) FROM read_parquet({_files(files)})").fetchone()[0]


def _violation(field: Field) -> str | None:
    conditions = []
    if field.minimum is not None:
        conditions.append(f'"{field.name}" < {field.minimum!r}')
    if field.maximum is not None:
        conditions.append(f'"{field.name}" > {field.maximum!r}')
    if field.allowed is not None:
        allowed = ", ".join(f"'{value}'" for value in field.allowed)
        conditions.append(f'"{field.name}" NOT IN ({allowed})')
    if field.required:
        conditions.append(f'"{field.name}" IS NULL')
    return " OR ".join(conditions) or None


def range_violations(db: DuckDBPyConnection, stream: str, files: Sequence[str]) -> dict[str, int]:
    """Rows breaking each field's contract (range, allowed values, required), by field; empty when clean."""
    checks = {f.name: sql for f in CONTRACTS[stream].fields if (sql := _violation(f))}
    if not files:
        return {}
    counts = ", ".join(f'count(*) FILTER (WHERE {sql}) AS "{name}"' for name, sql in checks.items())
    row = db.execute(f"SELECT {counts} FROM read_parquet({_files(files)})").fetchone()
    return {name: count for name, count in zip(checks, row, strict=True) if count}

"""A DuckDB file mirroring the catalog's tables on S3 as views over their current partitions, so DuckDB can stand
in for Athena on the aws profile (dbt attaches it as ``glue``, as locally).

Each view reads exactly the registered partitions' locations, never a glob of the table's prefix: on S3 an hour
may hold a superseded version until its grace period ends, and only the catalog knows which one is current.
"""

from __future__ import annotations

from pathlib import Path

from smartcity.duckdb_files import connect
from smartcity.duckdb_s3 import enable_s3
from smartcity_dagster.resources.catalog import DUCKDB_TYPES
from smartcity_dagster.tables import Column, TableSchema


def mirror_table(
    path: Path, table: TableSchema, columns: list[Column], locations: list[str], region: str, endpoint_url: str | None
) -> None:
    """(Re)create the view of ``table`` over the Parquet files of ``locations``, with its partition columns."""
    name = f'"{table.database}"."{table.name}"'
    date_key, hour_key = table.partition_keys
    with connect(path) as db:
        enable_s3(db, region, endpoint_url)
        db.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.database}"')
        if locations:
            files = ", ".join(
                "'" + f"{location.rstrip('/')}/*.parquet".replace("'", "''") + "'" for location in locations
            )
            db.execute(
                f"CREATE OR REPLACE VIEW {name} AS SELECT * EXCLUDE (filename), "
                f"regexp_extract(filename, '{date_key}=([^/]+)', 1) AS {date_key}, "
                f"regexp_extract(filename, '{hour_key}=([^/]+)', 1) AS {hour_key} "
                f"FROM read_parquet([{files}], filename = true, union_by_name = true, hive_partitioning = false)"
            )
            return
        typed = ", ".join(f'CAST(NULL AS {DUCKDB_TYPES.get(c.type, "VARCHAR")}) AS "{c.name}"' for c in columns)
        db.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT {typed}, CAST(NULL AS VARCHAR) AS {date_key}, "
                   f"CAST(NULL AS VARCHAR) AS {hour_key} WHERE false")  # fmt: skip

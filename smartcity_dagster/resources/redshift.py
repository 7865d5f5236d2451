"""The Redshift warehouse: each window's gold files are copied from S3 by Redshift itself, then swapped in.

A load is one transaction of statements rendered by :class:`RedshiftLoad`:

1. ``CREATE TABLE IF NOT EXISTS`` with the table's distribution and sort keys (:data:`TABLE_KEYS`);
2. a temporary staging table ``LIKE`` it;
3. ``COPY`` into staging from a manifest of the window's gold files, ``FORMAT AS PARQUET``, with the loader's
   IAM role: Redshift reads S3 itself, the data never passes through this process, and no credentials appear
   in the SQL;
4. the window replace: delete the window's rows, insert the staged ones.

Steps 1 and 3 are Redshift's own SQL (keys, ``COPY``); steps 2 and 4 are engine-neutral, so the tests run them on
PostgreSQL through the same client and check the Redshift-only statements against golden text. A failing step
aborts the transaction, and the window keeps what it had.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple
from urllib.parse import parse_qs, unquote, urlparse

import pyarrow as pa
from dagster_aws.redshift import RedshiftClientResource

from smartcity.lake_layout import STAGING
from smartcity.settings import Settings
from smartcity.warehouse_url import parse_warehouse_url
from smartcity_dagster.resources.warehouse import SCHEMA, GoldWindow, Warehouse, postgres_type, warehouse_from_url

MANIFESTS = f"{STAGING}/warehouse-"
"""Where a load's manifest is written: the loader's role may read only these staging keys besides ``gold/``."""


class TableKeys(NamedTuple):
    """How Redshift spreads a table over its slices and orders its blocks."""

    dist: str
    """``DISTKEY(column)``, or a ``DISTSTYLE``."""
    sort: tuple[str, ...]


TABLE_KEYS: dict[str, TableKeys] = {
    # Every table sorts by hour: the window replace, retention and every dashboard filter select hours, so
    # zone maps skip the rest. Tables read per entity are distributed by it: the dashboard's latest-state
    # queries (ROW_NUMBER() OVER (PARTITION BY …)), its per-incident join and one vehicle's trips stay on a slice.
    "incident_events": TableKeys("DISTKEY(incident_id)", ("hour_start",)),
    "vehicle_trips": TableKeys("DISTKEY(vehicle_id)", ("hour_start",)),
    "traffic_hourly": TableKeys("DISTKEY(camera_id)", ("hour_start",)),
    "weather_hourly": TableKeys("DISTKEY(station_id)", ("hour_start",)),
}
DEFAULT_KEYS = TableKeys("DISTSTYLE AUTO", ("hour_start",))
"""The hourly aggregates of a few rows per hour: Redshift copies them to every node while small."""


def redshift_type(arrow_type: pa.DataType) -> str:
    """The column type for an Arrow type. Gold strings are ids, zones and levels, well inside Redshift's TEXT."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "VARCHAR(256)"
    return postgres_type(arrow_type).upper()


def _timestamp(moment: datetime) -> str:
    """A timestamp literal (UTC, no zone), rendered from a datetime: nothing of a request ever reaches the SQL."""
    return f"TIMESTAMP '{moment.replace(tzinfo=None):%Y-%m-%d %H:%M:%S}'"


class RedshiftLoad(NamedTuple):
    """The statements that load one table's window."""

    table: str
    schema: pa.Schema
    start: datetime
    end: datetime

    @property
    def target(self) -> str:
        return f"{SCHEMA}.{self.table}"

    @property
    def staging(self) -> str:
        return f"stage_{self.table}"

    def columns(self) -> str:
        return ", ".join(f'"{field.name}" {redshift_type(field.type)}' for field in self.schema)

    def create_table(self) -> str:
        """Redshift only: the table with its keys (:data:`TABLE_KEYS`)."""
        keys = TABLE_KEYS.get(self.table, DEFAULT_KEYS)
        return (
            f"CREATE TABLE IF NOT EXISTS {self.target} ({self.columns()}) "
            f"{keys.dist} COMPOUND SORTKEY({', '.join(keys.sort)})"
        )

    def create_staging(self) -> str:
        return f"CREATE TEMP TABLE {self.staging} (LIKE {self.target})"

    def copy(self, manifest_uri: str, iam_role: str, region: str) -> str:
        """Redshift only: the window's gold Parquet files into staging, read by Redshift with the loader's role."""
        return (
            f"COPY {self.staging} FROM '{manifest_uri}' IAM_ROLE '{iam_role}' "
            f"FORMAT AS PARQUET MANIFEST REGION '{region}'"
        )

    def replace(self) -> list[str]:
        """The window's rows replaced by the staged ones (engine-neutral)."""
        window = f"hour_start >= {_timestamp(self.start)} AND hour_start < {_timestamp(self.end)}"
        return [
            f"DELETE FROM {self.target} WHERE {window}",
            f"INSERT INTO {self.target} SELECT * FROM {self.staging}",
            f"DROP TABLE {self.staging}",
        ]


def manifest(gold: GoldWindow) -> dict:
    """A ``COPY`` manifest of the window's files; Parquet needs each file's length, and a missing file fails the
    load rather than being skipped (``mandatory``)."""
    entries = [
        {"url": gold.lake.uri(file.key), "mandatory": True, "meta": {"content_length": file.size}}
        for file in gold.files
    ]
    return {"entries": entries}


class RedshiftWarehouse(Warehouse):
    """Gold loaded into Amazon Redshift with ``COPY`` from the lake, through dagster-aws's client."""

    redshift: RedshiftClientResource
    iam_role: str
    """The loader role Redshift assumes to read the gold files and the manifest (``SMARTCITY_REDSHIFT_IAM_ROLE``)."""
    region: str

    def load_window(self, table: str, gold: GoldWindow, start: datetime, end: datetime) -> int:
        manifest_key = f"{MANIFESTS}{uuid.uuid4().hex}/manifest.json"
        statements = self.statements(table, gold, start, end, gold.lake.uri(manifest_key))
        if not statements:
            return 0
        if gold.files:
            gold.lake.store.write_json(manifest_key, manifest(gold))
        try:
            self.redshift.get_client().execute_queries(statements)  # one transaction: all or nothing
        finally:
            if gold.files:
                gold.lake.store.delete([manifest_key])
        return sum(gold.lake.row_count(file) for file in gold.files)

    def statements(self, table: str, gold: GoldWindow, start: datetime, end: datetime, manifest_uri: str) -> list[str]:
        """The load's SQL, with ``COPY`` from ``manifest_uri`` when the window has files; none when the model was
        never built and has no files (nothing to create the table from yet)."""
        schema = gold.lake.read_schema(gold.files[0]) if gold.files else gold.model_schema()
        if schema is None:
            return []
        load = RedshiftLoad(table, schema, start, end)
        copy = [load.copy(manifest_uri, self.iam_role, self.region)] if gold.files else []
        return [f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}", load.create_table(), load.create_staging(), *copy,
                *load.replace()]  # fmt: skip

    def delete_before(self, table: str, cutoff: datetime) -> int:
        if table not in self.tables():
            return 0
        before = f"FROM {SCHEMA}.{table} WHERE hour_start < {_timestamp(cutoff)}"
        client = self.redshift.get_client()
        [[(expired,)]] = client.execute_queries([f"SELECT count(*) {before}"], fetch_results=True)
        client.execute_queries([f"DELETE {before}"])  # retention only: loads never touch hours this old
        return int(expired)

    def tables(self) -> list[str]:
        [rows] = self.redshift.get_client().execute_queries(
            [f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{SCHEMA}' ORDER BY 1"],
            fetch_results=True,
        )
        return [row[0] for row in rows]


def redshift_client(url: str) -> RedshiftClientResource:
    """dagster-aws's client for a ``redshift://user:password@host:port/database`` warehouse URL (TLS required
    unless ``?sslmode=`` says otherwise)."""
    parsed = urlparse(parse_warehouse_url(url).libpq_url)
    return RedshiftClientResource(
        host=parsed.hostname or "", port=parsed.port or 5439, user=unquote(parsed.username or "") or None,
        password=unquote(parsed.password or "") or None, database=parsed.path.lstrip("/") or None,
        sslmode=parse_qs(parsed.query)["sslmode"][0],
    )  # fmt: skip


def warehouse_of(settings: Settings) -> Warehouse:
    """The aws profile's warehouse: Redshift for a ``redshift://`` URL, else the local loaders."""
    if parse_warehouse_url(settings.warehouse).engine != "redshift":
        return warehouse_from_url(settings.warehouse)
    assert settings.redshift_iam_role is not None  # the settings refuse a redshift:// URL without it
    return RedshiftWarehouse(
        redshift=redshift_client(settings.warehouse), iam_role=settings.redshift_iam_role, region=settings.aws_region
    )

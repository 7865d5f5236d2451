"""Athena as the aws profile's query engine, or Trino in its place (Athena's engine v3 is Trino; the test bed runs
one on its Glue catalog and S3).

dbt builds each gold model's window as a Parquet table partitioned by hour (``gold_build_<model>``, written under
the lake's staging prefix: ``macros/hour_partitions.sql``). Publishing an hour moves that hour's files into
``gold/<model>/`` as a new version of the hour, as every other zone publishes, so the catalog's gold tables and
the warehouse load see the hour whole, before or after. Both engines speak the same SQL over DB-API; only the
connection differs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa

from smartcity.lake_layout import EVENT_PARTITION, GOLD, Hour
from smartcity_dagster.resources.lake import LakeStorage
from smartcity_dagster.resources.query_engine import QueryEngine
from smartcity_dagster.tables import Column

BUILD_PREFIX = "gold_build_"
"""A model's build table in the Glue database (``generate_alias_name`` in the dbt project)."""
TYPES: dict[str, tuple[str, pa.DataType]] = {
    "varchar": ("string", pa.string()),
    "char": ("string", pa.string()),
    "timestamp": ("timestamp", pa.timestamp("us")),
    "double": ("double", pa.float64()),
    "real": ("float", pa.float32()),
    "bigint": ("bigint", pa.int64()),
    "integer": ("int", pa.int32()),
    "smallint": ("smallint", pa.int16()),
    "boolean": ("boolean", pa.bool_()),
    "date": ("date", pa.date32()),
    "varbinary": ("binary", pa.binary()),
}
"""Athena/Trino column types as Glue names them and as Arrow holds them (precision and length dropped)."""


class UnexpectedHourError(RuntimeError):
    """A build table holds an hour outside the window the run built: the model's window filter is wrong."""


class AthenaQueryEngine(QueryEngine):
    """The gold models' engine on the Glue catalog: Athena in the platform's workgroup, or the Trino at
    ``trino_url``."""

    database: str
    region: str
    work_group: str
    results_uri: str
    trino_url: str | None = None

    def _connect(self) -> Any:
        if self.trino_url:
            import trino

            url = urlparse(self.trino_url)
            return trino.dbapi.connect(host=url.hostname, port=url.port, http_scheme=url.scheme, user="smartcity",
                                       catalog="awsdatacatalog", schema=self.database)  # fmt: skip
        import pyathena

        return pyathena.connect(region_name=self.region, work_group=self.work_group,
                                s3_staging_dir=self.results_uri, schema_name=self.database)  # fmt: skip

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        connection = self._connect()
        try:
            cursor = connection.cursor()
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            connection.close()

    def _columns(self, model: str) -> list[tuple[str, str]]:
        """The build table's columns and their engine types, without the hour partition (empty before the first
        build)."""
        rows = self._rows(
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = '{self.database}' AND table_name = '{BUILD_PREFIX}{model}' ORDER BY ordinal_position"
        )
        return [(name, kind) for name, kind in rows if name not in EVENT_PARTITION]

    def built_files(self, model: str) -> dict[Hour, list[str]]:
        """The URIs of the files the last build of ``model`` wrote, by hour."""
        rows = self._rows(f'SELECT DISTINCT "$path", event_date, event_hour FROM "{BUILD_PREFIX}{model}"')
        files: dict[Hour, list[str]] = defaultdict(list)
        for path, day, hour in rows:
            files[Hour.of_directory(day, hour)].append(path)
        return {hour: sorted(paths) for hour, paths in files.items()}

    def publish_hours(self, model: str, hours: list[Hour], lake: LakeStorage) -> list[Column]:
        built = self.built_files(model)
        if outside := sorted(set(built) - set(hours)):
            raise UnexpectedHourError(f"{BUILD_PREFIX}{model} holds hours outside the window: {outside[:3]}")
        for hour in hours:
            staged = [(lake.key_of(uri), f"part-{index:05d}.parquet") for index, uri in enumerate(built.get(hour, []))]
            lake.replace_hour(GOLD, model, hour, staged)
        return [Column(name, _type(kind)[0], "") for name, kind in self._columns(model)]

    def empty_table(self, model: str) -> pa.Table | None:
        columns = self._columns(model)
        if not columns:
            return None
        return pa.schema([(name, _type(kind)[1]) for name, kind in columns]).empty_table()


def _type(engine_type: str) -> tuple[str, pa.DataType]:
    base = re.sub(r"\(.*\)$", "", engine_type.strip().lower())
    if base not in TYPES:
        raise TypeError(f"no Glue and Arrow type is known for the engine type {engine_type!r}")
    return TYPES[base]

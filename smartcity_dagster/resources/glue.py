"""The AWS Glue Data Catalog as the aws profile's catalog (boto3: dagster-aws has no Glue catalog resource).

One database per environment (``smartcity_<env>``), one table per zone and stream (``raw_vehicle``,
``processed_vehicle``, ``gold_fleet_hourly``…) with columns from the contracts, Parquet, partitioned by hour.
Hour partitions are created with ``BatchCreatePartition`` and re-pointed with ``BatchUpdatePartition`` in one call
when an hour moves to a new version prefix, so a query sees the old hour or the new one. A new optional column
is added with ``UpdateTable`` (Glue keeps the table's versions); a column changing type is refused, naming it.

Tables also carry Athena's partition projection parameters (types, ranges, location template) for who wants to
switch it on; it stays off, because projection computes an hour's location from a template, and a rebuilt hour
lives under a version prefix only the registered partition knows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from smartcity.errors import PlatformError
from smartcity.lake_layout import Hour
from smartcity_dagster.resources.catalog import GlueCatalog, PartitionEntry, SchemaDriftError, schema_changes
from smartcity_dagster.tables import Column, TableSchema

PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}
BATCH = 100  # BatchCreatePartition and BatchUpdatePartition take up to 100 entries; BatchDeletePartition 25
DELETE_BATCH = 25


def glue_table_name(table: TableSchema) -> str:
    return f"{table.database}_{table.name}"


class GlueDataCatalog(GlueCatalog):
    """Tables and hour partitions in one Glue database, through boto3 (``AWS_ENDPOINT_URL_GLUE`` honoured)."""

    database: str
    region: str
    partitions_start: str
    """First day of the hourly partitions (the projection's range starts there)."""

    def _client(self) -> Any:
        import boto3

        return boto3.client("glue", region_name=self.region)

    def register_table(
        self, table: TableSchema, location: str, partitions: list[PartitionEntry], hours: list[Hour]
    ) -> list[str]:
        glue, name = self._client(), glue_table_name(table)
        current = self._table(glue, name)
        registered = None if current is None else _columns(current)
        added, incompatible = schema_changes(registered or {}, table)
        if incompatible:
            raise SchemaDriftError(f"{self.database}.{name}: " + "; ".join(incompatible))
        kept = [Column(column, kind, "kept from an earlier registration") for column, kind in (registered or {}).items()
                if column not in table.column_types]  # fmt: skip
        table_input = self._table_input(table, [*table.columns, *kept], location)
        if current is None:
            self._ensure_database(glue)
            glue.create_table(DatabaseName=self.database, TableInput=table_input)
        elif _differs(current, table_input):
            glue.update_table(DatabaseName=self.database, TableInput=table_input)
        self._set_partitions(glue, name, table, partitions, hours)
        return added if registered is not None else []

    def registered_columns(self, database: str, name: str) -> dict[str, str] | None:
        current = self._table(self._client(), f"{database}_{name}")
        return None if current is None else _columns(current)

    def drop_partitions_before(self, cutoff: Hour) -> int:
        glue, dropped = self._client(), 0
        for table in self._tables(glue):
            date_key, hour_key = (key["Name"] for key in table["PartitionKeys"])
            expression = (f"{date_key} < '{cutoff.date}' OR ({date_key} = '{cutoff.date}' AND "
                          f"{hour_key} < '{cutoff.hour}')")  # fmt: skip
            old = [partition["Values"] for partition in self._partitions(glue, table["Name"], expression)]
            self._delete_partitions(glue, table["Name"], old)
            dropped += len(old)
        return dropped

    # ----------------------------------------------------------------- tables
    def _table_input(self, table: TableSchema, columns: list[Column], location: str) -> dict[str, Any]:
        date_key, hour_key = table.partition_keys
        return {
            "Name": glue_table_name(table),
            "Description": table.description,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {
                "classification": "parquet",
                "EXTERNAL": "TRUE",
                "projection.enabled": "false",
                f"projection.{date_key}.type": "date",
                f"projection.{date_key}.format": "yyyy-MM-dd",
                f"projection.{date_key}.range": f"{self.partitions_start},NOW",
                f"projection.{hour_key}.type": "integer",
                f"projection.{hour_key}.range": "0,23",
                f"projection.{hour_key}.digits": "2",
                "storage.location.template": f"{location}/{date_key}=${{{date_key}}}/{hour_key}=${{{hour_key}}}",
            },
            "PartitionKeys": [{"Name": key, "Type": "string"} for key in table.partition_keys],
            "StorageDescriptor": {
                "Columns": [{"Name": c.name, "Type": c.type, "Comment": c.comment[:255]} for c in columns],
                "Location": location,
                **PARQUET,
            },
        }

    def _table(self, glue: Any, name: str) -> dict[str, Any] | None:
        try:
            return glue.get_table(DatabaseName=self.database, Name=name)["Table"]
        except glue.exceptions.EntityNotFoundException:
            return None

    def _tables(self, glue: Any) -> Iterator[dict[str, Any]]:
        try:
            for page in glue.get_paginator("get_tables").paginate(DatabaseName=self.database):
                yield from page["TableList"]
        except glue.exceptions.EntityNotFoundException:
            return

    def _ensure_database(self, glue: Any) -> None:
        with contextlib.suppress(glue.exceptions.AlreadyExistsException):
            glue.create_database(DatabaseInput={"Name": self.database})

    # ----------------------------------------------------------------- partitions
    def _set_partitions(
        self, glue: Any, name: str, table: TableSchema, partitions: list[PartitionEntry], hours: list[Hour]
    ) -> None:
        """The partitions of ``hours`` become ``partitions``: new ones created, moved ones re-pointed in one batch
        call, vanished ones removed."""
        existing = self._existing(glue, name, table, hours)
        wanted = {(entry.hour.date, entry.hour.hour): entry for entry in partitions}
        create = [self._partition_input(entry) for key, entry in wanted.items() if key not in existing]
        update = [{"PartitionValueList": list(key), "PartitionInput": self._partition_input(entry)}
                  for key, entry in wanted.items() if key in existing and existing[key] != _storage(entry)]  # fmt: skip
        for start in range(0, len(create), BATCH):
            _check(glue.batch_create_partition(DatabaseName=self.database, TableName=name,
                                               PartitionInputList=create[start : start + BATCH]))  # fmt: skip
        for start in range(0, len(update), BATCH):
            _check(glue.batch_update_partition(DatabaseName=self.database, TableName=name,
                                               Entries=update[start : start + BATCH]))  # fmt: skip
        self._delete_partitions(glue, name, [list(key) for key in existing if key not in wanted])

    def _existing(self, glue: Any, name: str, table: TableSchema, hours: Sequence[Hour]) -> dict[tuple, tuple]:
        """(date, hour) → (location, parameters) of the registered partitions of ``hours``' dates."""
        if not hours:
            return {}
        date_key = table.partition_keys[0]
        dates = ", ".join(f"'{day}'" for day in sorted({hour.date for hour in hours}))
        wanted = {(hour.date, hour.hour) for hour in hours}
        found = self._partitions(glue, name, f"{date_key} IN ({dates})")
        return {tuple(p["Values"]): _registered(p) for p in found if tuple(p["Values"]) in wanted}

    def _partitions(self, glue: Any, name: str, expression: str | None) -> list[dict[str, Any]]:
        """The table's partitions that ``expression`` selects (all for None)."""
        selected = {"Expression": expression} if expression else {}
        pages = glue.get_paginator("get_partitions").paginate(DatabaseName=self.database, TableName=name, **selected)
        return [partition for page in pages for partition in page["Partitions"]]

    def _partition_input(self, entry: PartitionEntry) -> dict[str, Any]:
        location, parameters = _storage(entry)
        return {
            "Values": [entry.hour.date, entry.hour.hour],
            "StorageDescriptor": {"Location": location, **PARQUET},
            "Parameters": parameters,
        }

    def _delete_partitions(self, glue: Any, name: str, values: list[list[str]]) -> None:
        for start in range(0, len(values), DELETE_BATCH):
            chunk = [{"Values": value} for value in values[start : start + DELETE_BATCH]]
            _check(glue.batch_delete_partition(DatabaseName=self.database, TableName=name,
                                               PartitionsToDelete=chunk))  # fmt: skip


def _columns(table: dict[str, Any]) -> dict[str, str]:
    return {column["Name"]: column["Type"] for column in table["StorageDescriptor"]["Columns"]}


def _differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether a registered table differs from the table input in what the platform sets."""
    descriptor = current["StorageDescriptor"]
    have = ([(c["Name"], c["Type"]) for c in descriptor["Columns"]], descriptor.get("Location"),
            current.get("Parameters", {}), current.get("Description"))  # fmt: skip
    wanted_descriptor = wanted["StorageDescriptor"]
    want = ([(c["Name"], c["Type"]) for c in wanted_descriptor["Columns"]], wanted_descriptor["Location"],
            wanted["Parameters"], wanted["Description"])  # fmt: skip
    return have != want


def _storage(entry: PartitionEntry) -> tuple[str, dict[str, str]]:
    return entry.location, {"numFiles": str(entry.files), "numRows": str(entry.rows), "totalSize": str(entry.bytes)}


def _registered(partition: dict[str, Any]) -> tuple[str, dict[str, str]]:
    parameters = partition.get("Parameters", {})
    return partition["StorageDescriptor"]["Location"], {
        key: parameters.get(key, "") for key in ("numFiles", "numRows", "totalSize")
    }


def _check(response: dict[str, Any]) -> None:
    """Batch calls report failures per entry instead of raising."""
    if errors := response.get("Errors"):
        raise PlatformError(f"Glue refused {len(errors)} partition change(s): {errors[:3]}")

"""A dbt-duckdb plugin that lets dbt's DuckDB read the lake on S3 (the aws profile while DuckDB stands in for
Athena): the httpfs extension, and credentials resolved from the standard AWS chain when dbt connects, so no
secret is ever written into ``profiles.yml``."""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from smartcity.duckdb_s3 import enable_s3


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.region = plugin_config["region"]
        self.endpoint_url = plugin_config.get("endpoint_url")

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        enable_s3(conn, self.region, self.endpoint_url)

"""Spark for the processing step, chosen when the step runs, not when the code loads: a cluster's Spark Connect
server when ``SMARTCITY_SPARK_CONNECT_URL`` names one, else the platform's server if it runs then, else a local
session started on first use.

Code servers live for hours; the server may start or stop in that time, so the choice is made per step. A
cluster's URL carries its token, so it is read from the settings when the step runs, never kept in the resource's
configuration, which the Dagster UI shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dagster as dg
from pydantic import PrivateAttr

from smartcity.errors import ConfigError
from smartcity.settings import RuntimePaths, load_settings
from smartcity_dagster.spark_connect import platform_server_url


class ProcessingSpark(dg.ConfigurableResource):
    """A Spark session for the step: a client of the platform's Spark Connect server, or a local session."""

    local_config: dict[str, str]
    """Settings of a local session (master, memory, loopback addresses, SQL settings)."""
    connect_config: dict[str, str]
    """Runtime SQL settings of a Spark Connect session."""
    server_var_dir: str
    """The var/ of the platform whose Spark Connect server to use, if it runs."""
    server_port: int
    on_cluster: bool = False
    """Use the Spark Connect server of ``SMARTCITY_SPARK_CONNECT_URL`` (a cluster's)."""
    _session: Any = PrivateAttr(default=None)
    _remote: str | None = PrivateAttr(default=None)

    @property
    def spark_session(self) -> Any:
        """The session, created on first use (a step with nothing to read starts no Spark)."""
        if self._session is None:
            from pyspark.sql import SparkSession

            url, self._remote = self._connect_url()
            config = {"spark.remote": url, **self.connect_config} if url else self.local_config
            builder = SparkSession.builder
            for key, value in config.items():
                builder = builder.config(key, value)
            self._session = builder.getOrCreate()
        return self._session

    def _connect_url(self) -> tuple[str | None, str | None]:
        """The Spark Connect URL to use (None: a local session) and which server it is."""
        if self.on_cluster:
            configured = load_settings().spark_connect_url
            if configured is None:
                raise ConfigError(
                    "SMARTCITY_SPARK_CONNECT_URL is no longer set, but the code location was loaded with it"
                )
            return configured.get_secret_value(), f"Spark Connect ({urlparse(configured.get_secret_value()).netloc})"
        url = platform_server_url(RuntimePaths(Path(self.server_var_dir)), self.server_port)
        return url, "Spark Connect (the platform's server)" if url else None

    @property
    def kind(self) -> str:
        """Which Spark the step used, for its materialization's metadata."""
        if self._session is None:
            return "none (nothing to read)"
        return self._remote or "local"

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._session is not None and self._remote:
            self._session.stop()  # frees the session on the server now, not after its idle timeout

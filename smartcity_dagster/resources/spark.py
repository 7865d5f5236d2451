"""Spark for the processing step, chosen when the step runs, not when the code loads: the platform's Spark Connect
server if it runs then, else a local session started on first use.

Code servers live for hours; the server may start or stop in that time, so the choice is made per step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from smartcity.settings import RuntimePaths
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
    _session: Any = PrivateAttr(default=None)
    _remote: bool = PrivateAttr(default=False)

    @property
    def spark_session(self) -> Any:
        """The session, created on first use (a step with nothing to read starts no Spark)."""
        if self._session is None:
            from pyspark.sql import SparkSession

            url = platform_server_url(RuntimePaths(Path(self.server_var_dir)), self.server_port)
            config = {"spark.remote": url, **self.connect_config} if url else self.local_config
            builder = SparkSession.builder
            for key, value in config.items():
                builder = builder.config(key, value)
            self._session, self._remote = builder.getOrCreate(), url is not None
        return self._session

    @property
    def kind(self) -> str:
        """Which Spark the step used, for its materialization's metadata."""
        if self._session is None:
            return "none (nothing to read)"
        return "Spark Connect (the platform's server)" if self._remote else "local"

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._session is not None and self._remote:
            self._session.stop()  # frees the session on the server now, not after its idle timeout

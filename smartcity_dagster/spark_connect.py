"""The processing step's Spark, kept warm: a Spark Connect server that runs as one of the platform's services.

Every Dagster run is a new process. With a local session, each run's processing step started a Spark JVM and
ran its small jobs on a cold JIT: a median 24 s per run in the platform bench, against 6 s on this server
(docs/benchmarks.md). The platform runs this server, and the processing step of each run is a Spark Connect
client of it. Each client has a session of its own (runtime SQL
settings and temporary views are per session), stopped when the step ends. Without the server (tests,
`dagster dev`, a run on another machine), the step starts a local session as before.

The server listens on loopback only. A client must present the token kept in ``var/run/spark-connect.token``,
which only its owner can read: anyone who can reach the port could otherwise run Spark jobs that read and write
the lake.

    python -m smartcity_dagster.spark_connect    # what `smartcity run` and `smartcity up spark` start
"""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path

from smartcity.platform import SPARK_CONNECT_HOST, service_pid, spark_connect_address
from smartcity.settings import Settings, load_settings
from smartcity_dagster.processing import SESSION_SETTINGS

SERVICE = "spark"  # its name among the platform's services (var/logs/spark.log, var/run/spark.pid)
PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"

# Runtime SQL settings, so each session sets its own (a Connect session cannot change static ones).
RUNTIME_SETTINGS = {
    **SESSION_SETTINGS,
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.parquet.compression.codec": "zstd",
}


def driver_settings(settings: Settings, app_name: str) -> dict[str, str]:
    """Static settings of a JVM that runs the processing step: a local session's, or the server's."""
    return {
        "spark.master": settings.spark_master,
        "spark.app.name": app_name,
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        **RUNTIME_SETTINGS,
    }


def token_file(settings: Settings) -> Path:
    return settings.paths.root / "run" / "spark-connect.token"


def server_token(settings: Settings) -> str:
    """The token clients present; created once per var/ (readable by its owner only), so a restarted server
    still accepts the clients of runs already under way."""
    path = token_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def remote_url(settings: Settings) -> str | None:
    """The Spark Connect URL of the platform's server when it runs (a live pid file), else None."""
    if service_pid(settings, SERVICE) is None or not token_file(settings).exists():
        return None
    # "localhost" (not an address): the client then uses gRPC local credentials, which carry a token without TLS
    return f"sc://localhost:{settings.spark_connect_port}/;token={server_token(settings)}"


def serve(settings: Settings) -> None:
    """Run the server until SIGTERM or SIGINT, then stop Spark (a run's step in progress fails and is retried).

    Exits with an error if the JVM dies under it, so the platform's watcher restarts the service.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    os.environ["SPARK_CONNECT_AUTHENTICATE_TOKEN"] = server_token(settings)  # not on the command line, unlike --conf
    builder = SparkSession.builder
    options = {
        **driver_settings(settings, "smartcity-processing"),
        "spark.plugins": PLUGIN,
        "spark.connect.grpc.binding.address": SPARK_CONNECT_HOST,
        "spark.connect.grpc.binding.port": str(settings.spark_connect_port),
    }
    for key, value in options.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    jvm = SparkContext._gateway.proc  # the JVM's process, started by pyspark
    print(f"Spark Connect server listening on {spark_connect_address(settings)}", flush=True)
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # after the JVM started: it must not inherit the mask
    while signal.sigtimedwait(stop_signals, 5.0) is None:
        if jvm.poll() is not None:
            raise SystemExit(f"the Spark Connect server's JVM exited with status {jvm.returncode}")
    spark.stop()


if __name__ == "__main__":
    serve(load_settings())

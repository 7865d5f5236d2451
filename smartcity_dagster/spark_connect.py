"""The processing step's Spark, kept warm: a Spark Connect server that runs as one of the platform's services.

Every Dagster run is a new process. With a local session, each run's processing step started a Spark JVM and
ran its small jobs on a cold JIT: a median 24 s per run in the platform bench, against 6 s on this server
(docs/benchmarks.md). The platform runs this server, and the processing step of each run is a Spark Connect
client of it. Each client has a session of its own (runtime SQL settings and temporary views are per session),
stopped when the step ends. Without the server (tests, `dagster dev`, a run on another machine), the step
starts a local session (:mod:`smartcity_dagster.resources.spark`).

The server listens on loopback only. A client must present the token kept in ``var/run/spark-connect.token``,
which only its owner can read: anyone who can reach the port could otherwise run Spark jobs that read and write
the lake.

    python -m smartcity_dagster.spark_connect    # what `smartcity run` and `smartcity up spark` start
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from pathlib import Path

from smartcity.ports import LOOPBACK
from smartcity.services import Port, Service, listens, running_pid
from smartcity.settings import RuntimePaths, Settings, load_settings
from smartcity_dagster.spark_settings import driver_settings

NAME = "spark"  # its name among the platform's services (var/logs/spark.log, var/run/spark.pid)
MODULE = "smartcity_dagster.spark_connect"
PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"


def address(settings: Settings) -> str:
    return f"{LOOPBACK}:{settings.spark_connect_port}"


def spark_connect_service(settings: Settings) -> Service:
    """The server as a platform service, ready once it accepts connections."""
    return Service(
        name=NAME,
        title="Spark",
        summary=f"Connect server on {address(settings)}",
        paths=settings.paths,
        command=lambda: [sys.executable, "-m", MODULE],
        markers=(MODULE,),
        ports=(Port(LOOPBACK, settings.spark_connect_port, "SPARK_CONNECT_PORT"),),
        ready=lambda _pid: listens(LOOPBACK, settings.spark_connect_port),
    )


def token_file(paths: RuntimePaths) -> Path:
    return paths.run / "spark-connect.token"


def server_token(paths: RuntimePaths) -> str:
    """The token clients present; created once per var/ (readable by its owner only), so a restarted server
    still accepts the clients of runs already under way."""
    path = token_file(paths)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def platform_server_url(paths: RuntimePaths, port: int, wait_s: float = 60.0) -> str | None:
    """The Spark Connect URL of the platform's server when it runs (a live pid file), else None; a server still
    starting is given ``wait_s`` to listen."""
    deadline = time.monotonic() + wait_s
    while not listens(LOOPBACK, port):
        if running_pid(paths, NAME, MODULE) is None or time.monotonic() >= deadline:
            return None
        time.sleep(0.5)
    if running_pid(paths, NAME, MODULE) is None or not token_file(paths).exists():
        return None
    # "localhost" (not an address): the client then uses gRPC local credentials, which carry a token without TLS
    return f"sc://localhost:{port}/;token={server_token(paths)}"


def serve(settings: Settings) -> None:
    """Run the server until SIGTERM or SIGINT, then stop Spark (a run's step in progress fails and is retried).

    Exits with an error if the JVM dies under it, so the platform's watcher restarts the service.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    os.environ["SPARK_CONNECT_AUTHENTICATE_TOKEN"] = server_token(settings.paths)  # not on the command line
    builder = SparkSession.builder
    options = {
        **driver_settings(settings, "smartcity-processing"),
        "spark.plugins": PLUGIN,
        "spark.connect.grpc.binding.address": LOOPBACK,
        "spark.connect.grpc.binding.port": str(settings.spark_connect_port),
    }
    for key, value in options.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    jvm = SparkContext._gateway.proc  # the JVM's process, started by pyspark
    print(f"Spark Connect server listening on {address(settings)}", flush=True)
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # after the JVM started: it must not inherit the mask
    while signal.sigtimedwait(stop_signals, 5.0) is None:
        if jvm.poll() is not None:
            raise SystemExit(f"the Spark Connect server's JVM exited with status {jvm.returncode}")
    spark.stop()


if __name__ == "__main__":
    serve(load_settings())

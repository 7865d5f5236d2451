"""Lifecycle of the local single-node Apache Kafka broker (KRaft, no ZooKeeper).

The broker runs from jars resolved by :mod:`smartcity.jars`, with its data under ``var/kafka/data`` and its
log in ``var/logs/kafka.log``. A pid file plus a check of the process's command line tells whether *our*
broker is running, so a second start is a no-op, and a broker killed with SIGKILL leaves nothing behind
that blocks the next start (Kafka recovers its log segments itself).
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from smartcity.atomic import exclusive
from smartcity.errors import BrokerError
from smartcity.jars import KAFKA_BROKER, classpath
from smartcity.java import find_java
from smartcity.kafka.admin import ensure_topics, wait_until_reachable
from smartcity.ports import require_free_port
from smartcity.processes import is_alive, live_pid, spawn, terminate
from smartcity.settings import Settings

log = logging.getLogger(__name__)

MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
HEAP = "-Xmx1g"
NODE_ID = 1
# A broker killed a moment ago may still hold its ports while the JVM tears down.
PORT_GRACE = 15.0

LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


@dataclass(frozen=True)
class StartResult:
    pid: int
    already_running: bool


class LocalBroker:
    """Start, stop and inspect the project's own broker as configured by ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = settings.paths
        self.config_file = self.paths.kafka / "server.properties"
        self.log4j_file = self.paths.kafka / "log4j2.properties"
        self.pid_file = self.paths.kafka / "broker.pid"
        self.log_file = self.paths.logs / "kafka.log"

    # ----------------------------------------------------------------- inspection
    def running_pid(self) -> int | None:
        """The pid of this project's broker if it is alive, else ``None`` (a stale pid file is removed)."""
        return live_pid(self.pid_file, MAIN_CLASS, str(self.config_file))

    # ----------------------------------------------------------------- start
    def start(self, timeout: float = 120.0) -> StartResult:
        """Start the broker unless it runs already, wait until it answers, and create the topics."""
        self.paths.ensure()
        with self._start_lock():
            pid = self.running_pid()
            already = pid is not None
            if pid is None:
                pid = self._launch()
            self._await_ready(pid, timeout)
        ensure_topics(self.settings)
        return StartResult(pid=pid, already_running=already)

    def _launch(self) -> int:
        host = self.settings.kafka_listen_host
        require_free_port(host, self.settings.kafka_port, "KAFKA_PORT", grace=PORT_GRACE)
        require_free_port(host, self.settings.kafka_controller_port, "KAFKA_CONTROLLER_PORT", grace=PORT_GRACE)
        java = find_java(self.settings.java_home)
        jars = classpath(self.settings, KAFKA_BROKER)
        self._write_config()
        self._format_storage(java.executable, jars)
        command = [
            str(java.executable),
            HEAP,
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            f"-Dkafka.logs.dir={self.paths.logs}",
            "-cp",
            os.pathsep.join(str(jar) for jar in jars),
            MAIN_CLASS,
            str(self.config_file),
        ]
        process = spawn(command, self.log_file)
        self.pid_file.write_text(str(process.pid))
        log.info("kafka broker starting (pid %d), log: %s", process.pid, self.log_file)
        return process.pid

    def _write_config(self) -> None:
        s = self.settings
        host = s.kafka_listen_host
        advertised = socket.gethostname() if host in ("0.0.0.0", "::") else host
        properties = {
            "process.roles": "broker,controller",
            "node.id": NODE_ID,
            "controller.quorum.voters": f"{NODE_ID}@{advertised}:{s.kafka_controller_port}",
            "listeners": f"PLAINTEXT://{host}:{s.kafka_port},CONTROLLER://{host}:{s.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://{advertised}:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": self.paths.kafka_data,
            "num.partitions": s.kafka_partitions,
            "offsets.topic.replication.factor": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            # Producers must name existing topics: a typo fails loudly instead of creating a new topic.
            "auto.create.topics.enable": "false",
            "log.retention.hours": 168,
        }
        self.config_file.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
        self.log4j_file.write_text(LOG4J2_PROPERTIES)

    def _format_storage(self, java: Path, jars: list[Path]) -> None:
        """Format the KRaft storage on first start; an existing, formatted log dir is left alone."""
        if (self.paths.kafka_data / "meta.properties").exists():
            return
        cluster_id = new_cluster_id()
        command = [
            str(java),
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            "-cp",
            os.pathsep.join(str(jar) for jar in jars),
            STORAGE_TOOL,
            "format",
            "--ignore-formatted",
            "-t",
            cluster_id,
            "-c",
            str(self.config_file),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise BrokerError(
                f"formatting Kafka storage in {self.paths.kafka_data} failed:\n{result.stdout}{result.stderr}"
            )
        log.info("formatted KRaft storage (cluster id %s)", cluster_id)

    def _await_ready(self, pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not is_alive(pid):
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"the Kafka broker exited during start-up; last lines of {self.log_file}:\n{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerError(
                    f"the Kafka broker (pid {pid}) did not answer on {self.settings.bootstrap_servers} within "
                    f"{timeout:.0f}s; see {self.log_file}:\n{self.log_tail()}"
                )
            if wait_until_reachable(self.settings, timeout=min(2.0, remaining)):
                return

    @contextmanager
    def _start_lock(self) -> Iterator[None]:
        """Serialise concurrent starts, so two callers cannot launch two brokers."""
        with exclusive(self.paths.kafka / "start.lock"):
            yield

    # ----------------------------------------------------------------- stop
    def stop(self, timeout: float = 60.0) -> int | None:
        """Stop the broker with a controlled shutdown (SIGKILL after ``timeout``); return the pid it had."""
        pid = self.running_pid()
        if pid is None:
            return None
        terminate(pid, self.pid_file, timeout, "kafka broker")
        return pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log yet)"


def new_cluster_id() -> str:
    """A Kafka cluster id (base64url of a UUID). Like Kafka's own, never starting with '-', which the storage
    tool's argument parser would read as an option."""
    while (cluster_id := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
        pass
    return cluster_id

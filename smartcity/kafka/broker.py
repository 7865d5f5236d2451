"""The local single-node Apache Kafka broker (KRaft, no ZooKeeper) as one of the platform's services.

The broker runs from jars resolved by :mod:`smartcity.jars`, with its data under ``var/kafka/data``. Its pid
file plus a check of the process's command line tells whether *our* broker is running, so a second start is a
no-op, and a broker killed with SIGKILL leaves nothing behind that blocks the next start (Kafka recovers its
log segments itself).
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import subprocess
import uuid
from pathlib import Path

from smartcity.errors import BrokerError
from smartcity.jars import KAFKA_BROKER, classpath
from smartcity.java import find_java
from smartcity.kafka.admin import ensure_topics, wait_until_reachable
from smartcity.services import Port, Service
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


def broker_service(settings: Settings) -> Service:
    """The project's own broker as a platform service: ready once it answers and the topics exist."""
    paths = settings.paths
    host = settings.kafka_listen_host
    return Service(
        name="kafka",
        title="Kafka",
        summary=f"{settings.bootstrap_servers}  (smartcity kafka status | smartcity kafka tail TOPIC)",
        paths=paths,
        command=lambda: _prepare(settings),
        markers=(MAIN_CLASS, str(config_file(settings))),
        ports=(
            Port(host, settings.kafka_port, "KAFKA_PORT"),
            Port(host, settings.kafka_controller_port, "KAFKA_CONTROLLER_PORT"),
        ),
        ready=lambda _pid: _ready(settings),
        ready_timeout=120.0,
        stop_timeout=60.0,
        port_grace=PORT_GRACE,
    )


def config_file(settings: Settings) -> Path:
    return settings.paths.kafka / "server.properties"


def _ready(settings: Settings) -> bool:
    """The broker answers a metadata request; then the topics are created (or grown) as configured."""
    if not wait_until_reachable(settings, timeout=2.0):
        return False
    ensure_topics(settings)
    return True


def _prepare(settings: Settings) -> list[str]:
    """Write the broker's configuration, format its storage on first start, and return its command line."""
    settings.paths.ensure()
    java = find_java(settings.java_home)
    jars = os.pathsep.join(str(jar) for jar in classpath(settings, KAFKA_BROKER))
    log4j_file = settings.paths.kafka / "log4j2.properties"
    log4j_file.write_text(LOG4J2_PROPERTIES)
    config_file(settings).write_text("".join(f"{key}={value}\n" for key, value in _properties(settings).items()))
    _format_storage(settings, java.executable, jars, log4j_file)
    return [str(java.executable), HEAP, "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j_file}", f"-Dkafka.logs.dir={settings.paths.logs}",
            "-cp", jars, MAIN_CLASS, str(config_file(settings))]  # fmt: skip


def _properties(settings: Settings) -> dict[str, object]:
    s = settings
    host = s.kafka_listen_host
    advertised = socket.gethostname() if host in ("0.0.0.0", "::") else host
    return {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        "controller.quorum.voters": f"{NODE_ID}@{advertised}:{s.kafka_controller_port}",
        "listeners": f"PLAINTEXT://{host}:{s.kafka_port},CONTROLLER://{host}:{s.kafka_controller_port}",
        "advertised.listeners": f"PLAINTEXT://{advertised}:{s.kafka_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": s.paths.kafka_data,
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


def _format_storage(settings: Settings, java: Path, jars: str, log4j_file: Path) -> None:
    """Format the KRaft storage on first start; an existing, formatted log dir is left alone."""
    data = settings.paths.kafka_data
    if (data / "meta.properties").exists():
        return
    cluster_id = new_cluster_id()
    command = [str(java), f"-Dlog4j2.configurationFile={log4j_file}", "-cp", jars, STORAGE_TOOL, "format",
               "--ignore-formatted", "-t", cluster_id, "-c", str(config_file(settings))]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise BrokerError(f"formatting Kafka storage in {data} failed:\n{result.stdout}{result.stderr}")
    log.info("formatted KRaft storage (cluster id %s)", cluster_id)


def new_cluster_id() -> str:
    """A Kafka cluster id (base64url of a UUID). Like Kafka's own, never starting with '-', which the storage
    tool's argument parser would read as an option."""
    while (cluster_id := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
        pass
    return cluster_id

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
from collections.abc import Callable
from dataclasses import dataclass
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
    return local_node(settings).config


def _ready(settings: Settings) -> bool:
    """The broker answers a metadata request; then the topics are created (or grown) as configured."""
    if not wait_until_reachable(settings, timeout=2.0):
        return False
    ensure_topics(settings)
    return True


@dataclass(frozen=True)
class KraftNode:
    """One combined broker and controller of a KRaft cluster: the local broker is node 1 of a cluster of one."""

    node_id: int
    host: str
    port: int
    controller_port: int
    directory: Path
    """Its configuration, and its log segments under ``data/``."""

    @property
    def advertised(self) -> str:
        return socket.gethostname() if self.host in ("0.0.0.0", "::") else self.host

    @property
    def config(self) -> Path:
        return self.directory / "server.properties"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def voter(self) -> str:
        return f"{self.node_id}@{self.advertised}:{self.controller_port}"


def local_node(settings: Settings) -> KraftNode:
    return KraftNode(NODE_ID, settings.kafka_listen_host, settings.kafka_port, settings.kafka_controller_port,
                     settings.paths.kafka)  # fmt: skip


def _prepare(settings: Settings) -> list[str]:
    """Write the broker's configuration, format its storage on first start, and return its command line."""
    settings.paths.ensure()
    node = local_node(settings)
    java = find_java(settings.java_home).executable
    prepare_node(node, [node], settings.kafka_partitions, java, settings, new_cluster_id)
    return node_command(node, java, settings)


def prepare_node(
    node: KraftNode, voters: list[KraftNode], partitions: int, java: Path, settings: Settings,
    cluster_id: Callable[[], str],
) -> None:  # fmt: skip
    """Write ``node``'s configuration in a cluster of ``voters`` and format its storage on first start (with the id
    ``cluster_id`` gives: every node of a cluster shares it)."""
    node.data.mkdir(parents=True, exist_ok=True)
    _log4j_file(node).write_text(LOG4J2_PROPERTIES)
    properties = node_properties(node, voters, partitions)
    node.config.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
    if (node.data / "meta.properties").exists():
        return
    command = [str(java), f"-Dlog4j2.configurationFile={_log4j_file(node)}", "-cp", _jars(settings), STORAGE_TOOL,
               "format", "--ignore-formatted", "-t", (identifier := cluster_id()), "-c", str(node.config)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise BrokerError(f"formatting Kafka storage in {node.data} failed:\n{result.stdout}{result.stderr}")
    log.info("formatted KRaft storage of node %d (cluster id %s)", node.node_id, identifier)


def node_command(node: KraftNode, java: Path, settings: Settings) -> list[str]:
    return [str(java), HEAP, "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={_log4j_file(node)}", f"-Dkafka.logs.dir={settings.paths.logs}",
            "-cp", _jars(settings), MAIN_CLASS, str(node.config)]  # fmt: skip


def _jars(settings: Settings) -> str:
    return os.pathsep.join(str(jar) for jar in classpath(settings, KAFKA_BROKER))


def _log4j_file(node: KraftNode) -> Path:
    return node.directory / "log4j2.properties"


def node_properties(node: KraftNode, voters: list[KraftNode], partitions: int) -> dict[str, object]:
    """A node's server.properties. In a cluster of three or more, internal topics and new topics are replicated
    three times and a write needs two in-sync replicas, so ``acks=all`` survives one node down."""
    replicas = min(len(voters), 3)
    in_sync = min(replicas, 2)
    return {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": ",".join(voter.voter for voter in voters),
        "listeners": f"PLAINTEXT://{node.host}:{node.port},CONTROLLER://{node.host}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{node.advertised}:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": node.data,
        "num.partitions": partitions,
        "default.replication.factor": replicas,
        "min.insync.replicas": in_sync,
        "offsets.topic.replication.factor": replicas,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": in_sync,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": in_sync,
        "group.initial.rebalance.delay.ms": 0,
        # Producers must name existing topics: a typo fails loudly instead of creating a new topic.
        "auto.create.topics.enable": "false",
        "log.retention.hours": 168,
    }


def new_cluster_id() -> str:
    """A Kafka cluster id (base64url of a UUID). Like Kafka's own, never starting with '-', which the storage
    tool's argument parser would read as an option."""
    while (cluster_id := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
        pass
    return cluster_id

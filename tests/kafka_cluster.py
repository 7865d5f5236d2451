"""A three-node KRaft Kafka cluster on loopback ports, from the platform's own broker jars and configuration
(:mod:`smartcity.kafka.broker`): each node a combined broker and controller in a process group of its own, so a
test can SIGKILL one and start it again."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import AdminClient

from smartcity.java import find_java
from smartcity.kafka.broker import KraftNode, new_cluster_id, node_command, prepare_node
from smartcity.processes import spawn
from smartcity.settings import Settings
from tests.conftest import free_ports

SIZE = 3


@dataclass
class KafkaCluster:
    settings: Settings
    nodes: list[KraftNode]
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{node.host}:{node.port}" for node in self.nodes)

    def start(self, node: KraftNode) -> None:
        java = find_java(self.settings.java_home).executable
        command = node_command(node, java, self.settings)
        self.processes[node.node_id] = spawn(command, node.directory / "server.log", cwd=node.directory)

    def kill(self, node: KraftNode) -> None:
        """SIGKILL the node's whole process group, as a machine that loses power would."""
        process = self.processes.pop(node.node_id)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def brokers_up(self) -> int:
        """How many brokers the cluster's metadata lists (0 while none answers)."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        try:
            return len(admin.list_topics(timeout=5).brokers)
        except Exception:  # not answering yet is what this polls for
            return 0

    def in_sync(self, topics: list[str]) -> bool:
        """Every partition of ``topics`` has all its replicas in sync."""
        metadata = AdminClient({"bootstrap.servers": self.bootstrap_servers}).list_topics(timeout=10)
        partitions = [p for name in topics for p in metadata.topics[name].partitions.values()]
        return bool(partitions) and all(len(p.isrs) == len(p.replicas) == SIZE for p in partitions)

    def wait(self, condition: str, check: Callable[[], bool], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            logs = {node.node_id: (node.directory / "server.log") for node in self.nodes}
            assert time.monotonic() < deadline, f"the cluster is not {condition} after {timeout}s; logs: {logs}"
            time.sleep(1)


@contextmanager
def kafka_cluster(settings: Settings, root: Path) -> Iterator[KafkaCluster]:
    """Three nodes formatted with one cluster id, started, and answering with all three brokers; stopped after."""
    ports = free_ports(2 * SIZE)
    nodes = [KraftNode(i + 1, "127.0.0.1", ports[2 * i], ports[2 * i + 1], root / f"node{i + 1}") for i in range(SIZE)]
    cluster = KafkaCluster(settings, nodes)
    java = find_java(settings.java_home).executable
    cluster_id = new_cluster_id()
    for node in nodes:
        prepare_node(node, nodes, settings.kafka_partitions, java, settings, lambda: cluster_id)
    try:
        for node in nodes:
            cluster.start(node)
        cluster.wait("up with three brokers", lambda: cluster.brokers_up() == SIZE)
        yield cluster
    finally:
        for node in nodes:
            if node.node_id in cluster.processes:
                cluster.kill(node)

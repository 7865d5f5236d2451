"""A three-broker KRaft cluster: topics replicated three times with two in-sync replicas required, one broker
SIGKILLed while the simulator sends (acks=all) and the stream runs, then restarted. Every acknowledged event is in
the lake exactly once, by the same ledger check as on one broker."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource

from smartcity.kafka.admin import ensure_topics, topic_offsets
from smartcity.services import Service
from smartcity.settings import Settings
from tests.conftest import SMARTCITY, isolated_environment, run_cli, settings_from
from tests.kafka_cluster import SIZE, kafka_cluster
from tests.pipeline import FAULTS, assert_exactly_once, drain, ledger_rows, stop_stream, wait_for_batches

pytestmark = pytest.mark.broker
EVENTS = 30_000
"""Sent at 300 a second: 100 s, long enough for a kill, the stream's stall that follows, and two more batches."""


def sent(settings: Settings) -> int:
    """Messages in the topics; 0 while a partition has no leader to ask (just after its broker was killed)."""
    try:
        return sum(row.messages for row in topic_offsets(settings))
    except KafkaException:
        return 0


def test_one_broker_of_three_killed_and_restarted_loses_and_duplicates_nothing(
    broker: Service, settings: Settings, tmp_path: Path
) -> None:
    with kafka_cluster(settings, tmp_path / "cluster") as cluster:
        environment = {**isolated_environment(tmp_path / "var"), "SMARTCITY_STREAM_TRIGGER_SECONDS": "2",
                       "SMARTCITY_KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers}  # fmt: skip
        ours = settings_from(environment)
        ensure_topics(ours)
        topics = list(ours.topics.values())
        assert cluster.in_sync(topics), "every partition has three replicas, all in sync"
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})  # kept: its futures need it alive
        [config] = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topics[0])]).values()
        assert config.result(timeout=30)["min.insync.replicas"].value == "2"

        ledger = tmp_path / "ledger.csv"
        started = run_cli("stream", "start", env=environment)
        assert started.returncode == 0, started.stderr
        simulator = None
        try:
            wait_for_batches(environment, 0)  # the stream's JVM is up before the sending starts
            simulator = subprocess.Popen(
                [SMARTCITY, "simulate", "--speedup", "0", "--rate", "300", "--max-events", str(EVENTS), "--seed",
                 "17", "--ledger", str(ledger), "--no-progress", *FAULTS],
                env={**os.environ, **environment}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            cluster.wait("receiving the simulation", lambda: sent(ours) >= 3_000, timeout=120)
            before_kill = wait_for_batches(environment, 1)
            victim, at_kill = cluster.nodes[1], sent(ours)
            cluster.kill(victim)
            assert at_kill < EVENTS, "the kill must fall inside the sending"
            # With a broker down the simulator's acks=all writes go on (two in-sync replicas remain) and so does
            # the stream, past a stall while its offset requests to the dead broker time out.
            cluster.wait("acknowledging with one broker down", lambda: sent(ours) >= at_kill + 3_000, timeout=120)
            wait_for_batches(environment, before_kill + 2)
            cluster.start(victim)
            cluster.wait("back in sync", lambda: cluster.in_sync(topics))
            _, err = simulator.communicate(timeout=300)
            assert simulator.returncode == 0, err[-3000:]  # it exits non-zero when a message failed
        finally:
            if simulator is not None and simulator.poll() is None:
                simulator.kill()
            stopped = run_cli("stream", "stop", env=environment)
            stop_stream(environment)
        assert stopped.returncode == 0, stopped.stderr
        assert cluster.brokers_up() == SIZE
        drain(environment)
        rows = ledger_rows(ledger)
        assert len(rows) == sent(ours) >= EVENTS, "every message in Kafka was acknowledged, once"
        assert_exactly_once(environment, rows)

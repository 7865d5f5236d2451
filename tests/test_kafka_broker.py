"""The real local Kafka broker: topics, a round trip with confluent-kafka, and its lifecycle."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from confluent_kafka import Producer

from smartcity.errors import PlatformError
from smartcity.kafka.admin import admin_client, consume, ensure_topics, topic_offsets
from smartcity.kafka.broker import broker_service, new_cluster_id
from smartcity.processes import wait_dead
from smartcity.services import Service
from smartcity.settings import Settings
from tests.conftest import SMARTCITY, run_cli, settings_from

pytestmark = [pytest.mark.broker, pytest.mark.usefixtures("jars")]


def produce(settings: Settings, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "enable.idempotence": True})
    failures: list[str] = []
    for index, value in enumerate(values):
        producer.produce(
            topic,
            key=f"device-{index % 7}".encode(),
            value=value,
            on_delivery=lambda err, _msg: err and failures.append(str(err)),
        )
    assert producer.flush(30) == 0
    assert failures == []


def test_topics_exist_with_configured_partitions(broker: Service, settings: Settings) -> None:
    metadata = admin_client(settings).list_topics(timeout=10).topics
    for topic in settings.topics.values():
        assert len(metadata[topic].partitions) == settings.kafka_partitions == 3


def test_message_round_trip(broker: Service, settings: Settings) -> None:
    topic = settings.gps_topic
    before = sum(row.high for row in topic_offsets(settings) if row.topic == topic)
    run_id = str(uuid.uuid4())
    sent = [json.dumps({"run": run_id, "n": n}).encode() for n in range(200)]
    produce(settings, topic, sent)

    received = [
        message.value()
        for message in consume(settings, topic, from_beginning=True, idle_timeout=5)
        if json.loads(message.value())["run"] == run_id
    ]
    assert sorted(received) == sorted(sent)
    after = sum(row.high for row in topic_offsets(settings) if row.topic == topic)
    assert after - before == len(sent)


def test_ensure_topics_is_idempotent_and_grows_partitions(broker: Service, settings: Settings) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    renamed = {f"{stream}_topic": f"{prefix}{stream}" for stream in settings.topics}
    two = settings.model_copy(update={**renamed, "kafka_partitions": 2})
    assert set(ensure_topics(two).values()) == {2}
    assert set(ensure_topics(two).values()) == {2}
    four = settings.model_copy(update={**renamed, "kafka_partitions": 4})
    assert set(ensure_topics(four).values()) == {4}


def test_status_lists_topics_partitions_and_end_offsets(broker: Service, settings: Settings) -> None:
    produce(settings, settings.weather_topic, [b'{"status": "probe"}'])
    result = run_cli("kafka", "status")
    assert result.returncode == 0, result.stderr
    assert f"running (pid {broker.pid()})" in result.stdout
    rows = [
        line.split()
        for line in result.stdout.splitlines()
        if line.split()[:1] and line.split()[0] in settings.topics.values()
    ]
    assert {(row[0], int(row[1])) for row in rows} == {
        (topic, partition) for topic in settings.topics.values() for partition in range(3)
    }
    weather_messages = sum(int(row[4]) for row in rows if row[0] == settings.weather_topic)
    assert weather_messages >= 1


def test_tail_pretty_prints_json_and_flags_bad_payloads(broker: Service, settings: Settings) -> None:
    produce(
        settings,
        settings.emergency_topic,
        [b'{"incident_id": "inc-1", "severity": 3}', b"\xff\xfe", b"{oops"],
    )
    result = run_cli("kafka", "tail", settings.emergency_topic, "--from-beginning", "--idle-timeout", "5")
    assert result.returncode == 0, result.stderr
    assert '"incident_id": "inc-1"' in result.stdout
    assert "(invalid UTF-8, 2 bytes) fffe" in result.stdout
    assert "(not JSON) {oops" in result.stdout


def test_tail_of_a_missing_topic_names_it(broker: Service) -> None:
    result = run_cli("kafka", "tail", "no_such_topic", "--idle-timeout", "1")
    assert result.returncode == 1
    assert "topic 'no_such_topic' does not exist" in result.stderr


def test_status_without_broker_says_how_to_start_it(private_environment: dict[str, str]) -> None:
    result = run_cli("kafka", "status", env=private_environment)
    assert result.returncode == 69
    assert "local broker: not running" in result.stdout
    assert "smartcity kafka start" in result.stderr


def test_lifecycle_start_twice_sigkill_restart_stop(private_environment: dict[str, str]) -> None:
    settings = settings_from(private_environment)
    broker = broker_service(settings)
    try:
        with ThreadPoolExecutor(2) as pool:  # two concurrent starts launch one broker
            results = list(
                pool.map(
                    lambda _: subprocess.run(
                        [SMARTCITY, "kafka", "start"],
                        env={**os.environ, **private_environment},
                        capture_output=True,
                        text=True,
                        timeout=300,
                    ),
                    range(2),
                )
            )
        assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
        assert sorted("already running" in r.stdout for r in results) == [False, True]
        assert not any("Kafka starting" in r.stderr or "Kafka ready" in r.stderr for r in results)  # said on stdout
        first = broker.pid()
        assert first is not None

        again = broker.start()
        assert again.already_running and again.pid == first

        produce(settings, settings.vehicle_topic, [b'{"before": "kill"}'] * 10)
        os.kill(first, signal.SIGKILL)
        assert wait_dead(first, timeout=30), "SIGKILL is delivered asynchronously; the JVM takes a moment to go"
        assert broker.pid() is None

        restarted = broker.start()
        assert not restarted.already_running and restarted.pid != first
        assert sum(r.messages for r in topic_offsets(settings) if r.topic == settings.vehicle_topic) == 10

        stop = run_cli("kafka", "stop", env=private_environment)
        assert stop.returncode == 0 and f"stopped (pid {restarted.pid})" in stop.stdout
        assert broker.pid() is None
        assert "not running" in run_cli("kafka", "stop", env=private_environment).stdout
    finally:
        broker.stop()


def test_port_in_use_is_reported_with_the_setting(private_environment: dict[str, str]) -> None:
    settings = settings_from(private_environment)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.kafka_port))
        squatter.listen()
        with pytest.raises(PlatformError, match=rf"port {settings.kafka_port} .* SMARTCITY_KAFKA_PORT"):
            broker_service(settings).start()


def test_cluster_ids_never_look_like_options() -> None:
    ids = {new_cluster_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)

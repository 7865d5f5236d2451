"""Spark reads the real broker through the pre-resolved connector jars, with nothing downloaded at start."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pyspark
import pytest
from confluent_kafka import Producer
from pyspark.sql import SparkSession

from smartcity.jars import PYSPARK_JARS, SPARK_KAFKA, artifact_name, classpath
from smartcity.kafka.admin import ensure_topics
from smartcity.kafka.broker import LocalBroker
from smartcity.settings import Settings

pytestmark = pytest.mark.broker


def test_connector_version_equals_pyspark(settings: Settings) -> None:
    connector = [jar for jar in classpath(settings, SPARK_KAFKA) if artifact_name(jar) == "spark-sql-kafka-0-10_2.13"]
    assert [jar.name for jar in connector] == [f"spark-sql-kafka-0-10_2.13-{pyspark.__version__}.jar"]


def test_connector_jars_do_not_duplicate_pyspark_jars(settings: Settings) -> None:
    shipped = {artifact_name(jar) for jar in PYSPARK_JARS.glob("*.jar")}
    extra = {artifact_name(jar) for jar in classpath(settings, SPARK_KAFKA)}
    assert extra.isdisjoint(shipped)
    assert {"spark-sql-kafka-0-10_2.13", "spark-token-provider-kafka-0-10_2.13", "kafka-clients"} <= extra


def test_spark_batch_reads_topic_from_local_jars(broker: LocalBroker, settings: Settings, tmp_path: Path) -> None:
    topic = f"spark_probe_{uuid.uuid4().hex[:8]}"
    ensure_topics(settings.model_copy(update={"traffic_topic": topic}))
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for n in range(500):
        producer.produce(topic, key=f"camera-{n % 5}".encode(), value=json.dumps({"n": n}).encode())
    assert producer.flush(30) == 0

    spark = (
        SparkSession.builder.master("local[1]")
        .appName("connector-probe")
        .config("spark.jars", ",".join(str(jar) for jar in classpath(settings, SPARK_KAFKA)))
        # An empty Ivy home: any attempt to resolve packages at start would have nothing to use.
        .config("spark.jars.ivy", str(tmp_path / "ivy"))
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        frame = (
            spark.read.format("kafka")
            .option("kafka.bootstrap.servers", settings.bootstrap_servers)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
            .load()
        )
        values = sorted(json.loads(row.value)["n"] for row in frame.select(frame.value.cast("string")).collect())
        assert values == list(range(500))
        assert {row.partition for row in frame.select("partition").distinct().collect()} <= {0, 1, 2}
    finally:
        spark.stop()
    assert not (tmp_path / "ivy").exists()

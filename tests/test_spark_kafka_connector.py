"""Spark reads the real broker through the pre-resolved connector jars, with nothing downloaded at start."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pyspark
import pytest
from confluent_kafka import Producer

from smartcity.jars import PYSPARK_JARS, SPARK_KAFKA, artifact_name, classpath
from smartcity.kafka.admin import ensure_topics
from smartcity.services import Service
from smartcity.settings import Settings

pytestmark = [pytest.mark.broker, pytest.mark.usefixtures("jars")]


def test_connector_version_equals_pyspark(settings: Settings) -> None:
    connector = [jar for jar in classpath(settings, SPARK_KAFKA) if artifact_name(jar) == "spark-sql-kafka-0-10_2.13"]
    assert [jar.name for jar in connector] == [f"spark-sql-kafka-0-10_2.13-{pyspark.__version__}.jar"]


def test_connector_jars_do_not_duplicate_pyspark_jars(settings: Settings) -> None:
    shipped = {artifact_name(jar) for jar in PYSPARK_JARS.glob("*.jar")}
    extra = {artifact_name(jar) for jar in classpath(settings, SPARK_KAFKA)}
    assert extra.isdisjoint(shipped)
    assert {"spark-sql-kafka-0-10_2.13", "spark-token-provider-kafka-0-10_2.13", "kafka-clients"} <= extra


# Run in a fresh interpreter: a JVM already started by an earlier test (the asset graph's Spark session) would
# not load the connector, and a fresh process is how the stream itself starts.
PROBE = """
import json, sys
from pyspark.sql import SparkSession
jars, ivy, servers, topic = sys.argv[1:5]
spark = (SparkSession.builder.master("local[1]").appName("connector-probe").config("spark.jars", jars)
         .config("spark.jars.ivy", ivy)  # an empty Ivy home: a resolution attempt at start would find nothing
         .config("spark.ui.enabled", "false").getOrCreate())
frame = (spark.read.format("kafka").option("kafka.bootstrap.servers", servers).option("subscribe", topic)
         .option("startingOffsets", "earliest").load())
values = sorted(json.loads(row.value)["n"] for row in frame.select(frame.value.cast("string")).collect())
partitions = sorted({row.partition for row in frame.select("partition").distinct().collect()})
print(json.dumps({"values": values, "partitions": partitions}))
spark.stop()
"""


def test_spark_batch_reads_topic_from_local_jars(broker: Service, settings: Settings, tmp_path: Path) -> None:
    topic = f"spark_probe_{uuid.uuid4().hex[:8]}"
    ensure_topics(settings.model_copy(update={"traffic_topic": topic}))
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for n in range(500):
        producer.produce(topic, key=f"camera-{n % 5}".encode(), value=json.dumps({"n": n}).encode())
    assert producer.flush(30) == 0

    jars = ",".join(str(jar) for jar in classpath(settings, SPARK_KAFKA))
    command = [sys.executable, "-c", PROBE, jars, str(tmp_path / "ivy"), settings.bootstrap_servers, topic]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    read = json.loads(result.stdout.strip().splitlines()[-1])
    assert read["values"] == list(range(500))
    assert set(read["partitions"]) <= {0, 1, 2}
    assert not (tmp_path / "ivy").exists()

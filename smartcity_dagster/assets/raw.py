"""External assets: the Kafka topics and the raw zone tables the stream lands (Dagster observes, not writes)."""

import dagster as dg

from smartcity.contracts import CONTRACTS
from smartcity.settings import Settings
from smartcity_dagster.resources.lake import LocalLake

OWNERS = ["team:data-platform"]


def kafka_key(stream: str) -> dg.AssetKey:
    return dg.AssetKey(["kafka", stream])


def raw_key(stream: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", stream])


def kafka_topic_specs(settings: Settings) -> list[dg.AssetSpec]:
    """The five Kafka topics: the simulator and the devices write them."""
    return [
        dg.AssetSpec(
            key=kafka_key(stream),
            description=f"Kafka topic `{topic}`: {CONTRACTS[stream].description}",
            group_name="ingestion",
            kinds={"kafka"},
            owners=OWNERS,
            metadata={
                "topic": topic,
                "bootstrap_servers": settings.bootstrap_servers,
                "partitions": settings.kafka_partitions,
            },
        )
        for stream, topic in settings.topics.items()
    ]


def raw_table_specs(settings: Settings, partitions: dg.PartitionsDefinition) -> list[dg.AssetSpec]:
    """The raw zone, one table per topic, landed by the Spark stream; the lake sensor records its hours."""
    lake = LocalLake(root=settings.lake)
    return [
        dg.AssetSpec(
            key=raw_key(stream),
            deps=[kafka_key(stream)],
            description=(
                f"Raw zone of `{topic}`: valid events as the stream committed them (duplicates included), "
                "Parquet partitioned by event_date/event_hour, with Kafka coordinates and ingest time."
            ),
            group_name="ingestion",
            kinds={"spark", "parquet"},
            owners=OWNERS,
            partitions_def=partitions,
            metadata={"location": lake.location("raw", topic), "landed_by": "spark_streaming (raw_ingest query)"},
        )
        for stream, topic in settings.topics.items()
    ]

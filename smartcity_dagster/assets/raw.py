"""External assets: the Kafka topics, and the raw and quarantine tables the stream lands (Dagster observes them)."""

import dagster as dg

from smartcity.contracts import CONTRACTS
from smartcity.settings import Settings
from smartcity_dagster.resources.lake import LocalLake

OWNERS = ["team:data-platform"]


def kafka_key(stream: str) -> dg.AssetKey:
    return dg.AssetKey(["kafka", stream])


def raw_key(stream: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", stream])


def quarantine_key(stream: str) -> dg.AssetKey:
    return dg.AssetKey(["quarantine", stream])


LANDED_ZONES = {"raw": raw_key, "quarantine": quarantine_key}  # the zones the stream lands: zone → asset key


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


LANDED_DESCRIPTIONS = {
    "raw": "valid events as the stream committed them (duplicates included), Parquet partitioned by "
    "event_date/event_hour, with Kafka coordinates and ingest time.",
    "quarantine": "records that failed parsing or validation, with the raw payload, the reason and the Kafka "
    "coordinates; Parquet partitioned by ingest_date/ingest_hour (the hour the stream ingested them, since a "
    "malformed record may have no event time).",
}


def landed_table_specs(settings: Settings, partitions: dg.PartitionsDefinition) -> list[dg.AssetSpec]:
    """The raw and quarantine zones, one table per topic each, landed by the Spark stream; the lake sensor
    records their hours."""
    lake = LocalLake(root=settings.lake)
    return [
        dg.AssetSpec(
            key=key(stream),
            deps=[kafka_key(stream)],
            description=f"{zone.capitalize()} zone of `{topic}`: {LANDED_DESCRIPTIONS[zone]}",
            group_name="ingestion",
            kinds={"spark", "parquet"},
            owners=OWNERS,
            partitions_def=partitions,
            metadata={"location": lake.location(zone, topic), "landed_by": "spark_streaming (raw_ingest query)"},
        )
        for zone, key in LANDED_ZONES.items()
        for stream, topic in settings.topics.items()
    ]

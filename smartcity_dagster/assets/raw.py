"""External assets: the Kafka topics, and the raw and quarantine tables the stream lands (Dagster observes them)."""

import dagster as dg

from smartcity.contracts import CONTRACTS
from smartcity.lake_layout import table_uri
from smartcity.settings import Settings
from smartcity_dagster.assets.groups import INGESTION
from smartcity_dagster.assets.keys import LANDED_KEYS, OWNERS, kafka_key


def kafka_topic_specs(settings: Settings) -> list[dg.AssetSpec]:
    """The five Kafka topics: the simulator and the devices write them."""
    return [
        dg.AssetSpec(
            key=kafka_key(stream),
            description=f"Kafka topic `{topic}`: {CONTRACTS[stream].description}",
            group_name=INGESTION,
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
    return [
        dg.AssetSpec(
            key=key(stream),
            deps=[kafka_key(stream)],
            description=f"{zone.capitalize()} zone of `{topic}`: {LANDED_DESCRIPTIONS[zone]}",
            group_name=INGESTION,
            kinds={"spark", "parquet"},
            owners=OWNERS,
            partitions_def=partitions,
            metadata={
                "location": table_uri(settings.lake, zone, topic),
                "landed_by": "spark_streaming (raw_ingest query)",
            },
        )
        for zone, key in LANDED_KEYS.items()
        for stream, topic in settings.topics.items()
    ]

"""Dagster definitions of the smart-city platform, loaded through ``workspace.yaml``."""

from __future__ import annotations

import dagster as dg

from smartcity.settings import Settings, load_settings

OWNERS = ["team:data-platform"]


def kafka_topic_specs(settings: Settings) -> list[dg.AssetSpec]:
    """The five Kafka topics, as external assets: the simulator and the devices write them, not Dagster."""
    return [
        dg.AssetSpec(
            key=["kafka", topic],
            description=f"Kafka topic of {stream} events, produced by the city's devices (or the simulator).",
            group_name="ingestion",
            kinds={"kafka"},
            owners=OWNERS,
            metadata={
                "bootstrap_servers": settings.bootstrap_servers,
                "partitions": settings.kafka_partitions,
                "stream": stream,
            },
        )
        for stream, topic in settings.topics.items()
    ]


defs = dg.Definitions(assets=kafka_topic_specs(load_settings()))

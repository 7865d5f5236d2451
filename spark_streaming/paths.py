"""Where the stream keeps what it lands and what it knows: the lake, its checkpoint and its heartbeat.

Light on purpose (no Spark): the commands that report on the stream or wait for it to be ready read these too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from smartcity.object_store import local_root, storage_for
from smartcity.settings import Settings
from spark_streaming.lake import Lake

QUERY_NAME = "raw_ingest"


@dataclass(frozen=True)
class StreamPaths:
    lake: Lake
    checkpoint: Path
    heartbeat: Path

    @classmethod
    def of(cls, settings: Settings) -> StreamPaths:
        return cls(
            lake=Lake(storage_for(settings.lake, settings)),
            checkpoint=local_root(settings.checkpoints) / QUERY_NAME,
            heartbeat=settings.paths.stream / "heartbeat.json",
        )

    def heartbeat_pid(self) -> int | None:
        """The pid of the stream that last wrote its heartbeat (written once its query has started)."""
        try:
            return json.loads(self.heartbeat.read_text()).get("pid")
        except (FileNotFoundError, ValueError):
            return None

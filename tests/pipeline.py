"""Driving the real pipeline in tests: private topics on the session's broker, the simulator, the stream."""

from __future__ import annotations

import csv
import subprocess
import uuid
from pathlib import Path

from smartcity.kafka.admin import ensure_topics
from smartcity.settings import Settings
from tests.conftest import isolated_environment, run_cli, settings_from

MALFORMED = {"invalid_json", "wrong_type", "missing_field", "out_of_range", "invalid_utf8", "oversized"}
FAULTS = ["--malformed-rate", "0.06", "--duplicate-rate", "0.01", "--late-rate", "0.01", "--out-of-order-rate", "0.01"]


def stream_environment(settings: Settings, root: Path, **extra: str) -> dict[str, str]:
    """A private var/, lake and checkpoint, and fresh topics on the session's broker."""
    environment = isolated_environment(root / "var")
    prefix = f"st{uuid.uuid4().hex[:8]}_"
    topics = {f"SMARTCITY_{stream.upper()}_TOPIC": f"{prefix}{topic}" for stream, topic in settings.topics.items()}
    environment.update(topics, SMARTCITY_KAFKA_BOOTSTRAP_SERVERS=settings.bootstrap_servers, **extra)
    ensure_topics(settings_from(environment))
    return environment


def simulate(environment: dict[str, str], ledger: Path, *args: str) -> None:
    result = run_cli("simulate", "--speedup", "0", "--ledger", str(ledger), "--no-progress", *args, env=environment)
    assert result.returncode == 0, result.stderr


def drain(environment: dict[str, str]) -> subprocess.CompletedProcess:
    result = run_cli("stream", "start", "--available-now", env=environment, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def ledger_rows(*ledgers: Path) -> list[dict[str, str]]:
    rows = []
    for ledger in ledgers:
        with ledger.open() as handle:
            rows += list(csv.DictReader(handle))
    return rows

"""The lake's commit protocol on its own: publish, replay, and compaction that readers see atomically."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_streaming.lake import Lake, compact_hour, last_committed_batch

HOUR = Path("vehicle_data/event_date=2026-11-27/event_hour=08")


def stage_file(lake: Lake, batch_id: int, offsets: range, name: str = "part-0000.parquet") -> Path:
    path = lake.stage(batch_id) / "raw" / "vehicle_data" / "event_date=2026-11-27" / "event_hour=08" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"kafka_offset": list(offsets), "batch": [batch_id] * len(offsets)}), path)
    return path


def publish(lake: Lake, batch_id: int, offsets: range) -> None:
    stage_file(lake, batch_id, offsets)
    lake.publish(
        batch_id, lake.plan(lake.stage(batch_id) / "raw" / "vehicle_data", lake.raw / "vehicle_data", batch_id)
    )


def commit(checkpoint: Path, batch_id: int) -> None:
    (checkpoint / "commits").mkdir(parents=True, exist_ok=True)
    (checkpoint / "commits" / str(batch_id)).write_text("v1\n{}")


def offsets_seen(lake: Lake) -> list[int]:
    glob = str(lake.raw / "*" / "*" / "*" / "*.parquet")
    return sorted(row[0] for row in duckdb.sql(f"select kafka_offset from read_parquet('{glob}')").fetchall())


def test_published_names_derive_from_the_batch(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    publish(lake, 7, range(0, 10))
    assert [p.name for p in (lake.raw / HOUR).iterdir()] == ["part-b000000000007.parquet"]
    assert not list(lake.stage(7).rglob("*.parquet"))


def test_a_replayed_batch_replaces_instead_of_adding(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    publish(lake, 3, range(0, 10))
    # The attempt crashed before Spark committed batch 3; the replay writes two files where there was one.
    assert lake.undo_publish(3) == [lake.raw / HOUR / "part-b000000000003.parquet"]
    stage_file(lake, 3, range(0, 5), "a.parquet")
    stage_file(lake, 3, range(5, 10), "b.parquet")
    lake.publish(3, lake.plan(lake.stage(3) / "raw" / "vehicle_data", lake.raw / "vehicle_data", 3))
    assert offsets_seen(lake) == list(range(10))


def test_intents_of_committed_batches_are_forgotten(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    publish(lake, 1, range(0, 5))
    publish(lake, 2, range(5, 10))
    lake.forget_intents(before=2)
    assert lake.undo_publish(1) == []  # batch 1 is committed: never taken back
    assert offsets_seen(lake) == list(range(10))


def test_compaction_keeps_rows_and_leaves_uncommitted_batches_alone(tmp_path: Path) -> None:
    lake, checkpoint = Lake(tmp_path / "lake"), tmp_path / "checkpoint"
    for batch in range(5):
        publish(lake, batch, range(batch * 10, batch * 10 + 10))
    commit(checkpoint, 3)
    assert last_committed_batch(checkpoint) == 3
    compacted = compact_hour(lake, lake.raw / HOUR, checkpoint)
    assert compacted is not None and compacted.name == "compacted-b000000000003.parquet"
    assert sorted(p.name for p in (lake.raw / HOUR).iterdir()) == [compacted.name, "part-b000000000004.parquet"]
    assert offsets_seen(lake) == list(range(50))
    assert compact_hour(lake, lake.raw / HOUR, checkpoint) is None  # nothing new to compact


def test_readers_never_see_a_mix_while_compacting(tmp_path: Path) -> None:
    """Every successful read is complete and duplicate-free. A reader whose listing was taken just before a
    swap can fail to open a file that left (and must retry); it never gets wrong rows."""
    lake, checkpoint = Lake(tmp_path / "lake"), tmp_path / "checkpoint"
    next_offset = 0
    stop, problems, reads = threading.Event(), [], {"ok": 0, "retried": 0}

    def reader() -> None:
        while not stop.is_set():
            try:
                seen = offsets_seen(lake)
            except duckdb.IOException as exc:
                assert "No such file" in str(exc)
                reads["retried"] += 1
                continue
            reads["ok"] += 1
            if len(seen) != len(set(seen)) or seen != list(range(len(seen))):
                problems.append(seen)

    for batch in range(40):
        publish(lake, batch, range(next_offset, next_offset + 25))
        next_offset += 25
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for batch in range(40, 80):  # compact after every batch while the reader keeps reading
            commit(checkpoint, batch - 1)
            compact_hour(lake, lake.raw / HOUR, checkpoint)
            publish(lake, batch, range(next_offset, next_offset + 25))
            next_offset += 25
    finally:
        stop.set()
        thread.join()
    assert problems == []
    assert reads["ok"] > 10
    assert offsets_seen(lake) == list(range(next_offset))


def test_unexpected_files_are_reported(tmp_path: Path) -> None:
    lake, checkpoint = Lake(tmp_path / "lake"), tmp_path / "checkpoint"
    publish(lake, 0, range(5))
    publish(lake, 1, range(5, 10))
    commit(checkpoint, 1)
    (lake.raw / HOUR / "stray.parquet").write_bytes(b"")
    with pytest.raises(Exception, match="unexpected file in the lake"):
        compact_hour(lake, lake.raw / HOUR, checkpoint)

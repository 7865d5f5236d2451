"""The lake's commit protocol on its own: publish, replay, and compaction that readers see atomically."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smartcity.atomic import exchange
from smartcity.errors import PlatformError
from smartcity.object_store import LocalStorage, Storage, storage_for
from smartcity.settings import Settings
from spark_streaming.lake import Lake, compact_hour, last_committed_batch, recover_compactions
from tests.conftest import unencrypted_objects

HOUR = "vehicle_data/event_date=2026-11-27/event_hour=08"


@pytest.fixture(params=["local", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    """The protocol on both storages: a local directory, and a bucket on the loopback S3 server."""
    if request.param == "local":
        return Lake(LocalStorage(tmp_path / "lake"))
    settings = request.getfixturevalue("s3_settings")
    return Lake(storage_for(settings.lake, settings))


def put_parquet(storage: Storage, key: str, table: pa.Table) -> None:
    if isinstance(storage, LocalStorage):
        storage.path(key).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, storage.path(key))
        return
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    storage.client.put_object(Bucket=storage.bucket, Key=storage.key(key), Body=buffer.getvalue())


def stage_file(lake: Lake, batch_id: int, offsets: range, name: str = "part-0000.parquet") -> None:
    table = pa.table({"kafka_offset": list(offsets), "batch": [batch_id] * len(offsets)})
    put_parquet(lake.storage, f"{lake.stage(batch_id)}/raw/{HOUR}/{name}", table)


def publish(lake: Lake, batch_id: int, offsets: range) -> None:
    stage_file(lake, batch_id, offsets)
    lake.publish(batch_id, lake.plan(f"{lake.stage(batch_id)}/raw/vehicle_data", "raw/vehicle_data", batch_id))


def commit(checkpoint: Path, batch_id: int) -> None:
    (checkpoint / "commits").mkdir(parents=True, exist_ok=True)
    (checkpoint / "commits" / str(batch_id)).write_text("v1\n{}")


def offsets_seen(lake: Lake) -> list[int]:
    """Offsets in the raw zone, as a reader that lists the zone's files sees them."""
    tables = [pq.read_table(lake.storage.open_input(f)) for f in lake.storage.list_files(lake.raw, ".parquet")]
    return sorted(offset for table in tables for offset in table.column("kafka_offset").to_pylist())


def glob_offsets(root: Path) -> list[int]:
    """Offsets in a local raw zone, read as DuckDB reads it: one plain glob."""
    glob = str(root / "raw" / "*" / "*" / "*" / "*.parquet")
    return sorted(row[0] for row in duckdb.sql(f"select kafka_offset from read_parquet('{glob}')").fetchall())


def test_published_names_derive_from_the_batch(lake: Lake) -> None:
    publish(lake, 7, range(0, 10))
    assert lake.storage.list_files(lake.raw) == [f"raw/{HOUR}/part-b000000000007.parquet"]
    assert lake.storage.list_files(lake.stage(7)) == []


def test_a_replayed_batch_replaces_its_files_in_place(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    publish(lake, 3, range(0, 10))
    # The attempt crashed before Spark committed batch 3; the replay has the same offsets and the same names.
    deleted: list[str] = []
    delete = lake.storage.delete

    def recording_delete(keys: Iterable[str]) -> None:
        deleted.extend(keys := list(keys))
        delete(keys)

    monkeypatch.setattr(lake.storage, "delete", recording_delete)
    publish(lake, 3, range(0, 10))
    assert deleted == [], "a replay took a file away before replacing it: readers would miss its rows"
    assert offsets_seen(lake) == list(range(10))


def test_a_replay_takes_back_what_it_does_not_publish_again(lake: Lake) -> None:
    stage_file(lake, 3, range(0, 5), "a.parquet")
    stage_file(lake, 3, range(5, 10), "b.parquet")  # the first attempt wrote two files where a replay writes one
    lake.publish(3, lake.plan(f"{lake.stage(3)}/raw/vehicle_data", "raw/vehicle_data", 3))
    publish(lake, 3, range(0, 10))
    assert lake.storage.list_files(lake.raw) == [f"raw/{HOUR}/part-b000000000003.parquet"]
    assert offsets_seen(lake) == list(range(10))


def test_intents_of_committed_batches_are_forgotten(lake: Lake) -> None:
    publish(lake, 1, range(0, 5))
    publish(lake, 2, range(5, 10))
    lake.forget_intents(before=2)
    assert lake.storage.list_files(lake.intents) == [f"{lake.intents}/000000000002.json"]
    assert offsets_seen(lake) == list(range(10))


def test_every_object_written_to_s3_is_encrypted_at_rest(s3_settings: Settings) -> None:
    lake = Lake(storage_for(s3_settings.lake, s3_settings))
    publish(lake, 0, range(5))
    lake.write_manifest(0, {"batch_id": 0})
    storage = lake.storage
    keys = storage.list_files("")
    assert {f"raw/{HOUR}/part-b000000000000.parquet", "_stream/batches/000000000000.json"} <= set(keys)
    assert unencrypted_objects(storage) == []


def test_compaction_is_refused_on_s3_with_the_reason(s3_settings: Settings) -> None:
    lake = Lake(storage_for(s3_settings.lake, s3_settings))
    with pytest.raises(PlatformError, match="cannot see several object changes as one"):
        lake.local_root()


def local_lake(tmp_path: Path) -> tuple[Lake, Path, Path]:
    """Compaction needs a local lake: (lake, its root directory, a checkpoint directory)."""
    lake = Lake(LocalStorage(tmp_path / "lake"))
    return lake, lake.local_root(), tmp_path / "checkpoint"


def test_compaction_keeps_rows_and_leaves_uncommitted_batches_alone(tmp_path: Path) -> None:
    lake, root, checkpoint = local_lake(tmp_path)
    for batch in range(5):
        publish(lake, batch, range(batch * 10, batch * 10 + 10))
    commit(checkpoint, 3)
    assert last_committed_batch(checkpoint) == 3
    compacted = compact_hour(lake, root / lake.raw / HOUR, checkpoint)
    assert compacted is not None and compacted.name == "compacted-b000000000003.parquet"
    assert sorted(p.name for p in (root / lake.raw / HOUR).iterdir()) == [compacted.name, "part-b000000000004.parquet"]
    assert glob_offsets(root) == list(range(50))
    assert compact_hour(lake, root / lake.raw / HOUR, checkpoint) is None  # nothing new to compact


def test_readers_never_see_a_mix_while_compacting(tmp_path: Path) -> None:
    """Every successful read is complete and duplicate-free. A reader whose listing was taken just before a
    swap can fail to open a file that left (and must retry); it never gets wrong rows."""
    lake, root, checkpoint = local_lake(tmp_path)
    next_offset = 0
    stop, problems, reads = threading.Event(), [], {"ok": 0, "retried": 0}

    def reader() -> None:
        while not stop.is_set():
            try:
                seen = glob_offsets(root)
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
            compact_hour(lake, root / lake.raw / HOUR, checkpoint)
            publish(lake, batch, range(next_offset, next_offset + 25))
            next_offset += 25
    finally:
        stop.set()
        thread.join()
    assert problems == []
    assert reads["ok"] > 10
    assert glob_offsets(root) == list(range(next_offset))


@pytest.mark.parametrize("dies_after_the_swap", [False, True])
def test_a_batch_published_while_compacting_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dies_after_the_swap: bool
) -> None:
    lake, root, checkpoint = local_lake(tmp_path)
    for batch in range(3):
        publish(lake, batch, range(batch * 10, batch * 10 + 10))
    commit(checkpoint, 2)

    def swap_after_a_late_publish(first: Path, second: Path) -> None:
        publish(lake, 3, range(30, 40))  # lands in the hour's current directory, which the swap retires
        exchange(first, second)
        if dies_after_the_swap:
            raise KeyboardInterrupt("killed between the swap and moving late files across")

    monkeypatch.setattr("spark_streaming.lake.exchange", swap_after_a_late_publish)
    if dies_after_the_swap:
        with pytest.raises(KeyboardInterrupt):
            compact_hour(lake, root / lake.raw / HOUR, checkpoint)
        assert glob_offsets(root) == list(range(30)), "the late batch should be stranded in staging"
        assert recover_compactions(lake) == [root / lake.raw / HOUR / "part-b000000000003.parquet"]
    else:
        compact_hour(lake, root / lake.raw / HOUR, checkpoint)
    assert glob_offsets(root) == list(range(40))
    assert sorted(p.name for p in (root / lake.raw / HOUR).iterdir()) == [
        "compacted-b000000000002.parquet",
        "part-b000000000003.parquet",
    ]
    assert list((root / lake.staging).glob("compact-*")) == []


def test_unexpected_files_are_reported(tmp_path: Path) -> None:
    lake, root, checkpoint = local_lake(tmp_path)
    publish(lake, 0, range(5))
    publish(lake, 1, range(5, 10))
    commit(checkpoint, 1)
    (root / lake.raw / HOUR / "stray.parquet").write_bytes(b"")
    with pytest.raises(Exception, match="unexpected file in the lake"):
        compact_hour(lake, root / lake.raw / HOUR, checkpoint)

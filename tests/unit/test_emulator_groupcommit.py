"""Group commit: concurrent writers share commits, each gets its own outcome, none hangs; the
object store answers an upload only once its row is committed."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from deployer.emulator.groupcommit import GroupCommit
from deployer.emulator.http import ServiceError
from deployer.emulator.objects import ObjectStore


def test_a_lone_writer_commits_on_its_own_thread() -> None:
    threads: list[int] = []

    def commit(items: Sequence[int]) -> list[int]:
        threads.append(threading.get_ident())
        return [i * 10 for i in items]

    group: GroupCommit[int, int] = GroupCommit(commit)
    assert [group.submit(i) for i in range(3)] == [0, 10, 20]
    assert threads == [threading.get_ident()] * 3
    assert (group.batches, group.items) == (3, 3)


def test_writers_arriving_during_a_commit_share_the_next_one() -> None:
    batches: list[list[int]] = []
    first_started = threading.Event()
    release_first = threading.Event()

    def commit(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:
            first_started.set()
            assert release_first.wait(10)
        return [i + 100 for i in items]

    group: GroupCommit[int, int] = GroupCommit(commit)
    with ThreadPoolExecutor(9) as pool:
        leader = pool.submit(group.submit, 0)
        assert first_started.wait(10)
        followers = [pool.submit(group.submit, i) for i in range(1, 9)]
        deadline = time.monotonic() + 10
        while len(group._queue) < 8 and time.monotonic() < deadline:
            time.sleep(0.005)
        release_first.set()
        assert leader.result(10) == 100
        assert sorted(f.result(10) for f in followers) == list(range(101, 109))
    assert batches[0] == [0]
    assert sorted(batches[1]) == list(range(1, 9)), "the 8 waiting writers share one commit"
    assert (group.batches, group.items) == (2, 9)


def test_each_writer_gets_its_own_outcome_and_a_failing_commit_answers_all() -> None:
    def commit(items: Sequence[int]) -> list[int | BaseException]:
        if -1 in items:
            raise OSError("disk gone")
        return [ValueError(f"odd {i}") if i % 2 else i for i in items]

    group: GroupCommit[int, int] = GroupCommit(commit, max_batch=3)
    with ThreadPoolExecutor(8) as pool:
        futures = {i: pool.submit(group.submit, i) for i in range(40)}
        for i, future in futures.items():
            if i % 2:
                with pytest.raises(ValueError, match=f"odd {i}"):
                    future.result(10)
            else:
                assert future.result(10) == i
    with pytest.raises(OSError, match="disk gone"):
        group.submit(-1)
    assert group.submit(2) == 2, "a failed commit leaves the group usable"
    assert group.batches <= group.items


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError):
        GroupCommit(lambda items: list(items), max_batch=0)


def test_concurrent_uploads_are_committed_in_shared_batches_and_all_listed(
    tmp_path: Path,
) -> None:
    store = ObjectStore(tmp_path, fsync=True)  # the real sync path
    store.create_bucket("bkt")
    payloads = {f"o/{i:03d}": bytes([i]) * (1000 + i) for i in range(64)}
    with ThreadPoolExecutor(8) as pool:
        written = pool.map(lambda kv: store.put("bkt", kv[0], kv[1]), payloads.items())
        metas = dict(zip(payloads, written, strict=True))
    assert store._group.items == 64
    listed = {m.name: m for m in store.list_page("bkt", max_results=1000).items}
    assert set(listed) == set(payloads)
    for name, data in payloads.items():
        # What the writer was answered is what is stored, and the bytes match it.
        assert listed[name] == metas[name]
        assert store.read_bytes("bkt", name) == data
    generations = [m.generation for m in metas.values()]
    assert len(set(generations)) == len(generations)


def test_a_refused_write_in_a_batch_leaves_no_blob_and_the_others_land(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path, fsync=False)
    store.create_bucket("bkt")
    store.put("bkt", "taken", b"v1")

    def write(name: str) -> str:
        try:
            store.put("bkt", name, name.encode(), if_generation_match=0)
        except ServiceError as exc:
            return str(exc.http_status)
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(write, ["taken", *[f"new-{i}" for i in range(15)]]))
    assert results == ["412"] + ["ok"] * 15
    assert store.read_bytes("bkt", "taken") == b"v1"
    blobs = [p for p in (tmp_path / "gcs" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 16  # one per live object: nothing left by the refused write
    assert not any((tmp_path / "gcs" / "tmp").iterdir())


def test_an_overwrite_in_a_batch_replaces_the_old_blob(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path, fsync=False)
    store.create_bucket("bkt")
    first = store.put("bkt", "x", b"one")
    second = store.put("bkt", "x", b"two")
    assert second.generation > first.generation
    assert store.read_bytes("bkt", "x") == b"two"
    assert sum(1 for p in (tmp_path / "gcs" / "blobs").rglob("*") if p.is_file()) == 1


def test_blob_sync_takes_one_file_or_a_batch(tmp_path: Path) -> None:
    from deployer.emulator.blobfiles import BlobFiles

    files = BlobFiles(tmp_path, fsync=True)
    rels = [files.publish(files.write_temp(bytes([i]) * 100)[0]) for i in range(5)]
    files.sync(rels[:1])  # a lone writer: its own file
    files.sync(rels)  # a batch: one syncfs on Linux
    files.sync([])
    assert [files.path(r).read_bytes() for r in rels] == [bytes([i]) * 100 for i in range(5)]

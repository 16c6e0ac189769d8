"""Parallel uploads through google-cloud-storage's transfer manager, restart and kill -9 safety."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from google.cloud.storage import transfer_manager

from tests.integration.conftest import make_storage_client
from tests.support.emulator import EmulatorProcess

pytestmark = pytest.mark.timeout(180)


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _tree(root: Path, count: int, size: int) -> dict[str, bytes]:
    files = {}
    for i in range(count):
        name = f"variables/part-{i:04d}.bin"
        data = os.urandom(size)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
        files[name] = data
    return files


@pytest.mark.parametrize("worker_type", [transfer_manager.THREAD, transfer_manager.PROCESS])
def test_transfer_manager_uploads_many_files(storage_client, tmp_path, worker_type) -> None:
    files = _tree(tmp_path, 40, 64 * 1024)
    bucket = storage_client.create_bucket("tm-bucket")
    results = transfer_manager.upload_many_from_filenames(
        bucket,
        list(files),
        source_directory=str(tmp_path),
        blob_name_prefix="artifacts/h/",
        worker_type=worker_type,
        max_workers=4,
        skip_if_exists=True,
        raise_exception=True,
    )
    assert results == [None] * len(files)
    listed = {
        b.name: b.md5_hash for b in storage_client.list_blobs("tm-bucket", prefix="artifacts/h/")
    }
    assert listed == {f"artifacts/h/{n}": _md5(d) for n, d in files.items()}
    # skip_if_exists uses ifGenerationMatch=0: a second run changes nothing.
    again = transfer_manager.upload_many_from_filenames(
        bucket,
        list(files),
        source_directory=str(tmp_path),
        blob_name_prefix="artifacts/h/",
        worker_type=worker_type,
        max_workers=4,
        skip_if_exists=True,
    )
    assert [type(r).__name__ for r in again] == ["PreconditionFailed"] * len(files)


def test_restart_keeps_buckets_objects_and_metadata(emulator: EmulatorProcess) -> None:
    client = make_storage_client(emulator.url)
    bucket = client.bucket("keep")
    bucket.labels = {"deployer-stack": "s"}
    client.create_bucket(bucket)
    blob = bucket.blob("a/b.bin")
    blob.metadata = {"sha256": "abc"}
    blob.upload_from_string(b"payload", content_type="text/plain")
    before = bucket.get_blob("a/b.bin")

    emulator.restart()  # SIGTERM, then start on the same data dir and port
    client = make_storage_client(emulator.url)
    after = client.bucket("keep").get_blob("a/b.bin")
    assert client.get_bucket("keep").labels == {"deployer-stack": "s"}
    assert (after.generation, after.md5_hash, after.crc32c, after.metadata, after.content_type) == (
        before.generation,
        before.md5_hash,
        before.crc32c,
        {"sha256": "abc"},
        "text/plain",
    )
    assert after.download_as_bytes() == b"payload"
    # Generations keep increasing across restarts.
    again = client.bucket("keep").blob("a/b.bin")
    again.upload_from_string(b"payload2")
    assert again.generation > before.generation


def _crc32c(data: bytes) -> str:
    import google_crc32c

    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


@pytest.mark.parametrize(
    ("workers", "size"),
    [(8, 256 * 1024), (16, 64 * 1024)],  # 16 small uploads at once: group commits of many
    ids=["8x256KiB", "16x64KiB"],
)
def test_kill9_during_uploads_keeps_every_acknowledged_object_and_tears_none(
    emulator: EmulatorProcess, workers: int, size: int
) -> None:
    client = make_storage_client(emulator.url)
    client.create_bucket("crash")
    expected = {f"obj-{i:04d}": os.urandom(size + i) for i in range(600)}
    acknowledged: set[str] = set()
    stop = threading.Event()
    done = threading.Semaphore(0)

    def upload(name: str) -> None:
        if stop.is_set():
            return
        try:
            # No client retries: after the kill, calls fail fast.
            client.bucket("crash").blob(name).upload_from_string(
                expected[name], retry=None, timeout=5
            )
        except Exception:
            stop.set()
            return
        acknowledged.add(name)  # the emulator answered 200: it promised the object
        done.release()

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(upload, n) for n in expected]
        for _ in range(60):  # kill once some uploads are through and others are in flight
            assert done.acquire(timeout=60)
        emulator.kill9()
        for f in futures:
            f.result()

    emulator.start()
    client = make_storage_client(emulator.url)
    present = {b.name: b for b in client.list_blobs("crash")}
    assert 0 < len(present) < len(expected), "the kill should land mid-way"
    # Durability: every upload that was answered is there after the kill.
    assert acknowledged <= set(present), sorted(acknowledged - set(present))[:5]
    # Atomicity: whatever is listed (answered or not) is whole: size, md5, crc32c, bytes.
    for name, blob in present.items():
        data = expected[name]
        assert (blob.size, blob.md5_hash, blob.crc32c) == (len(data), _md5(data), _crc32c(data))
        assert blob.download_as_bytes() == data
    # Nothing half-listed: an object that is not listed cannot be read either.
    for name in sorted(set(expected) - set(present))[:20]:
        assert client.bucket("crash").get_blob(name) is None
    # Leftovers of interrupted writes are swept at start: one blob file per object.
    gcs = emulator.data_dir / "gcs"
    assert not any((gcs / "tmp").iterdir())
    assert sum(1 for _ in (gcs / "blobs").rglob("*") if _.is_file()) == len(present)


def test_resumable_session_survives_restart_and_tolerates_a_resent_chunk(
    emulator: EmulatorProcess,
) -> None:
    import requests

    make_storage_client(emulator.url).create_bucket("resume")
    data = os.urandom(600_000)
    start = requests.post(
        f"{emulator.url}/upload/storage/v1/b/resume/o?uploadType=resumable",
        json={"name": "big.bin", "contentType": "application/x-test"},
        timeout=10,
    )
    assert start.status_code == 200
    session = start.headers["Location"]
    first = requests.put(
        session, data=data[:262144], headers={"Content-Range": "bytes 0-262143/*"}, timeout=10
    )
    assert (first.status_code, first.headers["Range"]) == (308, "bytes=0-262143")

    emulator.restart(kill=True)
    probe = requests.put(session, data=b"", headers={"Content-Range": "bytes */*"}, timeout=10)
    assert (probe.status_code, probe.headers["Range"]) == (308, "bytes=0-262143")
    # A client unsure what arrived resends from an earlier offset: the overlap is skipped.
    rest = requests.put(
        session,
        data=data[200000:],
        headers={"Content-Range": f"bytes 200000-{len(data) - 1}/{len(data)}"},
        timeout=10,
    )
    assert rest.status_code == 200, rest.text
    assert (
        rest.json()["md5Hash"] == _md5(data) and rest.json()["contentType"] == "application/x-test"
    )
    assert (
        make_storage_client(emulator.url).bucket("resume").blob("big.bin").download_as_bytes()
        == data
    )
    # Asking again after completion (e.g. the reply was lost) answers the object, not an error.
    again = requests.put(session, data=b"", headers={"Content-Range": "bytes */*"}, timeout=10)
    assert again.status_code == 200 and again.json()["md5Hash"] == _md5(data)
    assert requests.delete(session, timeout=10).status_code == 499
    assert (
        requests.put(
            session, data=b"", headers={"Content-Range": "bytes */*"}, timeout=10
        ).status_code
        == 404
    )


@pytest.mark.parametrize("drops", [1, 2, 3, 4])
def test_chunked_upload_recovers_from_lost_replies(emulator: EmulatorProcess, drops: int) -> None:
    client = make_storage_client(emulator.url)
    bucket = client.create_bucket("lossy")
    data = os.urandom(3 * 256 * 1024 + 7)  # session start + 4 chunks
    emulator.admin({"script": [{"method": "storage.objects.insert", "count": drops, "drop": True}]})
    blob = bucket.blob("obj", chunk_size=256 * 1024)
    # Unknown size: the client must use a chunked resumable upload (below 8 MB it would go
    # multipart).
    blob.upload_from_file(io.BytesIO(data), if_generation_match=0)
    assert bucket.get_blob("obj").md5_hash == _md5(data)
    log = emulator.read_request_log()
    assert [e.get("fault") for e in log].count("dropped") == drops
    assert sum(1 for e in log if e["method"] == "PUT" and e["status"] == 308) >= 3

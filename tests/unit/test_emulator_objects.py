"""ObjectStore in-process: listing order and pages, preconditions, atomic overwrite, crash
leftovers."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from deployer.emulator.http import ServiceError
from deployer.emulator.objects import ObjectStore, parse_gs_uri


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    s = ObjectStore(tmp_path, fsync=False)
    s.create_bucket("bkt")
    return s


def _pages(store: ObjectStore, **kw: object) -> list[tuple[list[str], list[str]]]:
    token, out = None, []
    while True:
        page = store.list_page("bkt", page_token=token, **kw)  # type: ignore[arg-type]
        out.append(([m.name for m in page.items], page.prefixes))
        token = page.next_page_token
        if not token:
            return out


def test_listing_is_lexicographic_with_prefixes_and_pages(store: ObjectStore) -> None:
    for name in ["d", "c/x", "c/", "b", "a/b/3", "a/2", "a/1"]:
        store.put("bkt", name, name.encode())
    assert _pages(store) == [(["a/1", "a/2", "a/b/3", "b", "c/", "c/x", "d"], [])]
    assert _pages(store, max_results=3) == [
        (["a/1", "a/2", "a/b/3"], []),
        (["b", "c/", "c/x"], []),
        (["d"], []),
    ]
    assert _pages(store, delimiter="/") == [(["b", "d"], ["a/", "c/"])]
    assert _pages(store, delimiter="/", max_results=1) == [
        ([], ["a/"]),
        (["b"], []),
        ([], ["c/"]),
        (["d"], []),
    ]
    assert _pages(store, prefix="a/", delimiter="/") == [(["a/1", "a/2"], ["a/b/"])]
    assert _pages(store, prefix="c/", delimiter="/", include_trailing_delimiter=True) == [
        (["c/", "c/x"], [])
    ]
    assert [m.name for m in store.list("bkt", "a/")] == ["a/1", "a/2", "a/b/3"]


def test_listing_many_objects_pages_without_gaps(store: ObjectStore) -> None:
    names = [f"p/{i:04d}" for i in range(2500)]
    for name in names:
        store.put("bkt", name, b"")
    pages = _pages(store, prefix="p/")
    assert [len(p[0]) for p in pages] == [1000, 1000, 500]
    assert [n for p in pages for n in p[0]] == names


def test_bad_page_token_is_invalid_argument(store: ObjectStore) -> None:
    with pytest.raises(ServiceError) as err:
        store.list_page("bkt", page_token="not-a-token")
    assert err.value.http_status == 400


def test_preconditions(store: ObjectStore) -> None:
    first = store.put("bkt", "o", b"1", if_generation_match=0)
    with pytest.raises(ServiceError) as err:
        store.put("bkt", "o", b"2", if_generation_match=0)
    assert (err.value.http_status, err.value.status) == (412, "FAILED_PRECONDITION")
    second = store.put("bkt", "o", b"2", if_generation_match=first.generation)
    assert second.generation > first.generation
    with pytest.raises(ServiceError):
        store.put("bkt", "o", b"3", if_metageneration_match=7)
    with pytest.raises(ServiceError):
        store.delete("bkt", "o", if_generation_match=first.generation)
    assert store.read_bytes("bkt", "o") == b"2"


def test_checksum_mismatch_refused_and_nothing_written(store: ObjectStore) -> None:
    with pytest.raises(ServiceError) as err:
        store.put("bkt", "o", b"data", expected_md5="AAAAAAAAAAAAAAAAAAAAAA==")
    assert err.value.http_status == 400
    assert store.stat("bkt", "o") is None


def test_reader_keeps_old_bytes_across_overwrite(store: ObjectStore) -> None:
    store.put("bkt", "o", b"old" * 1000)
    handle = store.open("bkt", "o")
    store.put("bkt", "o", io.BytesIO(b"new"))
    assert handle.read() == b"old" * 1000
    handle.close()
    assert store.read_bytes("bkt", "o") == b"new"


def test_concurrent_create_only_puts_have_one_winner(store: ObjectStore) -> None:
    wins, losses = [], []

    def attempt(i: int) -> None:
        try:
            store.put("bkt", "lock", str(i).encode(), if_generation_match=0)
            wins.append(i)
        except ServiceError:
            losses.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 15
    assert store.read_bytes("bkt", "lock") == str(wins[0]).encode()


def test_restart_sweeps_temp_files_and_orphan_blobs(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path, fsync=False)
    store.create_bucket("bkt")
    store.put("bkt", "kept", b"k")
    # What a crash between steps leaves: a temp file, and a renamed blob no row points at.
    (tmp_path / "gcs" / "tmp" / "partial").write_bytes(b"half")
    (tmp_path / "gcs" / "blobs" / "ab" / "ab-orphan").write_bytes(b"orphan")
    store.close()
    again = ObjectStore(tmp_path, fsync=False)
    assert again.read_bytes("bkt", "kept") == b"k"
    assert not (tmp_path / "gcs" / "tmp" / "partial").exists()
    assert not (tmp_path / "gcs" / "blobs" / "ab" / "ab-orphan").exists()


def test_bucket_rules(store: ObjectStore) -> None:
    with pytest.raises(ServiceError) as err:
        store.create_bucket("bkt")
    assert err.value.http_status == 409
    for bad in ("ab", "UPPER", "-start", "has space"):
        with pytest.raises(ServiceError):
            store.create_bucket(bad)
    store.put("bkt", "x", b"")
    with pytest.raises(ServiceError) as err:
        store.delete_bucket("bkt")
    assert err.value.http_status == 409
    store.delete("bkt", "x")
    store.delete_bucket("bkt")
    assert not store.bucket_exists("bkt")


def test_parse_gs_uri() -> None:
    assert parse_gs_uri("gs://b/a/b") == ("b", "a/b")
    assert parse_gs_uri("gs://b") == ("b", "")
    for bad in ("s3://b/x", "gs:///x", "/local/path"):
        with pytest.raises(ServiceError):
            parse_gs_uri(bad)

"""The emulator's Cloud Storage JSON API, driven only through the official google-cloud-storage
client."""

from __future__ import annotations

import base64
import hashlib
import io
import os

import google_crc32c
import pytest
from google.api_core import exceptions as gexc

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def storage_client(shared_storage_client):  # type: ignore[no-untyped-def]
    """These tests need no fresh server: one emulator for the module, bucket names prefixed
    gcs-t-."""
    return shared_storage_client


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _crc(data: bytes) -> str:
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def test_bucket_lifecycle_create_get_list_delete(storage_client) -> None:
    bucket = storage_client.create_bucket("gcs-t-life-bucket", location="us-central1")
    assert bucket.location == "US-CENTRAL1"
    assert storage_client.get_bucket("gcs-t-life-bucket").name == "gcs-t-life-bucket"
    with pytest.raises(gexc.Conflict):
        storage_client.create_bucket("gcs-t-life-bucket")
    assert "gcs-t-life-bucket" in [b.name for b in storage_client.list_buckets()]
    bucket.blob("x").upload_from_string(b"x")
    with pytest.raises(gexc.Conflict):
        bucket.delete()  # not empty
    bucket.blob("x").delete()
    bucket.delete()
    with pytest.raises(gexc.NotFound):
        storage_client.get_bucket("gcs-t-life-bucket")
    assert storage_client.lookup_bucket("gcs-t-life-bucket") is None


def test_bucket_labels_patch(storage_client) -> None:
    bucket = storage_client.bucket("gcs-t-labelled")
    bucket.labels = {"deployer-stack": "mnist"}
    storage_client.create_bucket(bucket)
    got = storage_client.get_bucket("gcs-t-labelled")
    assert got.labels == {"deployer-stack": "mnist"}
    got.labels = {"deployer-stack": "mnist", "owner": "me"}
    got.patch()
    assert storage_client.get_bucket("gcs-t-labelled").labels == {
        "deployer-stack": "mnist",
        "owner": "me",
    }


def test_invalid_bucket_name_is_a_400(storage_client) -> None:
    with pytest.raises(gexc.BadRequest):
        storage_client.create_bucket("bad_Name-X")  # passes client checks, not GCS rules


def test_multipart_upload_reports_checksums_as_gcs_does(storage_client) -> None:
    bucket = storage_client.create_bucket("gcs-t-multi")
    data = os.urandom(300_000)
    blob = bucket.blob("dir/model.bin")
    blob.upload_from_string(data, content_type="application/x-test")
    assert blob.size == len(data)
    assert blob.md5_hash == _md5(data)
    assert blob.crc32c == _crc(data)
    assert blob.generation > 0 and blob.metageneration == 1
    fetched = bucket.get_blob("dir/model.bin")
    assert (fetched.content_type, fetched.md5_hash, fetched.generation) == (
        "application/x-test",
        _md5(data),
        blob.generation,
    )
    # The client verifies the download's checksum against x-goog-hash.
    assert fetched.download_as_bytes(checksum="md5") == data
    assert fetched.download_as_bytes(checksum="crc32c") == data


def test_resumable_chunked_upload_with_308s(storage_client) -> None:
    bucket = storage_client.create_bucket("gcs-t-resumable")
    data = os.urandom(3 * 256 * 1024 + 123)
    blob = bucket.blob("big.bin", chunk_size=256 * 1024)
    # Unknown size forces a resumable upload in 4 chunks (sized uploads under 8 MB go multipart).
    blob.upload_from_file(io.BytesIO(data))
    assert blob.md5_hash == _md5(data)
    assert bucket.blob("big.bin").download_as_bytes() == data


def test_resumable_upload_from_file_of_unknown_size(storage_client, tmp_path) -> None:
    bucket = storage_client.create_bucket("gcs-t-stream-up")
    data = os.urandom(600_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    blob = bucket.blob("f.bin", chunk_size=256 * 1024)
    with open(path, "rb") as fh:
        blob.upload_from_file(fh)  # size unknown: last chunk declares the total
    assert bucket.get_blob("f.bin").crc32c == _crc(data)


def test_overwrite_bumps_generation_and_serves_new_bytes(storage_client) -> None:
    bucket = storage_client.create_bucket("gcs-t-overwrite")
    first = bucket.blob("o")
    first.upload_from_string(b"one")
    second = bucket.blob("o")
    second.upload_from_string(b"two!")
    assert second.generation > first.generation
    assert bucket.blob("o").download_as_bytes() == b"two!"


def test_download_ranges(storage_client) -> None:
    bucket = storage_client.create_bucket("gcs-t-ranges")
    data = bytes(range(256)) * 40
    bucket.blob("r").upload_from_string(data)
    blob = bucket.blob("r")
    assert blob.download_as_bytes(start=10, end=19) == data[10:20]
    assert blob.download_as_bytes(start=10000) == data[10000:]
    assert blob.download_as_bytes(start=0, end=0) == data[:1]
    with pytest.raises(gexc.RequestRangeNotSatisfiable):
        blob.download_as_bytes(start=len(data) + 5)


def test_download_missing_object_is_not_found(storage_client) -> None:
    bucket = storage_client.create_bucket("gcs-t-missing")
    with pytest.raises(gexc.NotFound):
        bucket.blob("nope").download_as_bytes()
    assert bucket.get_blob("nope") is None
    assert not bucket.blob("nope").exists()
    with pytest.raises(gexc.NotFound):
        storage_client.bucket("gcs-t-no-such-bucket").blob("x").upload_from_string(b"x")


def test_object_names_with_slashes_spaces_and_unicode(storage_client) -> None:
    bucket = storage_client.create_bucket("gcs-t-names")
    names = ["a/b/c.txt", "with space", "ünï/cødé", "q?x=1&y#z", "a/compose", "pct%2Fname"]
    for name in names:
        bucket.blob(name).upload_from_string(name.encode())
    for name in names:
        assert bucket.blob(name).download_as_bytes() == name.encode()
    assert sorted(b.name for b in storage_client.list_blobs("gcs-t-names")) == sorted(names)


def test_list_prefix_delimiter_and_pagination_in_lexicographic_order(storage_client) -> None:
    bucket = storage_client.create_bucket("gcs-t-listing")
    names = [f"out/prediction.results-{i:05d}-of-00012" for i in range(12)] + [
        "out/sub/x",
        "out/sub/y",
        "a",
        "z/1",
    ]
    for name in reversed(names):  # written out of order; listed in name order
        bucket.blob(name).upload_from_string(b".")
    everything = [b.name for b in storage_client.list_blobs("gcs-t-listing")]
    assert everything == sorted(names)
    paged = storage_client.list_blobs("gcs-t-listing", prefix="out/", max_results=None, page_size=5)
    pages = [[b.name for b in page] for page in paged.pages]
    assert [len(p) for p in pages] == [5, 5, 4]
    assert [n for page in pages for n in page] == sorted(n for n in names if n.startswith("out/"))
    top = storage_client.list_blobs("gcs-t-listing", delimiter="/")
    assert [b.name for b in top] == ["a"]
    assert top.prefixes == {"out/", "z/"}
    sub = storage_client.list_blobs("gcs-t-listing", prefix="out/", delimiter="/")
    assert len(list(sub)) == 12 and sub.prefixes == {"out/sub/"}
    assert [b.name for b in storage_client.list_blobs("gcs-t-listing", max_results=3)] == sorted(
        names
    )[:3]


def test_if_generation_match_zero_is_create_only(storage_client) -> None:
    bucket = storage_client.create_bucket("gcs-t-lock")
    bucket.blob("stack.lock").upload_from_string(b"me", if_generation_match=0)
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("stack.lock").upload_from_string(b"you", if_generation_match=0)
    assert bucket.blob("stack.lock").download_as_bytes() == b"me"


def test_generation_and_metageneration_preconditions(storage_client) -> None:
    bucket = storage_client.create_bucket("gcs-t-precond")
    blob = bucket.blob("o")
    blob.upload_from_string(b"v1")
    gen = blob.generation
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("o").upload_from_string(b"v2", if_generation_match=gen + 1)
    bucket.blob("o").upload_from_string(b"v2", if_generation_match=gen)
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("o").delete(if_generation_match=gen)  # stale
    current = bucket.get_blob("o")
    with pytest.raises(gexc.PreconditionFailed):
        current.reload(if_metageneration_match=current.metageneration + 1)
    current.metadata = {"k": "v"}
    current.patch(if_metageneration_match=1)
    assert bucket.get_blob("o").metadata == {"k": "v"} and bucket.get_blob("o").metageneration == 2
    bucket.blob("o").delete(if_generation_match=current.generation)
    assert bucket.get_blob("o") is None


def test_delete_missing_object_is_not_found(storage_client) -> None:
    bucket = storage_client.create_bucket("gcs-t-del")
    with pytest.raises(gexc.NotFound):
        bucket.blob("ghost").delete()


def test_copy_rewrite_and_compose(storage_client) -> None:
    bucket = storage_client.create_bucket("gcs-t-copies")
    other = storage_client.create_bucket("gcs-t-copies-dst")
    bucket.blob("p1").upload_from_string(b"hello ")
    bucket.blob("p2").upload_from_string(b"world")
    copied = bucket.copy_blob(bucket.blob("p1"), other, "c/p1")
    assert copied.download_as_bytes() == b"hello "
    token, _, total = other.blob("r").rewrite(bucket.blob("p2"))
    assert token is None and total == 5
    composed = bucket.blob("both")
    composed.compose([bucket.blob("p1"), bucket.blob("p2")])
    assert bucket.blob("both").download_as_bytes() == b"hello world"
    assert bucket.get_blob("both").crc32c == _crc(b"hello world")


def test_large_upload_goes_resumable_and_downloads_intact(storage_client, tmp_path) -> None:
    bucket = storage_client.create_bucket("gcs-t-large")
    data = os.urandom(9 * 1024 * 1024)  # over the client's 8 MB multipart limit
    path = tmp_path / "large.bin"
    path.write_bytes(data)
    bucket.blob("large.bin").upload_from_filename(str(path))
    out = tmp_path / "back.bin"
    bucket.blob("large.bin").download_to_filename(str(out))
    assert out.read_bytes() == data
    assert bucket.get_blob("large.bin").crc32c == _crc(data)

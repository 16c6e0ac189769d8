"""The emulator's Cloud Storage answers as the service does where issue 14 found them apart:
ETag, If-Match / If-None-Match, gzip transcoding, object properties, compose and rewrite,
versioning, matchGlob, the metadata-only insert, the /resumable/upload path and bulkRestore.

Driven through the official google-cloud-storage client (its media library for the
resumable path); plain HTTP only where the client cannot send what is checked (a download
that does not accept gzip)."""

from __future__ import annotations

import datetime as dt
import gzip
import urllib.request
from urllib.parse import quote

import pytest
from google.api_core import exceptions as gexc

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def client(shared_storage_client):  # type: ignore[no-untyped-def]
    return shared_storage_client


def _bucket(client, name: str, *, versioning: bool = False):  # type: ignore[no-untyped-def]
    bucket = client.bucket(f"gcs-w-{name}")
    bucket.versioning_enabled = versioning
    return client.create_bucket(bucket)


def test_download_etag_header_is_the_resource_etag_and_moves_with_metageneration(client) -> None:
    bucket = _bucket(client, "etag")
    bucket.blob("a").upload_from_string(b"hello")
    etag = bucket.get_blob("a").etag
    downloaded = bucket.blob("a")
    assert downloaded.download_as_bytes() == b"hello"
    assert downloaded.etag == etag  # read from the download's ETag header
    blob = bucket.get_blob("a")
    blob.metadata = {"k": "v"}
    blob.patch()
    assert blob.etag != etag


def test_if_match_and_if_none_match_headers_answer_412_and_304(client) -> None:
    bucket = _bucket(client, "etag-match")
    blob = bucket.blob("a")
    blob.upload_from_string(b"hello")
    etag = bucket.get_blob("a").etag
    assert blob.download_as_bytes(if_etag_match=etag) == b"hello"
    with pytest.raises(gexc.PreconditionFailed):
        blob.download_as_bytes(if_etag_match="CAE=")
    with pytest.raises(gexc.NotModified):
        blob.download_as_bytes(if_etag_not_match=etag)
    assert blob.download_as_bytes(if_etag_not_match="CAE=") == b"hello"
    assert bucket.get_blob("a", if_etag_match=etag) is not None
    with pytest.raises(gexc.PreconditionFailed):
        bucket.get_blob("a", if_etag_match="CAE=")


def test_gzip_content_encoding_is_stored_and_transcoded_unless_gzip_is_accepted(
    client, shared_emulator
) -> None:
    bucket = _bucket(client, "gzip")
    data = b"line of text\n" * 1000
    blob = bucket.blob("log.txt")
    blob.content_encoding = "gzip"
    blob.upload_from_string(gzip.compress(data), content_type="text/plain")
    stored = bucket.get_blob("log.txt")
    assert stored.content_encoding == "gzip"
    assert stored.size == len(gzip.compress(data))
    # The client accepts gzip: it gets the stored bytes and decodes them itself.
    assert bucket.blob("log.txt").download_as_bytes() == data
    assert gzip.decompress(bucket.blob("log.txt").download_as_bytes(raw_download=True)) == data
    # A client that does not accept gzip gets the bytes decompressed by the service.
    url = f"{shared_emulator.url}/download/storage/v1/b/{bucket.name}/o/log.txt?alt=media"
    request = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.read() == data
        assert resp.headers["x-goog-stored-content-encoding"] == "gzip"
        assert resp.headers["x-guploader-response-body-transformations"] == "gunzipped"
        assert resp.headers.get("Content-Encoding") is None


def test_object_properties_are_kept_returned_and_patched(client) -> None:
    bucket = _bucket(client, "props")
    blob = bucket.blob("report.html")
    custom = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    blob.cache_control = "public, max-age=60"
    blob.content_language = "de"
    blob.content_disposition = 'attachment; filename="r.html"'
    blob.custom_time = custom
    blob.upload_from_string(b"<p>hi</p>", content_type="text/html")
    got = bucket.get_blob("report.html")
    assert (got.cache_control, got.content_language, got.content_disposition) == (
        "public, max-age=60",
        "de",
        'attachment; filename="r.html"',
    )
    assert got.custom_time == custom
    got.content_language = "fr"
    got.patch()
    assert bucket.get_blob("report.html").content_language == "fr"
    downloaded = bucket.blob("report.html")
    downloaded.download_as_bytes()  # the client reads these back from the response headers
    assert downloaded.cache_control == "public, max-age=60"
    assert downloaded.content_language == "fr"


def test_compose_invents_no_content_type_and_honours_source_preconditions(client) -> None:
    bucket = _bucket(client, "compose")
    first, second = bucket.blob("p1"), bucket.blob("p2")
    first.upload_from_string(b"ab")
    second.upload_from_string(b"cd")
    first.reload()
    second.reload()
    dest = bucket.blob("joined")
    dest.compose([first, second])
    assert bucket.get_blob("joined").content_type is None
    assert dest.download_as_bytes() == b"abcd"
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("joined2").compose(
            [first, second], if_source_generation_match=[first.generation, 1]
        )
    assert bucket.get_blob("joined2") is None
    bucket.blob("joined2").compose(
        [first, second], if_source_generation_match=[first.generation, second.generation]
    )
    assert bucket.blob("joined2").download_as_bytes() == b"abcd"


def test_rewrite_with_a_storage_class_changes_the_class(client) -> None:
    bucket = _bucket(client, "sclass")
    blob = bucket.blob("cold")
    blob.upload_from_string(b"x" * 10)
    assert bucket.get_blob("cold").storage_class == "STANDARD"
    blob.update_storage_class("NEARLINE")
    assert bucket.get_blob("cold").storage_class == "NEARLINE"
    assert bucket.blob("cold").download_as_bytes() == b"x" * 10


def test_versioning_keeps_noncurrent_generations_listable_readable_and_deletable(client) -> None:
    bucket = _bucket(client, "versions", versioning=True)
    assert client.get_bucket(bucket.name).versioning_enabled is True
    bucket.blob("v").upload_from_string(b"one")
    bucket.blob("v").upload_from_string(b"two")
    versions = list(client.list_blobs(bucket.name, versions=True))
    assert [b.name for b in versions] == ["v", "v"]
    old, live = sorted(versions, key=lambda b: b.generation)
    assert [b.name for b in client.list_blobs(bucket.name)] == ["v"]
    assert bucket.blob("v", generation=old.generation).download_as_bytes() == b"one"
    assert bucket.get_blob("v", generation=old.generation).size == 3
    assert bucket.blob("v").download_as_bytes() == b"two"
    bucket.blob("v").delete()  # the live one becomes noncurrent
    assert list(client.list_blobs(bucket.name)) == []
    remaining = list(client.list_blobs(bucket.name, versions=True))
    assert sorted(b.generation for b in remaining) == [old.generation, live.generation]
    assert all(b.time_deleted is not None for b in remaining)
    with pytest.raises(gexc.Conflict):
        bucket.delete()  # noncurrent generations still count
    for blob in remaining:
        bucket.blob("v", generation=blob.generation).delete()
    with pytest.raises(gexc.NotFound):
        bucket.blob("v", generation=old.generation).download_as_bytes()
    bucket.delete()


def test_without_versioning_generations_are_not_kept(client) -> None:
    bucket = _bucket(client, "noversions")
    bucket.blob("v").upload_from_string(b"one")
    first = bucket.get_blob("v").generation
    bucket.blob("v").upload_from_string(b"two")
    assert len(list(client.list_blobs(bucket.name, versions=True))) == 1
    with pytest.raises(gexc.NotFound):
        bucket.blob("v", generation=first).download_as_bytes()


def test_match_glob_filters_listings(client) -> None:
    bucket = _bucket(client, "glob")
    for name in ("a.json", "a.txt", "d/b.json", "d/e/c.json", "d/e/c.txt"):
        bucket.blob(name).upload_from_string(b"{}")

    def names(glob: str, **kw: object) -> list[str]:
        return [b.name for b in client.list_blobs(bucket.name, match_glob=glob, **kw)]

    assert names("**.json") == ["a.json", "d/b.json", "d/e/c.json"]
    assert names("*.json") == ["a.json"]
    assert names("d/**/*.txt") == ["d/e/c.txt"]
    assert names("{a.txt,d/b.json}") == ["a.txt", "d/b.json"]
    assert names("**.json", max_results=2) == ["a.json", "d/b.json"]
    paged = client.list_blobs(bucket.name, match_glob="**", page_size=2)
    assert [b.name for b in paged] == ["a.json", "a.txt", "d/b.json", "d/e/c.json", "d/e/c.txt"]


def test_metadata_only_insert_creates_an_empty_object(client) -> None:
    bucket = _bucket(client, "metaonly")
    resource = client._connection.api_request(
        method="POST",
        path=f"/b/{bucket.name}/o",
        data={"name": "marker", "contentType": "text/plain", "metadata": {"k": "v"}},
    )
    assert resource["size"] == "0"
    got = bucket.get_blob("marker")
    assert (got.size, got.content_type, got.metadata) == (0, "text/plain", {"k": "v"})


def test_resumable_upload_path_form(client, shared_emulator) -> None:
    from google.auth.transport.requests import AuthorizedSession
    from google.cloud.storage._media.requests import ResumableUpload

    bucket = _bucket(client, "resumable-path")
    url = (
        f"{shared_emulator.url}/resumable/upload/storage/v1/b/{quote(bucket.name)}/o"
        "?uploadType=resumable"
    )
    upload = ResumableUpload(url, 256 * 1024)
    session = AuthorizedSession(client._credentials)
    data = b"r" * (600 * 1024)
    import io

    upload.initiate(session, io.BytesIO(data), {"name": "big"}, "application/octet-stream")
    while not upload.finished:
        upload.transmit_next_chunk(session)
    assert bucket.blob("big").download_as_bytes() == data


def test_bulk_restore_completes_restoring_nothing_and_its_operation_is_pollable(client) -> None:
    bucket = _bucket(client, "restore")
    op = client._connection.api_request(
        method="POST", path=f"/b/{bucket.name}/o/bulkRestore", data={"matchGlobs": ["**"]}
    )
    assert op["done"] is True and op["kind"] == "storage#operation"
    op_id = op["name"].rsplit("/", 1)[1]
    assert op["name"] == f"projects/_/buckets/{bucket.name}/operations/{op_id}"
    polled = client._connection.api_request(
        method="GET", path=f"/b/{bucket.name}/operations/{op_id}"
    )
    assert polled == op

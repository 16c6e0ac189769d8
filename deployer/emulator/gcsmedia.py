"""Cloud Storage object reads as the JSON API answers them: preconditions, ETag, media download.

Owns what a GET of an object checks and sends back: the generation / metageneration
preconditions of the query string and the `If-Match` / `If-None-Match` headers
(412 / 304), the object's `etag` (the same value in the JSON resource and the
download's `ETag` header), and the media download itself: `Range` (206), the
`x-goog-*` headers the official client reads, the stored `Cache-Control`,
`Content-Language`, `Content-Disposition`, and decompressive transcoding of objects
stored with `contentEncoding: gzip` unless the client accepts gzip (as the service
and Google's storage-testbench do: `x-goog-stored-content-encoding: gzip`,
`x-guploader-response-body-transformations: gunzipped`, the Range ignored).

Must not: store anything (ObjectStore does) or render listings, or import TensorFlow /
deployer.serving.
"""

from __future__ import annotations

import base64
import logging
import re
import zlib
from collections.abc import Iterator
from typing import Any

from deployer.emulator.http import Request, Response, ServiceError
from deployer.emulator.objects import ObjectMeta, ObjectStore

log = logging.getLogger("deployer.emulator")

_CHUNK = 1 << 20
_PRECONDITIONS = (
    "ifGenerationMatch",
    "ifGenerationNotMatch",
    "ifMetagenerationMatch",
    "ifMetagenerationNotMatch",
)
# Object properties the download sends back as the HTTP headers of the same meaning.
_PROPERTY_HEADERS = {
    "cacheControl": "Cache-Control",
    "contentLanguage": "Content-Language",
    "contentDisposition": "Content-Disposition",
}


def int_param(req: Request, name: str) -> int | None:
    """An int64 query parameter (absent or blank: None); 400 for anything else."""
    value = req.q(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"Invalid value for {name}: {value!r}"
        ) from None


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def object_etag(meta: ObjectMeta) -> str:
    """GCS's object etag: base64 of a protobuf holding generation (1) and metageneration (2),
    so it changes with either (e.g. "CKih16GjycICEAE=")."""
    raw = b"\x08" + _varint(meta.generation) + b"\x10" + _varint(meta.metageneration)
    return base64.b64encode(raw).decode()


def _etags(header: str) -> list[str]:
    return [t.strip().removeprefix("W/").strip('"') for t in header.split(",") if t.strip()]


def check_read_preconditions(req: Request, meta: ObjectMeta) -> None:
    """412 when ifGenerationMatch / ifMetageneration(Not)Match or If-Match fail; 304 when
    ifGenerationNotMatch or If-None-Match name the current object."""
    checks = {k: int_param(req, k) for k in _PRECONDITIONS}
    etag = object_etag(meta)
    if_match = req.headers.get("if-match")
    failed = (
        (checks["ifGenerationMatch"] is not None and checks["ifGenerationMatch"] != meta.generation)
        or (
            checks["ifMetagenerationMatch"] is not None
            and checks["ifMetagenerationMatch"] != meta.metageneration
        )
        or (
            checks["ifMetagenerationNotMatch"] is not None
            and checks["ifMetagenerationNotMatch"] == meta.metageneration
        )
        or (if_match is not None and not {"*", etag} & set(_etags(if_match)))
    )
    if failed:
        raise ServiceError(
            412,
            "FAILED_PRECONDITION",
            "At least one of the pre-conditions you specified did not hold.",
        )
    if_none_match = req.headers.get("if-none-match")
    if (
        checks["ifGenerationNotMatch"] is not None
        and checks["ifGenerationNotMatch"] == meta.generation
    ) or (if_none_match is not None and {"*", etag} & set(_etags(if_none_match))):
        raise ServiceError(304, "FAILED_PRECONDITION", "Not modified")


def download(req: Request, store: ObjectStore, bucket: str, name: str) -> Response:
    """The media download (GET or HEAD) of an object, or of `?generation=`'s generation."""
    meta, handle = store.open_with_meta(bucket, name, int_param(req, "generation"))
    try:
        check_read_preconditions(req, meta)
        encoding = meta.properties.get("contentEncoding", "")
        gunzip = encoding == "gzip" and "gzip" not in req.headers.get("accept-encoding", "")
        start, end, status = 0, meta.size - 1, 200
        headers = {
            "Content-Type": meta.content_type or "application/octet-stream",
            "x-goog-generation": str(meta.generation),
            "x-goog-metageneration": str(meta.metageneration),
            "x-goog-stored-content-length": str(meta.size),
            "x-goog-stored-content-encoding": encoding or "identity",
            "x-goog-storage-class": meta.storage_class,
            "ETag": object_etag(meta),
            # The client checks whole downloads against these (and skips it when transcoded).
            "x-goog-hash": f"crc32c={meta.crc32c},md5={meta.md5_hash}",
        }
        for prop, header in _PROPERTY_HEADERS.items():
            if meta.properties.get(prop):
                headers[header] = meta.properties[prop]
        if gunzip:
            headers["x-guploader-response-body-transformations"] = "gunzipped"
            if req.method == "HEAD":
                handle.close()
                return Response(200, b"", headers)
            # The decompressed length is unknown until sent: streamed chunked, Range ignored.
            return Response(200, _gunzip(handle, meta), headers, on_close=handle.close)
        if encoding:
            headers["Content-Encoding"] = encoding
        headers["Accept-Ranges"] = "bytes"
        range_header = req.headers.get("range", "").strip()
        if range_header and meta.size > 0:
            start, end = parse_range(range_header, meta.size)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{meta.size}"
            del headers["x-goog-hash"]
        length = max(0, end - start + 1)
        headers["Content-Length"] = str(length)
    except BaseException:
        handle.close()
        raise
    if req.method == "HEAD":
        handle.close()
        return Response(status, b"", headers)
    return Response(status, stream_range(handle, start, length), headers, on_close=handle.close)


def _gunzip(handle: Any, meta: ObjectMeta) -> Iterator[bytes]:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        while data := handle.read(_CHUNK):
            if out := inflater.decompress(data):
                yield out
            while inflater.eof and inflater.unused_data:  # concatenated gzip members
                rest = inflater.unused_data
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                if out := inflater.decompress(rest):
                    yield out
        if out := inflater.flush():
            yield out
    except zlib.error as exc:
        # Stored bytes that are not gzip although labelled so: the body ends where they stop
        # being gzip (the headers are already sent; the client's length check sees it).
        log.warning(
            "%s/%s: contentEncoding gzip but not gzip data: %s", meta.bucket, meta.name, exc
        )


def parse_range(header: str, size: int) -> tuple[int, int]:
    match = re.fullmatch(r"bytes=(\d{0,19})-(\d{0,19})", header.replace(" ", ""))
    if match is None or (not match[1] and not match[2]):
        raise ServiceError(416, "OUT_OF_RANGE", f"Malformed Range header: {header!r}")
    if not match[1]:  # suffix: the last N bytes
        n = int(match[2])
        return max(0, size - n), size - 1
    start = int(match[1])
    end = int(match[2]) if match[2] else size - 1
    if start >= size > 0 or end < start:
        raise ServiceError(
            416, "OUT_OF_RANGE", f"Request range not satisfiable: {header!r} for {size} bytes"
        )
    return start, min(end, size - 1)


def stream_range(handle: Any, start: int, length: int) -> Iterator[bytes]:
    handle.seek(start)
    left = length
    while left > 0:
        data = handle.read(min(_CHUNK, left))
        if not data:
            break
        left -= len(data)
        yield data


__all__ = ["check_read_preconditions", "download", "int_param", "object_etag", "parse_range"]

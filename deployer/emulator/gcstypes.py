"""The emulator's Cloud Storage vocabulary shared by the store and the API: object metadata,
listing pages, names and the checks on them.

Owns `ObjectMeta` (one object generation as the store keeps it), `ListPage`, the object
properties kept as given (`OBJECT_PROPERTIES`), the metadata row layout (`OBJECT_COLUMNS`,
`object_meta`), `rfc3339`, `parse_gs_uri`, `successor` (the first string past a prefix)
and the name / content-type checks GCS applies (400s).

Must not: touch SQLite, files or HTTP, or import TensorFlow / deployer.serving.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from deployer.emulator.http import ServiceError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Object resource fields kept as given (each a string), besides name/contentType/metadata.
OBJECT_PROPERTIES = (
    "contentEncoding",
    "cacheControl",
    "contentLanguage",
    "contentDisposition",
    "customTime",
)
PRECONDITION_FAILED = "At least one of the pre-conditions you specified did not hold."
# The columns of an object row, in the order `object_meta` reads them.
OBJECT_COLUMNS = (
    "bucket,name,size,generation,metageneration,md5,crc32c,content_type,updated,"
    "time_created,metadata,storage_class,props"
)


def rfc3339(ts: float) -> str:
    """GCS timestamp format: 2024-01-02T03:04:05.678Z."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_gs_uri(uri: str) -> tuple[str, str]:
    """ "gs://b/a/b" -> ("b", "a/b"); "gs://b" or "gs://b/" -> ("b", ""); 400 otherwise."""
    if not isinstance(uri, str) or not uri.startswith("gs://"):
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"Not a Cloud Storage URI (gs://bucket/path): {uri!r}"
        )
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not bucket:
        raise ServiceError(400, "INVALID_ARGUMENT", f"Cloud Storage URI without a bucket: {uri!r}")
    return bucket, name


@dataclass(frozen=True)
class ObjectMeta:
    """Metadata of one live object generation."""

    bucket: str
    name: str
    size: int  # bytes
    generation: int  # microseconds since epoch at write, strictly increasing per store
    metageneration: int  # bumped by metadata patches
    md5_hash: str  # base64 of the 16-byte digest, as GCS reports it
    crc32c: str  # base64 of the big-endian 4-byte CRC32C, as GCS reports it
    content_type: str  # "" when the object has none (a compose without one)
    updated: str  # RFC 3339
    time_created: str  # RFC 3339
    metadata: dict[str, str] = field(default_factory=dict)  # user metadata
    storage_class: str = "STANDARD"
    # OBJECT_PROPERTIES that were set (contentEncoding, cacheControl, customTime, ...).
    properties: dict[str, str] = field(default_factory=dict)
    time_deleted: str | None = None  # set on noncurrent generations only


@dataclass(frozen=True)
class ListPage:
    """One page of an object listing."""

    items: list[ObjectMeta]
    prefixes: list[str]  # rolled-up "directories" when a delimiter was given
    next_page_token: str | None


def successor(prefix: str) -> str | None:
    """Smallest string greater than every string starting with `prefix`; None if there is
    none (the prefix is all U+10FFFF)."""
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return None
    nxt = ord(stripped[-1]) + 1
    if 0xD800 <= nxt <= 0xDFFF:  # surrogates are not text (SQLite cannot bind them)
        nxt = 0xE000
    return stripped[:-1] + chr(nxt)


def object_meta(row: tuple[Any, ...], time_deleted: str | None = None) -> ObjectMeta:
    """An ObjectMeta from a row of OBJECT_COLUMNS."""
    b, n, size, gen, mgen, md5, crc, ctype, updated, created, metadata, sclass, props = row
    return ObjectMeta(
        b,
        n,
        size,
        gen,
        mgen,
        md5,
        crc,
        ctype,
        updated,
        created,
        json.loads(metadata),
        sclass,
        json.loads(props),
        time_deleted,
    )


def validate_object_name(name: object) -> None:
    """400 for a name GCS refuses: empty, over 1,024 UTF-8 bytes, "." / "..", CR or LF.

    Other names (with "..", NUL, a leading "/") are stored as names: they only become
    paths through `paths.contained`, which refuses them there.
    """
    if not isinstance(name, str):
        raise ServiceError(400, "INVALID_ARGUMENT", f"Object name must be a string, not {name!r}")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"Invalid object name {name!r}: not valid Unicode"
        ) from None
    if not name or size > 1024 or name in (".", "..") or "\n" in name or "\r" in name:
        raise ServiceError(400, "INVALID_ARGUMENT", f"Invalid object name: {name!r}")


def validate_content_type(value: object) -> None:
    """400 unless `value` is text that can go in a Content-Type header (no control characters:
    a CR/LF would split the download response)."""
    if not isinstance(value, str) or len(value) > 1024 or _CONTROL.search(value):
        raise ServiceError(400, "INVALID_ARGUMENT", f"Invalid contentType: {value!r}")


__all__ = [
    "OBJECT_COLUMNS",
    "OBJECT_PROPERTIES",
    "PRECONDITION_FAILED",
    "ListPage",
    "ObjectMeta",
    "object_meta",
    "parse_gs_uri",
    "rfc3339",
    "successor",
    "validate_content_type",
    "validate_object_name",
]

"""Batch prediction input and output formats, as Vertex AI defines them: pure functions.

Owns the byte-level formats both sides of a batch job share: how a line of
JSON Lines or CSV becomes an instance, TFRecord framing (length, masked
CRC32C, data, masked CRC32C: parsed here so nothing needs TensorFlow), the
`{"b64": ...}` wrapping of binary instances, the names of output shards, and a
canonical key of an instance used to match outputs back to input rows.

Must not: do network or API I/O, import TensorFlow, google.cloud, or anything
from deployer.emulator (the emulator imports this module, not the reverse).
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import re
import struct
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any, BinaryIO

# The C implementation: google-cloud-storage depends on it, so it is always installed.
import google_crc32c

from deployer.wire import jsonlimits


def crc32c(data: bytes) -> int:
    return int(google_crc32c.value(data))


FORMATS = ("jsonl", "csv", "file-list", "tf-record")
# The one input-format vocabulary: the spec validates with it and staging reads with it.
# NumPy arrays (.npy/.npz) are converted to JSON Lines by staging, so they read as jsonl.
FORMAT_BY_SUFFIX = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".npy": "jsonl",
    ".npz": "jsonl",
    ".csv": "csv",
    ".tfrecord": "tf-record",
    ".tfrecords": "tf-record",
    ".tfr": "tf-record",
    ".txt": "file-list",
    ".lst": "file-list",
}
RESULTS_STEM = "prediction.results"
ERRORS_STEM = "prediction.errors_stats"
_SHARD_RE = re.compile(r"(prediction\.(?:results|errors_stats))-(\d{5})-of-(\d{5})$")


class FormatError(ValueError):
    """An input that does not parse; `where` says which row or record (1-based)."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.reason = message


def infer_format(path: str, *, is_dir: bool = False) -> str | None:
    """The instances format an input's name implies, or None when it says nothing.

    NumPy files read as jsonl (staging converts them); a folder (`is_dir`, or a local
    path written with a trailing '/') is a file list of the files below it; otherwise
    the suffix decides (FORMAT_BY_SUFFIX). The caller checks the filesystem, not this.
    """
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in (".npy", ".npz"):
        return "jsonl"
    if is_dir or (path.endswith("/") and not path.startswith("gs://")):
        return "file-list"
    return FORMAT_BY_SUFFIX.get(suffix)


# --- instances ---------------------------------------------------------------------------


def b64_instance(data: bytes) -> dict[str, str]:
    """Binary input as Vertex sends it to the container: {"b64": <standard base64>}."""
    return {"b64": base64.b64encode(data).decode("ascii")}


def parse_jsonl_line(line: str | bytes, *, line_no: int) -> Any:
    """One JSON Lines row -> the instance it holds (nesting bounded: a row 100,000 deep is a
    FormatError, not a RecursionError)."""
    try:
        return jsonlimits.loads(line)
    except jsonlimits.JsonRejected as exc:
        raise FormatError(str(exc), where=f"line {line_no}") from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise FormatError(f"not valid JSON ({exc})", where=f"line {line_no}") from exc


def iter_jsonl(lines: Iterable[str | bytes], *, first_line: int = 1) -> Iterator[tuple[int, Any]]:
    """(line number, instance) for each non-blank line; blank lines are skipped as Vertex does."""
    for n, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        yield n, parse_jsonl_line(line, line_no=n)


def iter_csv(lines: Iterable[str]) -> Iterator[tuple[int, list[Any]]]:
    """(line number, row values) after the header row.

    Vertex's rules: the first row is a header; quoted values are strings, unquoted
    values are read as floats (csv.QUOTE_NONNUMERIC is exactly that rule).
    """
    it = iter(lines)
    try:
        header = next(it)
    except StopIteration:
        return
    width = len(next(csv.reader([header])))
    reader = csv.reader(it, quoting=csv.QUOTE_NONNUMERIC)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except (ValueError, csv.Error) as exc:
            # reader.line_num counts the lines it consumed, after the header.
            raise FormatError(
                f"unquoted value that is not a number ({exc}); quote strings",
                where=f"line {reader.line_num + 1}",
            ) from exc
        if not row:
            continue
        if len(row) != width:
            raise FormatError(
                f"{len(row)} values but the header has {width}", where=f"line {reader.line_num + 1}"
            )
        yield reader.line_num + 1, row


def iter_file_list(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, URI) for each non-blank line of a file list."""
    for n, line in enumerate(lines, start=1):
        uri = line.strip()
        if uri:
            yield n, uri


# --- TFRecord framing ----------------------------------------------------------------------


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame_tfrecord(data: bytes) -> bytes:
    """One record framed as TFRecord: uint64 length, masked crc, data, masked crc (LE)."""
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", _masked_crc(length))
        + data
        + struct.pack("<I", _masked_crc(data))
    )


def iter_tfrecords(stream: BinaryIO, *, verify: bool = True) -> Iterator[tuple[int, bytes]]:
    """(record number, data) for each record, streamed; gzip-compressed files are detected.

    A truncated record or a bad checksum raises FormatError naming the record.
    """
    head = stream.read(2)
    body: BinaryIO
    if head == b"\x1f\x8b":
        body = gzip.GzipFile(fileobj=_Prefixed(head, stream))  # type: ignore[assignment]
    else:
        body = _Prefixed(head, stream)  # type: ignore[assignment]
    n = 0
    while True:
        header = body.read(12)
        if not header:
            return
        n += 1
        where = f"record {n}"
        if len(header) < 12:
            raise FormatError("truncated TFRecord header", where=where)
        (length,) = struct.unpack("<Q", header[:8])
        (length_crc,) = struct.unpack("<I", header[8:])
        if verify and _masked_crc(header[:8]) != length_crc:
            raise FormatError(
                "corrupt TFRecord length (bad checksum); is this a TFRecord file?", where=where
            )
        data = body.read(length)
        footer = body.read(4)
        if len(data) < length or len(footer) < 4:
            raise FormatError("truncated TFRecord data", where=where)
        if verify and _masked_crc(data) != struct.unpack("<I", footer)[0]:
            raise FormatError("corrupt TFRecord data (bad checksum)", where=where)
        yield n, data


class _Prefixed(io.RawIOBase):
    """A read-only stream that first returns `prefix`, then reads from `rest` (for sniffing)."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            out, self._prefix = self._prefix + self._rest.read(), b""
            return out
        out = b""
        if self._prefix:
            out, self._prefix = self._prefix[:size], self._prefix[size:]
        while len(out) < size:
            chunk = self._rest.read(size - len(out))
            if not chunk:
                break
            out += chunk
        return out

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


# --- outputs --------------------------------------------------------------------------------


def shard_name(stem: str, index: int, count: int) -> str:
    """`prediction.results-00000-of-00003` (0-based index, as Vertex names them)."""
    return f"{stem}-{index:05d}-of-{count:05d}"


def parse_shard_name(name: str) -> tuple[str, int, int] | None:
    """(stem, index, count) of an output object name (any prefix), or None if not a shard."""
    m = _SHARD_RE.search(name)
    if m is None:
        return None
    return m.group(1), int(m.group(2)), int(m.group(3))


def instance_key(instance: Any) -> bytes:
    """A short canonical digest of an instance, equal for equal JSON values.

    Numbers are compared as floats so `1` and `1.0` (a re-serialised echo) match.
    Rectangular numeric lists (images, feature vectors: the common case) are hashed
    through numpy at C speed; anything else through canonical JSON.
    """
    if isinstance(instance, list):
        import numpy as np  # lazy: only the client computes keys

        try:
            array = np.asarray(instance)
        except ValueError:  # ragged
            array = None
        # Only pure ints/floats: bools and strings must not collide with numbers.
        if array is not None and array.dtype.kind in "iuf":
            return hashlib.blake2b(
                b"nd" + repr(array.shape).encode() + array.astype(np.float64).tobytes(),
                digest_size=16,
            ).digest()
    return hashlib.blake2b(
        json.dumps(_normalise(instance), sort_keys=True, separators=(",", ":")).encode(),
        digest_size=16,
    ).digest()


def _normalise(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return value

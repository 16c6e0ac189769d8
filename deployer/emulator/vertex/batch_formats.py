"""Input side of the emulator's batch prediction jobs: find the input objects, stream instances.

Owns turning a job's `inputConfig` (gcsSource URIs, wildcards allowed, and an
instancesFormat) into a lazy stream of instances read from the emulator's
object store, one row or record at a time (never a whole file in memory), with
errors that say which file and line is at fault. The per-row rules (CSV
typing, TFRecord framing, `{"b64": ...}`) live in `deployer.wire.batch_formats`,
shared with the client.

Must not: call replicas, write outputs, touch job state, or import TensorFlow.
"""

from __future__ import annotations

import base64
import fnmatch
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from deployer.emulator.http import ServiceError
from deployer.emulator.objects import ObjectStore, parse_gs_uri
from deployer.emulator.vertex.batch_arrays import Block, iter_blocks
from deployer.wire import batch_formats as formats

_WILDCARDS = "*?["


class InputError(Exception):
    """The job's input is missing or malformed: the job fails with this message."""


@dataclass(frozen=True)
class Instance:
    """One instance to predict, and where it came from (for error messages)."""

    value: Any  # the JSON value sent in "instances"
    source: str  # gs://bucket/object
    where: str  # "line 12" / "record 3"

    def json_bytes(self) -> bytes:
        """The instance as JSON text (JSON Lines rows skip this: their own text is kept)."""
        return json.dumps(self.value, separators=(",", ":")).encode()


def expand_sources(objects: ObjectStore, uris: list[str]) -> list[tuple[str, str]]:
    """(bucket, object) for every input URI, wildcards expanded in name order.

    Raises InputError if a URI is malformed, a bucket or object is missing, or a
    wildcard matches nothing: Vertex fails the job in those cases.
    """
    if not uris:
        raise InputError("inputConfig.gcsSource.uris is empty: give at least one gs:// URI.")
    found: list[tuple[str, str]] = []
    for uri in uris:
        try:
            bucket, name = parse_gs_uri(uri)
        except ServiceError as exc:
            raise InputError(exc.message) from exc
        if not objects.bucket_exists(bucket):
            raise InputError(f"Input {uri}: bucket {bucket} does not exist.")
        cut = min((name.find(c) for c in _WILDCARDS if c in name), default=-1)
        if cut < 0:
            if objects.stat(bucket, name) is None:
                raise InputError(f"Input file {uri} does not exist.")
            found.append((bucket, name))
            continue
        matched = [
            (bucket, meta.name)
            for meta in objects.list(bucket, prefix=name[:cut])
            if fnmatch.fnmatchcase(meta.name, name) and not meta.name.endswith("/")
        ]
        if not matched:
            raise InputError(f"Input pattern {uri} matches no files.")
        found.extend(matched)
    return found


def iter_instances(
    objects: ObjectStore, sources: list[tuple[str, str]], instances_format: str
) -> Iterator[Instance]:
    """Every instance of every source in order, streamed; InputError on a malformed row.

    (The job runner reads JSON Lines in raw blocks instead: `iter_batches`.)
    """
    if instances_format not in formats.FORMATS:
        raise InputError(
            f"Unsupported instancesFormat {instances_format!r}: use one of "
            f"{', '.join(formats.FORMATS)}."
        )
    for bucket, name in sources:
        uri, handle = _open_input(objects, bucket, name)
        try:
            yield from _iter_one(objects, handle, uri, instances_format)
        except formats.FormatError as exc:
            raise InputError(
                f"Malformed {instances_format} input {uri}, {exc.where}: {exc.reason}"
            ) from exc
        except UnicodeDecodeError as exc:
            raise InputError(
                f"Malformed {instances_format} input {uri}: not UTF-8 text ({exc})"
            ) from exc
        finally:
            handle.close()


def _open_input(objects: ObjectStore, bucket: str, name: str) -> tuple[str, Any]:
    """(gs:// URI, open handle) of one input file; InputError if it is gone."""
    uri = f"gs://{bucket}/{name}"
    try:
        return uri, objects.open(bucket, name)
    except ServiceError as exc:  # deleted since the job started
        raise InputError(f"Input file {uri} could not be read: {exc.message}") from exc


def chunked(texts: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    """`texts` in input order, as lists of `size` (the last one shorter)."""
    batch: list[bytes] = []
    for text in texts:
        batch.append(text)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def iter_batches(
    objects: ObjectStore, sources: list[tuple[str, str]], instances_format: str, size: int
) -> Iterator[Block | list[bytes]]:
    """The job's batches in input order: blocks of raw JSON Lines rows (decoded, or validated,
    when scored: batch_scoring), else lists of `size` instances as JSON text."""
    if instances_format != "jsonl":
        texts = (inst.json_bytes() for inst in iter_instances(objects, sources, instances_format))
        yield from chunked(texts, size)
        return
    for bucket, name in sources:
        uri, handle = _open_input(objects, bucket, name)
        with handle:
            yield from iter_blocks(handle, uri, size)


def count_valid_instances(
    objects: ObjectStore, sources: list[tuple[str, str]], instances_format: str
) -> int:
    """Validate every row and count the instances, without sending anything anywhere.

    Reads like `iter_instances` but, for file lists, only checks that each listed
    file exists (its bytes are read once, when predicting), and JSON Lines rows are only
    counted: they are validated as they are scored (a second parse of a large input would
    cost as much as the job).
    """
    if instances_format == "jsonl":
        total = 0
        for bucket, name in sources:
            uri, handle = _open_input(objects, bucket, name)
            with handle:
                for block in iter_blocks(handle, uri, 1024):  # ~2 MB at a time
                    try:
                        b"\n".join(block.lines).decode("utf-8")  # ASCII: at memory speed
                    except UnicodeDecodeError as exc:
                        raise InputError(
                            f"Malformed jsonl input {uri}: not UTF-8 text ({exc})"
                        ) from exc
                    total += len(block.lines)
        return total
    if instances_format != "file-list":
        return sum(1 for _ in iter_instances(objects, sources, instances_format))
    count = 0
    for bucket, name in sources:
        uri = f"gs://{bucket}/{name}"
        with objects.open(bucket, name) as handle:
            text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
            try:
                for n, listed in formats.iter_file_list(text):
                    try:
                        lb, ln = parse_gs_uri(listed)
                    except ServiceError as exc:
                        raise InputError(f"File list {uri}, line {n}: {exc.message}") from exc
                    if objects.stat(lb, ln) is None:
                        raise InputError(f"File list {uri}, line {n}: {listed} does not exist.")
                    count += 1
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"Malformed file-list input {uri}: not UTF-8 text ({exc})"
                ) from exc
    return count


def _iter_one(objects: ObjectStore, handle: Any, uri: str, fmt: str) -> Iterator[Instance]:
    if fmt == "tf-record":
        for n, data in formats.iter_tfrecords(handle):
            yield Instance(formats.b64_instance(data), uri, f"record {n}")
        return
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    if fmt == "jsonl":
        for n, value in formats.iter_jsonl(text):
            yield Instance(value, uri, f"line {n}")
    elif fmt == "csv":
        for n, row in formats.iter_csv(text):
            yield Instance(row, uri, f"line {n}")
    else:  # file-list
        for n, listed in formats.iter_file_list(text):
            yield Instance(_read_listed(objects, listed, uri, n), uri, f"line {n}")


def _read_listed(objects: ObjectStore, listed: str, uri: str, line: int) -> Any:
    """A listed file's bytes as {"b64": ...}; a missing file is an input error of the job."""
    try:
        bucket, name = parse_gs_uri(listed)
        with objects.open(bucket, name) as fh:
            data = fh.read()
    except ServiceError as exc:
        raise InputError(f"File list {uri}, line {line}: {listed}: {exc.message}") from exc
    return {"b64": base64.b64encode(data).decode("ascii")}

"""Stage a batch job's input: local files become content-addressed objects in the stack bucket.

Owns: reading the user's input (a file, a folder, or gs:// URIs; jsonl, csv,
file-list, tf-record, and .npy/.npz converted to JSON Lines), splitting large
text inputs into parts (Vertex reads a list of files), pulling a `label`
field or column out of the instances (kept locally to score the results),
hashing what will be sent, uploading only what the bucket lacks (in parallel),
and filling the `RowIndex` (deployer.batch.rows, on disk) that maps each output
back to its input row.

Must not: import google.cloud (it calls the provider's `Storage` protocol), or keep
anything per row in memory (rows are streamed to the parts and to the on-disk `RowIndex`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer import settings
from deployer.batch.rows import Labels, RowIndex
from deployer.errors import ConfigError
from deployer.providers import ObjectInfo, Progress, Storage
from deployer.state import BATCH_INPUT_PREFIX
from deployer.wire import batch_formats as formats

_BIG_UPLOAD_BYTES = 1024 * 1024
LABEL_FIELD = "label"


@dataclass
class StagedInput:
    """What the job reads, and what the client keeps to interpret its outputs."""

    uris: tuple[str, ...]  # gs:// URIs of the input parts, in order
    format: str  # the wire instancesFormat: jsonl | csv | file-list | tf-record
    content_hash: str  # sha256 over format + parts: equal inputs share one staging and one job
    index: RowIndex | None  # None when the input was already in GCS (not read locally)
    labels: Labels | None = (
        None  # known labels pulled from a `label` field/column, input order (on disk)
    )
    uploaded_bytes: int = 0  # what this call actually sent
    total_bytes: int = 0


def folder_files(path: Path) -> list[Path]:
    """The files an input folder stands for: every file below it, hidden ones skipped, sorted."""
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def infer_format(path: str, declared: str | None) -> str:
    """The input format: declared in the spec, else what `batch_formats.infer_format` reads."""
    if declared:
        return declared
    inferred = formats.infer_format(path, is_dir=Path(path).is_dir())
    if inferred is not None:
        return inferred
    raise ConfigError(
        f"cannot tell the input format of {path}",
        hint="set input.format in the spec (jsonl, csv, file-list, tf-record)",
    )


def stage_input(
    store: Storage,
    bucket: str,
    stack: str,
    paths: list[str],
    fmt: str,
    *,
    work_dir: Path | None = None,
    progress: Progress | None = None,
) -> StagedInput:
    """Stage `paths` (local files/folders or gs:// URIs) for a job reading format `fmt`."""
    if not paths:
        raise ConfigError(
            "the batch job has no input", hint="set input.path in the spec or pass --input"
        )
    remote = [p for p in paths if p.startswith("gs://")]
    if remote:
        if len(remote) != len(paths):
            raise ConfigError(
                "mixing local and gs:// inputs in one job is not supported",
                hint="upload the local files, or stage them as their own job",
            )
        return StagedInput(
            tuple(paths), fmt, hashlib.sha256(json.dumps([fmt, paths]).encode()).hexdigest(), None
        )
    with tempfile.TemporaryDirectory(prefix="deployer-batch-", dir=work_dir) as tmp:
        files_prefix = f"{BATCH_INPUT_PREFIX}/{stack}/files/"
        builder = _Builder(Path(tmp), fmt, f"gs://{bucket}/{files_prefix}")
        for p in paths:
            builder.add_path(Path(p))
        parts = builder.finish()
        content_hash = builder.digest.hexdigest()
        prefix = f"{BATCH_INPUT_PREFIX}/{stack}/{content_hash[:32]}/"
        uploads = [(str(local), prefix + name) for name, local in parts]
        uploads += [(str(local), files_prefix + name) for name, local in builder.files]
        sent = _upload_missing(store, bucket, uploads, progress)
        total = sum(os.path.getsize(local) for local, _ in uploads)
        return StagedInput(
            tuple(f"gs://{bucket}/{prefix}{name}" for name, _ in parts),
            builder.wire_format,
            content_hash,
            builder.index,
            Labels(builder.index) if builder.has_labels else None,
            sent,
            total,
        )


def _upload_missing(
    store: Storage, bucket: str, uploads: list[tuple[str, str]], progress: Progress | None
) -> int:
    """Upload the objects the bucket lacks (same name and size counts as present: names hold
    hashes)."""
    prefixes = sorted({name.rsplit("/", 1)[0] + "/" for _, name in uploads})
    present: dict[str, ObjectInfo] = {}
    for prefix in prefixes:
        present.update(store.list_objects(bucket, prefix))
    missing = [
        (local, name)
        for local, name in uploads
        if name not in present or present[name].size != os.path.getsize(local)
    ]
    # Each part in flight holds an upload chunk (8 MiB) and its copies in memory: sending
    # every part at once makes the client's peak grow with the input up to the provider's
    # worker count. Parts go up $DEPLOYER_BATCH_UPLOADS_IN_FLIGHT at a time (default one: one
    # 8 MiB chunk in memory; on loopback no slower than eight); small files (file-list members)
    # all at once.
    big = [item for item in missing if os.path.getsize(item[0]) >= _BIG_UPLOAD_BYTES]
    small = [item for item in missing if os.path.getsize(item[0]) < _BIG_UPLOAD_BYTES]
    if small:
        store.upload_files(bucket, small, progress)
    in_flight = settings.BATCH_UPLOADS_IN_FLIGHT.get()
    for i in range(0, len(big), in_flight):
        store.upload_files(bucket, big[i : i + in_flight], progress)
    return sum(os.path.getsize(local) for local, _ in missing)


class _Builder:
    """Accumulates parts, the row index and labels while streaming the inputs once."""

    def __init__(self, tmp: Path, fmt: str, files_uri: str) -> None:
        self.tmp = tmp
        self.files_uri = files_uri  # gs://bucket/batch-inputs/<stack>/files/: where listed files go
        self._file_names: set[str] = set()
        self.fmt = fmt
        self.wire_format = fmt
        self.index = RowIndex()  # outlives `tmp`: the merge reads it after the job ran
        self.has_labels = False
        self.digest = hashlib.sha256(f"deployer-batch-input-v1\0{fmt}\0".encode())
        self.parts: list[tuple[str, Path]] = []
        self.files: list[tuple[str, Path]] = []  # file-list members: (content name, local path)
        self._out: io.BufferedWriter | None = None
        self._out_bytes = 0
        # A part holds at most this many bytes (Vertex reads the parts in parallel).
        self.part_bytes = settings.BATCH_PART_BYTES.get()
        self._csv_header: bytes | None = None

    # -- parts ---------------------------------------------------------------------------

    def _ext(self) -> str:
        return {"jsonl": "jsonl", "csv": "csv", "file-list": "txt", "tf-record": "tfrecord"}[
            self.wire_format
        ]

    def _write(self, data: bytes) -> None:
        if self._out is None or self._out_bytes >= self.part_bytes:
            self._roll()
        assert self._out is not None
        self._out.write(data)
        self._out_bytes += len(data)
        self.digest.update(data)

    def _roll(self) -> None:
        if self._out is not None:
            self._out.close()
        name = f"part-{len(self.parts):05d}.{self._ext()}"
        path = self.tmp / name
        self.parts.append((name, path))
        self._out = open(path, "wb")
        self._out_bytes = 0
        self.digest.update(f"\0part\0{name}\0".encode())
        if self._csv_header is not None:  # every CSV part starts with the header row
            self._out.write(self._csv_header)
            self._out_bytes += len(self._csv_header)

    def finish(self) -> list[tuple[str, Path]]:
        if self._out is not None:
            self._out.close()
        if not len(self.index):
            raise ConfigError("the batch input holds no instances", hint="check the input path")
        if self.has_labels and self.index.label_count != len(self.index):
            raise ConfigError(
                f"only {self.index.label_count} of {len(self.index)} rows have a {LABEL_FIELD!r}",
                hint="label every row, or none",
            )
        return self.parts

    # -- inputs --------------------------------------------------------------------------

    def add_path(self, path: Path) -> None:
        if not path.exists():
            raise ConfigError(
                f"batch input {path} does not exist", hint="fix input.path or --input"
            )
        if path.is_dir():
            files = folder_files(path)
            if not files:
                raise ConfigError(f"batch input folder {path} holds no files")
            if self.fmt == "file-list":
                for n, f in enumerate(files, start=1):
                    self._add_listed(f, str(path), n)
                return
            for f in files:
                self.add_path(f)
            return
        suffix = path.suffix.lower()
        try:
            if suffix in (".npy", ".npz"):
                self._add_numpy(path)
            elif self.fmt == "jsonl":
                self._add_jsonl(path)
            elif self.fmt == "csv":
                self._add_csv(path)
            elif self.fmt == "file-list":
                self._add_file_list(path)
            else:
                self._add_tfrecord(path)
        except formats.FormatError as exc:
            raise ConfigError(
                f"{path}, {exc.where}: {exc.reason}",
                hint=f"fix the row, or check that the input really is {self.fmt}",
            ) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{path} is not UTF-8 text ({exc})",
                hint=f"check that the input really is {self.fmt}",
            ) from exc

    def _label(self, value: Any) -> None:
        self.index.add_label(value)
        self.has_labels = True

    def _add_jsonl(self, path: Path) -> None:
        with open(path, "rb") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                value = formats.parse_jsonl_line(line, line_no=n)
                if isinstance(value, dict) and LABEL_FIELD in value:
                    value = dict(value)
                    self._label(value.pop(LABEL_FIELD))
                    line = json.dumps(value).encode() + b"\n"
                elif not line.endswith(b"\n"):
                    line += b"\n"
                self._write(line)
                self.index.add(value, str(path), n)

    def _add_numpy(self, path: Path) -> None:
        import numpy as np  # a dependency of tensorflow and google-cloud-aiplatform alike

        self.wire_format = "jsonl"
        loaded = np.load(path, allow_pickle=False, mmap_mode="r")  # .npy: paged in, not read whole
        labels = None
        if isinstance(loaded, np.lib.npyio.NpzFile):
            keys = list(loaded.keys())
            xkey = next((k for k in ("x", "instances", "x_test", "images") if k in keys), keys[0])
            ykey = next((k for k in ("y", "labels", "label", "y_test") if k in keys), None)
            array = loaded[xkey]
            labels = loaded[ykey] if ykey is not None else None
        else:
            array = loaded
        for n, row in enumerate(array, start=1):
            value = row.tolist()
            self._write(json.dumps(value).encode() + b"\n")
            self.index.add(value, str(path), n)
        if labels is not None:
            for y in labels:
                self._label(y.tolist())

    def _add_csv(self, path: Path) -> None:
        with open(path, encoding="utf-8", newline="") as fh:
            header_line = fh.readline()
            if not header_line:
                return
            header = next(csv.reader([header_line]))
            label_col = header.index(LABEL_FIELD) if LABEL_FIELD in header else None
            kept = [h for i, h in enumerate(header) if i != label_col]
            out_header = _csv_line(kept, quote_all=True)
            if self._csv_header is None:
                self._csv_header = out_header
                if self._out is not None:
                    self._write(out_header)
            elif self._csv_header != out_header:
                raise formats.FormatError(
                    "header differs from the first CSV file's", where="line 1"
                )
            for n, row in formats.iter_csv([header_line, *fh]):
                if label_col is not None:
                    self._label(row.pop(label_col))
                self._write(_csv_line(row))
                self.index.add(row, str(path), n)

    def _add_file_list(self, path: Path) -> None:
        with open(path, encoding="utf-8") as fh:
            for n, listed in formats.iter_file_list(fh):
                if listed.startswith("gs://"):
                    raise ConfigError(
                        f"{path}, line {n}: a local file list naming gs:// files",
                        hint="give the gs:// file list itself as the input",
                    )
                target = Path(listed)
                if not target.is_absolute():
                    target = path.parent / target  # relative to the list, as a user writes it
                if not target.is_file():
                    raise ConfigError(f"{path}, line {n}: {listed} does not exist")
                self._add_listed(target, str(path), n)

    def _add_listed(self, file: Path, source: str, line: int) -> None:
        data = file.read_bytes()  # one file at a time
        name = f"{hashlib.sha256(data).hexdigest()}{file.suffix.lower()}"
        if name not in self._file_names:
            self._file_names.add(name)
            self.files.append((name, file))
        self._write(f"{self.files_uri}{name}\n".encode())
        self.index.add(formats.b64_instance(data), source, line)

    def _add_tfrecord(self, path: Path) -> None:
        with open(path, "rb") as fh:
            for n, data in formats.iter_tfrecords(fh):
                self._write(formats.frame_tfrecord(data))
                self.index.add(formats.b64_instance(data), str(path), n)


def _csv_line(values: list[Any], *, quote_all: bool = False) -> bytes:
    """One CSV row the way Vertex reads it back: strings quoted, numbers bare."""
    buf = io.StringIO()
    csv.writer(
        buf, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_NONNUMERIC, lineterminator="\n"
    ).writerow(values)
    return buf.getvalue().encode()

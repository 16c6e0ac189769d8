"""Count a batch job's local input rows cheaply, so `plan` can bound the job's cost.

Owns: `local_rows_upper_bound(paths, fmt)`: an upper bound on the instances in local inputs
without parsing them: lines of JSON Lines / file lists (blank lines counted too), lines minus one
header per CSV file, records of TFRecord files (by their length headers), rows of .npy
arrays (from the header), files of a file-list folder. None when any input is in Cloud
Storage, missing, an .npz, or larger than `max_bytes` in all (counting would slow `plan`).
Must not: read whole rows into memory, import numpy for anything but .npy headers, or make
API calls.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from deployer.batch.staging import folder_files, infer_format
from deployer.errors import ConfigError

if TYPE_CHECKING:
    from deployer.spec import Spec

MAX_COUNT_BYTES = 1 << 30  # ~0.5 s of newline counting here; beyond it the estimate says "unknown"
_CHUNK = 1 << 20


def _lines(path: Path) -> int:
    count, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")  # a last line without a newline


def _tfrecords(path: Path) -> int | None:
    size, count, pos = path.stat().st_size, 0, 0
    with open(path, "rb") as fh:
        while pos < size:
            header = fh.read(8)
            if len(header) < 8:
                return None  # truncated: let staging report it
            (length,) = struct.unpack("<Q", header)
            pos += 8 + 4 + length + 4  # length, its crc, data, data crc
            fh.seek(pos)
            count += 1
    return count


def _npy_rows(path: Path) -> int | None:
    import numpy as np

    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    return int(array.shape[0]) if array.ndim else None


def _files(path: Path) -> list[Path]:
    return folder_files(path) if path.is_dir() else [path]


def local_rows_upper_bound(
    paths: Iterable[str], fmt: str | None, *, max_bytes: int = MAX_COUNT_BYTES
) -> int | None:
    """Upper bound on the rows of local batch inputs (see the module docstring), or None."""
    total = 0
    budget = max_bytes
    for raw in paths:
        if raw.startswith("gs://"):
            return None
        path = Path(raw)
        if not path.exists():
            return None
        try:
            kind = infer_format(raw, fmt)
        except ConfigError:
            return None  # staging explains it when the job runs
        if path.is_dir() and kind == "file-list":
            total += len(_files(path))
            continue
        for f in _files(path):
            budget -= f.stat().st_size
            if budget < 0:
                return None
            suffix = f.suffix.lower()
            if suffix == ".npz":
                return None
            if suffix == ".npy":
                rows = _npy_rows(f)
            elif kind == "tf-record":
                rows = _tfrecords(f)
            else:
                rows = _lines(f) - (1 if kind == "csv" else 0)
            if rows is None:
                return None
            total += max(rows, 0)
    return total


def job_instance_counts(spec: Spec) -> dict[str, int | None]:
    """Job name -> `local_rows_upper_bound` of its spec input, for the cost estimate."""
    return {
        job.name: local_rows_upper_bound(job.input.paths, job.input.format.value)
        for job in spec.batch_jobs
    }

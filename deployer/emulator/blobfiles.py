"""The immutable files holding GCS object bytes, written so a crash never tears one.

Owns the byte side of `ObjectStore`: streaming a source into a temp file while
computing md5 and crc32c, making a batch of such files durable at once (`sync`: the
store's group commit calls it once for every object of a batch, instead of an fsync
per object on each request's thread), publishing each under a fresh name with an
atomic rename (a blob file is never modified after that; an overwrite writes a
new one), and sweeping what a crash leaves (temp files, blobs no metadata row
points at) at startup.

Must not: hold metadata (SQLite in `objects.py` does), speak HTTP, or import
TensorFlow / deployer.serving.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

import google_crc32c

from deployer.emulator.paths import contained

CHUNK = 1 << 20


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return cast(Callable[[int], int], fn)


_SYNCFS = _load_syncfs()
# Batches up to this size sync file by file (see BlobFiles.sync).
_SYNC_EACH_UP_TO = 2


class Readable(Protocol):
    """Anything with read(n) -> bytes: files, request body streams."""

    def read(self, n: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class Hashed:
    """Size and checksums of bytes written, as GCS reports them."""

    size: int
    md5: str  # base64 of the 16-byte digest
    crc32c: str  # base64 of the big-endian 4-byte CRC32C


def iter_file(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while data := fh.read(CHUNK):
            yield data


class IterReader:
    """A read()-able over an iterator of byte chunks (returns one chunk per call)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)

    def read(self, n: int = -1) -> bytes:
        return next(self._chunks, b"")


class BlobFiles:
    """Blob files under `root/blobs/xx/<id>`, temp files under `root/tmp`."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.blobs = root / "blobs"
        self.tmp = root / "tmp"
        for d in (self.blobs, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        for i in range(256):  # fan-out dirs made once, not per upload
            (self.blobs / f"{i:02x}").mkdir(exist_ok=True)
        # Off only where speed matters more than power-loss safety (tests); kill -9 safety
        # never needs it (the page cache outlives the process).
        self.fsync = fsync

    def path(self, rel: str) -> Path:
        """The blob file named `rel` (as `publish` returned it, read back from metadata)."""
        # `rel` comes from the metadata database, not a request; checked all the same, so a
        # tampered or corrupt row cannot make the store read or unlink a file elsewhere.
        return contained(self.blobs, rel, what=f"Blob file {rel!r}")

    def write_temp(self, source: bytes | Readable | Path) -> tuple[Path, Hashed]:
        """Stream `source` into a temp file, hashing as it goes (not yet durable: `sync`)."""
        md5 = hashlib.md5()
        crc = google_crc32c.Checksum()  # type: ignore[no-untyped-call]
        tmp = self.tmp / uuid.uuid4().hex
        size = 0
        chunks: Iterable[bytes]
        if isinstance(source, (bytes, bytearray, memoryview)):
            chunks = [bytes(source)]
        elif isinstance(source, Path):
            chunks = iter_file(source)
        else:
            chunks = iter(lambda: source.read(CHUNK), b"")
        try:
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    if not chunk:
                        continue
                    md5.update(chunk)
                    crc.update(chunk)  # type: ignore[no-untyped-call]
                    out.write(chunk)
                    size += len(chunk)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        crc_digest: bytes = crc.digest()  # type: ignore[no-untyped-call]
        return tmp, Hashed(
            size, base64.b64encode(md5.digest()).decode(), base64.b64encode(crc_digest).decode()
        )

    def adopt(self, path: Path) -> tuple[Path, Hashed]:
        """Hash a finished file in place, to be published without copying it (then `sync`)."""
        md5 = hashlib.md5()
        crc = google_crc32c.Checksum()  # type: ignore[no-untyped-call]
        size = 0
        with open(path, "rb") as fh:
            while data := fh.read(CHUNK):
                md5.update(data)
                crc.update(data)  # type: ignore[no-untyped-call]
                size += len(data)
        crc_digest: bytes = crc.digest()  # type: ignore[no-untyped-call]
        return path, Hashed(
            size, base64.b64encode(md5.digest()).decode(), base64.b64encode(crc_digest).decode()
        )

    def sync(self, rels: Sequence[str]) -> None:
        """Make the published blobs `rels` durable, bytes and names: the one sync of a group
        commit, before any row points at them.

        A batch of one or two (a lone writer): an `fdatasync` of each, so its wait is bounded
        by its own data, as before group commits. Larger batches on Linux: one `syncfs` of the
        file system holding the blobs, whatever the batch size (measured on this project's
        VM: 3.5 ms for 8 files of 64 KB, against 19.5 ms for an `fdatasync` of each, and a
        seventh of the CPU); it also flushes other processes' dirty pages on that file
        system, which a batch of many amortizes. Without syncfs (macOS, BSD): each file."""
        if not self.fsync or not rels:
            return
        if _SYNCFS is None or len(rels) <= _SYNC_EACH_UP_TO:
            for rel in rels:
                fd = os.open(self.path(rel), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            return
        fd = os.open(self.blobs, os.O_RDONLY)
        try:
            if _SYNCFS(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"syncfs: {os.strerror(err)}")
        finally:
            os.close(fd)

    def publish(self, tmp: Path) -> str:
        """Move a written temp file to its final, never-modified name; returns that name."""
        blob_id = uuid.uuid4().hex
        rel = f"{blob_id[:2]}/{blob_id}"
        os.replace(tmp, self.blobs / rel)
        return rel

    def remove(self, rel: str) -> None:
        self.path(rel).unlink(missing_ok=True)

    def sweep(self, referenced: set[str]) -> None:
        """Delete temp files and blobs not in `referenced` (startup only: O(files))."""
        for tmp in self.tmp.iterdir():
            tmp.unlink(missing_ok=True)
        for sub in self.blobs.iterdir():
            if not sub.is_dir():
                continue
            for blob in sub.iterdir():
                if f"{sub.name}/{blob.name}" not in referenced:
                    blob.unlink(missing_ok=True)

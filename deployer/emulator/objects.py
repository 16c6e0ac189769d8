"""Crash-safe storage of the emulator's GCS buckets and objects.

Owns `ObjectStore`: bucket and object metadata in SQLite (WAL), object bytes in immutable
files under `<data_dir>/gcs/blobs` (see `blobfiles.py`), written atomically (temp file, sync,
rename) BEFORE the metadata row that points at them is committed, and a writer answered only
after that commit. Uploads arriving together share one group commit (`groupcommit.py`): one
sync pass over their files and one transaction for their rows, instead of an fsync and a
transaction each. A `kill -9` at any moment therefore leaves every object either fully present
with its recorded checksums or absent, and every acknowledged one present; leftovers (temp
files, blobs no row points at) are swept at the next start. md5 and crc32c are computed while
streaming. No operation does O(objects) work per upload: every change touches one row.

Buckets, listings, upload sessions and object writes (with the group commit) are in
`buckettable.py`, `objectlisting.py`, `uploadsessions.py` and `objectwrites.py` (mixins of
`ObjectStore`); the shared types in `gcstypes.py`, re-exported
here.

Must not: speak HTTP or render GCS JSON (that is `gcs.py`), or import
TensorFlow / deployer.serving.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from deployer.emulator.blobfiles import CHUNK, BlobFiles, IterReader, Readable
from deployer.emulator.gcstypes import (
    OBJECT_COLUMNS,
    OBJECT_PROPERTIES,
    PRECONDITION_FAILED,
    ListPage,
    ObjectMeta,
    object_meta,
    parse_gs_uri,
    rfc3339,
    validate_content_type,
    validate_object_name,
)
from deployer.emulator.groupcommit import GroupCommit
from deployer.emulator.http import ServiceError
from deployer.emulator.objectlisting import ObjectListing
from deployer.emulator.objectwrites import ObjectWrites

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    location TEXT NOT NULL,
    storage_class TEXT NOT NULL,
    labels TEXT NOT NULL,
    project TEXT,
    metageneration INTEGER NOT NULL,
    time_created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL,
    name TEXT NOT NULL,
    generation INTEGER NOT NULL,
    metageneration INTEGER NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    crc32c TEXT NOT NULL,
    content_type TEXT NOT NULL,
    metadata TEXT NOT NULL,
    time_created TEXT NOT NULL,
    updated TEXT NOT NULL,
    blob TEXT NOT NULL,
    PRIMARY KEY (bucket, name)
) WITHOUT ROWID;
-- Noncurrent generations of objects in buckets with versioning enabled (same columns, plus
-- when the generation stopped being live).
CREATE TABLE IF NOT EXISTS noncurrent (
    bucket TEXT NOT NULL,
    name TEXT NOT NULL,
    generation INTEGER NOT NULL,
    metageneration INTEGER NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    crc32c TEXT NOT NULL,
    content_type TEXT NOT NULL,
    metadata TEXT NOT NULL,
    time_created TEXT NOT NULL,
    updated TEXT NOT NULL,
    blob TEXT NOT NULL,
    storage_class TEXT NOT NULL,
    props TEXT NOT NULL,
    time_deleted TEXT NOT NULL,
    PRIMARY KEY (bucket, name, generation)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    created REAL NOT NULL
);
"""
# Columns added after the first release: (table, column, declaration), added to older data dirs
# at start (SQLite's ALTER TABLE ADD COLUMN is cheap: existing rows take the default).
_ADDED_COLUMNS = (
    ("buckets", "versioning", "INTEGER NOT NULL DEFAULT 0"),
    ("objects", "storage_class", "TEXT NOT NULL DEFAULT 'STANDARD'"),
    ("objects", "props", "TEXT NOT NULL DEFAULT '{}'"),
)


class ObjectStore(ObjectListing, ObjectWrites):
    """Buckets and objects of the emulator, safe against crashes and concurrent requests.

    Buckets (`BucketTable`), listings (`ObjectListing`) and resumable upload sessions
    (`UploadSessions`) are mixins over the same connection and lock."""

    def __init__(self, data_dir: Path, *, fsync: bool = True) -> None:
        self.root = Path(data_dir) / "gcs"
        self._files = BlobFiles(self.root, fsync=fsync)
        self.uploads_dir = self.root / "uploads"  # resumable upload sessions' partial bytes
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # One connection guarded by a lock: metadata changes are tiny, the slow
        # part (streaming and hashing bytes) happens outside the lock.
        self._db = sqlite3.connect(
            self.root / "meta.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives process crashes (kill -9) without losing commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        for table, column, decl in _ADDED_COLUMNS:
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
        self._last_generation = 0
        self._sweep()
        # Concurrent uploads share one sync and one transaction (see _commit_batch).
        self._group = GroupCommit(self._commit_batch)

    # ---- housekeeping -------------------------------------------------------------

    def _sweep(self) -> None:
        """Remove what a crash can leave: temp files, and blobs no row points at (startup only)."""
        self._files.sweep(
            {
                row[0]
                for row in self._db.execute(
                    "SELECT blob FROM objects UNION SELECT blob FROM noncurrent"
                )
            }
        )
        # Sessions older than a week are abandoned (GCS expires them after one).
        self._db.execute("DELETE FROM uploads WHERE created < ?", (time.time() - 7 * 86400,))
        live = {row[0] for row in self._db.execute("SELECT upload_id FROM uploads")}
        for partial in self.uploads_dir.iterdir():
            if partial.name not in live:
                partial.unlink(missing_ok=True)
        row = self._db.execute(
            "SELECT MAX(g) FROM (SELECT MAX(generation) AS g FROM objects "
            "UNION ALL SELECT MAX(generation) FROM noncurrent)"
        ).fetchone()
        self._last_generation = int(row[0] or 0)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- objects: reads -----------------------------------------------------------

    def stat_generation(self, bucket: str, name: str, generation: int | None) -> ObjectMeta:
        """The live object, or with `generation` that generation (live or noncurrent); 404."""
        meta = self.require(bucket, name) if generation is None else self.stat(bucket, name)
        if generation is None or (meta is not None and meta.generation == generation):
            assert meta is not None
            return meta
        with self._lock:
            row = self._db.execute(
                f"SELECT {OBJECT_COLUMNS},time_deleted FROM noncurrent "
                "WHERE bucket=? AND name=? AND generation=?",
                (bucket, name, generation),
            ).fetchone()
        if row is None:
            self.require_bucket(bucket)
            raise ServiceError(404, "NOT_FOUND", f"No such object: {bucket}/{name}#{generation}")
        return object_meta(row[:-1], row[-1])

    def stat(self, bucket: str, name: str) -> ObjectMeta | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket=? AND name=?", (bucket, name)
            ).fetchone()
        return object_meta(row) if row else None

    def require(self, bucket: str, name: str) -> ObjectMeta:
        """Metadata of an object; 404 naming the bucket or object that is missing."""
        meta = self.stat(bucket, name)
        if meta is None:
            self.require_bucket(bucket)
            raise ServiceError(404, "NOT_FOUND", f"No such object: {bucket}/{name}")
        return meta

    def local_path(self, bucket: str, name: str) -> Path:
        """The file holding the object's current bytes. Read-only: never write or move it."""
        self.require(bucket, name)
        with self._lock:
            row = self._db.execute(
                "SELECT blob FROM objects WHERE bucket=? AND name=?", (bucket, name)
            ).fetchone()
        if row is None:
            raise ServiceError(404, "NOT_FOUND", f"No such object: {bucket}/{name}")
        return self._files.path(row[0])

    def open_with_meta(
        self, bucket: str, name: str, generation: int | None = None
    ) -> tuple[ObjectMeta, BinaryIO]:
        """Metadata and an open file of the same generation (a later overwrite cannot mix them)."""
        if generation is not None:
            with self._lock:
                meta = self.stat_generation(bucket, name, generation)
                table = "noncurrent" if meta.time_deleted else "objects"
                row = self._db.execute(
                    f"SELECT blob FROM {table} WHERE bucket=? AND name=? AND generation=?",
                    (bucket, name, generation),
                ).fetchone()
                if row is None:
                    raise ServiceError(
                        404, "NOT_FOUND", f"No such object: {bucket}/{name}#{generation}"
                    )
                return meta, open(self._files.path(row[0]), "rb")
        with self._lock:
            row = self._db.execute(
                f"SELECT {OBJECT_COLUMNS},blob FROM objects WHERE bucket=? AND name=?",
                (bucket, name),
            ).fetchone()
            if row is None:
                self.require(bucket, name)
                raise ServiceError(404, "NOT_FOUND", f"No such object: {bucket}/{name}")
            # Opened under the lock: an overwrite unlinks the old blob only after its
            # commit, and an open file survives the unlink.
            handle = open(self._files.path(row[-1]), "rb")
        return object_meta(row[:-1]), handle

    def open(self, bucket: str, name: str) -> BinaryIO:
        """The object's bytes as a binary file; ServiceError 404 if missing. Caller closes it."""
        return self.open_with_meta(bucket, name)[1]

    def read_bytes(self, bucket: str, name: str) -> bytes:
        with self.open(bucket, name) as fh:
            return fh.read()

    # ---- objects: writes ----------------------------------------------------------

    def update_metadata(
        self,
        bucket: str,
        name: str,
        *,
        metadata: dict[str, Any] | None = None,
        content_type: str | None = None,
        properties: dict[str, str | None] | None = None,
        replace: bool = False,
        if_generation_match: int | None = None,
        if_metageneration_match: int | None = None,
    ) -> ObjectMeta:
        """Patch (or with replace=True, set) user metadata, content type and properties (a
        None value removes one); bumps metageneration."""
        if content_type is not None:
            validate_content_type(content_type)
        with self._lock:
            current = self.require(bucket, name)
            self._check_preconditions(
                current,
                if_generation_match=if_generation_match,
                if_generation_not_match=None,
                if_metageneration_match=if_metageneration_match,
            )
            merged: dict[str, str] = {} if replace else dict(current.metadata)
            for key, value in (metadata or {}).items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[str(key)] = str(value)
            props: dict[str, str] = {} if replace else dict(current.properties)
            for key, prop in (properties or {}).items():
                if prop is None:
                    props.pop(key, None)
                else:
                    props[key] = prop
            self._db.execute(
                "UPDATE objects SET metadata=?, content_type=?, props=?, "
                "metageneration=metageneration+1, updated=? WHERE bucket=? AND name=?",
                (
                    json.dumps(merged),
                    content_type or current.content_type,
                    json.dumps(props),
                    rfc3339(time.time()),
                    bucket,
                    name,
                ),
            )
        return self.require(bucket, name)

    def delete(
        self,
        bucket: str,
        name: str,
        *,
        generation: int | None = None,
        if_generation_match: int | None = None,
        if_metageneration_match: int | None = None,
    ) -> None:
        """Delete the live object (kept as noncurrent where the bucket has versioning), or
        with `generation` that generation for good; 404 if missing, 412 if a precondition
        fails."""
        with self._lock:
            current = self.stat_generation(bucket, name, generation)
            self._check_preconditions(
                current,
                if_generation_match=if_generation_match,
                if_generation_not_match=None,
                if_metageneration_match=if_metageneration_match,
            )
            blob: str | None
            if current.time_deleted is not None:
                row = self._db.execute(
                    "SELECT blob FROM noncurrent WHERE bucket=? AND name=? AND generation=?",
                    (bucket, name, current.generation),
                ).fetchone()
                self._db.execute(
                    "DELETE FROM noncurrent WHERE bucket=? AND name=? AND generation=?",
                    (bucket, name, current.generation),
                )
                blob = str(row[0])
            elif generation is not None:
                row = self._db.execute(
                    "SELECT blob FROM objects WHERE bucket=? AND name=?", (bucket, name)
                ).fetchone()
                self._db.execute("DELETE FROM objects WHERE bucket=? AND name=?", (bucket, name))
                blob = str(row[0])
            else:
                blob = self._retire(bucket, name)
        if blob:
            self._files.remove(blob)

    def copy(
        self,
        src_bucket: str,
        src_name: str,
        dst_bucket: str,
        dst_name: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        storage_class: str | None = None,
        source_generation: int | None = None,
        if_generation_match: int | None = None,
        if_source_generation_match: int | None = None,
    ) -> ObjectMeta:
        """Copy an object (bytes re-hashed and written like any upload); the source's content
        type, metadata, properties and storage class unless given."""
        meta, handle = self.open_with_meta(src_bucket, src_name, source_generation)
        with handle:
            if (
                if_source_generation_match is not None
                and meta.generation != if_source_generation_match
            ):
                raise ServiceError(412, "FAILED_PRECONDITION", PRECONDITION_FAILED)
            return self.put(
                dst_bucket,
                dst_name,
                handle,
                content_type=content_type or meta.content_type or None,
                metadata=meta.metadata if metadata is None else metadata,
                properties={**meta.properties, **(properties or {})},
                storage_class=storage_class or meta.storage_class,
                if_generation_match=if_generation_match,
            )

    def compose(
        self,
        bucket: str,
        sources: Sequence[tuple[str, int | None, int | None]],
        dst_name: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        if_generation_match: int | None = None,
    ) -> ObjectMeta:
        """Concatenate source objects of one bucket into `dst_name`. Each source is (name,
        generation or None for the live one, ifGenerationMatch or None)."""
        if not 1 <= len(sources) <= 32:
            raise ServiceError(
                400, "INVALID_ARGUMENT", "compose takes between 1 and 32 source objects"
            )
        handles: list[BinaryIO] = []
        try:
            for name, generation, must_match in sources:
                meta, handle = self.open_with_meta(bucket, name, generation)
                handles.append(handle)
                if must_match is not None and meta.generation != must_match:
                    raise ServiceError(412, "FAILED_PRECONDITION", PRECONDITION_FAILED)

            def chunks() -> Iterator[bytes]:
                for h in handles:
                    while data := h.read(CHUNK):
                        yield data

            return self.put(
                bucket,
                dst_name,
                IterReader(chunks()),
                content_type=content_type,  # none invented: GCS leaves it unset
                metadata=metadata,
                properties=properties,
                if_generation_match=if_generation_match,
            )
        finally:
            for h in handles:
                h.close()


__all__ = [
    "OBJECT_PROPERTIES",
    "ListPage",
    "ObjectMeta",
    "ObjectStore",
    "Readable",
    "parse_gs_uri",
    "rfc3339",
    "validate_content_type",
    "validate_object_name",
]

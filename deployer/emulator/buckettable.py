"""The emulator's Cloud Storage buckets: rows of the store's SQLite database.

Owns `BucketTable`, the part of `ObjectStore` (a mixin over its connection and lock) that
creates, reads, patches (labels, versioning), lists and deletes buckets, with the name
rules and the 404 / 409 answers GCS gives.

Must not: speak HTTP, touch object bytes, or import TensorFlow / deployer.serving.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from typing import Any

from deployer.emulator.gcstypes import rfc3339
from deployer.emulator.http import ServiceError

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")


class BucketTable:
    """Bucket rows (a mixin of ObjectStore)."""

    # Set by ObjectStore: one connection, guarded by the lock, shared by every table.
    _db: sqlite3.Connection
    _lock: threading.RLock

    @staticmethod
    def _bucket_row(row: tuple[Any, ...]) -> dict[str, Any]:
        name, location, storage_class, labels, project, metageneration, created, updated = row[:8]
        return {
            "versioning": bool(row[8]),
            "name": name,
            "location": location,
            "storage_class": storage_class,
            "labels": json.loads(labels),
            "project": project,
            "metageneration": metageneration,
            "time_created": created,
            "updated": updated,
        }

    def bucket_exists(self, bucket: str) -> bool:
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM buckets WHERE name=?", (bucket,)).fetchone()
                is not None
            )

    def get_bucket(self, bucket: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM buckets WHERE name=?", (bucket,)).fetchone()
        return self._bucket_row(row) if row else None

    def require_bucket(self, bucket: str) -> dict[str, Any]:
        found = self.get_bucket(bucket)
        if found is None:
            raise ServiceError(404, "NOT_FOUND", f"The specified bucket does not exist: {bucket}")
        return found

    def create_bucket(
        self,
        name: str,
        *,
        location: str = "US",
        labels: dict[str, str] | None = None,
        storage_class: str = "STANDARD",
        project: str | None = None,
        versioning: bool = False,
    ) -> dict[str, Any]:
        """Create a bucket; 409 if it exists, 400 for a name GCS would refuse."""
        if not isinstance(name, str) or not _BUCKET_NAME.fullmatch(name) or ".." in name:
            raise ServiceError(400, "INVALID_ARGUMENT", f"Invalid bucket name: {name!r}")
        now = rfc3339(time.time())
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO buckets VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        name,
                        (location or "US").upper(),
                        storage_class or "STANDARD",
                        json.dumps(labels or {}),
                        project,
                        1,
                        now,
                        now,
                        int(versioning),
                    ),
                )
            except sqlite3.IntegrityError:
                raise ServiceError(
                    409,
                    "ALREADY_EXISTS",
                    "The requested bucket name is not available. The bucket namespace is shared "
                    "by all users of the system. Please select a different name and try again.",
                ) from None
        return self.require_bucket(name)

    def update_bucket(
        self, name: str, *, labels: dict[str, Any] | None = None, versioning: bool | None = None
    ) -> dict[str, Any]:
        """Patch a bucket's labels (a None value removes a label) and versioning."""
        with self._lock:
            current = self.require_bucket(name)
            if versioning is not None and versioning != current["versioning"]:
                self._db.execute(
                    "UPDATE buckets SET versioning=?, metageneration=metageneration+1, updated=? "
                    "WHERE name=?",
                    (int(versioning), rfc3339(time.time()), name),
                )
            if labels is not None:
                merged = dict(current["labels"])
                for key, value in labels.items():
                    if value is None:
                        merged.pop(key, None)
                    else:
                        merged[key] = str(value)
                self._db.execute(
                    "UPDATE buckets SET labels=?, metageneration=metageneration+1, updated=? WHERE "
                    "name=?",
                    (json.dumps(merged), rfc3339(time.time()), name),
                )
            return self.require_bucket(name)

    def list_buckets(self, prefix: str = "") -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM buckets ORDER BY name").fetchall()
        return [self._bucket_row(r) for r in rows if r[0].startswith(prefix)]

    def delete_bucket(self, name: str) -> None:
        """Delete an empty bucket; 404 if missing, 409 while it holds objects."""
        with self._lock:
            self.require_bucket(name)
            if self._db.execute(
                "SELECT 1 FROM objects WHERE bucket=? UNION ALL "
                "SELECT 1 FROM noncurrent WHERE bucket=? LIMIT 1",
                (name, name),
            ).fetchone():
                raise ServiceError(
                    409, "FAILED_PRECONDITION", "The bucket you tried to delete is not empty."
                )
            self._db.execute("DELETE FROM buckets WHERE name=?", (name,))


__all__ = ["BucketTable"]

"""Resumable upload sessions of the emulator's Cloud Storage.

Owns `UploadSessions`, the part of `ObjectStore` (a mixin over its connection and lock)
that opens a session (a row, and a file its chunks accumulate in), reads it back, and
ends it: cancelled (forgotten) or completed (its result kept, so a client whose final
response was lost can ask again). Sessions outlive restarts; week-old ones are swept.

Must not: speak HTTP, publish objects (ObjectStore.put does), or import TensorFlow /
deployer.serving.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from deployer.emulator.buckettable import BucketTable
from deployer.emulator.gcstypes import validate_object_name
from deployer.emulator.paths import contained


class UploadSessions(BucketTable):
    """Resumable upload sessions (a mixin of ObjectStore)."""

    uploads_dir: Path  # set by ObjectStore: where sessions' partial bytes accumulate

    def create_upload(self, bucket: str, name: str, spec: dict[str, Any]) -> str:
        """Start a resumable upload session; bytes accumulate in uploads_dir/<id>."""
        validate_object_name(name)
        self.require_bucket(bucket)
        upload_id = uuid.uuid4().hex
        self.upload_path(upload_id).touch()
        with self._lock:
            self._db.execute(
                "INSERT INTO uploads VALUES (?,?,?,?,?)",
                (upload_id, bucket, name, json.dumps(spec), time.time()),
            )
        return upload_id

    def get_upload(self, upload_id: str) -> tuple[str, str, dict[str, Any]] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT bucket,name,spec FROM uploads WHERE upload_id=?", (upload_id,)
            ).fetchone()
        return (row[0], row[1], json.loads(row[2])) if row else None

    def finish_upload(self, upload_id: str, result: dict[str, Any] | None = None) -> None:
        """End a session: cancelled (result None: forgotten) or completed (result kept, so a
        client whose final response was lost can ask again and get the object)."""
        with self._lock:
            if result is None:
                self._db.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))
            else:
                row = self._db.execute(
                    "SELECT spec FROM uploads WHERE upload_id=?", (upload_id,)
                ).fetchone()
                if row is not None:
                    spec = {**json.loads(row[0]), "result": result}
                    self._db.execute(
                        "UPDATE uploads SET spec=? WHERE upload_id=?", (json.dumps(spec), upload_id)
                    )
        self.upload_path(upload_id).unlink(missing_ok=True)

    def upload_path(self, upload_id: str) -> Path:
        """The file a resumable session's bytes accumulate in (`upload_id` comes from a URL)."""
        return contained(self.uploads_dir, upload_id, what=f"Upload session {upload_id!r}")


__all__ = ["UploadSessions"]

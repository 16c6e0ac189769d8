"""Cloud Storage through google-cloud-storage: the stack's bucket, its objects, the lock.

Owns: `GcsStore`, the storage half of `VertexProvider` (get/create/delete bucket, list
objects with checksums, parallel streamed uploads with progress and downloads, server-side
copies, create-only and generation-checked writes for the lock and journal, prefix deletion).
The client's own retry is disabled (`retry=None`) so the one policy in retry.py applies.

Must not: read whole files into memory (uploads stream from disk), or decide what to
upload (deployer.reconcile.upload does).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from deployer import settings
from deployer.errors import NotFound
from deployer.providers import Labels, ObjectInfo, Progress
from deployer.providers.calls import CountedCalls
from deployer.providers.retry import RetryPolicy, call_with_retry
from deployer.state import ObservedBucket

T = TypeVar("T")
UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024  # a multiple of 256 KiB, as GCS requires


def _workers(tasks: int, setting: settings.Setting[int] = settings.UPLOAD_WORKERS) -> int:
    return max(1, min(setting.get(), tasks))


class GcsStore(CountedCalls):
    def __init__(
        self,
        client: Any,
        policy: RetryPolicy,
        count: Callable[[int], None],
        *,
        connect_hint: str | None = None,
    ) -> None:
        self.client = client
        self.policy = policy
        self._count = count  # tells the provider how many API calls were made
        self.connect_hint = connect_hint

    # ---------------------------------------------------------------------- buckets

    def get_bucket(self, name: str) -> ObservedBucket:
        def get() -> ObservedBucket:
            from google.api_core.exceptions import NotFound as GNotFound

            try:
                b = self.client.get_bucket(name, retry=None)
            except GNotFound:
                return ObservedBucket(name, False)
            return ObservedBucket(name, True, tuple(sorted((b.labels or {}).items())))

        return self._read(f"get bucket {name}", get)

    def create_bucket(self, name: str, location: str, labels: Labels) -> None:
        def create() -> None:
            bucket = self.client.bucket(name)
            bucket.labels = dict(labels)
            self.client.create_bucket(bucket, location=location, retry=None)

        self._write(f"create bucket {name}", create)

    def delete_bucket(self, name: str) -> None:
        self._write(f"delete bucket {name}", lambda: self.client.bucket(name).delete(retry=None))

    # ---------------------------------------------------------------------- objects

    def list_objects(self, bucket: str, prefix: str) -> dict[str, ObjectInfo]:
        def list_() -> dict[str, ObjectInfo]:
            blobs = self.client.list_blobs(bucket, prefix=prefix, retry=None)
            return {
                b.name: ObjectInfo(
                    b.name, int(b.size or 0), b.md5_hash, b.crc32c, int(b.generation or 0)
                )
                for b in blobs
            }

        return self._read(f"list gs://{bucket}/{prefix}", list_)

    def upload_files(
        self, bucket: str, files: Iterable[tuple[str, str]], progress: Progress | None = None
    ) -> None:
        """Upload (local path, object name) pairs in parallel, each streamed from disk."""
        b = self.client.bucket(bucket)

        def one(pair: tuple[str, str]) -> None:
            path, name = pair
            blob = b.blob(name)
            # Large files go up as a resumable upload in chunks of this size; the client's
            # default (100 MiB) would hold that much in memory per worker.
            blob.chunk_size = UPLOAD_CHUNK_BYTES
            # Re-sending the same bytes to the same name is idempotent: retry lost ones too.
            call_with_retry(
                lambda: self._write(
                    f"upload gs://{bucket}/{name}",
                    lambda: blob.upload_from_filename(path, retry=None),
                ),
                policy=self.policy,
            )
            if progress is not None:
                progress(os.path.getsize(path))

        # Largest first: a big file started last would leave the other workers idle at the end.
        pairs = sorted(files, key=lambda pair: os.path.getsize(pair[0]), reverse=True)
        with ThreadPoolExecutor(max_workers=_workers(len(pairs))) as pool:
            for future in [pool.submit(one, p) for p in pairs]:
                future.result()

    def download_files(self, items: Iterable[tuple[str, Path]]) -> None:
        """Download (gs:// URI, local path) pairs in parallel, each streamed to disk."""

        def one(item: tuple[str, Path]) -> None:
            uri, path = item
            bucket, _, name = uri.removeprefix("gs://").partition("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            self._read(
                f"download {uri}",
                lambda: (
                    self.client.bucket(bucket)
                    .blob(name)
                    .download_to_filename(str(path), retry=None)
                ),
            )

        todo = list(items)
        with ThreadPoolExecutor(max_workers=_workers(len(todo), settings.DOWNLOAD_WORKERS)) as pool:
            for future in [pool.submit(one, item) for item in todo]:
                future.result()

    def copy_objects(self, bucket: str, pairs: Iterable[tuple[str, str]]) -> None:
        b = self.client.bucket(bucket)

        def one(src: str, dst: str) -> None:
            # A copy onto the same name with the same bytes is idempotent: retry lost ones.
            call_with_retry(
                lambda: self._write(
                    f"copy gs://{bucket}/{src}",
                    lambda: b.copy_blob(b.blob(src), b, dst, retry=None),
                ),
                policy=self.policy,
            )

        todo = list(pairs)
        with ThreadPoolExecutor(max_workers=_workers(len(todo))) as pool:
            for future in [pool.submit(one, src, dst) for src, dst in todo]:
                future.result()

    def read_object(self, bucket: str, name: str) -> tuple[bytes, int] | None:
        def read() -> tuple[bytes, int] | None:
            from google.api_core.exceptions import NotFound as GNotFound

            blob = self.client.bucket(bucket).blob(name)
            try:
                data = blob.download_as_bytes(retry=None)
            except GNotFound:
                return None
            return data, int(blob.generation or 0)

        return self._read(f"read gs://{bucket}/{name}", read)

    def write_object(
        self, bucket: str, name: str, data: bytes, *, if_generation_match: int | None = None
    ) -> int:
        def write() -> int:
            blob = self.client.bucket(bucket).blob(name)
            blob.upload_from_string(
                data,
                content_type="application/json",
                if_generation_match=if_generation_match,
                retry=None,
            )
            return int(blob.generation or 0)

        return self._write(f"write gs://{bucket}/{name}", write)

    def delete_object(
        self, bucket: str, name: str, *, if_generation_match: int | None = None
    ) -> None:
        self._write(
            f"delete gs://{bucket}/{name}",
            lambda: (
                self.client.bucket(bucket)
                .blob(name)
                .delete(if_generation_match=if_generation_match, retry=None)
            ),
        )

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        names = list(self.list_objects(bucket, prefix))

        def one(name: str) -> None:
            try:
                call_with_retry(lambda: self.delete_object(bucket, name), policy=self.policy)
            except NotFound:
                pass  # a lost response of our own delete

        with ThreadPoolExecutor(max_workers=_workers(len(names))) as pool:
            for future in [pool.submit(one, n) for n in names]:
                future.result()
        return len(names)

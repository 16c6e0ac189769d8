"""`FakeStorage`: the `Storage` part of FakeProvider, in memory.

Stores what it is told and records each call (see the package docstring for what it keeps
and what it leaves to the contract suite). Must not: import any SDK.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from deployer import errors
from deployer.providers import Labels, ObjectInfo, Progress
from deployer.providers.fake.base import FakeBase, _Object
from deployer.state import ObservedBucket


class FakeStorage(FakeBase):
    def get_bucket(self, name: str) -> ObservedBucket:
        with self._recorded("get_bucket", name=name):
            if name not in self.buckets:
                return ObservedBucket(name, False)
            return ObservedBucket(name, True, tuple(sorted(self.buckets[name].items())))

    def create_bucket(self, name: str, location: str, labels: Labels) -> None:
        with self._recorded("create_bucket", name=name):
            if name in self.buckets:
                raise errors.AlreadyExists(f"bucket {name} already exists")
            self.buckets[name] = dict(labels)

    def delete_bucket(self, name: str) -> None:
        with self._recorded("delete_bucket", name=name):
            if name not in self.buckets:
                raise errors.NotFound(f"bucket {name} not found")
            del self.buckets[name]

    def list_objects(self, bucket: str, prefix: str) -> dict[str, ObjectInfo]:
        with self._recorded("list_objects", bucket=bucket, prefix=prefix):
            return {
                n: o.info(n)
                for (b, n), o in sorted(self.objects.items())
                if b == bucket and n.startswith(prefix)
            }

    def _put(self, bucket: str, name: str, data: bytes) -> int:
        if bucket not in self.buckets:
            raise errors.NotFound(f"bucket {bucket} not found")
        gen = next(self._gen)
        self.objects[(bucket, name)] = _Object(data, gen)
        return gen

    def upload_files(
        self, bucket: str, files: Iterable[tuple[str, str]], progress: Progress | None = None
    ) -> None:
        files = list(files)
        with self._recorded("upload_files", bucket=bucket, names=[n for _, n in files]):
            for local, name in files:
                data = Path(local).read_bytes()
                self._put(bucket, name, data)
                if progress:
                    progress(len(data))

    def download_files(self, items: Iterable[tuple[str, Path]]) -> None:
        items = list(items)
        with self._recorded("download_files", uris=[u for u, _ in items]):
            for uri, path in items:
                bucket, _, name = uri.removeprefix("gs://").partition("/")
                if (bucket, name) not in self.objects:
                    raise errors.NotFound(f"{uri} not found")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self.objects[(bucket, name)].data)

    def copy_objects(self, bucket: str, pairs: Iterable[tuple[str, str]]) -> None:
        pairs = list(pairs)
        with self._recorded("copy_objects", bucket=bucket, pairs=pairs):
            for src, dst in pairs:
                if (bucket, src) not in self.objects:
                    raise errors.NotFound(f"gs://{bucket}/{src} not found")
                self._put(bucket, dst, self.objects[(bucket, src)].data)

    def read_object(self, bucket: str, name: str) -> tuple[bytes, int] | None:
        with self._recorded("read_object", bucket=bucket, name=name):
            o = self.objects.get((bucket, name))
            return (o.data, o.generation) if o else None

    def write_object(
        self, bucket: str, name: str, data: bytes, *, if_generation_match: int | None = None
    ) -> int:
        with self._recorded("write_object", bucket=bucket, name=name):
            cur = self.objects.get((bucket, name))
            current = cur.generation if cur else 0
            if if_generation_match is not None and current != if_generation_match:
                raise errors.FailedPrecondition(
                    f"gs://{bucket}/{name}: generation mismatch",
                    status="FAILED_PRECONDITION",
                    http_status=412,
                )
            return self._put(bucket, name, data)

    def delete_object(
        self, bucket: str, name: str, *, if_generation_match: int | None = None
    ) -> None:
        with self._recorded("delete_object", bucket=bucket, name=name):
            cur = self.objects.get((bucket, name))
            if cur is None:
                raise errors.NotFound(f"gs://{bucket}/{name} not found")
            if if_generation_match is not None and cur.generation != if_generation_match:
                raise errors.FailedPrecondition("generation mismatch", http_status=412)
            del self.objects[(bucket, name)]

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        with self._recorded("delete_prefix", bucket=bucket, prefix=prefix):
            names = [k for k in self.objects if k[0] == bucket and k[1].startswith(prefix)]
            for k in names:
                del self.objects[k]
            return len(names)

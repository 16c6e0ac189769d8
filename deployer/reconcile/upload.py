"""Content-addressed artifact upload: hash a SavedModel tree, send only what is missing.

Owns: `hash_tree` (sha256 over sorted relative paths and bytes, streamed; per-file md5
computed in the same pass), `artifact_hashes` (the input `plan` needs), and
`upload_artifact` (one list call per prefix, compare size and md5, hand the missing files
to the provider's parallel upload).

Must not: import google.cloud (the provider does the transfers), load a whole file in
memory, or upload an object GCS already holds with the same checksum.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deployer import settings
from deployer.errors import ConfigError
from deployer.spec import Spec
from deployer.state import short_hash

if TYPE_CHECKING:
    from deployer.providers import Provider

_CHUNK = 1 << 20  # bytes read at a time: memory stays flat whatever the file size


@dataclass(frozen=True)
class FileDigest:
    relpath: str  # posix path relative to the tree root
    size: int
    md5_b64: str  # base64 md5, the form GCS reports in md5Hash


@dataclass(frozen=True)
class TreeDigest:
    root: str
    content_hash: str  # sha256 hex over (relpath, size, bytes) of every file, sorted
    files: tuple[FileDigest, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class UploadReport:
    prefix: str
    files_total: int
    files_uploaded: int
    bytes_uploaded: int
    bytes_skipped: int  # already there, or copied server-side from an earlier version
    files_copied: int = 0  # unchanged files copied from a sibling version's prefix


_cache: dict[str, TreeDigest] = {}
_DISK_CACHE_LIMIT = 256  # trees remembered across runs (a few KB each)


def _disk_cache_path() -> Path | None:
    """$DEPLOYER_HOME/cache/artifact-hashes.json; None when DEPLOYER_NO_HASH_CACHE is set."""
    if settings.NO_HASH_CACHE.get():
        return None
    return settings.HOME.get() / "cache" / "artifact-hashes.json"


def _disk_get(key: str, root: str) -> TreeDigest | None:
    path = _disk_cache_path()
    try:
        entry = json.loads(path.read_text())[key] if path else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(entry, dict):
        return None
    files = tuple(FileDigest(f[0], int(f[1]), f[2]) for f in entry.get("files", ()))
    return TreeDigest(root, str(entry.get("hash", "")), files)


def _disk_put(key: str, digest: TreeDigest) -> None:
    # Best effort: a cache that cannot be written only costs the next run a re-hash.
    path = _disk_cache_path()
    if path is None:
        return
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
        if not isinstance(data, dict):
            data = {}
        data[key] = {
            "hash": digest.content_hash,
            "files": [[f.relpath, f.size, f.md5_b64] for f in digest.files],
        }
        while len(data) > _DISK_CACHE_LIMIT:
            data.pop(next(iter(data)))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)  # atomic: concurrent runs never see a torn file
    except (OSError, ValueError):
        pass


def _walk(root: Path) -> list[tuple[str, Path]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            full = Path(dirpath) / name
            out.append((full.relative_to(root).as_posix(), full))
    out.sort()
    return out


def hash_tree(root: str | os.PathLike[str]) -> TreeDigest:
    """Hash a directory tree.

    Remembered (in the process, and across runs in $DEPLOYER_HOME/cache) by the path, size
    and mtime of every file, like make and rsync: a no-op apply of a 2 GB model does not
    read 2 GB. Set DEPLOYER_NO_HASH_CACHE=1 to always read the bytes.
    """
    base = Path(root)
    if not base.is_dir():
        raise ConfigError(
            f"artifact directory {base} does not exist",
            hint="point the version's artifact at a SavedModel directory",
        )
    entries = _walk(base)
    stats = [(rel, p.stat()) for rel, p in entries]
    key = hashlib.sha256(
        json.dumps(
            [str(base.resolve()), [(rel, st.st_size, st.st_mtime_ns) for rel, st in stats]]
        ).encode()
    ).hexdigest()
    if key in _cache:
        return _cache[key]
    cached = _disk_get(key, str(base))
    if cached is not None and cached.content_hash:
        _cache[key] = cached
        return cached
    tree = hashlib.sha256()
    files = []
    for rel, path in entries:
        md5 = hashlib.md5()
        size = 0
        # Length-prefixed so ("a", b"bc") and ("ab", b"c") never hash alike.
        tree.update(f"{len(rel)}:{rel}:".encode())
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                tree.update(chunk)
                md5.update(chunk)
                size += len(chunk)
        tree.update(f":{size};".encode())
        files.append(FileDigest(rel, size, base64.b64encode(md5.digest()).decode()))
    digest = TreeDigest(str(base), tree.hexdigest(), tuple(files))
    _cache[key] = digest
    _disk_put(key, digest)
    return digest


def artifact_hashes(spec: Spec) -> dict[tuple[str, str], str]:
    """(model, alias) -> content hash: sha256 of the tree, or a hash of a gs:// URI."""
    out: dict[tuple[str, str], str] = {}
    for model in spec.models:
        for v in model.versions:
            if v.is_local:
                out[(model.name, v.alias)] = hash_tree(v.artifact).content_hash
            else:
                out[(model.name, v.alias)] = "uri-" + short_hash(v.artifact.rstrip("/"), length=32)
    return out


def upload_artifact(
    provider: Provider,
    bucket: str,
    prefix: str,
    source: str | os.PathLike[str],
    *,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
) -> UploadReport:
    """Upload the files of `source` under `prefix` that GCS lacks or holds differently.

    `prefix` is `.../<model>/<hash>/`. One list call covers the model's parent prefix, so
    a file unchanged since an earlier version (same size and md5 under a sibling hash
    prefix) is copied server-side instead of sent again: a retrained model re-sends only
    the files that changed. `on_start(files, bytes)` is told what will be sent;
    `progress(n)` receives bytes as they go.
    """
    digest = hash_tree(source)
    parent = prefix.rstrip("/").rsplit("/", 1)[0] + "/"
    remote = provider.list_objects(bucket, parent)
    by_content = {(o.size, o.md5): name for name, o in remote.items() if o.md5}
    missing: list[tuple[str, str]] = []
    copies: list[tuple[str, str]] = []
    to_send = 0
    for f in digest.files:
        obj = remote.get(prefix + f.relpath)
        if obj is not None and obj.size == f.size and (obj.md5 is None or obj.md5 == f.md5_b64):
            continue
        twin = by_content.get((f.size, f.md5_b64))
        if twin is not None:
            copies.append((twin, prefix + f.relpath))
            continue
        missing.append((str(Path(digest.root) / f.relpath), prefix + f.relpath))
        to_send += f.size
    if copies:
        provider.copy_objects(bucket, copies)
    if on_start is not None:
        on_start(len(missing), to_send)
    if missing:
        provider.upload_files(bucket, missing, progress)
    return UploadReport(
        prefix, len(digest.files), len(missing), to_send, digest.total_bytes - to_send, len(copies)
    )

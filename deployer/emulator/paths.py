"""Containment: the one way the emulator turns a name it was sent into a local file path.

Owns `contained(root, name, what=...)`: `root / name` for a name that is a plain relative
path, checked lexically (no empty, `.` or `..` segment, no leading `/`, no drive or UNC
form, no backslash, no NUL, nothing that cannot be encoded as a file name) and then
against the disk: a symlink met under `root` is resolved, and must lead back under it.
Anything else is an `ServiceError` 400 naming the name and the reason.

GCS object names may hold all of these (GCS stores them as names), so the stores keep them
as names; only their use as a path is refused, here. Every filesystem path the emulator
derives from a resource or object name goes through this function: the artifact cache,
replica logs, resumable-upload spool files, blob files.

Must not: create, read or delete anything (callers do, under the path it returns), or know
any API's semantics.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from pathlib import Path

from deployer.emulator.http import ServiceError

# "C:..." is a drive path on Windows (UNC "//" and "\\" forms are refused already).
_DRIVE = re.compile(r"[A-Za-z]:")
# Longest file name (one path segment) Linux and macOS file systems accept, in bytes.
_NAME_MAX = 255


def unsafe_reason(name: object) -> str | None:
    """Why `name` cannot be a relative path under a root (checked lexically), or None."""
    if not isinstance(name, str):
        return "it is not a string"
    if not name:
        return "it is empty"
    if "\0" in name:
        return "it contains NUL"
    if "\\" in name:
        return "it contains a backslash"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid Unicode (lone surrogate)"
    if name.startswith("/"):
        return "it is an absolute path"
    if _DRIVE.match(name):
        return "it starts with a drive letter"
    for segment in name.split("/"):
        if segment == "":
            return "it has an empty path segment ('//' or a trailing '/')"
        if segment in (".", ".."):
            return f"it has a {segment!r} segment"
        if len(segment.encode("utf-8")) > _NAME_MAX:
            return f"a path segment is longer than {_NAME_MAX} bytes"
    return None


def contained(root: Path, name: str, *, what: str) -> Path:
    """`root / name`, proven to stay under `root`; ServiceError 400 naming `what` otherwise.

    `what` names the thing for the error message, e.g. "object gs://b/m/../x".
    """
    reason = unsafe_reason(name)
    if reason is None and _leaves_root(root, name):
        reason = "it resolves to a path outside its directory"
    if reason is not None:
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"{what} cannot be used as a local file path: {reason}."
        )
    return root / name


@functools.lru_cache(maxsize=256)
def _real(absolute_root: str) -> str:
    return os.path.realpath(absolute_root)


def _leaves_root(root: Path, name: str) -> bool:
    """True if the lexically clean `name` resolves (through a symlink under `root`) elsewhere.

    Only what lies under the root is looked at (one lstat per existing segment): the root
    is the emulator's own directory, resolved once. This runs on every blob read.
    """
    real_root = _real(os.path.abspath(root))
    current = real_root
    for segment in name.split("/"):
        current = os.path.join(current, segment)
        try:
            mode = os.lstat(current).st_mode
        except OSError:  # does not exist (yet): nothing below it can be a link
            return False
        if stat.S_ISLNK(mode):
            real = os.path.realpath(os.path.join(real_root, name))
            return os.path.commonpath([real_root, real]) != real_root or real == real_root
    return False


__all__ = ["contained", "unsafe_reason"]

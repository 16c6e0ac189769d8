"""Containment: the one way the emulator turns a name it was sent into a local file path.

Owns `contained(root, name, what=...)`: `root / name` for a name that is a plain relative
path, checked lexically (no empty, `.` or `..` segment, no leading `/`, no drive or UNC
form, no backslash, no NUL, nothing that cannot be encoded as a file name) and then
resolved (symlinks followed) to prove it stays strictly under `root`. Anything else is an
`ApiError` 400 naming the name and the reason.

GCS object names may hold all of these (GCS stores them as names), so the stores keep them
as names; only their use as a path is refused, here. Every filesystem path the emulator
derives from a resource or object name goes through this function: the artifact cache,
replica logs, resumable-upload spool files, blob files.

Must not: create, read or delete anything (callers do, under the path it returns), or know
any API's semantics.
"""

from __future__ import annotations

import os
from pathlib import Path, PureWindowsPath

from deployer.emulator.http import ApiError

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
    if PureWindowsPath(name).drive:
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
    """`root / name`, proven to stay under `root`; ApiError 400 naming `what` otherwise.

    `what` names the thing for the error message, e.g. "object gs://b/m/../x".
    """
    reason = unsafe_reason(name)
    path = root / name if reason is None else root
    if reason is None:
        # Lexically clean; resolving also catches a symlink under root pointing out of it.
        real_root = os.path.realpath(root)
        real = os.path.realpath(path)
        if os.path.commonpath([real_root, real]) != real_root or real == real_root:
            reason = "it resolves to a path outside its directory"
    if reason is not None:
        raise ApiError(
            400, "INVALID_ARGUMENT", f"{what} cannot be used as a local file path: {reason}."
        )
    return path


__all__ = ["contained", "unsafe_reason"]

"""Instance files for online prediction: what `deployer predict --instances FILE` sends.

Owns `read_instances`: a JSON list, a JSON object `{"instances": [...]}`, JSON Lines (one
instance a line; a `.jsonl`/`.ndjson` name is always read as such), or a `.npy` array (one
instance per row). Every way a file can be wrong (not UTF-8, not JSON, nested deeper than
`jsonlimits.MAX_DEPTH`, the wrong shape, empty) is a ConfigError that names the file and
the line, says what is wrong and how to fix it.

Must not: make API calls, or encode instances for a signature (`payload.py` does).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError
from deployer.wire import batch_formats, jsonlimits

FORMATS_HINT = 'give a JSON list, {"instances": [...]}, JSON Lines (UTF-8) or a .npy array'
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def read_instances(path: str | Path) -> list[Any]:
    """The instances in `path`, in order; ConfigError when there are none or it is unreadable."""
    path = Path(path)
    if path.suffix == ".npy":
        instances = _read_npy(path)
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"{path}: cannot read ({exc.strerror})", hint="check the path and its rights"
            ) from None
        instances = _read_json(path, _utf8_text(path, data))
    if not instances:
        raise ConfigError(f"{path}: no instances", hint="give at least one instance")
    return instances


def _read_npy(path: Path) -> list[Any]:
    import numpy as np

    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ConfigError(
            f"{path}: not a readable .npy array ({exc})",
            hint="write it with numpy.save(path, array) (numbers, not objects)",
        ) from None
    if array.ndim == 0:
        raise ConfigError(
            f"{path}: a scalar, not an array of instances",
            hint="save an array whose first axis counts the instances",
        )
    return [row.tolist() for row in array]


def _utf8_text(path: Path, data: bytes) -> str:
    """`data` decoded as UTF-8 (a leading byte-order mark dropped), or a ConfigError naming
    the line and the byte offset of the first byte that is not UTF-8."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at position "
            f"{exc.start}); is it a binary file?",
            hint=f"{FORMATS_HINT}; send a file's raw bytes with --file PATH instead",
        ) from None


def _read_json(path: Path, text: str) -> list[Any]:
    if path.suffix in JSONL_SUFFIXES:
        return _read_jsonl(path, text, document_error=None)
    try:
        doc = jsonlimits.loads(text)
    except json.JSONDecodeError as exc:
        # Not one document: JSON Lines, or a document broken at exc.lineno.
        return _read_jsonl(path, text, document_error=exc)
    except jsonlimits.JsonRejected as exc:
        if len(_nonblank_lines(text)) > 1:  # JSON Lines: say which line; else the document
            return _read_jsonl(path, text, document_error=exc)
        raise _rejected(path, 1, exc) from None
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and "instances" in doc:
        if isinstance(doc["instances"], list):
            return list(doc["instances"])
        raise ConfigError(
            f'{path}: "instances" is a JSON {_json_type(doc["instances"])}, not a list',
            hint='give the instances as a list: {"instances": [...]}',
        )
    raise ConfigError(
        f'{path}: a JSON {_json_type(doc)}, not a list or an object with "instances"',
        hint='wrap the instances: {"instances": [...]}, or name the file .jsonl for JSON Lines',
    )


def _read_jsonl(path: Path, text: str, *, document_error: ValueError | None) -> list[Any]:
    """Each non-blank line a JSON value. When the first line fails and the whole text failed
    as one document too (`document_error`), the file is a document over several lines (a
    pretty-printed list): the document's error is the one to report."""
    try:
        return [value for _, value in batch_formats.iter_jsonl(text.split("\n"))]
    except batch_formats.FormatError as exc:
        failed = int(exc.where.removeprefix("line "))
        cause = exc.__cause__
        if isinstance(cause, jsonlimits.JsonRejected):  # the line parses; we refuse it
            raise _rejected(path, failed, cause) from None
        if document_error is not None and failed == _nonblank_lines(text)[0]:
            failed, cause = getattr(document_error, "lineno", 0), document_error
            if isinstance(cause, jsonlimits.JsonRejected):
                raise _rejected(path, failed, cause) from None
        if isinstance(cause, json.JSONDecodeError):
            what = f"not valid JSON ({cause.msg} at column {cause.colno})"
        else:
            what = exc.reason
        hint = (
            FORMATS_HINT if cause is document_error else f"one JSON value per line; {FORMATS_HINT}"
        )
        raise ConfigError(f"{path}: line {failed}: {what}", hint=hint) from None


def _rejected(path: Path, line: int, exc: jsonlimits.JsonRejected) -> ConfigError:
    """A ConfigError for JSON Python parses and we refuse; `line` 0: the whole document."""
    where = f"{path}: line {line}" if line else str(path)
    if isinstance(exc, jsonlimits.JsonTooDeep):
        hint = (
            f"an instance may nest lists and objects at most {jsonlimits.MAX_DEPTH} levels "
            "deep (as Vertex AI parses requests); flatten it"
        )
    else:
        hint = "write strings as valid Unicode (a \\ud800-\\udfff escape needs its pair)"
    return ConfigError(f"{where}: {exc}", hint=hint)


def _nonblank_lines(text: str) -> list[int]:
    return [n for n, line in enumerate(text.split("\n"), 1) if line.strip()]


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


__all__ = ["read_instances"]

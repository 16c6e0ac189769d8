"""Bounded JSON parsing for the emulator: nesting depth and text the stores can hold.

Owns `check_depth` (refuse JSON nested deeper than `MAX_DEPTH` before any parser
recurses into it: Python's parser raises RecursionError near 1,000 levels, which would
answer 500), `loads` (check_depth, then json.loads, then refuse lone surrogates, which
JSON's `\\ud800` escapes can smuggle into a str that SQLite and UTF-8 cannot encode) and
`request_json`, the handlers' way to read a JSON body as a 400-or-value.

Every error `loads` raises is a ValueError, so a caller that already maps ValueError to
400 (`http.Request.json`) only has to call `loads` instead of `json.loads`.

Must not: know any API's semantics, or hold request state.
"""

from __future__ import annotations

import array
import itertools
import json
import re
from typing import Any

from deployer.emulator.http import ApiError, Request

# protobuf's json_format parses at most 100 levels too (its max_recursion_depth), so every
# Vertex request the real service accepts fits; GCS resources are 3 levels deep.
MAX_DEPTH = 100

# A JSON string literal, escapes included (unrolled so the regex engine runs linearly).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # as signed bytes: +1, -1
_BLOCK = 1 << 16
# A surrogate code point written as an escape (\ud800-\udfff), or raw in (surrogatepass) UTF-8.
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


class JsonRejected(ValueError):
    """JSON the emulator refuses although Python could parse it (too deep, lone surrogate)."""


def _utf8(data: bytes | str) -> bytes:
    """`data` as UTF-8 bytes (JSON may come as UTF-16/32: scan the text, not its bytes)."""
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    encoding = json.detect_encoding(data)
    if encoding == "utf-8":
        return bytes(data)
    return data.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")


def check_depth(data: bytes | str, max_depth: int = MAX_DEPTH) -> None:
    """Raise JsonRejected if `data` nests arrays/objects deeper than `max_depth`.

    Linear and cheap: a body with at most `max_depth` brackets (almost every request) is
    passed after two counts; otherwise strings are cut out and the brackets walked, stopping
    as soon as the bound is passed. Invalid JSON may be refused as too deep or passed on to
    the parser, which refuses it.
    """
    if isinstance(data, str):
        if data.count("[") + data.count("{") <= max_depth:
            return
    elif data.count(b"[") + data.count(b"{") <= max_depth:
        # Every bracket of any encoding holds its ASCII byte: the count is an upper bound.
        return
    text = _utf8(data)
    if b'\\"' in text:
        outside = _STRING.sub(b"", text)
    else:  # no escaped quote: every other quote-separated piece is outside a string
        outside = b"".join(text.split(b'"')[0::2])
    # +1 per opening and -1 per closing bracket; the running sum's peak is the depth the
    # parser would recurse to (it stops at the first value's end). Summed in C, in blocks so
    # a deep body is refused after its first block.
    steps = array.array("b", outside.translate(_STEPS, _NOT_BRACKETS))
    depth = 0
    for start in range(0, len(steps), _BLOCK):
        block = steps[start : start + _BLOCK]
        if max(itertools.accumulate(block, initial=depth)) > max_depth:
            raise JsonRejected(f"JSON nested deeper than {max_depth} levels")
        depth += sum(block)


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads with the depth bound and no lone surrogates; ValueError on refusal."""
    check_depth(data, max_depth)
    value = json.loads(data)
    if isinstance(data, str) or json.detect_encoding(data) != "utf-8":
        suspect = True  # rare: the cheap byte test below is for UTF-8 only
    else:
        suspect = _MAYBE_SURROGATE.search(data) is not None
    if suspect:
        try:  # paired escapes decode to one code point and pass; a lone one cannot encode
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise JsonRejected("JSON holds a lone surrogate (not valid Unicode text)") from None
    return value


def request_json(req: Request) -> Any:
    """The request body as bounded JSON (empty body -> {}); ApiError 400 otherwise."""
    body = req.read_body()
    if not body.strip():
        return {}
    try:
        return loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "INVALID_ARGUMENT", f"Invalid JSON payload received: {exc}") from exc


__all__ = ["MAX_DEPTH", "JsonRejected", "check_depth", "loads", "request_json"]

"""Bounded JSON parsing: nesting depth and text that can be stored and re-encoded.

Owns `check_depth` (refuse JSON nested deeper than `MAX_DEPTH` before any parser recurses
into it: Python's parser raises RecursionError near 1,000 levels, which would be a 500 in
the emulator and a traceback in the CLI) and `loads` (check_depth, then json.loads, then
refuse lone surrogates, which JSON's `\\ud800` escapes can smuggle into a str that SQLite
and UTF-8 cannot encode). Both sides use it: the emulator for request bodies, the client
for instance files and batch inputs.

Every error `loads` raises is a ValueError (JsonRejected, json.JSONDecodeError or
UnicodeDecodeError), so a caller that maps ValueError to its own error only has to call
`loads` instead of `json.loads`.

Must not: know any API's semantics, do I/O, or import from deployer (both sides import it).
"""

from __future__ import annotations

import array
import itertools
import json
import re
from typing import Any

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
# The same in text: an escape, or a surrogate already in the str.
_MAYBE_SURROGATE_TEXT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


class JsonRejected(ValueError):
    """JSON refused although Python could parse it (too deep, lone surrogate)."""


class JsonTooDeep(JsonRejected):
    """Arrays/objects nested deeper than the bound."""


class LoneSurrogate(JsonRejected):
    """A string holding half of a UTF-16 surrogate pair (not Unicode text)."""


def _utf8(data: bytes | str) -> bytes:
    """`data` as UTF-8 bytes (JSON may come as UTF-16/32: scan the text, not its bytes)."""
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    encoding = json.detect_encoding(data)
    if encoding == "utf-8":
        return bytes(data)
    return data.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")


def check_depth(data: bytes | str, max_depth: int = MAX_DEPTH) -> None:
    """Raise JsonTooDeep if `data` nests arrays/objects deeper than `max_depth`.

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
            raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels")
        depth += sum(block)


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads with the depth bound and no lone surrogates; ValueError on refusal."""
    check_depth(data, max_depth)
    value = json.loads(data)
    if isinstance(data, str):
        suspect = _MAYBE_SURROGATE_TEXT.search(data) is not None
    elif json.detect_encoding(data) != "utf-8":
        suspect = True  # rare: the cheap byte test below is for UTF-8 only
    else:
        suspect = _MAYBE_SURROGATE.search(data) is not None
    if suspect:
        try:  # paired escapes decode to one code point and pass; a lone one cannot encode
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise LoneSurrogate("JSON holds a lone surrogate (not valid Unicode text)") from None
    return value


__all__ = ["MAX_DEPTH", "JsonRejected", "JsonTooDeep", "LoneSurrogate", "check_depth", "loads"]

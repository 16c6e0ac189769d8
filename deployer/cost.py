"""Cost estimates (placeholder while the price table lands): ttl parsing."""

from __future__ import annotations

import re

_TTL = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_ttl(text: str) -> int:
    m = _TTL.match(text)
    if not m:
        raise ValueError(f"bad ttl {text!r}: use a number followed by m, h, d or w (e.g. 4h)")
    return int(m[1]) * _UNIT_SECONDS[m[2]]

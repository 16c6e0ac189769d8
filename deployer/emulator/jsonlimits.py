"""Bounded JSON parsing for the emulator's handlers.

Owns `request_json`, the handlers' way to read a JSON body as a 400-or-value. The depth
and surrogate checks (`check_depth`, `loads`, `MAX_DEPTH`, `JsonRejected`) live in
`deployer.wire.jsonlimits`, shared with the client; they are re-exported here so handlers
keep one import. Every error `loads` raises is a ValueError, so a caller that already maps
ValueError to 400 (`http.Request.json`) only has to call `loads` instead of `json.loads`.

Must not: know any API's semantics, or hold request state.
"""

from __future__ import annotations

from typing import Any

from deployer.emulator.http import Request, ServiceError
from deployer.wire.jsonlimits import MAX_DEPTH, JsonRejected, check_depth, loads


def request_json(req: Request) -> Any:
    """The request body as bounded JSON (empty body -> {}); ServiceError 400 otherwise."""
    body = req.read_body()
    if not body.strip():
        return {}
    try:
        return loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"Invalid JSON payload received: {exc}"
        ) from exc


__all__ = ["MAX_DEPTH", "JsonRejected", "check_depth", "loads", "request_json"]

"""What the emulator's listeners share to admit a request: bounded body reads, the body limit
per API method, Google's error body for protocol-level errors, and the refusal log line.

Owns `Body` (a request body as handlers read it: a body cut short is a 400, one past its
limit the route's refusal, with at most the limit held in memory), `body_limit` (the most a
route reads whole: Vertex's 1.5 MB for online prediction, 1 MiB for Cloud Storage JSON,
4 MiB for other JSON), `error_body` and `note_denial`. The API's transport
(emulator/server.py) and the console's listener (emulator/console/listener.py) both use them.

Must not: know any API's semantics, or decide access (deployer.emulator.access does).
"""

from __future__ import annotations

import logging
from typing import cast

from deployer.emulator.access import Denial
from deployer.emulator.http import (
    CONTROL_MAX_BODY,
    METADATA_MAX_BODY,
    PREDICT_MAX_BODY,
    ServiceError,
    canonical_status,
    error_response,
    too_large,
)
from deployer.httpserve import HttpRequest, IncompleteBody, RequestBody

log = logging.getLogger("deployer.emulator")


class Body:
    """The request body stream as handlers read it: a body cut short is a 400."""

    def __init__(self, body: RequestBody) -> None:
        self._body = body
        self.failed = False

    def read(self, n: int = -1) -> bytes:
        try:
            return self._body.read(n)
        except IncompleteBody as exc:
            self.failed = True
            raise ServiceError(400, "INVALID_ARGUMENT", f"Request body ended early: {exc}") from exc

    def read_bounded(self, limit: int, refusal: ServiceError) -> bytes:
        """The whole body, or `refusal` once it exceeds `limit` bytes (memory stays bounded:
        at most `limit` plus one read are held)."""
        parts: list[bytes] = []
        total = 0
        while chunk := self.read(1 << 20):
            total += len(chunk)
            if total > limit:
                self.failed = True
                raise refusal
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)


def body_limit(route_name: str) -> tuple[int, ServiceError]:
    """The most body bytes a route reads whole, and the answer beyond (by API method name)."""
    if route_name in ("predict", "rawPredict"):
        # Vertex's own answer to an oversized online prediction (400, not 413).
        return PREDICT_MAX_BODY, ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"Request payload size exceeds the limit: {PREDICT_MAX_BODY} bytes.",
        )
    limit = METADATA_MAX_BODY if route_name.startswith("storage.") else CONTROL_MAX_BODY
    return limit, too_large(limit)


def error_body(status: int, message: str) -> tuple[str, bytes]:
    """Protocol-level errors (unparseable request line, headers, chunking) as Google JSON."""
    response = error_response(status, canonical_status(status), message)
    return response.headers["Content-Type"], cast(bytes, response.body)


_denials_noted: set[str] = set()


def note_denial(denial: Denial, http_request: HttpRequest) -> None:
    """Log a refusal: the first of each kind at WARNING (a user whose client is refused learns
    why), the rest at DEBUG (a hostile page retrying must not flood the log)."""
    kind = denial.message.split(" ", 1)[0] + str(denial.status)
    level = logging.DEBUG if kind in _denials_noted else logging.WARNING
    _denials_noted.add(kind)
    log.log(
        level,
        "refused %s %s: %d %s",
        http_request.method,
        http_request.raw_path[:200],
        denial.status,
        denial.message,
    )

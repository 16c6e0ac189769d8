"""The transport of the pre-built framework replicas: transport-free handlers on the project's
one HTTP stack (`deployer.httpserve`: uvicorn + httptools + uvloop).

Owns: adapting `handle(method, path, body) -> HttpAnswer` to httpserve (bound at construction,
port 0 yields the real port at once; keep-alive; Nagle off; drain on stop), bodies by
Content-Length up to a bound, and protocol-level errors as `{"error": ...}` JSON.
Must not: know routes or what a body means.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from deployer.httpserve import HttpRequest, HttpResponse, HttpServer, IncompleteBody

log = logging.getLogger("deployer.serving.http")
MAX_BODY = 64 << 20  # larger bodies are refused (Vertex's own online limit is 1.5 MB)
# The emulator keeps pooled connections to its replicas: do not close them while idle.
_KEEP_ALIVE_S = 3600


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    content_type: str = "application/json"


TransportFreeHandler = Callable[[str, str, bytes], HttpAnswer]


def _error_body(status: int, message: str) -> tuple[str, bytes]:
    return "application/json", json.dumps({"error": message}).encode()


class SimpleHttpServer:
    """`handle` served on its own thread; bound at construction (OSError if taken)."""

    def __init__(self, handle: TransportFreeHandler, host: str, port: int) -> None:
        self._handle = handle
        self._http = HttpServer(
            self._serve,
            host=host,
            port=port,
            error_body=_error_body,
            name="prebuilt",
            keep_alive_s=_KEEP_ALIVE_S,
        )

    def _serve(self, request: HttpRequest) -> HttpResponse:
        body = b""
        if request.method == "POST":
            length = request.content_length
            if length is None or length > MAX_BODY:
                _, data = _error_body(411, "a Content-Length header (at most 64 MiB) is required")
                return HttpResponse(411, data, {"Content-Type": "application/json"}, close=True)
            try:
                body = request.body.read()
            except IncompleteBody as exc:
                _, data = _error_body(400, f"request body ended early: {exc}")
                return HttpResponse(400, data, {"Content-Type": "application/json"}, close=True)
        try:
            answer = self._handle(request.method, request.raw_path, body)
        except Exception as exc:  # a bug costs one 500, not the connection
            log.exception("internal error on %s %s", request.method, request.raw_path)
            answer = HttpAnswer(500, _error_body(500, f"internal error: {type(exc).__name__}")[1])
        return HttpResponse(answer.status, answer.body, {"Content-Type": answer.content_type})

    @property
    def port(self) -> int:
        return self._http.port

    def start(self) -> None:
        self._http.start()

    def stop(self, drain_timeout: float) -> None:
        self._http.stop(drain_timeout)

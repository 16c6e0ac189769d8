"""A small HTTP/1.1 server for transport-free handlers: `handle(method, path, body) -> answer`.

Owns: the transport of the pre-built framework replicas (`deployer.serving.prebuilt`): bind at
construction (port 0 yields the real port at once), keep-alive, Nagle off (small answers would
otherwise wait ~40 ms for delayed ACKs), bodies by Content-Length, and a drain on stop (stop
accepting, let in-flight requests finish, bounded). It is the seam where the project's one
server stack plugs in; handlers never see the transport.
Must not: know routes or what a body means.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("deployer.serving.http")
MAX_BODY = 64 << 20  # larger bodies are refused (Vertex's own online limit is 1.5 MB)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    content_type: str = "application/json"


TransportFreeHandler = Callable[[str, str, bytes], HttpAnswer]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    handle_fn: TransportFreeHandler
    closing = False
    in_flight = 0
    lock: threading.Lock

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client that hangs up is routine
        log.exception("unexpected error serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    def _answer(self, answer: HttpAnswer) -> None:
        closing = self.server.closing or self.close_connection
        head = (
            f"HTTP/1.1 {answer.status} {self.responses.get(answer.status, ('Error',))[0]}\r\n"
            f"Content-Type: {answer.content_type}\r\nContent-Length: {len(answer.body)}\r\n"
            + ("Connection: close\r\n" if closing else "")
            + "\r\n"
        )
        if closing:
            self.close_connection = True
        self.wfile.write(head.encode("latin-1") + answer.body)

    def _run(self, body: bytes) -> None:
        with self.server.lock:
            self.server.in_flight += 1
        try:
            try:
                answer = self.server.handle_fn(self.command, self.path, body)
            except Exception as exc:  # a bug costs one 500, not the connection
                log.exception("internal error on %s %s", self.command, self.path)
                answer = HttpAnswer(
                    500, f'{{"error": "internal error: {type(exc).__name__}"}}'.encode()
                )
            self._answer(answer)
        finally:
            with self.server.lock:
                self.server.in_flight -= 1

    def do_GET(self) -> None:
        self._run(b"")

    def do_HEAD(self) -> None:
        self._run(b"")

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY:
            self.close_connection = True
            self._answer(
                HttpAnswer(
                    411, b'{"error": "a Content-Length header (at most 64 MiB) is required"}'
                )
            )
            return
        self._run(self.rfile.read(int(length)))


class SimpleHttpServer:
    """`handle` served on its own thread; bound at construction (OSError if taken)."""

    def __init__(self, handle: TransportFreeHandler, host: str, port: int) -> None:
        self._httpd = _Server((host, port), _Handler)
        self._httpd.handle_fn = handle
        self._httpd.lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            daemon=True,
            name="http",
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self, drain_timeout: float) -> None:
        self._httpd.closing = True
        self._httpd.shutdown()
        deadline = time.monotonic() + drain_timeout
        while self._httpd.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        self._httpd.server_close()

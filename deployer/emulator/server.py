"""The emulator's HTTP/1.1 server: sockets, keep-alive, bodies, faults, request log, lifecycle.

Owns the transport: a threaded HTTP/1.1 keep-alive server on loopback (one
thread per connection, Nagle off so small responses are not delayed ~40 ms),
request bodies (Content-Length or chunked, buffered or streamed to the route),
responses (bytes, or iterables streamed with Content-Length or chunked), fault
injection before any effect, dropped responses after mutating calls, the
request log, and a clean stop on SIGINT/SIGTERM that runs the context's
shutdown hooks (replica processes are stopped that way).

Must not: know any API's semantics (routes do), or import TensorFlow /
deployer.serving. A malformed request answers 4xx; nothing a client sends may
kill the server.
"""

from __future__ import annotations

import email.parser
import http.client
import logging
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

from deployer.emulator.context import EmulatorContext
from deployer.emulator.faults import FaultController, RequestLog, register_admin
from deployer.emulator.http import (
    Request,
    Response,
    Router,
    ServiceError,
    canonical_status,
    error_response,
)
from deployer.emulator.objects import ObjectStore
from deployer.errors import ConfigError

log = logging.getLogger("deployer.emulator")

# Non-streaming routes buffer their body; anything larger is refused (413).
MAX_BUFFERED_BODY = 256 * 1024 * 1024
_ADMIN_PREFIX = "_emulator."


class _BodyReader:
    """Reads exactly one request body from the connection (Content-Length or chunked)."""

    def __init__(self, rfile: BinaryIO, length: int | None, chunked: bool) -> None:
        self._rfile = rfile
        self._remaining = length or 0  # bytes left (Content-Length), or in the current chunk
        self._chunked = chunked
        self._done = not chunked and not length

    def _next_chunk(self) -> None:
        line = self._rfile.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise ServiceError(400, "INVALID_ARGUMENT", "Malformed chunked request body") from exc
        if size == 0:
            while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            self._done = True
        self._remaining = size

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while not self._done and (n < 0 or len(out) < n):
            if self._remaining == 0:
                if not self._chunked:
                    self._done = True
                    break
                self._next_chunk()
                continue
            want = self._remaining if n < 0 else min(self._remaining, n - len(out))
            data = self._rfile.read(want)
            if not data:
                raise ServiceError(400, "INVALID_ARGUMENT", "Request body ended early")
            out += data
            self._remaining -= len(data)
            if self._chunked and self._remaining == 0:
                self._rfile.readline(16)  # CRLF after the chunk
        return bytes(out)

    def drain(self) -> None:
        while not self._done:
            if not self.read(1 << 20) and not self._chunked:
                break

    @property
    def done(self) -> bool:
        return self._done


class _App:
    """What the request handler needs from the running emulator."""

    def __init__(self, router: Router, ctx: EmulatorContext, request_log: RequestLog) -> None:
        self.router = router
        self.ctx = ctx
        self.request_log = request_log


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else every small response waits ~40 ms for a delayed ACK
    server_version = "deployer-emulator"
    sys_version = ""
    timeout = 300  # idle keep-alive connections are closed after this

    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, headers) as Google JSON with a status line.

        The stdlib answers these with an HTML page, and with no status line at all when
        the request line was unreadable; clients then see garbage instead of an error.
        """
        if code >= 500:
            code = 400  # the request was malformed: the client's fault, never a server error
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.1"
        self.close_connection = True
        self._write(
            error_response(code, canonical_status(code), message or explain or "Malformed request"),
            head=False,
        )

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._serve()
            self.wfile.flush()
        except (TimeoutError, ConnectionError, BrokenPipeError) as exc:
            log.debug("connection dropped: %s", exc)
            self.close_connection = True
        except Exception:
            log.exception("unexpected error serving %r", getattr(self, "requestline", ""))
            self.close_connection = True

    def _serve(self) -> None:
        app = self.server.app
        started = time.time()
        headers = {k.lower(): v for k, v in self.headers.items()}
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        try:
            length = (
                int(headers["content-length"])
                if "content-length" in headers and not chunked
                else None
            )
            if length is not None and length < 0:
                raise ValueError
        except ValueError:
            self._write(error_response(400, "INVALID_ARGUMENT", "Bad Content-Length"), head=False)
            self.close_connection = True
            return
        body = _BodyReader(self.rfile, length, chunked)  # type: ignore[arg-type]
        request = Request.from_target(self.command, self.path, headers)
        request.content_length = length
        response: Response | None = None
        name, mutating, fault = "unknown", False, None
        try:
            resolved = app.router.resolve(request)
            if resolved is None:
                response = error_response(
                    404, "NOT_FOUND", f"No such API: {request.method} {request.path}"
                )
            else:
                route, match = resolved
                name, mutating = route.name, route.mutating
                admin = name.startswith(_ADMIN_PREFIX)
                response = None if admin else app.ctx.faults.before_call(name)
                if response is not None:
                    fault = "injected"
                else:
                    if route.streaming:
                        request.stream = body  # type: ignore[assignment]
                    else:
                        if length is not None and length > MAX_BUFFERED_BODY:
                            raise ServiceError(413, "PAYLOAD_TOO_LARGE", "Request body too large")
                        request.body = body.read(MAX_BUFFERED_BODY + 1)
                        if len(request.body) > MAX_BUFFERED_BODY:  # chunked, no declared length
                            self.close_connection = True
                            raise ServiceError(413, "PAYLOAD_TOO_LARGE", "Request body too large")
                    response = app.router.call(route, match, request)
                    if not admin and app.ctx.faults.drop_after(
                        name, mutating=mutating, status=response.status
                    ):
                        fault = "dropped"
        except ServiceError as exc:
            response = exc.to_response()
        if fault != "dropped" and not body.done:
            # Keep the connection usable: skip the unread body if small, else close after answering.
            if not self.close_connection and length is not None and length <= 8 * 1024 * 1024:
                try:
                    body.drain()
                except ServiceError:
                    self.close_connection = True
            else:
                self.close_connection = True
        assert response is not None
        if not name.startswith(_ADMIN_PREFIX):
            # Logged before the reply goes out, so a client that got its answer finds the line.
            app.request_log.record(
                method=request.method,
                path=request.path,
                name=name,
                status=response.status,
                started=started,
                mutating=mutating,
                fault=fault,
                request_bytes=request.content_length
                if request.stream is not None
                else len(request.body),
            )
        try:
            if fault == "dropped":
                # The call took effect; the client never learns it (like a lost reply).
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            else:
                self._write(response, head=request.method == "HEAD")
        finally:
            if response.on_close is not None:
                response.on_close()

    def _write(self, response: Response, *, head: bool) -> None:
        self.send_response(response.status)
        hdrs = {k.lower(): (k, v) for k, v in response.headers.items()}
        body = response.body
        for key, value in hdrs.values():
            self.send_header(key, value)
        if isinstance(body, (bytes, bytearray, memoryview)):
            if "content-length" not in hdrs:
                self.send_header("Content-Length", str(len(body)))
        elif "content-length" not in hdrs:
            self.send_header("Transfer-Encoding", "chunked")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if head or response.status in (204, 304):
            return
        if isinstance(body, (bytes, bytearray, memoryview)):
            self.wfile.write(body)
            return
        chunked = "content-length" not in hdrs
        for chunk in body:
            if not chunk:
                continue
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.wfile.write(chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


def _install_fast_header_parsing() -> None:
    """Parse request headers as headers only.

    http.server parses headers with email's full parser, which for a multipart
    Content-Type (every multipart upload) also compiles a boundary regex and parses
    an empty multipart body: ~0.3 ms of CPU per upload, under the GIL. Headers-only
    parsing yields the same header object; installed in the emulator process only.
    """
    if getattr(http.client.parse_headers, "_headers_only", False):
        return

    def parse_headers(fp: Any, _class: Any = http.client.HTTPMessage) -> Any:
        raw = http.client._read_headers(fp)  # type: ignore[attr-defined]
        return email.parser.Parser(_class=_class).parsestr(
            b"".join(raw).decode("iso-8859-1"), headersonly=True
        )

    parse_headers._headers_only = True  # type: ignore[attr-defined]
    http.client.parse_headers = parse_headers


class EmulatorHTTPServer(ThreadingHTTPServer):
    """One thread per connection; daemon threads so a stuck client never blocks exit."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    app: _App

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("error on connection from %s: %s", client_address, sys.exc_info()[1])


def build_server(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    data_dir: Path,
    request_log: Path | None = None,
    fault_rate: float = 0.0,
    drop_rate: float = 0.0,
    op_delay: float = 0.0,
    seed: int | None = None,
    with_vertex: bool = True,
) -> tuple[EmulatorHTTPServer, EmulatorContext]:
    """Bind the server and register every API surface; the caller runs serve_forever()."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    _install_fast_header_parsing()
    try:
        server = EmulatorHTTPServer((host, port), _Handler)
    except OSError as exc:
        raise ConfigError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="pick another --port (0 = any free port) or stop what holds it",
        ) from exc
    faults = FaultController(
        fault_rate=fault_rate, drop_rate=drop_rate, op_delay=op_delay, seed=seed
    )
    ctx = EmulatorContext(
        data_dir=data_dir,
        host=host,
        port=server.server_address[1],
        objects=ObjectStore(data_dir),
        faults=faults,
    )
    router = Router()
    register_admin(router, ctx)
    from deployer.emulator import gcs

    gcs.register(router, ctx)
    ctx.apis.append("gcs")
    if with_vertex:
        _register_vertex(router, ctx)
    request_log_obj = RequestLog(request_log)
    server.app = _App(router, ctx, request_log_obj)
    ctx.on_shutdown(ctx.objects.close)
    ctx.on_shutdown(request_log_obj.close)
    return server, ctx


def _register_vertex(router: Router, ctx: EmulatorContext) -> None:
    try:
        from deployer.emulator import vertex

        register = vertex.register
    except (ImportError, AttributeError) as exc:
        # Tolerated only while the Vertex surface is being written; GCS still works.
        log.warning("Vertex AI API not available in this build (%s); serving GCS only", exc)
        return
    register(router, ctx)
    ctx.apis.append("vertex")


def run(
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    data_dir: Path,
    request_log: Path | None = None,
    fault_rate: float = 0.0,
    drop_rate: float = 0.0,
    op_delay: float = 0.0,
    seed: int | None = None,
    log_level: str = "INFO",
) -> int:
    """Run the emulator in the foreground until SIGINT/SIGTERM; returns the exit status."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    server, ctx = build_server(
        host=host,
        port=port,
        data_dir=data_dir,
        request_log=request_log,
        fault_rate=fault_rate,
        drop_rate=drop_rate,
        op_delay=op_delay,
        seed=seed,
    )
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        if stopping.is_set():
            # A second signal while the shutdown hooks run: the user wants out now.
            log.warning("signal %d again: exiting without waiting for shutdown hooks", signum)
            os._exit(1)
        else:
            stopping.set()
            log.info("signal %d: stopping", signum)
            # shutdown() waits for serve_forever to return: never call it on the serving thread.
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # Printed whatever the log level: launchers that asked for port 0 read the real one here.
    sys.stderr.write(
        f"deployer emulator listening on {ctx.base_url} (data dir {data_dir}; APIs: "
        f"{', '.join(ctx.apis)})\n"
        f"use api_endpoint={ctx.base_url} and STORAGE_EMULATOR_HOST={ctx.base_url}\n"
    )
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        ctx.run_shutdown_hooks()
        log.info("stopped")
    return 0

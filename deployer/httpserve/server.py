"""An HTTP/1.1 server for synchronous handlers, on uvicorn (httptools parser, uvloop loop).

Owns: the listening socket (bound at construction so port 0 yields the real port at once,
backlog sized for bursts: issue 15 saw resets at 256 under 1,000 uploads right after 2,000
idle connections), keep-alive, Nagle off (asyncio and uvloop set TCP_NODELAY on every
connection), the bridge from uvicorn's ASGI interface to a blocking handler run on a daemon
worker thread (so a slow handler never holds the loop or other connections up), request
bodies (Content-Length or chunked; small ones read on the loop before the handler starts,
larger ones streamed to it with backpressure, so memory stays bounded), responses (bytes,
or an iterable streamed with Content-Length or chunked; HEAD gets headers only), aborting a
connection without an answer (a "lost reply" for fault injection), protocol-level errors in
the caller's error format, a client that half-closes after sending still getting its
answer, and graceful stop (stop accepting, close idle connections, let in-flight requests
finish within a bound).

Must not: know any API's routes, errors or semantics, or import the core, the emulator or
serving. It relies on a few attributes of uvicorn's httptools protocol (`cycle`,
`more_body`, `keep_alive`, `transport`); uvicorn is pinned in constraints.txt and the
emulator's integration tests exercise each of them.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("deployer.httpserve")
# uvicorn's own INFO lines (process started, shutting down) are noise in our logs.
logging.getLogger("uvicorn.error").setLevel(logging.WARNING)

# Listen backlog: bursts of thousands of connects must queue, not be reset. The kernel caps
# it at net.core.somaxconn (4096 on current kernels).
BACKLOG = 4096
# Bodies up to this size are read on the event loop before the handler thread starts (one
# hop instead of one per read); larger or chunked bodies stream to the handler.
PREFETCH_BYTES = 1 << 20
# A handler waiting this long for the next piece of a request body gives up.
BODY_READ_TIMEOUT_S = 300.0
# Threads running handlers at once (created as needed; a streaming upload from a slow client
# holds one), more requests than this queue for a free thread.
MAX_WORKERS = 1024

ErrorBody = Callable[[int, str], tuple[str, bytes]]  # (status, message) -> (content type, body)


class IncompleteBody(Exception):
    """The request body ended (client gone, half-closed, or timed out) before it was whole."""


class RequestBody:
    """A request body as a blocking, file-like stream, for the handler's thread.

    `read(n)` returns up to n bytes (fewer at a chunk boundary), b"" at the end, and raises
    IncompleteBody when the client stops short of its declared Content-Length or goes away.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        receive: Callable[[], Any],
        prefix: bytes,
        more: bool,
        expected: int | None,
    ) -> None:
        self._loop = loop
        self._receive = receive
        self._buf = bytearray(prefix)
        self._more = more
        self._expected = expected
        self.received = len(prefix)  # bytes taken from the connection so far

    @property
    def done(self) -> bool:
        """True once every byte of the body has been read."""
        return not self._more and not self._buf

    @property
    def complete(self) -> bool:
        """True when the whole body is already here (read on the loop before the handler):
        `read()` then never blocks, so an async handler may call it."""
        return not self._more

    def _check_complete(self) -> None:
        if not self._more and self._expected is not None and self.received < self._expected:
            raise IncompleteBody(
                f"request body ended after {self.received} of {self._expected} bytes"
            )

    def _pull(self) -> None:
        future = asyncio.run_coroutine_threadsafe(self._receive(), self._loop)
        try:
            message = future.result(BODY_READ_TIMEOUT_S)
        except TimeoutError as exc:
            future.cancel()
            self._more = False
            raise IncompleteBody("timed out waiting for the request body") from exc
        if message["type"] != "http.request":  # http.disconnect
            self._more = False
            raise IncompleteBody("the client went away before sending the whole body")
        chunk = message.get("body", b"")
        self._buf += chunk
        self.received += len(chunk)
        self._more = bool(message.get("more_body", False))

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            while self._more:
                self._pull()
            self._check_complete()
            out = bytes(self._buf)
            self._buf.clear()
            return out
        while not self._buf and self._more:
            self._pull()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        if not out and n:
            self._check_complete()
        return out


@dataclass
class HttpRequest:
    """One request as a handler sees it, transport-free."""

    method: str  # upper-case verb
    raw_path: str  # path exactly as received (percent-encoded), without the query
    query_string: str  # without the '?'
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    content_length: int | None  # declared body size; None if chunked or absent
    body: RequestBody

    @property
    def target(self) -> str:
        """The request-line target: raw path plus query."""
        return f"{self.raw_path}?{self.query_string}" if self.query_string else self.raw_path


@dataclass
class HttpResponse:
    """What a handler returns. An iterable body is streamed (chunked unless Content-Length)."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    close: bool = False  # answer, then close the connection
    abort: bool = False  # close the connection without answering (a lost reply)
    on_close: Callable[[], None] | None = None  # after the body is written or abandoned


Handler = Callable[[HttpRequest], HttpResponse]
# Runs on the event loop, for the few hot routes that never block (online prediction);
# answers None to hand the request to the synchronous handler on a worker thread instead.
AsyncHandler = Callable[[HttpRequest], Awaitable["HttpResponse | None"]]


class _Workers:
    """Daemon threads that run blocking calls for the event loop; grow up to `limit`, reused.

    Not loop.run_in_executor with a ThreadPoolExecutor: its threads are joined at interpreter
    exit (one handler stuck on a silent client would keep a stopped server's process alive),
    and its concurrent Future (a Condition per call) plus the chaining into an asyncio Future
    cost more than the one call_soon_threadsafe used here, on every request.
    """

    def __init__(self, limit: int, name: str) -> None:
        self._limit = limit
        self._name = name
        self._tasks: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._count = 0
        self._lock = threading.Lock()

    def run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Call fn(*args) on a worker thread; the returned future (of the running loop)
        resolves with its result or exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._tasks.put((loop, future, fn, args))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._count < self._limit:
                    self._count += 1
                    threading.Thread(
                        target=self._work, name=f"{self._name}-{self._count}", daemon=True
                    ).start()
        return future

    def _work(self) -> None:
        while True:
            loop, future, fn, args = self._tasks.get()
            try:
                result, error = fn(*args), None
            except BaseException as exc:
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop has closed: nobody waits for this any more
                pass
            del loop, future, fn, args, result, error
            self._idle.release()


_SHARED_WORKERS = _Workers(MAX_WORKERS, "blocking")


def to_thread(fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
    """Await fn(*args) run on a daemon worker thread: for the rare blocking step of an async
    handler (the thread never keeps a stopping process alive, unlike asyncio.to_thread's)."""
    return _SHARED_WORKERS.run(fn, *args)


_Task = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _CoalescingTransport:
    """Merges the writes of one loop step into one send: headers and body of a response go
    out in one segment, as the standard-library servers wrote them (a reader that gets them
    apart pays an extra wake-up and recv per response)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _abort_transport(send: Any) -> None:
    """Close the connection under an ASGI `send` without a reply (ASGI has no verb for it)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None:
        transport.abort()


def _protocol_class(error_body: ErrorBody) -> type[HttpToolsProtocol]:
    class Protocol(HttpToolsProtocol):
        """uvicorn's httptools protocol with our error format and half-close handling."""

        def send_400_response(self, msg: str) -> None:
            # A request the parser rejects: the caller's error body, not uvicorn's plain text.
            log.debug("malformed request: %s", msg)
            ctype, body = error_body(400, f"Malformed HTTP request: {msg}")
            head = (
                f"HTTP/1.1 400 Bad Request\r\ncontent-type: {ctype}\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            ).encode("latin-1")
            self.transport.write(head + body)
            self.transport.close()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(
                _CoalescingTransport(transport, self.loop)  # type: ignore[arg-type]
            )

        def eof_received(self) -> bool:  # type: ignore[override]  # asyncio: bool | None
            # A client may send its request and shut its side (SHUT_WR): it still gets the
            # answer. A body cut short by the half-close ends early; the handler sees that.
            cycle = self.cycle
            if cycle is None or cycle.response_complete:
                return False  # idle: close
            cycle.keep_alive = False
            if cycle.more_body:
                cycle.more_body = False
                cycle.message_event.set()
            return True

    return Protocol


class HttpServer:
    """A bound HTTP server running `handler` for every request, on its own thread."""

    def __init__(
        self,
        handler: Handler,
        *,
        host: str,
        port: int,
        error_body: ErrorBody,
        name: str = "http",
        keep_alive_s: int = 300,
        backlog: int = BACKLOG,
        delay: Callable[[HttpRequest], float] | None = None,
        async_handler: AsyncHandler | None = None,
    ) -> None:
        """Bind now (raises OSError if the address is taken); serve after start().

        `delay(request)`: seconds to wait before the handler runs (simulated network
        latency), awaited on the event loop so a waiting request holds no worker thread.
        `async_handler`, if given, sees each request whose body is already complete first,
        on the event loop (it must not block); its None hands the request to `handler`."""
        self._handler = handler
        self._delay = delay
        self._async_handler = async_handler
        self._error_body = error_body
        self._name = name
        self._workers = _Workers(MAX_WORKERS, name)
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(backlog)
            self._sock.setblocking(False)
        except OSError:
            self._sock.close()
            raise
        self.host = host
        self.port = int(self._sock.getsockname()[1])
        self._config = uvicorn.Config(
            self._asgi,
            loop="uvloop",
            http=_protocol_class(error_body),
            interface="asgi3",
            lifespan="off",
            proxy_headers=False,
            access_log=False,
            log_config=None,
            server_header=False,
            date_header=False,
            timeout_keep_alive=keep_alive_s,
            backlog=backlog,
        )
        self._server = uvicorn.Server(self._config)
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Serve on a background thread (signals stay with the caller's main thread)."""
        self._thread.start()

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException:
            log.exception("%s server failed", self._name)
        finally:
            self._stopped.set()

    def stop(self, drain_timeout: float) -> None:
        """Stop accepting, close idle connections, let in-flight requests finish (bounded)."""
        self._config.timeout_graceful_shutdown = max(1, round(drain_timeout))
        self._server.should_exit = True
        if self._thread.is_alive():
            self._stopped.wait(drain_timeout + 2.0)
        else:
            self._sock.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server has stopped; True if it has."""
        return self._stopped.wait(timeout)

    # ---- ASGI side (runs on the event loop) ----

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        length: int | None = None
        if "transfer-encoding" not in headers and "content-length" in headers:
            try:  # the parser has checked the digits; repeated headers arrive joined
                length = int(headers["content-length"])
            except ValueError:
                ctype, data = self._error_body(400, "Bad Content-Length")
                bad = HttpResponse(400, data, {"Content-Type": ctype}, close=True)
                await self._respond(scope["method"], bad, send)
                return
        loop = asyncio.get_running_loop()
        prefix, more = b"", length is None or length > 0
        if length is None and "transfer-encoding" not in headers:
            more = False  # no body at all
        if more and length is not None and length <= PREFETCH_BYTES:
            parts: list[bytes] = []
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away before its body was in
                parts.append(message.get("body", b""))
                more = bool(message.get("more_body", False))
            prefix = b"".join(parts)
        body = RequestBody(loop, receive, prefix, more, length)
        request = HttpRequest(
            method=scope["method"],
            raw_path=scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
            query_string=scope["query_string"].decode("latin-1"),
            headers=headers,
            content_length=length,
            body=body,
        )
        if self._delay is not None and (wait := self._delay(request)) > 0:
            await asyncio.sleep(wait)
        response: HttpResponse | None = None
        try:
            if self._async_handler is not None and not more:
                response = await self._async_handler(request)
            if response is None:
                response = await self._workers.run(self._handler, request)
        except Exception:
            log.exception("handler failed on %s %s", request.method, request.raw_path)
            ctype, data = self._error_body(500, "internal error; see the server log")
            response = HttpResponse(500, data, {"Content-Type": ctype}, close=True)
        try:
            await self._respond(request.method, response, send)
        finally:
            if response.on_close is not None:
                response.on_close()

    async def _respond(self, method: str, response: HttpResponse, send: Any) -> None:
        if response.abort:
            _abort_transport(send)
            for _ in range(3):  # let the loop see the close, so uvicorn adds no reply
                await asyncio.sleep(0)
            return
        body = response.body
        raw: list[tuple[bytes, bytes]] = []
        has_length = False
        for k, v in response.headers.items():
            key = k.lower()
            has_length = has_length or key == "content-length"
            raw.append((key.encode("latin-1"), str(v).encode("latin-1")))
        is_bytes = isinstance(body, (bytes, bytearray, memoryview))
        if is_bytes and not has_length:
            raw.append((b"content-length", str(len(body)).encode()))  # type: ignore[arg-type]
        if response.close:
            raw.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": response.status, "headers": raw})
        if is_bytes or method == "HEAD" or response.status in (204, 304):
            data = bytes(body) if is_bytes and method != "HEAD" else b""  # type: ignore[arg-type]
            await send({"type": "http.response.body", "body": data})
            return
        chunks: Iterator[bytes] = iter(body)  # type: ignore[arg-type]
        cycle = getattr(send, "__self__", None)
        while not getattr(cycle, "disconnected", False):  # a client gone: stop reading
            chunk = await self._workers.run(next, chunks, None)
            if chunk is None:
                break
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

"""A pooled keep-alive HTTP/1.1 client for the event loop, for one loopback peer.

Owns: `AsyncPool` (idle connections to one host:port, reused in LIFO order, a bounded
number kept), one request at a time per connection (no pipelining), requests written in
one send, responses parsed by httptools (the parser the server side uses), a per-request
deadline, and a retry on a fresh connection when a reused one turns out to have been closed
by the peer before answering (keep-alive races).

Why not an existing async client: measured on the emulator's `:predict` proxy hop, httpx's
async client costs several times more CPU per request than the hop itself, and a
connection that is one small protocol object needs nothing more. The peer is always one of
our own processes on loopback (a replica), so there is no TLS, proxy, redirect or cookie to
handle.

Must not: be used from more than one event loop (a pool belongs to the loop it first ran
on), know any API, or import the core, the emulator or serving.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping

import httptools

# Idle connections kept per pool; more concurrent requests open more, closed when done.
MAX_IDLE = 64


class ClientError(Exception):
    """The peer could not be reached, closed the connection, answered garbage or too late."""


class _Connection(asyncio.Protocol):
    """One connection: at most one request in flight; the response parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.parts: list[bytes] = []
        self.closed = False
        self.reused = False  # served a request before: a close before answering is a race
        self.expired = False  # the request deadline passed

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ClientError(f"malformed response: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ClientError(f"connection closed before the response ({exc or 'EOF'})"))

    # -- httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.parts.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        body = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
        self.parts = []
        if waiter is not None and not waiter.done():
            waiter.set_result(
                (self.parser.get_status_code(), body, bool(self.parser.should_keep_alive()))
            )

    # --
    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def send(
        self, data: bytes, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[tuple[int, bytes, bool]]:
        self.waiter = loop.create_future()
        assert self.transport is not None
        self.transport.write(data)
        return self.waiter

    def expire(self, after: float) -> None:
        self.expired = True
        self._fail(ClientError(f"no answer within {after:.0f}s"))
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class AsyncPool:
    """Keep-alive connections to `host:port`, used from one event loop."""

    def __init__(self, host: str, port: int, *, timeout: float = 120.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout  # per request, connect included
        self._idle: list[_Connection] = []
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._host_header = f"Host: {host}:{port}\r\n".encode("latin-1")

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(_Connection, self.host, self.port), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            raise ClientError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        sock = conn.transport.get_extra_info("socket") if conn.transport else None
        if sock is not None:  # small requests and answers: no delayed-ACK waits
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """One exchange; (status, body). Raises ClientError if it cannot complete."""
        if self._closed:
            raise ClientError("the connection pool is closed")
        loop = asyncio.get_running_loop()
        self._loop = loop
        head = [f"{method} {path} HTTP/1.1\r\n".encode("latin-1"), self._host_header]
        for k, v in (headers or {}).items():
            head.append(f"{k}: {v}\r\n".encode("latin-1"))
        head.append(b"Content-Length: %d\r\n\r\n" % len(body))
        data = b"".join(head) + body
        for attempt in (0, 1):
            conn = self._take()
            if conn is None:
                conn = await self._connect(loop)
            # The deadline fails the exchange and closes the connection: its state is unknown.
            timer = loop.call_later(self.timeout, conn.expire, self.timeout)
            try:
                status, payload, keep = await conn.send(data, loop)
            except ClientError:
                conn.close()
                if attempt == 0 and conn.reused and not conn.expired:
                    continue  # the peer closed an idle connection meanwhile
                raise
            except BaseException:
                conn.close()  # cancelled mid-exchange: the connection's state is unknown
                raise
            finally:
                timer.cancel()
            if keep and not conn.closed:
                self._give(conn)
            else:
                conn.close()
            return status, payload
        raise AssertionError("unreachable")

    def _take(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        return None

    def _give(self, conn: _Connection) -> None:
        conn.reused = True
        if self._closed or len(self._idle) >= MAX_IDLE:
            conn.close()
        else:
            self._idle.append(conn)

    def close(self) -> None:
        """Close the idle connections and refuse new requests (call on the pool's loop)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def close_threadsafe(self) -> None:
        """close(), from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._closed = True
            return
        try:
            loop.call_soon_threadsafe(self.close)
        except RuntimeError:  # the loop closed meanwhile
            self._closed = True

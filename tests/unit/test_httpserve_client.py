"""deployer.httpserve.client: the pooled async client, against the shared HTTP server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from deployer.httpserve import AsyncPool, ClientError, HttpRequest, HttpResponse, HttpServer

_PEERS: list[tuple[str, int]] = []  # client address of every request: connection reuse


def _error_body(status: int, message: str) -> tuple[str, bytes]:
    return "application/json", json.dumps({"error": message}).encode()


def _handler(request: HttpRequest) -> HttpResponse:
    data = request.body.read()
    if request.raw_path == "/close":
        return HttpResponse(200, b"bye", close=True)
    if request.raw_path == "/big":
        return HttpResponse(200, b"x" * 300_000)
    answer = {"path": request.raw_path, "len": len(data), "type": request.headers.get("x-t")}
    return HttpResponse(201, json.dumps(answer).encode())


@pytest.fixture
def server() -> Iterator[HttpServer]:
    srv = HttpServer(_handler, host="127.0.0.1", port=0, error_body=_error_body, name="t")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop(2.0)


def test_requests_reuse_one_keep_alive_connection_and_bodies_arrive_whole(
    server: HttpServer,
) -> None:
    async def main() -> list[tuple[int, bytes]]:
        pool = AsyncPool("127.0.0.1", server.port)
        out = [await pool.request("POST", f"/a{i}", b"z" * i, {"X-T": "j"}) for i in range(3)]
        out.append(await pool.request("GET", "/big"))
        assert len(pool._idle) == 1  # one connection served them all
        pool.close()
        return out

    results = asyncio.run(main())
    for i, (status, body) in enumerate(results[:3]):
        assert status == 201
        assert json.loads(body) == {"path": f"/a{i}", "len": i, "type": "j"}
    assert results[3] == (200, b"x" * 300_000)


def test_concurrent_requests_open_more_connections_and_a_close_is_honoured(
    server: HttpServer,
) -> None:
    async def main() -> None:
        pool = AsyncPool("127.0.0.1", server.port)
        answers = await asyncio.gather(*(pool.request("POST", "/c", b"{}") for _ in range(5)))
        assert [s for s, _ in answers] == [201] * 5
        assert len(pool._idle) == 5
        assert await pool.request("GET", "/close") == (200, b"bye")
        assert len(pool._idle) == 4  # the closed one is not kept
        pool.close()
        with pytest.raises(ClientError, match="closed"):
            await pool.request("GET", "/c")

    asyncio.run(main())


def test_a_connection_the_peer_dropped_while_idle_is_replaced_transparently() -> None:
    # A server that answers one request per connection and then closes without saying so
    # (no Connection: close): the next request on the pooled connection must be retried.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()

    async def main() -> None:
        pool = AsyncPool("127.0.0.1", port)
        assert await pool.request("POST", "/p", b"1") == (200, b"ok")
        await asyncio.sleep(0.1)  # the peer's close reaches us
        assert await pool.request("POST", "/p", b"2") == (200, b"ok")

    try:
        asyncio.run(main())
    finally:
        listener.close()


def test_an_unreachable_or_silent_peer_raises_client_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)

    async def main() -> None:
        with pytest.raises(ClientError, match="cannot connect"):
            await AsyncPool("127.0.0.1", free).request("GET", "/")
        with pytest.raises(ClientError, match="no answer within"):
            await AsyncPool("127.0.0.1", silent.getsockname()[1], timeout=0.3).request("GET", "/")

    try:
        asyncio.run(main())
    finally:
        silent.close()

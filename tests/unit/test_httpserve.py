"""deployer.httpserve: the shared HTTP server, driven over loopback sockets by http.client."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from deployer.httpserve import HttpRequest, HttpResponse, HttpServer, IncompleteBody

_STREAM_CLOSED = threading.Event()  # set by the streamed response's on_close


def _error_body(status: int, message: str) -> tuple[str, bytes]:
    return "application/json", json.dumps({"error": {"code": status, "message": message}}).encode()


def _handler(request: HttpRequest) -> HttpResponse:
    path = request.raw_path
    if path == "/echo":
        try:
            data = request.body.read()
        except IncompleteBody as exc:
            return HttpResponse(400, str(exc).encode(), close=True)
        info = {"method": request.method, "query": request.query_string, "len": len(data)}
        info["length"] = request.content_length
        info["head"] = data[:16].decode("latin-1")
        return HttpResponse(200, json.dumps(info).encode(), {"Content-Type": "application/json"})
    if path == "/stream":

        def parts() -> Iterator[bytes]:
            for i in range(5):
                yield b"part%d;" % i

        return HttpResponse(200, parts(), on_close=_STREAM_CLOSED.set)
    if path == "/slow":
        time.sleep(1.5)
        return HttpResponse(200, b"slow")
    if path == "/drop":
        return HttpResponse(200, b"never seen", abort=True)
    return HttpResponse(404, b"nope")


@pytest.fixture
def server() -> Iterator[HttpServer]:
    srv = HttpServer(_handler, host="127.0.0.1", port=0, error_body=_error_body, name="t")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop(2.0)


def _conn(srv: HttpServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)


def test_port_zero_binds_a_real_port_and_keep_alive_reuses_the_connection(
    server: HttpServer,
) -> None:
    assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
    conn = _conn(server)
    conn.request("POST", "/echo?a=1&b=", body=b"hello")
    first = conn.getresponse()
    assert first.status == 200
    assert json.loads(first.read()) == {
        "method": "POST",
        "query": "a=1&b=",
        "len": 5,
        "length": 5,
        "head": "hello",
    }
    sock = conn.sock
    conn.request("GET", "/echo")
    assert conn.getresponse().read() and conn.sock is sock
    conn.close()


def test_chunked_and_large_request_bodies_stream_to_the_handler(server: HttpServer) -> None:
    conn = _conn(server)
    conn.request("POST", "/echo", body=iter([b"ab", b"cd" * 1000]), encode_chunked=True)
    info = json.loads(conn.getresponse().read())
    assert info["len"] == 2002 and info["length"] is None and info["head"].startswith("abcdcd")
    big = b"x" * (3 << 20)  # above the prefetch size: read from the handler thread
    conn.request("POST", "/echo", body=big)
    assert json.loads(conn.getresponse().read())["len"] == len(big)
    conn.close()


def test_iterable_responses_are_chunked_and_head_gets_no_body(server: HttpServer) -> None:
    conn = _conn(server)
    conn.request("GET", "/stream")
    resp = conn.getresponse()
    assert resp.getheader("transfer-encoding") == "chunked"
    assert resp.read() == b"part0;part1;part2;part3;part4;"
    assert _STREAM_CLOSED.wait(5)  # the response's on_close ran once the body was out
    conn.request("HEAD", "/echo")
    resp = conn.getresponse()
    assert resp.status == 200 and int(resp.getheader("content-length")) > 0
    assert resp.read() == b""
    conn.close()


def test_abort_closes_the_connection_without_a_reply(server: HttpServer) -> None:
    conn = _conn(server)
    conn.request("GET", "/drop")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        conn.getresponse()
    conn.close()


def test_malformed_requests_get_the_callers_error_body(server: HttpServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body)["error"]["code"] == 400


def test_a_half_closed_client_gets_its_answer_and_a_short_body_is_reported(
    server: HttpServer,
) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 ") and b"3 of 10 bytes" in reply


def test_a_slow_handler_does_not_block_other_connections(server: HttpServer) -> None:
    slow = _conn(server)
    slow.request("GET", "/slow")
    started = time.monotonic()
    fast = _conn(server)
    fast.request("GET", "/echo")
    assert fast.getresponse().status == 200
    assert time.monotonic() - started < 1.0  # answered while /slow still sleeps
    assert slow.getresponse().read() == b"slow"
    slow.close()
    fast.close()


def test_stop_lets_an_in_flight_request_finish_then_refuses_connections() -> None:
    srv = HttpServer(_handler, host="127.0.0.1", port=0, error_body=_error_body)
    srv.start()
    conn = _conn(srv)
    conn.request("GET", "/slow")
    time.sleep(0.3)  # the request is in the handler
    stopper = threading.Thread(target=srv.stop, args=(5.0,))
    stopper.start()
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"slow"
    stopper.join(10)
    assert srv.wait(0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()


def test_binding_a_taken_port_raises_oserror(server: HttpServer) -> None:
    with pytest.raises(OSError):
        HttpServer(_handler, host="127.0.0.1", port=server.port, error_body=_error_body)

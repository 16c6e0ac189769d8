"""`--latency`: each request waits before its handler runs, jittered and seeded, on the event
loop (no worker thread held while waiting); admin routes are not delayed."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from deployer.emulator.latency import Latency
from deployer.httpserve import HttpRequest, HttpResponse, HttpServer

_HANDLER_THREADS: set[str] = set()


def _error_body(status: int, message: str) -> tuple[str, bytes]:
    return "application/json", json.dumps({"error": {"code": status, "message": message}}).encode()


def _handler(request: HttpRequest) -> HttpResponse:
    _HANDLER_THREADS.add(threading.current_thread().name)
    return HttpResponse(200, request.body.read() or b"ok")


@pytest.fixture
def slow_server() -> Iterator[HttpServer]:
    server = HttpServer(
        _handler,
        host="127.0.0.1",
        port=0,
        error_body=_error_body,
        delay=Latency(200, 0).delay,
    )
    server.start()
    yield server
    server.stop(1.0)


def _get(server: HttpServer, path: str, body: bytes | None = None) -> tuple[float, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    started = time.monotonic()
    conn.request("POST" if body else "GET", path, body=body)
    data = conn.getresponse().read()
    conn.close()
    return time.monotonic() - started, data


def test_draws_are_jittered_within_bounds_and_repeat_for_a_seed() -> None:
    one, two = Latency(30, 5, seed=1), Latency(30, 5, seed=1)
    draws = [one.draw() for _ in range(200)]
    assert draws == [two.draw() for _ in range(200)]
    assert all(0.025 <= d <= 0.035 for d in draws)
    assert len(set(draws)) > 100
    assert Latency(2, 10, seed=3).draw() >= 0  # never below zero
    assert [Latency(30).draw() for _ in range(3)] == [0.03] * 3


def test_bad_values_are_refused() -> None:
    for ms, jitter in ((-1, 0), (float("nan"), 0), (10, -1)):
        with pytest.raises(ValueError):
            Latency(ms, jitter)
    assert not Latency(0, 0).active and Latency(0, 1).active


def test_admin_routes_are_not_delayed() -> None:
    latency = Latency(30)
    admin = HttpRequest("GET", "/_emulator/health", "", {}, None, None)  # type: ignore[arg-type]
    api = HttpRequest("GET", "/storage/v1/b", "", {}, None, None)  # type: ignore[arg-type]
    assert latency.delay(admin) == 0.0 and latency.delay(api) == 0.03


def test_each_request_waits_before_its_handler_without_holding_a_thread(
    slow_server: HttpServer,
) -> None:
    elapsed, data = _get(slow_server, "/x", b"payload")
    assert data == b"payload" and elapsed >= 0.2
    fast, _ = _get(slow_server, "/_emulator/health")
    assert fast < 0.2
    _HANDLER_THREADS.clear()
    # 64 requests at once all wait their 200 ms together (on the loop), and afterwards only
    # a few handler threads ran them: the waiting held none.
    results: list[float] = []

    def one() -> None:
        results.append(_get(slow_server, "/y", b"z")[0])

    threads = [threading.Thread(target=one) for _ in range(64)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    wall = time.monotonic() - started
    assert len(results) == 64 and min(results) >= 0.2
    assert wall < 64 * 0.2 / 4, "the delays overlapped"
    assert len(_HANDLER_THREADS) < 64


def test_local_run_help_and_bad_latency() -> None:
    from deployer.cli import cli

    runner = CliRunner()
    help_text = runner.invoke(cli, ["local", "run", "--help"]).output
    assert "--latency MS" in help_text and "--latency-jitter MS" in help_text
    bad = runner.invoke(cli, ["local", "run", "--latency", "-5"])
    assert bad.exit_code == 2 and "--latency" in bad.output
    nan = runner.invoke(cli, ["local", "run", "--latency", "nan", "--port", "0"])
    assert nan.exit_code == 2 and "Traceback" not in nan.output

"""Router, Google error bodies, fault controller and shutdown hooks, in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployer.emulator.context import EmulatorContext
from deployer.emulator.faults import FaultController
from deployer.emulator.http import Request, Response, Router, ServiceError, json_response
from deployer.emulator.objects import ObjectStore


def _req(method: str, target: str, body: bytes = b"") -> Request:
    return Request.from_target(method, target, {"Content-Type": "application/json"}, body)


def test_router_matches_decoded_path_then_raw_path() -> None:
    router = Router()
    router.add(
        "GET",
        r"/v1/models/(?P<id>[^/]+)",
        lambda r, m: json_response({"id": m["id"]}),
        name="getModel",
        mutating=False,
    )
    router.add(
        "GET",
        r"/b/(?P<o>[^/]+)",
        lambda r, m: json_response({"o": m["o"]}),
        name="raw",
        mutating=False,
        raw=True,
    )
    assert json.loads(router.dispatch(_req("GET", "/v1/models/x%40v2")).body) == {"id": "x@v2"}  # type: ignore[arg-type]
    assert json.loads(router.dispatch(_req("GET", "/b/a%2Fb")).body) == {"o": "a%2Fb"}  # type: ignore[arg-type]
    assert router.dispatch(_req("GET", "/b/a/b")).status == 404  # raw-only route: '/' is not a%2F


def test_router_errors_are_google_json() -> None:
    router = Router()

    def boom(r: Request, m: object) -> Response:
        raise RuntimeError("bug")

    def missing(r: Request, m: object) -> Response:
        raise ServiceError(404, "NOT_FOUND", "no such model")

    router.add("GET", r"/boom", boom, name="boom", mutating=False)
    router.add("GET", r"/missing", missing, name="missing", mutating=False)
    cases = {
        ("GET", "/boom"): (500, "INTERNAL"),
        ("GET", "/missing"): (404, "NOT_FOUND"),
        ("POST", "/missing"): (405, "METHOD_NOT_ALLOWED"),
        ("GET", "/nothing"): (404, "NOT_FOUND"),
    }
    for (method, path), (code, status) in cases.items():
        resp = router.dispatch(_req(method, path))
        error = json.loads(resp.body)["error"]  # type: ignore[arg-type]
        assert (resp.status, error["code"], error["status"]) == (code, code, status)
        assert error["message"] and error["errors"][0]["message"] == error["message"]


def test_request_json_and_query() -> None:
    req = _req("POST", "/x?a=1&a=2&b=", b'{"k": 1}')
    assert req.q("a") == "1" and req.q("b") == "" and req.q("c", "d") == "d"
    assert req.json() == {"k": 1}
    with pytest.raises(ServiceError) as err:
        _req("POST", "/x", b"{bad").json()
    assert err.value.http_status == 400


def test_scripted_faults_count_down_per_method() -> None:
    faults = FaultController()
    faults.configure(
        {
            "script": [
                {"method": "deployModel", "count": 2, "http_status": 503},
                {"method": "createEndpoint", "count": 1, "drop": True},
            ]
        }
    )
    assert faults.before_call("getModel") is None
    assert [getattr(faults.before_call("deployModel"), "status", None) for _ in range(3)] == [
        503,
        503,
        None,
    ]
    assert faults.drop_after("createEndpoint", mutating=True, status=200) is True
    assert faults.drop_after("createEndpoint", mutating=True, status=200) is False
    assert faults.settings()["script"] == [] and faults.settings()["injected"] == 2


def test_fault_rate_is_reproducible_with_a_seed() -> None:
    def run() -> list[int | None]:
        f = FaultController(fault_rate=0.5, seed=3)
        return [getattr(f.before_call("x"), "status", None) for _ in range(50)]

    first = run()
    assert first == run() and {429, 503, None} == set(first)


def test_drops_apply_only_to_successful_mutating_calls() -> None:
    faults = FaultController(drop_rate=1.0)
    assert faults.drop_after("getModel", mutating=False, status=200) is False
    assert faults.drop_after("deployModel", mutating=True, status=400) is False
    assert faults.drop_after("deployModel", mutating=True, status=200) is True


def test_shutdown_hooks_run_once_in_reverse_order_despite_failures(tmp_path: Path) -> None:
    ctx = EmulatorContext(
        data_dir=tmp_path,
        host="0.0.0.0",
        port=1234,
        objects=ObjectStore(tmp_path),
        faults=FaultController(),
    )
    calls: list[str] = []
    ctx.on_shutdown(lambda: calls.append("first"))
    ctx.on_shutdown(lambda: 1 / 0)  # type: ignore[func-returns-value]
    ctx.on_shutdown(lambda: calls.append("last"))
    ctx.run_shutdown_hooks()
    ctx.run_shutdown_hooks()
    assert calls == ["last", "first"]
    assert ctx.base_url == "http://127.0.0.1:1234"

"""The emulator's misbehave admin route: validation (4xx, never 500) and the effects a
misbehaving deployed model has on its answers (errors at a rate, latency, wrong outputs)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from deployer.emulator.http import Request, Router, ServiceError
from deployer.emulator.misbehave import Misbehaviour, Misbehaviours, register

EP = "projects/123456789012/locations/us-central1/endpoints/roll-ep-1"


def call(router: Router, method: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else b""
    req = Request.from_target(method, "/_emulator/misbehave", {}, data)
    found = router.resolve(req)
    assert found is not None
    route, match = found
    try:
        resp = route.handler(req, match)
    except ServiceError as exc:
        return exc.http_status, exc.message
    assert isinstance(resp.body, bytes)
    return resp.status, json.loads(resp.body)


@pytest.fixture
def admin() -> tuple[Router, Misbehaviours]:
    router, m = Router(), Misbehaviours(seed=1)
    register(router, m)
    return router, m


def test_a_deployed_model_is_made_to_misbehave_and_cleared(
    admin: tuple[Router, Misbehaviours],
) -> None:
    router, m = admin
    body = {"endpoint": EP, "deployed_model_id": "42", "latency_ms": 5, "wrong_outputs": True}
    status, listing = call(router, "POST", body)
    assert status == 200
    assert listing["misbehaviours"] == [
        {
            "endpoint": "roll-ep-1",
            "deployed_model_id": "42",
            "error_rate": 0.0,
            "latency_ms": 5.0,
            "wrong_outputs": True,
        }
    ]
    assert m.get(EP, "42") == Misbehaviour(0.0, 5.0, True)
    assert m.get(EP, "43") is None  # only the model it names
    assert call(router, "GET")[1] == listing
    call(router, "POST", {"endpoint": "roll-ep-1", "deployed_model_id": "42", "clear": True})
    assert m.get(EP, "42") is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "must be a JSON object"),
        ({"endpoint": "e", "deployed_model_id": "1", "error_rate": 2}, "error_rate must be"),
        ({"endpoint": "e", "deployed_model_id": "1", "latency_ms": -1}, "latency_ms must be"),
        ({"endpoint": "e", "deployed_model_id": "1", "wrong_outputs": "yes"}, "true or false"),
        ({"endpoint": "e", "deployed_model_id": 1}, "deployed_model_id must be a string"),
        ({"endpoint": "e", "deployed_model_id": "1", "eror_rate": 1}, "unknown field"),
    ],
)
def test_bad_requests_are_400(admin: tuple[Router, Misbehaviours], body: Any, message: str) -> None:
    status, text = call(admin[0], "POST", body)
    assert status == 400 and message in text


def test_errors_come_at_the_rate_asked_latency_is_added_and_outputs_are_wrong() -> None:
    m = Misbehaviours(seed=3)
    m.set("roll-ep-1", "42", Misbehaviour(error_rate=0.5))
    errors: list[ServiceError] = []
    for _ in range(400):
        try:
            m.before(EP, "42")
        except ServiceError as exc:
            errors.append(exc)
    assert 150 < len(errors) < 250
    assert {(e.http_status, e.status) for e in errors} == {(500, "INTERNAL")}
    assert "misbehaving on purpose" in errors[0].message
    assert m.before(EP, "7") is None  # another deployed model is untouched

    m.set("roll-ep-1", "42", Misbehaviour(latency_ms=30, wrong_outputs=True))
    t0 = time.monotonic()
    effect = m.before(EP, "42")
    assert time.monotonic() - t0 >= 0.03
    answer = json.dumps({"predictions": [[0.1, 0.9], [0.7, 0.3]]}).encode()
    wrong = json.loads(Misbehaviours.after(effect, answer))
    assert wrong == {"predictions": [[0.9, 0.1], [0.3, 0.7]]}
    assert Misbehaviours.after(None, answer) == answer

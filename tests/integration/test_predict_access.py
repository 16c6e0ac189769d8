"""The online-prediction routes, served on the event loop, obey the same access rules and
answers as every other route (issue 12's async hot path next to issue 15's access rules).

Without a deployed model: a refused request must answer 403 before any routing, where an
admitted one reaches the route and answers 404 for the unknown endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.support.emulator import EmulatorProcess

pytestmark = [pytest.mark.timeout(120), pytest.mark.wire_contract_exempt]

TOKEN = "test-token-0123456789abcdef"
ENDPOINT = "/v1/projects/p/locations/us-central1/endpoints/123"
BODY = {"instances": [[1.0, 2.0]]}


@pytest.fixture(scope="module")
def token_emu() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(env={"DEPLOYER_EMULATOR_TOKEN": TOKEN}, wire_contract=False) as proc:
        yield proc


def _post(url: str, verb: str, **headers: str) -> requests.Response:
    return requests.post(f"{url}{ENDPOINT}:{verb}", json=BODY, headers=headers, timeout=10)


@pytest.mark.parametrize("verb", ["predict", "rawPredict"])
def test_predict_routes_refuse_a_forged_host_and_another_origin(
    module_emulator: EmulatorProcess, verb: str
) -> None:
    url = module_emulator.url
    forged = _post(url, verb, Host=f"evil.example:{module_emulator.port}")
    assert forged.status_code == 403, forged.text
    assert forged.json()["error"]["status"] == "PERMISSION_DENIED"
    cross = _post(url, verb, Origin="http://evil.example")
    assert cross.status_code == 403, cross.text
    admitted = _post(url, verb)
    assert admitted.status_code == 404, admitted.text  # reached the route: no such endpoint
    assert admitted.json()["error"]["status"] == "NOT_FOUND"


def test_predict_routes_require_the_token_when_one_is_set(token_emu: EmulatorProcess) -> None:
    url = token_emu.url
    assert _post(url, "predict").status_code == 403
    assert _post(url, "predict", Authorization="Bearer wrong-token-0123456789").status_code == 403
    ok = _post(url, "predict", Authorization=f"Bearer {TOKEN}")
    assert ok.status_code == 404, ok.text


def test_an_oversized_predict_body_gets_vertexs_answer(module_emulator: EmulatorProcess) -> None:
    big = b'{"instances": [' + b"1.0," * 400_000 + b"1.0]}"  # ~1.6 MB, over Vertex's 1.5 MB
    resp = requests.post(
        f"{module_emulator.url}{ENDPOINT}:predict",
        data=big,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert resp.status_code == 400, resp.text[:300]
    assert "payload size exceeds the limit" in resp.json()["error"]["message"]

"""`:predict` on a deployed model answers 400, never 500, to JSON nested 100,000 deep (issue 15).

The emulator must refuse the body (`jsonlimits.check_depth`) before its own parser or the
replica's recurses into it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.integration import _vertex
from tests.integration._vertex import PARENT, dedicated, gapic_clients, put_tree, upload_model
from tests.integration.conftest import make_storage_client
from tests.support.emulator import EmulatorProcess

mnist_dir = _vertex.mnist_dir  # the shared fixture, visible to this module

# Malformed requests on purpose: left out of the wire contract (test_wire_contract.py).
pytestmark = [pytest.mark.timeout(300), pytest.mark.wire_contract_exempt]


@pytest.fixture(scope="module")
def predict_url(module_emulator: EmulatorProcess, mnist_dir: Path) -> str:
    from google.cloud import aiplatform_v1 as v1

    emu = module_emulator
    clients = gapic_clients(emu.url)
    artifact = put_tree(make_storage_client(emu.url), "deep-bucket", "mnist/0001", mnist_dir)
    model = upload_model(clients, artifact, model_id="deep").model
    ep = clients.endpoint.create_endpoint(
        parent=PARENT, endpoint=v1.Endpoint(display_name="deep"), endpoint_id="deep"
    ).result(timeout=30)
    clients.endpoint.deploy_model(
        endpoint=ep.name,
        traffic_split={"0": 100},
        deployed_model=v1.DeployedModel(model=model, id="5", dedicated_resources=dedicated()),
    ).result(timeout=240)
    return f"{emu.url}/v1/{ep.name}:predict"


# predict.py calls jsonlimits.check_depth(body) before parsing or forwarding: otherwise both
# answer 500 (the emulator's own parse, and the replica's RecursionError passed through).
@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"parameters": {}, "instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=["instances", "with-parameters"],
)
def test_json_nested_100000_deep_on_predict_is_400(predict_url: str, body: bytes) -> None:
    resp = requests.post(
        predict_url, data=body, headers={"Content-Type": "application/json"}, timeout=60
    )
    assert resp.status_code == 400, resp.text[:300]
    error = resp.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and "nested deeper than" in error["message"]


def test_a_well_formed_predict_still_answers(predict_url: str) -> None:
    resp = requests.post(predict_url, json={"instances": [[0.0] * 784]}, timeout=60)
    assert resp.status_code == 200, resp.text[:300]
    assert len(resp.json()["predictions"]) == 1

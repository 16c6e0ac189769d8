"""Deployments on the emulated Vertex AI through the GAPIC v1 REST clients: real replica
processes serving a real SavedModel with TensorFlow, predictions equal to the model called
in-process, routing by traffic split, rawPredict, payload limits, undeploy/mutate, and the
refusals (FAILED_PRECONDITION while deployed, traffic not summing to 100, ...).

The tests of this module share one emulator and one endpoint and run in file order: the
deployment built by the `served` fixture is taken apart by the last tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
from google.api_core import exceptions as gexc

from tests.integration import _vertex
from tests.integration._vertex import (
    PARENT,
    Clients,
    dedicated,
    gapic_clients,
    put_tree,
    raises_status,
    replica_pids,
    upload_model,
    wait_for,
)
from tests.integration.conftest import make_storage_client
from tests.support.emulator import EmulatorProcess

mnist_dir = _vertex.mnist_dir  # the shared fixture, visible to this module
mnist_dir_v2 = _vertex.mnist_dir_v2  # the shared fixture, visible to this module

pytestmark = pytest.mark.timeout(300)


@dataclass
class Served:
    emu: EmulatorProcess
    clients: Clients
    endpoint: str
    model: str  # registry model (both versions)
    dirs: dict[str, Path]  # version id -> local SavedModel dir
    x: np.ndarray  # a few MNIST-shaped instances


@pytest.fixture(scope="module")
def served(mnist_dir: Path, mnist_dir_v2: Path) -> Iterator[Served]:
    """Model `mnist` v1 and v2 deployed on endpoint `served`: 101 (v1) 70 %, 102 (v2) 30 % (on a GPU
    spec)."""
    from google.cloud import aiplatform_v1 as v1

    emu = EmulatorProcess()
    try:
        emu.start()
        clients = gapic_clients(emu.url)
        storage = make_storage_client(emu.url)
        a1 = put_tree(storage, "deploy-bucket", "mnist/0001", mnist_dir)
        a2 = put_tree(storage, "deploy-bucket", "mnist/0002", mnist_dir_v2)
        model = upload_model(clients, a1, model_id="mnist", aliases=["v1"]).model
        upload_model(clients, a2, parent_model=model, aliases=["v2"])
        ep = clients.endpoint.create_endpoint(
            parent=PARENT,
            endpoint=v1.Endpoint(display_name="served"),
            endpoint_id="served",
        ).result(timeout=30)
        clients.endpoint.deploy_model(
            endpoint=ep.name,
            traffic_split={"0": 100},
            deployed_model=v1.DeployedModel(
                model=f"{model}@v1", id="101", dedicated_resources=dedicated()
            ),
        ).result(timeout=240)
        clients.endpoint.deploy_model(
            endpoint=ep.name,
            traffic_split={"101": 70, "0": 30},
            deployed_model=v1.DeployedModel(
                model=f"{model}@2",
                id="102",
                dedicated_resources=dedicated(
                    "n1-standard-4",
                    accelerator_type=v1.AcceleratorType.NVIDIA_TESLA_T4,
                    accelerator_count=1,
                ),
            ),
        ).result(timeout=240)
        x = np.random.default_rng(7).random((3, 784), dtype=np.float32)
    except BaseException:
        print(emu.stderr_tail(80))  # shown by pytest with the failure: the emulator's side of it
        emu.cleanup()
        raise
    try:
        yield Served(emu, clients, ep.name, model, {"1": mnist_dir, "2": mnist_dir_v2}, x)
    finally:
        data_dir = emu.data_dir
        emu.stop()
        leftover = replica_pids(data_dir)
        emu.cleanup()
        assert leftover == [], "replica processes outlived the emulator"


def _reference(model_dir: Path, x: np.ndarray) -> np.ndarray:
    from tests.support.savedmodels import reference_predict

    return reference_predict(model_dir, {"flatten_input": x})["output_0"]


def test_endpoint_lists_both_deployed_models_with_their_fields(served: Served) -> None:
    ep = served.clients.endpoint.get_endpoint(name=served.endpoint)
    assert dict(ep.traffic_split) == {"101": 70, "102": 30}
    by_id = {d.id: d for d in ep.deployed_models}
    assert set(by_id) == {"101", "102"}
    assert by_id["101"].model == f"{served.model}@v1"
    assert (by_id["101"].model_version_id, by_id["102"].model_version_id) == ("1", "2")
    assert by_id["102"].dedicated_resources.machine_spec.machine_type == "n1-standard-4"
    assert by_id["102"].dedicated_resources.machine_spec.accelerator_count == 1
    assert by_id["101"].dedicated_resources.min_replica_count == 1
    assert by_id["101"].create_time.timestamp() > 0 and by_id["101"].display_name == "mnist"
    refs = served.clients.model.get_model(name=f"{served.model}@1").deployed_models
    assert [(r.endpoint, r.deployed_model_id) for r in refs] == [(served.endpoint, "101")]


def test_predictions_equal_the_model_in_process(served: Served) -> None:
    resp = served.clients.prediction.predict(endpoint=served.endpoint, instances=served.x.tolist())
    assert resp.deployed_model_id in ("101", "102")
    assert resp.model == served.model
    assert resp.model_display_name == "mnist"
    expected = _reference(served.dirs[resp.model_version_id], served.x)
    np.testing.assert_allclose(np.array(resp.predictions), expected, rtol=1e-5, atol=1e-6)


def test_traffic_split_routes_requests_by_weight(served: Served) -> None:
    seen: dict[str, int] = {}
    refs = {v: _reference(d, served.x[:1]) for v, d in served.dirs.items()}
    for _ in range(80):
        resp = served.clients.prediction.predict(
            endpoint=served.endpoint, instances=served.x[:1].tolist()
        )
        seen[resp.deployed_model_id] = seen.get(resp.deployed_model_id, 0) + 1
        np.testing.assert_allclose(
            np.array(resp.predictions), refs[resp.model_version_id], rtol=1e-5, atol=1e-6
        )
    assert set(seen) == {"101", "102"}
    assert seen["101"] > seen["102"]  # 70/30: P(v1 <= v2 over 80 draws) is ~1e-4


def test_patching_traffic_moves_all_requests(served: Served) -> None:
    from google.cloud import aiplatform_v1 as v1
    from google.protobuf import field_mask_pb2

    mask = field_mask_pb2.FieldMask(paths=["traffic_split"])
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT"):
        served.clients.endpoint.update_endpoint(
            endpoint=v1.Endpoint(name=served.endpoint, traffic_split={"101": 60, "102": 30}),
            update_mask=mask,
        )
    served.clients.endpoint.update_endpoint(
        endpoint=v1.Endpoint(name=served.endpoint, traffic_split={"101": 0, "102": 100}),
        update_mask=mask,
    )
    ids = {
        served.clients.prediction.predict(
            endpoint=served.endpoint, instances=served.x[:1].tolist()
        ).deployed_model_id
        for _ in range(15)
    }
    assert ids == {"102"}
    served.clients.endpoint.update_endpoint(
        endpoint=v1.Endpoint(name=served.endpoint, traffic_split={"101": 70, "102": 30}),
        update_mask=mask,
    )


def test_raw_predict_round_trips_an_http_body(served: Served) -> None:
    from google.api import httpbody_pb2

    payload = json.dumps({"instances": served.x[:2].tolist()}).encode()
    resp = served.clients.prediction.raw_predict(
        endpoint=served.endpoint,
        http_body=httpbody_pb2.HttpBody(content_type="application/json", data=payload),
    )
    body = json.loads(resp.data)
    assert np.array(body["predictions"]).shape == (2, 10)


def test_raw_predict_with_plain_bytes_answers_the_replica_body(served: Served) -> None:
    import requests

    url = f"{served.emu.url}/v1/{served.endpoint}:rawPredict"
    resp = requests.post(url, data=json.dumps({"instances": served.x[:1].tolist()}), timeout=30)
    assert resp.status_code == 200
    assert resp.headers["X-Vertex-AI-Deployed-Model-Id"] in ("101", "102")
    assert np.array(resp.json()["predictions"]).shape == (1, 10)
    # Vertex also names the model, its display name and version that answered.
    version = {"101": "1", "102": "2"}[resp.headers["X-Vertex-AI-Deployed-Model-Id"]]
    assert resp.headers["X-Vertex-AI-Endpoint-Id"] == "served"
    assert resp.headers["X-Vertex-AI-Model"] == served.model
    assert resp.headers["X-Vertex-AI-Model-Version-Id"] == version
    got = served.clients.model.get_model(name=f"{served.model}@{version}")
    assert resp.headers["X-Vertex-AI-Model-Display-Name"] == got.display_name


class _ToEmulator(requests.adapters.HTTPAdapter):
    """Sends what the SDK addresses to Vertex's public host to the emulator instead: the SDK's
    raw_predict hard-codes that host rather than honouring api_endpoint."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(request.url)
        request.url = self.url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, *args, **kwargs)


def test_sdk_predict_with_raw_predict_reads_the_models_headers(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Endpoint.predict(use_raw_predict=True) reads X-Vertex-AI-Deployed-Model-Id,
    -Model and -Model-Version-Id (a KeyError without them)."""
    from tests.integration._vertex import sdk_session

    with sdk_session(served.emu.url, "raw-sdk-bucket", monkeypatch) as aiplatform:
        endpoint = aiplatform.Endpoint(served.endpoint)
        session = requests.Session()
        session.mount("https://us-central1-aiplatform.googleapis.com/", _ToEmulator(served.emu.url))
        endpoint.authorized_session = session
        got = endpoint.predict(instances=served.x[:2].tolist(), use_raw_predict=True)
    assert got.deployed_model_id in ("101", "102")
    assert got.model_resource_name == served.model
    version = {"101": "1", "102": "2"}[got.deployed_model_id]
    assert got.model_version_id == version
    np.testing.assert_allclose(
        np.array(got.predictions),
        _reference(served.dirs[version], served.x[:2]),
        rtol=1e-5,
        atol=1e-6,
    )


def test_parameters_are_accepted_and_not_forwarded_to_tf_serving(served: Served) -> None:
    import requests

    body = {"instances": served.x[:1].tolist(), "parameters": {"confidence_threshold": 0.5}}
    resp = requests.post(f"{served.emu.url}/v1/{served.endpoint}:predict", json=body, timeout=30)
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert set(got) == {
        "predictions",
        "deployedModelId",
        "model",
        "modelDisplayName",
        "modelVersionId",
    }
    np.testing.assert_allclose(
        np.array(got["predictions"]),
        _reference(served.dirs[got["modelVersionId"]], served.x[:1]),
        rtol=1e-5,
        atol=1e-6,
    )


def test_payload_over_1_5_mb_is_invalid_argument(served: Served) -> None:
    big = np.random.default_rng(0).random((110, 784)).tolist()  # ~1.75 MB of JSON
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT") as info:
        served.clients.prediction.predict(endpoint=served.endpoint, instances=big)
    assert "payload size exceeds the limit" in str(info.value)


def test_replica_400_passes_through_with_its_message(served: Served) -> None:
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT") as info:
        served.clients.prediction.predict(endpoint=served.endpoint, instances=[[1.0, 2.0, 3.0]])
    # The replica's own words, passed through unchanged (deployer.serving.codec.check_shape);
    # the REST client puts "POST <url>: " in front.
    replica_says = (
        "input 'flatten_input' expects shape [-1, 784] and dtype DT_FLOAT (instances of shape "
        "[784]); received instances of shape [3] (1 instance(s))"
    )
    assert info.value.message.startswith(f"POST {served.emu.url}/v1/{served.endpoint}:predict")
    assert info.value.message.endswith(f": {replica_says}")
    # The server and its replicas are still fine afterwards.
    served.clients.prediction.predict(endpoint=served.endpoint, instances=served.x[:1].tolist())


def test_renaming_the_model_shows_in_predict_answers(served: Served) -> None:
    from google.cloud import aiplatform_v1 as v1
    from google.protobuf import field_mask_pb2

    served.clients.model.update_model(
        model=v1.Model(name=served.model, display_name="mnist-renamed"),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
    )
    got = served.clients.prediction.predict(
        endpoint=served.endpoint, instances=served.x[:1].tolist()
    )
    assert got.model_display_name == "mnist-renamed"


def test_deploy_refusals(served: Served) -> None:
    from google.cloud import aiplatform_v1 as v1

    c = served.clients.endpoint
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT"):  # traffic sums to 110
        c.deploy_model(
            endpoint=served.endpoint,
            traffic_split={"101": 80, "0": 30},
            deployed_model=v1.DeployedModel(model=served.model, dedicated_resources=dedicated()),
        )
    with raises_status(gexc.Conflict, "ALREADY_EXISTS"):
        c.deploy_model(
            endpoint=served.endpoint,
            deployed_model=v1.DeployedModel(
                model=served.model, id="101", dedicated_resources=dedicated()
            ),
        )
    with raises_status(gexc.NotFound, "NOT_FOUND"):
        c.deploy_model(
            endpoint=served.endpoint,
            deployed_model=v1.DeployedModel(
                model=f"{PARENT}/models/nope", dedicated_resources=dedicated()
            ),
        )
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT"):
        c.deploy_model(
            endpoint=served.endpoint,
            deployed_model=v1.DeployedModel(
                model=served.model, dedicated_resources=dedicated(replicas=0)
            ),
        )
    with raises_status(gexc.NotFound, "NOT_FOUND"):
        c.deploy_model(
            endpoint=f"{PARENT}/endpoints/nope",
            deployed_model=v1.DeployedModel(model=served.model, dedicated_resources=dedicated()),
        )


def test_deleting_what_is_deployed_is_failed_precondition(served: Served) -> None:
    with raises_status(gexc.BadRequest, "FAILED_PRECONDITION"):
        served.clients.endpoint.delete_endpoint(name=served.endpoint)
    with raises_status(gexc.BadRequest, "FAILED_PRECONDITION"):
        served.clients.model.delete_model(name=served.model)
    served.clients.model.merge_version_aliases(
        name=f"{served.model}@1", version_aliases=["default"]
    )
    with raises_status(gexc.BadRequest, "FAILED_PRECONDITION"):
        served.clients.model.delete_model_version(name=f"{served.model}@2")


def test_mutate_deployed_model_changes_replica_bounds(served: Served) -> None:
    from google.cloud import aiplatform_v1 as v1
    from google.protobuf import field_mask_pb2

    op = served.clients.endpoint.mutate_deployed_model(
        endpoint=served.endpoint,
        deployed_model=v1.DeployedModel(
            id="101",
            dedicated_resources=v1.DedicatedResources(min_replica_count=1, max_replica_count=3),
        ),
        update_mask=field_mask_pb2.FieldMask(paths=["dedicated_resources.max_replica_count"]),
    )
    got = op.result(timeout=30).deployed_model
    assert (
        got.dedicated_resources.min_replica_count,
        got.dedicated_resources.max_replica_count,
    ) == (1, 3)
    assert got.dedicated_resources.machine_spec.machine_type == "n1-standard-2"
    ep = served.clients.endpoint.get_endpoint(name=served.endpoint)
    assert (
        next(d for d in ep.deployed_models if d.id == "101").dedicated_resources.max_replica_count
        == 3
    )


def test_undeploy_needs_traffic_moved_then_stops_replicas(served: Served) -> None:
    c = served.clients.endpoint
    before = len(replica_pids(served.emu.data_dir))
    assert before == 2
    with raises_status(gexc.BadRequest, "FAILED_PRECONDITION"):  # 102 still has 30 %
        c.undeploy_model(endpoint=served.endpoint, deployed_model_id="102")
    with raises_status(gexc.NotFound, "NOT_FOUND"):
        c.undeploy_model(endpoint=served.endpoint, deployed_model_id="nope")
    c.undeploy_model(
        endpoint=served.endpoint, deployed_model_id="102", traffic_split={"101": 100}
    ).result(timeout=60)
    ep = c.get_endpoint(name=served.endpoint)
    assert [d.id for d in ep.deployed_models] == ["101"] and dict(ep.traffic_split) == {"101": 100}
    wait_for(lambda: len(replica_pids(served.emu.data_dir)) == 1)
    ids = {
        served.clients.prediction.predict(
            endpoint=served.endpoint, instances=served.x[:1].tolist()
        ).deployed_model_id
        for _ in range(5)
    }
    assert ids == {"101"}


def test_last_undeploy_empties_the_endpoint_then_deletes_work(served: Served) -> None:
    c = served.clients.endpoint
    c.undeploy_model(endpoint=served.endpoint, deployed_model_id="101").result(timeout=60)
    ep = c.get_endpoint(name=served.endpoint)
    assert not ep.deployed_models and not ep.traffic_split
    with raises_status(gexc.BadRequest, "FAILED_PRECONDITION"):
        served.clients.prediction.predict(endpoint=served.endpoint, instances=served.x[:1].tolist())
    wait_for(lambda: replica_pids(served.emu.data_dir) == [])
    c.delete_endpoint(name=served.endpoint).result(timeout=30)
    served.clients.model.delete_model(name=served.model).result(timeout=30)
    with raises_status(gexc.NotFound, "NOT_FOUND"):
        served.clients.model.get_model(name=served.model)


def test_deploy_of_a_vanished_artifact_fails_the_operation_not_the_server(served: Served) -> None:
    # A deploy whose artifact vanished from the bucket fails the operation, not the server.
    from google.cloud import aiplatform_v1 as v1

    storage = make_storage_client(served.emu.url)
    uri = put_tree(storage, "deploy-bucket", "vanishing", served.dirs["1"])
    model = upload_model(served.clients, uri, model_id="vanishing").model
    for blob in storage.list_blobs("deploy-bucket", prefix="vanishing/"):
        blob.delete()
    ep = served.clients.endpoint.create_endpoint(
        parent=PARENT, endpoint=v1.Endpoint(display_name="v"), endpoint_id="vanishing"
    ).result(timeout=30)
    op = served.clients.endpoint.deploy_model(
        endpoint=ep.name,
        traffic_split={"0": 100},
        deployed_model=v1.DeployedModel(model=model, dedicated_resources=dedicated()),
    )
    with pytest.raises(gexc.GoogleAPICallError) as info:
        op.result(timeout=60)
    assert "vanishing" in str(info.value)
    assert not served.clients.endpoint.get_endpoint(name=ep.name).deployed_models
    served.clients.endpoint.delete_endpoint(name=ep.name).result(timeout=30)


def _model_and_endpoint(served: Served, name: str, model_dir: Path) -> tuple[str, Any]:
    """A model registered from `model_dir` and an empty endpoint, both with id `name`."""
    from google.cloud import aiplatform_v1 as v1

    uri = put_tree(make_storage_client(served.emu.url), "deploy-bucket", name, model_dir)
    model = upload_model(served.clients, uri, model_id=name).model
    ep = served.clients.endpoint.create_endpoint(
        parent=PARENT, endpoint=v1.Endpoint(display_name=name), endpoint_id=name
    ).result(timeout=30)
    return model, ep


def test_cancelling_a_deploy_in_flight_fails_it_and_deploys_nothing(served: Served) -> None:
    from google.cloud import aiplatform_v1 as v1

    c = served.clients.endpoint
    model, ep = _model_and_endpoint(served, "cancelled", served.dirs["1"])
    served.emu.admin({"op_delay": 30})
    try:
        op = c.deploy_model(
            endpoint=ep.name,
            traffic_split={"0": 100},
            deployed_model=v1.DeployedModel(
                model=model,
                id="103",
                automatic_resources=v1.AutomaticResources(min_replica_count=1),
            ),
        )
        with raises_status(gexc.BadRequest, "FAILED_PRECONDITION"):  # not while deploying
            c.delete_endpoint(name=ep.name)
        c.cancel_operation(request={"name": op.operation.name})
        with pytest.raises(gexc.Cancelled):
            op.result(timeout=60)
    finally:
        served.emu.admin({"op_delay": 0})
    assert not c.get_endpoint(name=ep.name).deployed_models
    wait_for(lambda: replica_pids(served.emu.data_dir) == [])
    c.delete_endpoint(name=ep.name).result(timeout=30)


def test_automatic_resources_deploy_serves_and_wait_operation_returns_done(served: Served) -> None:
    from google.cloud import aiplatform_v1 as v1

    c = served.clients.endpoint
    model, ep = _model_and_endpoint(served, "auto", served.dirs["2"])
    op = c.deploy_model(
        endpoint=ep.name,
        deployed_model=v1.DeployedModel(
            model=model,
            automatic_resources=v1.AutomaticResources(min_replica_count=1, max_replica_count=2),
        ),
    )
    waited = c.wait_operation(request={"name": op.operation.name, "timeout": {"seconds": 25}})
    done = (
        waited
        if waited.done
        else op.result(timeout=240) and c.get_operation(request={"name": op.operation.name})
    )
    assert done.done
    ep = c.get_endpoint(name=ep.name)
    (dm,) = ep.deployed_models
    assert dm.id.isdigit() and dict(ep.traffic_split) == {dm.id: 100}  # the only model gets it all
    assert dm.automatic_resources.max_replica_count == 2
    got = served.clients.prediction.predict(endpoint=ep.name, instances=served.x[:2].tolist())
    np.testing.assert_allclose(
        np.array(got.predictions), _reference(served.dirs["2"], served.x[:2]), rtol=1e-5, atol=1e-6
    )
    c.undeploy_model(endpoint=ep.name, deployed_model_id=dm.id).result(timeout=60)
    c.delete_endpoint(name=ep.name).result(timeout=30)

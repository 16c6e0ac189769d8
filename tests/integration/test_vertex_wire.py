"""Wire fidelity of the emulated Vertex AI, checked against Google's v1 API description (the
discovery document google-api-python-client ships, aiplatform.v1.json) through the official
GAPIC clients (REST transport): resource ids as the reference documents them, model etags,
operations.wait's `timeout` query parameter, `$alt=json;enum-encoding=int`, batch job delete
operations pollable through a documented binding, unknown JSON fields refused as Google's front
end refuses them, names by project number, and no verb the API does not document.

(rawPredict's X-Vertex-AI-* headers need a deployed model: test_vertex_deploy.py.)
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import requests
from google.api_core import exceptions as gexc

from tests.integration import _vertex
from tests.integration._vertex import (
    PARENT,
    PARENT_BY_NUMBER,
    TF_IMAGE,
    Clients,
    dedicated,
    project_number,
    raises_status,
    upload_model,
)
from tests.integration.conftest import make_storage_client
from tests.support.emulator import EmulatorProcess

pytestmark = pytest.mark.timeout(180)
emu, clients = _vertex.emu, _vertex.clients  # the shared module fixtures
BUCKET = "wire-bucket"


@pytest.fixture(scope="module")
def artifact(emu: EmulatorProcess) -> str:
    """A model directory the registry accepts (the emulator checks for saved_model.pb only;
    nothing here deploys it)."""
    storage = make_storage_client(emu.url)
    storage.create_bucket(BUCKET)
    storage.bucket(BUCKET).blob("m/saved_model.pb").upload_from_string(b"not deployed")
    return f"gs://{BUCKET}/m/"


def _endpoint(clients: Clients, endpoint_id: str = "", parent: str = PARENT) -> Any:
    from google.cloud import aiplatform_v1 as v1

    op = clients.endpoint.create_endpoint(
        parent=parent, endpoint=v1.Endpoint(display_name="wire"), endpoint_id=endpoint_id
    )
    return op.result(timeout=30)


# -- resource ids ----------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", ["with_underscore", "_lead", "a", "m" * 63, "x-9_y"])
def test_model_ids_the_reference_allows_are_accepted(
    clients: Clients, artifact: str, model_id: str
) -> None:
    res = upload_model(clients, artifact, model_id=model_id)
    assert res.model.endswith(f"/models/{model_id}")


@pytest.mark.parametrize("model_id", ["123", "9lives", "-abc", "m" * 64, "Upper", "a.b"])
def test_model_ids_the_reference_forbids_are_invalid_argument(
    clients: Clients, artifact: str, model_id: str
) -> None:
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT") as err:
        upload_model(clients, artifact, model_id=model_id)
    assert "first character cannot be a number or hyphen" in err.value.message


@pytest.mark.parametrize("endpoint_id", ["abc", "a1-b2", "e" * 63, "7", "123456789"])
def test_endpoint_ids_the_reference_allows_are_accepted(clients: Clients, endpoint_id: str) -> None:
    assert _endpoint(clients, endpoint_id).name.endswith(f"/endpoints/{endpoint_id}")


@pytest.mark.parametrize(
    "endpoint_id", ["0123", "1234567890", "abc-", "a_b", "e" * 64, "Abc", "1a"]
)
def test_endpoint_ids_the_reference_forbids_are_invalid_argument(
    clients: Clients, endpoint_id: str
) -> None:
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT") as err:
        _endpoint(clients, endpoint_id)
    assert "no leading zeros" in err.value.message


def test_deployed_model_ids_must_be_1_to_10_digits(clients: Clients, artifact: str) -> None:
    from google.cloud import aiplatform_v1 as v1

    model = upload_model(clients, artifact, model_id="dmids").model
    ep = _endpoint(clients, "dmids")
    for bad in ("dm-v1", "12345678901", "a"):
        with raises_status(gexc.BadRequest, "INVALID_ARGUMENT") as err:
            clients.endpoint.deploy_model(
                endpoint=ep.name,
                deployed_model=v1.DeployedModel(
                    model=model, id=bad, dedicated_resources=dedicated()
                ),
            )
        assert "1-10 characters" in err.value.message
    assert not clients.endpoint.get_endpoint(name=ep.name).deployed_models


# -- etag -----------------------------------------------------------------------------------


def test_models_carry_an_etag_that_each_update_renews_and_a_stale_one_is_refused(
    clients: Clients, artifact: str
) -> None:
    from google.cloud import aiplatform_v1 as v1
    from google.protobuf import field_mask_pb2

    name = upload_model(clients, artifact, model_id="etagged").model
    first = clients.model.get_model(name=name)
    assert first.etag
    labels = field_mask_pb2.FieldMask(paths=["labels"])
    updated = clients.model.update_model(
        model=v1.Model(name=name, labels={"a": "1"}, etag=first.etag), update_mask=labels
    )
    assert updated.etag and updated.etag != first.etag
    assert clients.model.get_model(name=name).etag == updated.etag
    listed = list(clients.model.list_model_versions(name=name))
    assert [v.etag for v in listed] == [updated.etag]
    with raises_status(gexc.Conflict, "ABORTED"):
        clients.model.update_model(
            model=v1.Model(name=name, labels={"a": "2"}, etag=first.etag), update_mask=labels
        )
    assert dict(clients.model.get_model(name=name).labels) == {"a": "1"}


# -- operations.wait ------------------------------------------------------------------------


def test_wait_operation_returns_at_its_timeout_query_parameter(
    clients: Clients, artifact: str, emu: EmulatorProcess
) -> None:
    from google.cloud import aiplatform_v1 as v1
    from google.protobuf import duration_pb2

    emu.admin({"op_delay": 4})
    try:
        op = clients.model.upload_model(
            request=v1.UploadModelRequest(
                parent=PARENT,
                model_id="waited",
                model=v1.Model(
                    display_name="waited",
                    artifact_uri=artifact,
                    container_spec=v1.ModelContainerSpec(image_uri=TF_IMAGE),
                ),
            )
        )
        started = time.monotonic()
        got = clients.model.wait_operation(
            request={"name": op.operation.name, "timeout": duration_pb2.Duration(nanos=300_000_000)}
        )
        took = time.monotonic() - started
        assert not got.done
        assert 0.2 < took < 2.0, took
        got = clients.model.wait_operation(
            request={"name": op.operation.name, "timeout": duration_pb2.Duration(seconds=20)}
        )
        assert got.done and time.monotonic() - started < 10
    finally:
        emu.admin({"op_delay": 0})
    resp = requests.post(f"{emu.url}/v1/{op.operation.name}:wait?timeout=soon", timeout=10)
    assert resp.status_code == 400
    assert resp.json()["error"]["status"] == "INVALID_ARGUMENT"


# -- enum encoding --------------------------------------------------------------------------


def test_enums_come_back_as_numbers_when_the_client_asks_and_as_names_otherwise(
    clients: Clients, artifact: str, emu: EmulatorProcess
) -> None:
    name = upload_model(clients, artifact, model_id="enums").model
    seen: list[requests.Response] = []
    session = clients.model._transport._session  # the GAPIC REST transport's own session
    session.hooks["response"].append(lambda resp, *a, **kw: seen.append(resp))
    try:
        got = clients.model.get_model(name=name)
    finally:
        session.hooks["response"].pop()
    (resp,) = seen
    assert "enum-encoding=int" in requests.utils.unquote(resp.request.url)
    assert resp.json()["supportedDeploymentResourcesTypes"] == [1]
    assert [t.name for t in got.supported_deployment_resources_types] == ["DEDICATED_RESOURCES"]
    plain = requests.get(f"{emu.url}/v1/{name}", timeout=10).json()
    assert plain["supportedDeploymentResourcesTypes"] == ["DEDICATED_RESOURCES"]
    as_ints = requests.get(
        f"{emu.url}/v1/{name}", params={"$alt": "json;enum-encoding=int"}, timeout=10
    ).json()
    assert as_ints["supportedDeploymentResourcesTypes"] == [1]


# -- batch job delete operation -------------------------------------------------------------


def test_deleting_a_batch_job_returns_an_operation_the_client_can_poll(
    clients: Clients, emu: EmulatorProcess
) -> None:
    from google.cloud import aiplatform_v1 as v1

    job = clients.job.create_batch_prediction_job(
        parent=PARENT,
        batch_prediction_job=v1.BatchPredictionJob(
            display_name="doomed",
            model=f"{PARENT}/models/missing",  # fails at once: nothing to run
            input_config=v1.BatchPredictionJob.InputConfig(
                instances_format="jsonl",
                gcs_source=v1.GcsSource(uris=[f"gs://{BUCKET}/in.jsonl"]),
            ),
            output_config=v1.BatchPredictionJob.OutputConfig(
                predictions_format="jsonl",
                gcs_destination=v1.GcsDestination(output_uri_prefix=f"gs://{BUCKET}/out/"),
            ),
        ),
    )
    deadline = time.monotonic() + 30
    while clients.job.get_batch_prediction_job(name=job.name).state.name != "JOB_STATE_FAILED":
        assert time.monotonic() < deadline, "the job did not fail"
        time.sleep(0.1)
    emu.admin({"op_delay": 1.0})
    try:
        op = clients.job.delete_batch_prediction_job(name=job.name)
        # Under the location: no documented binding polls .../batchPredictionJobs/*/operations/*.
        assert re.fullmatch(r"projects/[^/]+/locations/[^/]+/operations/[0-9]+", op.operation.name)
        assert not op.done()
        op.result(timeout=30)  # polls operations.get: projects/*/locations/*/operations/*
    finally:
        emu.admin({"op_delay": 0})
    with pytest.raises(gexc.NotFound):
        clients.job.get_batch_prediction_job(name=job.name)
    assert job.model == f"{PARENT_BY_NUMBER}/models/missing"  # named as Vertex names it
    assert op.operation.name.startswith(f"{PARENT_BY_NUMBER}/operations/")


# -- unknown fields -------------------------------------------------------------------------


def test_unknown_json_fields_are_refused_as_googles_front_end_refuses_them(
    emu: EmulatorProcess, artifact: str
) -> None:
    # The official clients cannot send an unknown field; a hand-written request can.
    model = {
        "displayName": "x",
        "artifactUri": artifact,
        "containerSpec": {"imageUri": TF_IMAGE, "imageURL": "typo"},
    }
    resp = requests.post(
        f"{emu.url}/v1/{PARENT}/models:upload",
        json={"modelId": "unknown", "model": model},
        timeout=10,
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == {
        "code": 400,
        "message": 'Invalid JSON payload received. Unknown name "imageURL" at '
        "'model.container_spec': Cannot find field.",
        "status": "INVALID_ARGUMENT",
        "errors": resp.json()["error"]["errors"],
    }
    resp = requests.post(
        f"{emu.url}/v1/{PARENT}/endpoints",
        json={"displayName": "x", "trafficSplits": {}},
        timeout=10,
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == (
        'Invalid JSON payload received. Unknown name "trafficSplits": Cannot find field.'
    )
    listed = requests.get(f"{emu.url}/v1/{PARENT}/models", timeout=10).json()
    assert "unknown" not in json.dumps(listed)


# -- project numbers ------------------------------------------------------------------------


def test_names_carry_the_project_number_and_both_forms_resolve(
    clients: Clients, artifact: str, emu: EmulatorProcess
) -> None:
    number = project_number("test-project")
    assert re.fullmatch(r"[1-9][0-9]{11}", number)
    ep = _endpoint(clients, "numbered")
    assert ep.name == f"projects/{number}/locations/us-central1/endpoints/numbered"
    by_id = f"{PARENT}/endpoints/numbered"
    assert clients.endpoint.get_endpoint(name=by_id).name == ep.name
    assert clients.endpoint.get_endpoint(name=ep.name).name == ep.name
    for parent in (PARENT, PARENT_BY_NUMBER):
        names = [e.name for e in clients.endpoint.list_endpoints(parent=parent)]
        assert ep.name in names
    model = upload_model(clients, artifact, model_id="numbered").model
    assert model == f"{PARENT_BY_NUMBER}/models/numbered"
    v2 = upload_model(clients, artifact, parent_model=f"{PARENT}/models/numbered")
    assert (v2.model, v2.model_version_id) == (model, "2")
    got = clients.model.get_model(name=f"{PARENT}/models/numbered@2")
    assert got.name == model
    with raises_status(gexc.Conflict, "ALREADY_EXISTS"):  # one project, whichever form
        _endpoint(clients, "numbered", parent=PARENT_BY_NUMBER)
    # Another project is another number, and its resources stay apart.
    other = "projects/other-project/locations/us-central1"
    assert "/endpoints/numbered" not in json.dumps(
        [e.name for e in clients.endpoint.list_endpoints(parent=other)]
    )
    # Cloud Storage reports the same number as the bucket's projectNumber.
    storage = make_storage_client(emu.url)
    assert storage.get_bucket(BUCKET).project_number == int(number)


# -- verbs ----------------------------------------------------------------------------------


def _discovery_methods() -> list[dict[str, Any]]:
    """Every method of Google's aiplatform v1 discovery document (google-api-python-client)."""
    from importlib import resources

    doc = json.loads(
        resources.files("googleapiclient")
        .joinpath("discovery_cache/documents/aiplatform.v1.json")
        .read_text()
    )
    out: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        out.extend(node.get("methods", {}).values())
        for child in node.get("resources", {}).values():
            walk(child)

    walk(doc)
    return out


def test_the_discovery_document_states_the_rules_these_tests_hold() -> None:
    by_id = {m["id"]: m for m in _discovery_methods()}
    prefix = "aiplatform.projects.locations."
    wait = by_id[prefix + "operations.wait"]
    assert "request" not in wait and wait["parameters"]["timeout"]["location"] == "query"
    endpoint_id = by_id[prefix + "endpoints.create"]["parameters"]["endpointId"]["description"]
    assert "up to 9 characters" in endpoint_id and "no leading zeros" in endpoint_id
    op_bindings = [
        m["flatPath"] for m in _discovery_methods() if m["id"].endswith("operations.get")
    ]
    assert not any("batchPredictionJobs" in p for p in op_bindings)
    assert "v1/projects/{projectsId}/locations/{locationsId}/operations/{operationsId}" in (
        op_bindings
    )


def test_put_is_no_verb_of_the_api_and_changes_nothing(
    clients: Clients, artifact: str, emu: EmulatorProcess
) -> None:
    documented = {
        (m["httpMethod"], m["flatPath"])
        for m in _discovery_methods()
        if m["flatPath"].endswith(("/models/{modelsId}", "/endpoints/{endpointsId}"))
    }
    assert {verb for verb, _ in documented} == {"GET", "PATCH", "DELETE"}
    model = upload_model(clients, artifact, model_id="put", display_name="before").model
    ep = _endpoint(clients, "put")
    for name in (model, ep.name):
        resp = requests.put(
            f"{emu.url}/v1/{name}",
            params={"updateMask": "displayName"},
            json={"displayName": "after"},
            timeout=10,
        )
        assert resp.status_code in (404, 405), resp.text
        assert resp.json()["error"]["code"] == resp.status_code
    assert clients.model.get_model(name=model).display_name == "before"
    assert clients.endpoint.get_endpoint(name=ep.name).display_name == "wire"

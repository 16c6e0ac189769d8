"""The emulated Model Registry through the official GAPIC v1 REST client: versions, aliases,
listing, updates, deletes, operations, and the errors each refusal raises."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from tests.integration import _vertex
from tests.integration._vertex import (
    PARENT,
    PARENT_BY_NUMBER,
    TF_IMAGE,
    Clients,
    put_tree,
    raises_status,
    upload_model,
)
from tests.integration.conftest import make_storage_client
from tests.support.emulator import EmulatorProcess

mnist_dir = _vertex.mnist_dir  # the shared fixtures, visible to this module
emu, clients = _vertex.emu, _vertex.clients

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def artifact(emu: EmulatorProcess, mnist_dir: Any) -> str:
    return put_tree(make_storage_client(emu.url), "models-bucket", "mnist/0001", mnist_dir)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_upload_honours_model_id_and_starts_with_the_default_alias(
    clients: Clients, artifact: str
) -> None:
    res = upload_model(clients, artifact, model_id="first", labels={"team": "a"})
    assert res.model == f"{PARENT_BY_NUMBER}/models/first"
    assert res.model_version_id == "1"
    got = clients.model.get_model(name=res.model)
    assert got.version_id == "1"
    assert list(got.version_aliases) == ["default"]
    assert got.artifact_uri == artifact
    assert got.container_spec.image_uri == TF_IMAGE
    assert dict(got.labels) == {"team": "a"}
    assert got.create_time.timestamp() > 0


def test_reusing_a_model_id_raises_already_exists(clients: Clients, artifact: str) -> None:
    upload_model(clients, artifact, model_id="dup")
    with raises_status(gexc.Conflict, "ALREADY_EXISTS"):
        upload_model(clients, artifact, model_id="dup")


def test_new_versions_under_parent_model_move_aliases(clients: Clients, artifact: str) -> None:
    base = upload_model(clients, artifact, model_id="versioned", aliases=["v1"]).model
    r2 = upload_model(clients, artifact, parent_model=base, aliases=["v2", "default"])
    r3 = upload_model(clients, artifact, parent_model=base, aliases=["v1"])
    assert (r2.model_version_id, r3.model_version_id) == ("2", "3")
    # `models/ID` is the default version; @N and @alias address versions, '@' may come encoded.
    assert clients.model.get_model(name=base).version_id == "2"
    assert clients.model.get_model(name=f"{base}@3").version_id == "3"
    assert clients.model.get_model(name=f"{base}@v1").version_id == "3"  # v1 moved to version 3
    assert list(clients.model.get_model(name=f"{base}@1").version_aliases) == []
    raw = _get_json(clients.model._transport._host + f"/v1/{base}%40v2")
    assert raw["versionId"] == "2"
    versions = list(clients.model.list_model_versions(name=base))
    assert [v.version_id for v in versions] == ["1", "2", "3"]
    assert {v.version_id: list(v.version_aliases) for v in versions} == {
        "1": [],
        "2": ["v2", "default"],
        "3": ["v1"],
    }


def test_merge_version_aliases_adds_moves_and_removes(clients: Clients, artifact: str) -> None:
    base = upload_model(clients, artifact, model_id="aliases").model
    upload_model(clients, artifact, parent_model=base, aliases=["canary"])
    got = clients.model.merge_version_aliases(
        name=f"{base}@1", version_aliases=["canary", "stable"]
    )
    assert sorted(got.version_aliases) == ["canary", "default", "stable"]
    assert list(clients.model.get_model(name=f"{base}@2").version_aliases) == []
    got = clients.model.merge_version_aliases(name=f"{base}@1", version_aliases=["-canary"])
    assert sorted(got.version_aliases) == ["default", "stable"]
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT"):
        clients.model.merge_version_aliases(name=f"{base}@1", version_aliases=["-default"])
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT"):
        clients.model.merge_version_aliases(name=f"{base}@1", version_aliases=["Bad Alias"])


def test_list_filters_by_labels_and_display_name_and_paginates(
    clients: Clients, artifact: str
) -> None:
    for i in range(5):
        upload_model(
            clients,
            artifact,
            model_id=f"listed-{i}",
            display_name=f"listed-{i % 2}",
            labels={"stack": "lists", "idx": str(i)},
        )
    found = list(
        clients.model.list_models(request={"parent": PARENT, "filter": 'labels.stack="lists"'})
    )
    assert sorted(m.name.rsplit("/", 1)[1] for m in found) == [f"listed-{i}" for i in range(5)]
    both = list(
        clients.model.list_models(
            request={"parent": PARENT, "filter": 'labels.stack="lists" AND display_name="listed-1"'}
        )
    )
    assert sorted(m.name.rsplit("/", 1)[1] for m in both) == ["listed-1", "listed-3"]
    pager = clients.model.list_models(
        request={"parent": PARENT, "filter": "labels.stack=lists", "page_size": 2}
    )
    pages = [len(p.models) for p in pager.pages]
    assert pages == [2, 2, 1]
    ordered = list(
        clients.model.list_models(
            request={
                "parent": PARENT,
                "filter": "labels.stack=lists",
                "order_by": "create_time desc",
            }
        )
    )
    assert [m.labels["idx"] for m in ordered] == ["4", "3", "2", "1", "0"]
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT"):
        list(clients.model.list_models(request={"parent": PARENT, "filter": "no_such_field=1"}))


def test_list_returns_the_default_version_of_each_model(clients: Clients, artifact: str) -> None:
    base = upload_model(clients, artifact, model_id="listdefault", labels={"k": "ld"}).model
    upload_model(clients, artifact, parent_model=base, aliases=["default"], labels={"k": "ld"})
    found = list(clients.model.list_models(request={"parent": PARENT, "filter": "labels.k=ld"}))
    assert [(m.name, m.version_id) for m in found] == [(base, "2")]


def test_update_model_patches_labels_and_display_name(clients: Clients, artifact: str) -> None:
    from google.cloud import aiplatform_v1 as v1
    from google.protobuf import field_mask_pb2

    base = upload_model(clients, artifact, model_id="patched", labels={"a": "1"}).model
    got = clients.model.update_model(
        model=v1.Model(name=base, display_name="renamed", labels={"b": "2"}, description="d"),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name", "labels", "description"]),
    )
    assert (got.display_name, dict(got.labels), got.description) == ("renamed", {"b": "2"}, "d")
    assert clients.model.get_model(name=base).display_name == "renamed"
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT"):
        clients.model.update_model(
            model=v1.Model(name=base, artifact_uri="gs://x/y"),
            update_mask=field_mask_pb2.FieldMask(paths=["artifact_uri"]),
        )


def test_delete_version_and_model(clients: Clients, artifact: str) -> None:
    base = upload_model(clients, artifact, model_id="deleted").model
    upload_model(clients, artifact, parent_model=base)
    with raises_status(
        gexc.BadRequest, "FAILED_PRECONDITION"
    ):  # the default version goes with the model only
        clients.model.delete_model_version(name=f"{base}@1")
    clients.model.delete_model_version(name=f"{base}@2").result(timeout=30)
    assert [v.version_id for v in clients.model.list_model_versions(name=base)] == ["1"]
    clients.model.delete_model(name=base).result(timeout=30)
    with pytest.raises(gexc.NotFound):
        clients.model.get_model(name=base)


def test_missing_models_raise_not_found(clients: Clients, artifact: str) -> None:
    with pytest.raises(gexc.NotFound):
        clients.model.get_model(name=f"{PARENT}/models/nope")
    with pytest.raises(gexc.NotFound):
        upload_model(clients, artifact, parent_model=f"{PARENT}/models/nope")
    base = upload_model(clients, artifact, model_id="nover").model
    with pytest.raises(gexc.NotFound):
        clients.model.get_model(name=f"{base}@7")
    with pytest.raises(gexc.NotFound):
        clients.model.delete_model(name=f"{PARENT}/models/nope")


def test_unsupported_image_is_refused_naming_what_is_supported(
    clients: Clients, artifact: str
) -> None:
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT") as err:
        upload_model(
            clients, artifact, image="us-docker.pkg.dev/vertex-ai/prediction/sklearn-gpu.1-3:latest"
        )
    assert "sklearn 1-3 has no GPU image" in str(err.value)
    # A SavedModel under a scikit-learn image: not what that image loads.
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT") as err:
        upload_model(
            clients, artifact, image="us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-3:latest"
        )
    assert "[model.joblib, model.pkl]" in str(err.value)
    for image in (
        "gcr.io/cloud-aiplatform/prediction/tf2-gpu.2-8:latest",
        "europe-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest",
    ):
        assert upload_model(clients, artifact, image=image).model_version_id == "1"


def test_artifact_without_a_saved_model_is_refused(clients: Clients, emu: EmulatorProcess) -> None:
    storage = make_storage_client(emu.url)
    storage.bucket("models-bucket").blob("empty/readme.txt").upload_from_string(b"x")
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT") as err:
        upload_model(clients, "gs://models-bucket/empty/")
    assert "saved_model.pb" in str(err.value)


def test_operations_stay_pending_for_op_delay_and_are_readable_via_v1_and_ui(
    clients: Clients,
    artifact: str,
    emu: EmulatorProcess,
) -> None:
    from google.cloud import aiplatform_v1 as v1

    emu.admin({"op_delay": 1.5})
    try:
        op = clients.model.upload_model(
            request=v1.UploadModelRequest(
                parent=PARENT,
                model_id="slow",
                model=v1.Model(
                    display_name="slow",
                    artifact_uri=artifact,
                    container_spec=v1.ModelContainerSpec(image_uri=TF_IMAGE),
                ),
            )
        )
        name = op.operation.name
        assert name.startswith(f"{PARENT_BY_NUMBER}/models/slow/operations/")
        assert op.done() is False
        assert _get_json(f"{emu.url}/ui/{name}").get("done") is None
        listed = _get_json(f"{emu.url}/v1/{PARENT}/models/slow/operations")["operations"]
        assert [o["name"] for o in listed] == [name]
        started = time.monotonic()
        assert op.result(timeout=30).model_version_id == "1"
        assert time.monotonic() - started > 0.5
        raw = _get_json(f"{emu.url}/v1/{name}")
        assert raw["done"] is True
        assert (
            raw["response"]["@type"]
            == "type.googleapis.com/google.cloud.aiplatform.v1.UploadModelResponse"
        )
        assert raw["metadata"]["@type"].endswith(
            "google.cloud.aiplatform.v1.UploadModelOperationMetadata"
        )
    finally:
        emu.admin({"op_delay": 0})
    with pytest.raises(gexc.NotFound):
        clients.model.get_operation(request={"name": f"{PARENT}/models/slow/operations/123"})


def test_malformed_requests_answer_400_not_500(emu: EmulatorProcess) -> None:
    req = urllib.request.Request(
        f"{emu.url}/v1/{PARENT}/models:upload",
        data=b"{not json",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 400
    body = json.loads(err.value.read())
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    assert emu.health()["status"] == "ok"

"""Emulated Vertex endpoints through the GAPIC v1 REST client: create with client-chosen ids,
get, list with label filters and pages, patch, delete, and the errors each refusal raises.
(Deployments and predictions are in test_vertex_deploy.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from tests.integration import _vertex
from tests.integration._vertex import PARENT, PARENT_BY_NUMBER, Clients, raises_status
from tests.support.emulator import EmulatorProcess

pytestmark = pytest.mark.timeout(120)
emu, clients = _vertex.emu, _vertex.clients  # the shared module fixtures


def _create(clients: Clients, endpoint_id: str = "", **fields: object) -> Any:
    from google.cloud import aiplatform_v1 as v1

    fields.setdefault("display_name", endpoint_id or "ep")
    op = clients.endpoint.create_endpoint(
        parent=PARENT, endpoint=v1.Endpoint(**fields), endpoint_id=endpoint_id
    )
    return op.result(timeout=30)


def test_create_honours_endpoint_id_and_reuse_conflicts(clients: Clients) -> None:
    ep = _create(clients, "chosen", labels={"stack": "s"})
    assert ep.name == f"{PARENT_BY_NUMBER}/endpoints/chosen"
    got = clients.endpoint.get_endpoint(name=ep.name)
    assert (got.display_name, dict(got.labels)) == ("chosen", {"stack": "s"})
    assert not got.deployed_models and not got.traffic_split
    assert got.create_time.timestamp() > 0 and got.etag
    with raises_status(gexc.Conflict, "ALREADY_EXISTS"):
        _create(clients, "chosen")


def test_generated_ids_are_numeric_and_unique(clients: Clients) -> None:
    a, b = _create(clients), _create(clients)
    ida, idb = a.name.rsplit("/", 1)[1], b.name.rsplit("/", 1)[1]
    assert ida.isdigit() and idb.isdigit() and ida != idb


def test_list_filters_labels_and_paginates(clients: Clients) -> None:
    for i in range(3):
        _create(clients, f"listed-{i}", labels={"stack": "paged", "i": str(i)})
    req = {"parent": PARENT, "filter": 'labels.stack="paged"', "page_size": 2}
    pager = clients.endpoint.list_endpoints(request=req)
    assert [len(p.endpoints) for p in pager.pages] == [2, 1]
    names = [e.name.rsplit("/", 1)[1] for e in clients.endpoint.list_endpoints(request=req)]
    assert names == ["listed-0", "listed-1", "listed-2"]
    one = list(
        clients.endpoint.list_endpoints(
            request={"parent": PARENT, "filter": 'labels.stack="paged" AND labels.i="1"'}
        )
    )
    assert [e.name.rsplit("/", 1)[1] for e in one] == ["listed-1"]


def test_patch_updates_labels_and_display_name_and_checks_traffic(clients: Clients) -> None:
    from google.cloud import aiplatform_v1 as v1
    from google.protobuf import field_mask_pb2

    ep = _create(clients, "patched", labels={"a": "1"})
    got = clients.endpoint.update_endpoint(
        endpoint=v1.Endpoint(name=ep.name, display_name="renamed", labels={"b": "2"}),
        update_mask=field_mask_pb2.FieldMask(paths=["display_name", "labels"]),
    )
    assert (got.display_name, dict(got.labels)) == ("renamed", {"b": "2"})
    assert clients.endpoint.get_endpoint(name=ep.name).display_name == "renamed"
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT"):  # nothing deployed to send traffic to
        clients.endpoint.update_endpoint(
            endpoint=v1.Endpoint(name=ep.name, traffic_split={"123": 100}),
            update_mask=field_mask_pb2.FieldMask(paths=["traffic_split"]),
        )


def test_delete_then_get_raises_not_found(clients: Clients) -> None:
    ep = _create(clients, "gone")
    clients.endpoint.delete_endpoint(name=ep.name).result(timeout=30)
    with raises_status(gexc.NotFound, "NOT_FOUND"):
        clients.endpoint.get_endpoint(name=ep.name)
    with raises_status(gexc.NotFound, "NOT_FOUND"):
        clients.endpoint.delete_endpoint(name=ep.name)


def test_bad_endpoint_id_is_invalid_argument(clients: Clients) -> None:
    with raises_status(gexc.BadRequest, "INVALID_ARGUMENT"):
        _create(clients, "Not_Valid!")


def test_predict_on_missing_or_empty_endpoint(clients: Clients) -> None:
    ep = _create(clients, "empty")
    with raises_status(gexc.BadRequest, "FAILED_PRECONDITION"):
        clients.prediction.predict(endpoint=ep.name, instances=[[0.0] * 784])
    with raises_status(gexc.NotFound, "NOT_FOUND"):
        clients.prediction.predict(endpoint=f"{PARENT}/endpoints/nope", instances=[[0.0]])


def test_scripted_faults_and_dropped_responses_key_on_vertex_method_names(
    clients: Clients,
    emu: EmulatorProcess,
) -> None:
    import requests

    emu.clear_request_log()
    emu.admin({"script": [{"method": "createEndpoint", "count": 1, "http_status": 503}]})
    with raises_status(gexc.ServiceUnavailable, "UNAVAILABLE"):
        _create(clients, "faulted")
    with raises_status(gexc.NotFound, "NOT_FOUND"):  # the fault came before any effect
        clients.endpoint.get_endpoint(name=f"{PARENT}/endpoints/faulted")
    emu.admin({"script": [{"method": "createEndpoint", "count": 1, "drop": True}]})
    with pytest.raises((requests.exceptions.ConnectionError, gexc.GoogleAPICallError)):
        _create(clients, "faulted")
    # The create took effect before its answer was lost: a retry meets ALREADY_EXISTS.
    with raises_status(gexc.Conflict, "ALREADY_EXISTS"):
        _create(clients, "faulted")
    assert (
        clients.endpoint.get_endpoint(name=f"{PARENT}/endpoints/faulted").display_name == "faulted"
    )
    entries = [(e["api"], e["mutating"]) for e in emu.read_request_log()]
    assert ("createEndpoint", True) in entries and ("getEndpoint", False) in entries


# The control plane must never load these: TensorFlow belongs in the replica processes, and the
# emulator speaks the wire format itself instead of using Google's SDK or GAPIC clients.
HEAVY_MODULES = ("tensorflow", "keras", "google.cloud.aiplatform")
GAPIC_CLIENTS = ".services."  # e.g. google.cloud.aiplatform_v1.services.endpoint_service


def test_control_plane_stays_light(tmp_path: Path) -> None:
    # A fresh emulator that logs every module it imports (-X importtime), lazy imports included.
    with EmulatorProcess(
        data_dir=tmp_path / "light", env={"PYTHONPROFILEIMPORTTIME": "1"}
    ) as light:
        from google.cloud import aiplatform_v1 as v1

        from tests.integration.conftest import make_storage_client

        clients = _vertex.gapic_clients(light.url)
        ep = clients.endpoint.create_endpoint(
            parent=PARENT, endpoint=v1.Endpoint(display_name="light"), endpoint_id="light"
        ).result(timeout=30)
        assert [e.name for e in clients.endpoint.list_endpoints(parent=PARENT)] == [ep.name]
        clients.endpoint.delete_endpoint(name=ep.name).result(timeout=30)
        make_storage_client(light.url).create_bucket("light-bucket")
        maps = Path(f"/proc/{light.proc.pid}/maps").read_text()  # type: ignore[union-attr]
        assert light.stop() == 0
        log = light.stderr_path.read_text()
    imported = [
        line.rsplit("|", 1)[1].strip()
        for line in log.splitlines()
        if line.startswith("import time:") and "|" in line
    ]
    assert "deployer.emulator" in imported  # the log is the emulator's own
    assert "loopback_guard" in imported  # and the tests' network guard runs in it too
    heavy = [
        m
        for m in imported
        if any(m == h or m.startswith(h + ".") for h in HEAVY_MODULES) or GAPIC_CLIENTS in m
    ]
    assert heavy == []
    assert "libtensorflow" not in maps and "_pywrap_tensorflow" not in maps

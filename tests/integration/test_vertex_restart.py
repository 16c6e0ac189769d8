"""Durability of the emulated Vertex AI: a clean restart and a kill -9 lose nothing, tear
nothing, leave no operation stuck, and bring deployed models back to serving."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.api_core import exceptions as gexc

from tests.integration import _vertex
from tests.integration._vertex import (
    PARENT,
    dedicated,
    gapic_clients,
    put_tree,
    replica_pids,
    upload_model,
    wait_for,
)
from tests.integration.conftest import make_storage_client
from tests.support.emulator import EmulatorProcess

mnist_dir = _vertex.mnist_dir  # the shared fixture, visible to this module

pytestmark = pytest.mark.timeout(400)


def _integrity(data_dir: Path) -> str:
    with sqlite3.connect(data_dir / "vertex.sqlite3") as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def _predict_when_ready(clients: Any, endpoint: str, x: np.ndarray) -> Any:
    """Predict, retrying the 503 a deployed model answers while its replica restarts."""

    def attempt() -> Any:
        try:
            return clients.prediction.predict(endpoint=endpoint, instances=x.tolist())
        except gexc.ServiceUnavailable:
            return None

    return wait_for(attempt, timeout=180, interval=0.5)


def _reference(model_dir: Path, x: np.ndarray) -> np.ndarray:
    from tests.support.savedmodels import reference_predict

    return reference_predict(model_dir, {"flatten_input": x})["output_0"]


def _stored(endpoint: Any) -> Any:
    """The endpoint (as a protobuf message) without its deployed models' live status."""
    pb = type(endpoint).pb(endpoint)
    copy = type(pb)()
    copy.CopyFrom(pb)
    for dm in copy.deployed_models:
        dm.ClearField("status")
    return copy


def test_clean_restart_keeps_models_endpoints_and_serving(
    emulator: EmulatorProcess, mnist_dir: Path
) -> None:
    from google.cloud import aiplatform_v1 as v1

    clients = gapic_clients(emulator.url)
    uri = put_tree(make_storage_client(emulator.url), "restart-bucket", "m/1", mnist_dir)
    model = upload_model(clients, uri, model_id="kept", aliases=["v1"], labels={"k": "v"}).model
    upload_model(clients, uri, parent_model=model, aliases=["v2"])
    ep = clients.endpoint.create_endpoint(
        parent=PARENT, endpoint=v1.Endpoint(display_name="e"), endpoint_id="kept"
    ).result(timeout=30)
    clients.endpoint.deploy_model(
        endpoint=ep.name,
        traffic_split={"0": 100},
        deployed_model=v1.DeployedModel(
            model=f"{model}@v2", id="7", dedicated_resources=dedicated()
        ),
    ).result(timeout=240)
    before_ep = clients.endpoint.get_endpoint(name=ep.name)
    before_versions = list(clients.model.list_model_versions(name=model))

    assert [dm.status.available_replica_count for dm in before_ep.deployed_models] == [1]

    emulator.restart()
    clients = gapic_clients(emulator.url)
    # Everything stored comes back as it was; each DeployedModel's status is live state
    # (replicas serving now, and since when), which a restart resets while replicas start.
    assert _stored(clients.endpoint.get_endpoint(name=ep.name)) == _stored(before_ep)
    assert list(clients.model.list_model_versions(name=model)) == before_versions
    assert clients.model.get_model(name=f"{model}@v2").version_id == "2"
    x = np.random.default_rng(5).random((2, 784), dtype=np.float32)
    got = _predict_when_ready(clients, ep.name, x)
    assert got.deployed_model_id == "7"
    after = clients.endpoint.get_endpoint(name=ep.name)
    assert [dm.status.available_replica_count for dm in after.deployed_models] == [1]
    np.testing.assert_allclose(
        np.array(got.predictions), _reference(mnist_dir, x), rtol=1e-5, atol=1e-6
    )
    (pid,) = replica_pids(emulator.data_dir)  # the old replica did not linger

    # A replica that dies while serving is replaced, as Vertex replaces a failed node.
    os.kill(pid, signal.SIGKILL)
    got = _predict_when_ready(clients, ep.name, x)
    np.testing.assert_allclose(
        np.array(got.predictions), _reference(mnist_dir, x), rtol=1e-5, atol=1e-6
    )
    assert replica_pids(emulator.data_dir) not in ([], [pid])


def test_kill9_during_deploy_then_restart_completes_the_operation(
    emulator: EmulatorProcess,
    mnist_dir: Path,
) -> None:
    from google.cloud import aiplatform_v1 as v1

    clients = gapic_clients(emulator.url)
    uri = put_tree(make_storage_client(emulator.url), "kill-bucket", "m/1", mnist_dir)
    model = upload_model(clients, uri, model_id="killed").model
    ep = clients.endpoint.create_endpoint(
        parent=PARENT, endpoint=v1.Endpoint(display_name="e"), endpoint_id="killed"
    ).result(timeout=30)
    emulator.admin({"op_delay": 20})
    op = clients.endpoint.deploy_model(
        endpoint=ep.name,
        traffic_split={"0": 100},
        deployed_model=v1.DeployedModel(model=model, id="7", dedicated_resources=dedicated()),
    )
    op_name = op.operation.name
    wait_for(lambda: replica_pids(emulator.data_dir), timeout=60)  # the worker is mid-flight
    emulator.kill9()
    # Orphaned replicas notice their emulator is gone and exit by themselves.
    wait_for(lambda: replica_pids(emulator.data_dir) == [], timeout=30)
    assert _integrity(emulator.data_dir) == "ok"

    emulator.start()
    clients = gapic_clients(emulator.url)
    assert clients.endpoint.get_operation(request={"name": op_name}).done is False

    def finished() -> Any:
        got = clients.endpoint.get_operation(request={"name": op_name})
        return got if got.done else None

    done = wait_for(finished, timeout=240, interval=0.5)
    assert not done.HasField("error"), done.error
    endpoint = clients.endpoint.get_endpoint(name=ep.name)
    assert [d.id for d in endpoint.deployed_models] == ["7"] and dict(endpoint.traffic_split) == {
        "7": 100
    }
    x = np.random.default_rng(6).random((1, 784), dtype=np.float32)
    got = _predict_when_ready(clients, ep.name, x)
    np.testing.assert_allclose(
        np.array(got.predictions), _reference(mnist_dir, x), rtol=1e-5, atol=1e-6
    )


def test_kill9_under_write_load_tears_nothing(emulator: EmulatorProcess, mnist_dir: Path) -> None:
    from google.cloud import aiplatform_v1 as v1

    clients = gapic_clients(emulator.url)
    uri = put_tree(make_storage_client(emulator.url), "load-bucket", "m/1", mnist_dir)
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer(prefix: str) -> None:
        c = gapic_clients(emulator.url)
        i = 0
        while not stop.is_set():
            try:
                res = upload_model(
                    c, uri, model_id=f"{prefix}-{i}", labels={"load": "yes"}, timeout=10
                )
                c.endpoint.create_endpoint(
                    parent=PARENT,
                    endpoint=v1.Endpoint(display_name="x"),
                    endpoint_id=f"{prefix}-{i}",
                ).result(timeout=10)
                acknowledged.append(res.model)
            except Exception:
                return
            i += 1

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acknowledged) >= 10, timeout=60)
    emulator.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    assert _integrity(emulator.data_dir) == "ok"
    emulator.start()
    clients = gapic_clients(emulator.url)
    listed = {
        m.name
        for m in clients.model.list_models(
            request={"parent": PARENT, "filter": "labels.load=yes", "page_size": 1000}
        )
    }
    assert set(acknowledged) <= listed  # every acknowledged write survived
    for name in listed:  # and nothing is half-written: every model reads back whole
        got = clients.model.get_model(name=name)
        assert (
            got.version_id == "1"
            and list(got.version_aliases) == ["default"]
            and got.artifact_uri == uri
        )
    for name in sorted(listed)[:5]:  # no operation is left stuck after the crash
        ops = clients.model.list_operations(request={"name": name}).operations
        assert ops and all(op.done for op in ops)

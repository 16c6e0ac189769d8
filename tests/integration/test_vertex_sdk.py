"""The high-level google.cloud.aiplatform SDK against the emulator, unchanged but for the
endpoint and credentials: Model.upload (versions), Endpoint.create, endpoint.deploy (traffic
percentages), endpoint.predict equal to the model in-process, undeploy_all, delete."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration import _vertex
from tests.integration._vertex import (
    TF_IMAGE,
    put_tree,
    replica_pids,
    sdk_session,
    wait_for,
)
from tests.integration.conftest import make_storage_client
from tests.support.emulator import EmulatorProcess

mnist_dir = _vertex.mnist_dir  # the shared fixture, visible to this module
mnist_dir_v2 = _vertex.mnist_dir_v2  # the shared fixture, visible to this module

pytestmark = pytest.mark.timeout(400)


@pytest.fixture
def sdk(emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with sdk_session(emulator.url, "sdk-bucket", monkeypatch) as aiplatform:
        yield aiplatform


def _reference(model_dir: Path, x: np.ndarray) -> np.ndarray:
    from tests.support.savedmodels import reference_predict

    return reference_predict(model_dir, {"flatten_input": x})["output_0"]


def test_sdk_upload_deploy_predict_undeploy_delete(
    sdk: Any,
    emulator: EmulatorProcess,
    mnist_dir: Path,
    mnist_dir_v2: Path,
) -> None:
    storage = make_storage_client(emulator.url)
    a1 = put_tree(storage, "sdk-bucket", "mnist/0001", mnist_dir)
    a2 = put_tree(storage, "sdk-bucket", "mnist/0002", mnist_dir_v2)
    m1 = sdk.Model.upload(
        display_name="mnist",
        artifact_uri=a1,
        serving_container_image_uri=TF_IMAGE,
        labels={"stack": "sdk"},
        staging_bucket="gs://sdk-bucket",
    )
    m2 = sdk.Model.upload(
        display_name="mnist",
        artifact_uri=a2,
        serving_container_image_uri=TF_IMAGE,
        parent_model=m1.resource_name,
        version_aliases=["v2"],
        is_default_version=False,
        labels={"stack": "sdk"},
        staging_bucket="gs://sdk-bucket",
    )
    assert (m1.version_id, m2.version_id) == ("1", "2")
    assert m2.resource_name == m1.resource_name
    assert sdk.Model(m1.resource_name).version_id == "1"  # default stayed on version 1
    assert [m.resource_name for m in sdk.Model.list(filter='labels.stack="sdk"')] == [
        m1.resource_name
    ]
    assert [v.version_id for v in sdk.models.ModelRegistry(m1.resource_name).list_versions()] == [
        "1",
        "2",
    ]

    endpoint = sdk.Endpoint.create(
        display_name="sdk-endpoint", endpoint_id="sdk-endpoint", labels={"stack": "sdk"}
    )
    assert endpoint.resource_name.endswith("/endpoints/sdk-endpoint")
    endpoint.deploy(
        m1,
        machine_type="n1-standard-2",
        min_replica_count=1,
        max_replica_count=2,
        traffic_percentage=100,
    )
    x = np.random.default_rng(3).random((4, 784), dtype=np.float32)
    got = endpoint.predict(instances=x.tolist())
    assert got.model_version_id == "1"
    np.testing.assert_allclose(
        np.array(got.predictions), _reference(mnist_dir, x), rtol=1e-5, atol=1e-6
    )

    endpoint.deploy(
        m2,
        machine_type="n1-standard-4",
        accelerator_type="NVIDIA_TESLA_T4",
        accelerator_count=1,
        traffic_percentage=25,
    )
    split = endpoint.traffic_split
    assert sorted(split.values()) == [25, 75]
    by_version = {d.model_version_id: d.id for d in endpoint.list_models()}
    assert split[by_version["2"]] == 25
    for _ in range(10):
        got = endpoint.predict(instances=x[:1].tolist())
        ref = _reference(mnist_dir if got.model_version_id == "1" else mnist_dir_v2, x[:1])
        np.testing.assert_allclose(np.array(got.predictions), ref, rtol=1e-5, atol=1e-6)

    endpoint.undeploy_all()
    assert endpoint.list_models() == []
    wait_for(lambda: replica_pids(emulator.data_dir) == [])
    endpoint.delete()
    m1.delete()
    assert sdk.Model.list(filter='labels.stack="sdk"') == []
    assert sdk.Endpoint.list(filter='labels.stack="sdk"') == []

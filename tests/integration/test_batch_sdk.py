"""The official SDK's batch prediction against the emulator, unchanged but for endpoint and
credentials: `Model.batch_predict(..., sync=True)` on a model version, then `iter_outputs()`
lists the shards (through a storage client honouring STORAGE_EMULATOR_HOST) and they hold
the model's in-process predictions in input order, plus errors_stats for a bad row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration._vertex import TF_IMAGE, put_tree, sdk_session
from tests.integration.conftest import make_storage_client
from tests.support.emulator import EmulatorProcess

pytestmark = pytest.mark.timeout(400)


@pytest.fixture
def sdk(emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with sdk_session(emulator.url, "sdk-batch", monkeypatch) as aiplatform:
        yield aiplatform


def test_sdk_batch_predict_sync_and_iter_outputs_in_input_order(
    sdk: Any, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    from tests.support.savedmodels import make_mnist_like_model, reference_predict

    model_dir = make_mnist_like_model(tmp_path / "m", hidden=(16,), seed=4)
    storage = make_storage_client(emulator.url)
    artifact = put_tree(storage, "sdk-batch", "models/m", model_dir)
    x = np.random.default_rng(1).random((130, 28, 28), dtype=np.float32)
    rows = [img.tolist() for img in x]
    rows.insert(40, [[1.0, 2.0]])  # the model refuses this one: it goes to errors_stats
    storage.bucket("sdk-batch").blob("in/x.jsonl").upload_from_string(
        "".join(json.dumps(r) + "\n" for r in rows)
    )
    model = sdk.Model.upload(
        display_name="tiny",
        artifact_uri=artifact,
        serving_container_image_uri=TF_IMAGE,
        staging_bucket="gs://sdk-batch",
    )

    job = model.batch_predict(
        job_display_name="sdk-batch",
        gcs_source="gs://sdk-batch/in/x.jsonl",
        gcs_destination_prefix="gs://sdk-batch/out",
        instances_format="jsonl",
        predictions_format="jsonl",
        machine_type="n1-standard-4",
        starting_replica_count=1,
        max_replica_count=1,
        sync=True,
    )

    assert job.state.name == "JOB_STATE_SUCCEEDED"
    assert job.output_info.gcs_output_directory.startswith("gs://sdk-batch/out/prediction-tiny-")
    assert (job.completion_stats.successful_count, job.completion_stats.failed_count) == (130, 1)
    blobs = list(job.iter_outputs())
    names = [b.name.rsplit("/", 1)[-1] for b in blobs]
    assert names == sorted(names) and "prediction.results-00000-of-00001" in names
    results = [
        json.loads(line)
        for b in blobs
        if "results" in b.name
        for line in b.download_as_text().splitlines()
    ]
    errors = [
        json.loads(line)
        for b in blobs
        if "errors_stats" in b.name
        for line in b.download_as_text().splitlines()
    ]
    ref = reference_predict(model_dir, {"flatten_input": x})["output_0"]
    np.testing.assert_allclose(
        np.array([r["prediction"] for r in results]), ref, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(np.array([r["instance"] for r in results]), x)
    assert [e["instance"] for e in errors] == [[[1.0, 2.0]]]
    assert errors[0]["error"]["message"]

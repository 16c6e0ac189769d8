"""The in-process runtime and the version manager, on real SavedModels (no servers)."""

from __future__ import annotations

import base64
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from deployer.serving import runtime
from deployer.serving.batching import BatchingParameters
from deployer.serving.codec import RequestError
from deployer.serving.versions import BaseDirSource, ModelManager, NotServable, Policy, State
from tests.support.savedmodels import (
    make_bytes_model,
    make_mnist_like_model,
    make_two_input_model,
    reference_predict,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "mnist": make_mnist_like_model(root / "mnist", warmup_requests=3),
        "flat": make_mnist_like_model(root / "flat", input_shape=(784,), seed=4),
        "two": make_two_input_model(root / "two"),
        "bytes": make_bytes_model(root / "bytes"),
    }


def test_signature_is_described_without_tf_types(models: dict[str, Path]) -> None:
    model = runtime.load(models["mnist"])
    sig = model.signature
    assert sig.name == "serving_default"
    assert sig.inputs["flatten_input"].shape == (None, 28, 28)
    assert sig.inputs["flatten_input"].dtype_name == "DT_FLOAT"
    assert sig.outputs["output_0"].shape == (None, 10)


def test_predict_instances_equals_the_signature_called_directly(models: dict[str, Path]) -> None:
    x = np.random.default_rng(7).random((5, 784), dtype=np.float32)
    model = runtime.load(models["flat"])
    got = np.array(model.predict_instances(x.tolist()))
    want = reference_predict(models["flat"], {"flatten_input": x})["output_0"]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_two_named_inputs_and_bytes_models(models: dict[str, Path]) -> None:
    two = runtime.load(models["two"])
    body = {"instances": [{"a": [1, 2, 3], "b": [4, 5]}, {"a": [0, 0, 1], "b": [1, 0]}]}
    preds = two.predict_json(body)["predictions"]
    want = reference_predict(models["two"], {"a": [[1, 2, 3], [0, 0, 1]], "b": [[4, 5], [1, 0]]})
    assert [p["label"] for p in preds] == want["label"].tolist()
    np.testing.assert_allclose([p["sum"] for p in preds], want["sum"], rtol=1e-6)

    raw = [b"\x00\x01binary\xff", b"hello"]
    out = runtime.load(models["bytes"]).predict_json(
        {"instances": [{"b64": base64.b64encode(r).decode()} for r in raw]}
    )["predictions"]
    want_b = reference_predict(models["bytes"], {"image_bytes": raw})
    assert [p["length"] for p in out] == [len(r) for r in raw]
    assert [p["bucket"] for p in out] == want_b["bucket"].tolist()
    assert [base64.b64decode(p["echo_bytes"]["b64"]) for p in out] == raw


def test_warmup_replays_the_tf_serving_file_or_sends_one_synthetic_request(
    models: dict[str, Path],
) -> None:
    warm = runtime.load(models["mnist"]).warmup
    assert warm is not None and (warm.source, warm.requests, warm.error) == ("file", 3, None)
    synthetic = runtime.load(models["two"]).warmup
    assert synthetic is not None and (synthetic.source, synthetic.requests) == ("synthetic", 1)


def test_unknown_signature_and_non_savedmodel_dirs_fail_clearly(
    models: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(RequestError, match="signature 'nope' not found"):
        runtime.load(models["mnist"], warmup=False).predict_json(
            {"signature_name": "nope", "instances": [1]}
        )
    with pytest.raises(runtime.ModelLoadError, match=r"no saved_model.pb"):
        runtime.load(tmp_path)


def _publish(src: Path, base: Path, version: int) -> None:
    """Copy a model in as a new version atomically (copy aside, then rename), as TF Serving
    advises."""
    tmp = base / f".tmp-{version}"
    shutil.copytree(src, tmp)
    os.rename(tmp, base / f"{version:04d}")


def _serving_version(manager: ModelManager) -> int:
    with manager.lease(None) as slot:
        return slot.version


def test_availability_policy_keeps_old_version_until_new_one_is_warm(
    models: dict[str, Path], tmp_path: Path
) -> None:
    _publish(models["mnist"], tmp_path, 1)
    seen_while_loading: list[int] = []

    def loader(path: Path) -> runtime.ServedModel:
        if path.name == "0002":  # the old version must still answer while the new one loads
            seen_while_loading.append(_serving_version(manager))
        return runtime.load(path, warmup=False)

    manager = ModelManager(
        "m", BaseDirSource(tmp_path), batching=BatchingParameters(), loader=loader
    )
    manager.reconcile()
    assert _serving_version(manager) == 1
    _publish(models["flat"], tmp_path, 2)
    manager.reconcile()
    assert seen_while_loading == [1]
    assert [(s["version"], s["state"]) for s in manager.statuses()] == [
        ("2", "AVAILABLE"),
        ("1", "END"),
    ]
    with pytest.raises(NotServable, match=r"Specific\(m, 1\)"), manager.lease(1):
        pass
    manager.stop()


def test_resource_policy_unloads_before_loading(models: dict[str, Path], tmp_path: Path) -> None:
    _publish(models["mnist"], tmp_path, 1)
    states_at_load: list[str] = []

    def loader(path: Path) -> runtime.ServedModel:
        states_at_load.append(",".join(s["state"] for s in manager.statuses()))
        return runtime.load(path, warmup=False)

    manager = ModelManager(
        "m", BaseDirSource(tmp_path), batching=None, policy=Policy.RESOURCE, loader=loader
    )
    manager.reconcile()
    _publish(models["mnist"], tmp_path, 2)
    manager.reconcile()
    assert states_at_load[1] == "LOADING,END"  # v2 loading, v1 already gone
    assert _serving_version(manager) == 2
    manager.stop()


def test_unloading_waits_for_in_flight_requests(models: dict[str, Path], tmp_path: Path) -> None:
    _publish(models["mnist"], tmp_path, 1)
    manager = ModelManager("m", BaseDirSource(tmp_path), batching=None)
    manager.reconcile()
    release = threading.Event()
    holding = threading.Event()

    def slow_request() -> None:
        with manager.lease(None) as slot:
            holding.set()
            release.wait(5)
            assert slot.model is not None  # still loaded while we use it

    worker = threading.Thread(target=slow_request)
    worker.start()
    holding.wait(5)
    _publish(models["mnist"], tmp_path, 2)
    swapper = threading.Thread(target=manager.reconcile)
    swapper.start()
    deadline = time.monotonic() + 10
    while manager.statuses(1)[0]["state"] != "UNLOADING" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert manager.statuses(1)[0]["state"] == "UNLOADING"
    assert _serving_version(manager) == 2  # new requests already go to the new version
    release.set()
    worker.join(5)
    swapper.join(10)
    assert manager.statuses(1)[0]["state"] == State.END.value
    manager.stop()


def test_a_broken_new_version_leaves_the_old_one_serving(
    models: dict[str, Path], tmp_path: Path
) -> None:
    _publish(models["mnist"], tmp_path, 1)
    manager = ModelManager("m", BaseDirSource(tmp_path), batching=None)
    manager.reconcile()
    broken = tmp_path / "0002"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a protobuf")
    manager.reconcile()
    v2 = manager.statuses(2)[0]
    assert v2["state"] == "END" and v2["status"]["error_code"] == "UNKNOWN"
    assert v2["status"]["error_message"]  # the load error, reported as TF Serving does
    assert _serving_version(manager) == 1
    manager.stop()


def test_tensorflow_is_imported_without_scikit_learn_which_stays_importable() -> None:
    # A replica's ready time is mostly `import tensorflow`; Keras's optional scikit-learn
    # wrapper would add about a second of it. Fresh process: this one may have TF already.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from deployer.serving import runtime\n"
        "tf = runtime.import_tensorflow()\n"
        "assert 'tensorflow' in sys.modules and 'sklearn' not in sys.modules\n"
        "import sklearn\n"
        "print('ok', tf.constant(2).numpy() * 2)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["ok", "4"]

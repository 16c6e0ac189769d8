"""deployer.wire.savedmodel reads signatures without TensorFlow: checked against TensorFlow's own
reading of the same SavedModels (float, two-input, string, decode_raw, Keras-exported)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from deployer.wire.savedmodel import SignatureError, read_signature
from tests.support.savedmodels import make_bytes_model, make_mnist_like_model, make_two_input_model


def _tf_view(
    model_dir: Path, name: str = "serving_default"
) -> dict[str, tuple[str, tuple[int, ...] | None]]:
    """Input name -> (dtype, shape with -1 for None) as TensorFlow loads the signature."""
    fn = tf.saved_model.load(str(model_dir)).signatures[name]
    _, specs = fn.structured_input_signature
    out = {}
    for key, spec in specs.items():
        dims = spec.shape.as_list() if spec.shape.rank is not None else None
        out[key] = (
            types_pb2.DataType.Name(spec.dtype.as_datatype_enum),
            None if dims is None else tuple(-1 if d is None else d for d in dims),
        )
    return out


def _ours(model_dir: Path) -> dict[str, tuple[str, tuple[int, ...] | None]]:
    return {t.name: (t.dtype, t.shape) for t in read_signature(model_dir).inputs}


@pytest.mark.timeout(240)
def test_inputs_match_tensorflow_for_every_kind_of_model(tmp_path: Path) -> None:
    models = {
        "mnist": make_mnist_like_model(tmp_path / "mnist", hidden=(8,)),
        "flat": make_mnist_like_model(tmp_path / "flat", hidden=(8,), input_shape=(784,)),
        "two": make_two_input_model(tmp_path / "two"),
        "bytes": make_bytes_model(tmp_path / "bytes"),
        "raw": make_mnist_like_model(tmp_path / "raw", hidden=(8,), raw_bytes_input=True),
    }
    keras = tf.keras.Sequential(
        [
            tf.keras.Input((4,), dtype="int32", name="ids"),
            tf.keras.layers.Embedding(10, 3),
            tf.keras.layers.Flatten(),
        ]
    )
    keras.export(str(tmp_path / "keras"))
    models["keras"] = tmp_path / "keras"
    for name, path in models.items():
        assert _ours(path) == _tf_view(path), name
    assert _ours(models["two"]) == {"a": ("DT_FLOAT", (-1, 3)), "b": ("DT_FLOAT", (-1, 2))}
    assert read_signature(models["raw"]).decode_raw_types == {"DT_FLOAT"}
    assert read_signature(models["mnist"]).decode_raw_types == frozenset()
    assert read_signature(models["bytes"]).decode_raw_types == frozenset()
    outputs = {t.name: t.dtype for t in read_signature(models["bytes"]).outputs}
    assert outputs == {"length": "DT_INT32", "bucket": "DT_INT64", "echo_bytes": "DT_STRING"}


def test_unreadable_models_raise_signature_errors_that_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SignatureError, match=r"cannot read .*saved_model.pb"):
        read_signature(tmp_path)
    (tmp_path / "saved_model.pb").write_bytes(b"\xff" * 40)
    with pytest.raises(SignatureError, match=r"saved_model.pb is not a readable SavedModel"):
        read_signature(tmp_path)


@pytest.mark.timeout(120)
def test_a_missing_signature_lists_those_present(tmp_path: Path) -> None:
    path = make_two_input_model(tmp_path / "two")
    with pytest.raises(SignatureError, match=r"no signature 'predict' \(it has: serving_default\)"):
        read_signature(path, "predict")

"""Builders of small, real SavedModels for tests and benchmarks (shared by every engineer).

Owns: deterministic, training-free SavedModels written with `tf.saved_model.save` on a
`tf.Module` (no Keras: a build takes ~1 s, not ~5 s), plus a TF Serving warmup file writer.
Must not: train anything, touch the network, or depend on the serving runtime (tests compare
the runtime against these models called in-process).

Builders (each returns the SavedModel directory it wrote, creating parents):

- `make_mnist_like_model(path, *, input_shape=(28, 28), hidden=(300, 100), seed=0,
  warmup_requests=0)`: MLP 784-300-100-10 with fixed random weights.
  Signature `serving_default`: input `flatten_input` float32 `[None, *input_shape]`
  (use `input_shape=(784,)` for flat vectors) -> output `output_0` float32 `[None, 10]`
  (softmax). `raw_bytes_input=True`: the same model behind input `image_bytes` string
  `[None]`, each the raw little-endian float32 bytes of one image (`tf.io.decode_raw`; send
  `{"b64": ...}` in JSON). `warmup_requests=N` also writes `assets.extra/tf_serving_warmup_requests`
  with N PredictionLog records (TF Serving's format).
- `make_two_input_model(path, *, seed=0)`: inputs `a` float32 `[None, 3]` and `b` float32
  `[None, 2]` -> outputs `sum` float32 `[None, 4]` (a@Wa + b@Wb) and `label` int64 `[None]`
  (argmax of `sum`).
- `make_bytes_model(path)`: input `image_bytes` string `[None]` (send `{"b64": ...}` in JSON)
  -> outputs `length` int32 `[None]` (byte count), `bucket` int64 `[None]`
  (`tf.strings.to_hash_bucket_fast(x, 1000)`), `echo_bytes` string `[None]` (the input back;
  TF Serving's REST API answers outputs named `*_bytes` as `{"b64": ...}`).
- `make_versioned_base(base, versions=(1, 2), builder=make_mnist_like_model)`: a TF Serving
  base dir with `0001`, `0002`, ... subdirs; version k is built with `seed=k` so versions give
  different predictions.
- `write_warmup_file(model_dir, requests)`: write `assets.extra/tf_serving_warmup_requests`
  from `[{input_name: ndarray}, ...]`.

`reference_predict(model_dir, inputs)` calls the saved signature in-process and returns numpy
outputs: the ground truth a served prediction must equal.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

WARMUP_RELPATH = Path("assets.extra") / "tf_serving_warmup_requests"


def _tf() -> Any:
    import tensorflow as tf  # lazy: importing this module must stay cheap

    return tf


def make_mnist_like_model(
    path: str | os.PathLike[str],
    *,
    input_shape: Sequence[int] = (28, 28),
    hidden: Sequence[int] = (300, 100),
    seed: int = 0,
    warmup_requests: int = 0,
    raw_bytes_input: bool = False,
) -> Path:
    """MNIST-shaped MLP with fixed random weights; see the module docstring."""
    if raw_bytes_input and warmup_requests:
        raise ValueError("warmup records are written for the float input only")
    tf = _tf()
    out = Path(path)
    rng = np.random.default_rng(seed)
    n_in = int(np.prod(input_shape))
    sizes = [n_in, *hidden, 10]
    weights = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        # Glorot-ish scale keeps the softmax away from one-hot, so rounding bugs show.
        w = rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=(fan_in, fan_out)).astype(np.float32)
        b = rng.normal(0.0, 0.05, size=(fan_out,)).astype(np.float32)
        weights.append((tf.Variable(w), tf.Variable(b)))

    class Mlp(tf.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.layers = weights

        @tf.function(
            input_signature=[tf.TensorSpec([None, *input_shape], tf.float32, name="flatten_input")]
        )
        def serve(self, flatten_input: Any) -> dict[str, Any]:
            x = tf.reshape(flatten_input, [-1, n_in])
            for i, (w, b) in enumerate(self.layers):
                x = tf.matmul(x, w) + b
                x = tf.nn.relu(x) if i < len(self.layers) - 1 else tf.nn.softmax(x)
            return {"output_0": x}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve_raw(self, image_bytes: Any) -> dict[str, Any]:
            return self.serve(
                tf.reshape(tf.io.decode_raw(image_bytes, tf.float32), [-1, *input_shape])
            )

    module = Mlp()
    out.parent.mkdir(parents=True, exist_ok=True)
    serving = module.serve_raw if raw_bytes_input else module.serve
    tf.saved_model.save(module, str(out), signatures={"serving_default": serving})
    if warmup_requests:
        wrng = np.random.default_rng(1000 + seed)
        write_warmup_file(
            out,
            [
                {"flatten_input": wrng.random((1, *input_shape), dtype=np.float32)}
                for _ in range(warmup_requests)
            ],
        )
    return out


def make_two_input_model(path: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """Two named float inputs, two outputs (float and int64); see the module docstring."""
    tf = _tf()
    out = Path(path)
    rng = np.random.default_rng(seed)
    wa = tf.Variable(rng.normal(size=(3, 4)).astype(np.float32))
    wb = tf.Variable(rng.normal(size=(2, 4)).astype(np.float32))

    class TwoInputs(tf.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.wa, self.wb = wa, wb

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 3], tf.float32, name="a"),
                tf.TensorSpec([None, 2], tf.float32, name="b"),
            ]
        )
        def serve(self, a: Any, b: Any) -> dict[str, Any]:
            total = tf.matmul(a, self.wa) + tf.matmul(b, self.wb)
            return {"sum": total, "label": tf.argmax(total, axis=1)}

    module = TwoInputs()
    out.parent.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.serve})
    return out


def make_bytes_model(path: str | os.PathLike[str]) -> Path:
    """One string input taking raw bytes (b64 in JSON); see the module docstring."""
    tf = _tf()
    out = Path(path)

    class Bytes(tf.Module):  # type: ignore[misc,name-defined]
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(self, image_bytes: Any) -> dict[str, Any]:
            return {
                "length": tf.strings.length(image_bytes),
                "bucket": tf.strings.to_hash_bucket_fast(image_bytes, 1000),
                "echo_bytes": tf.identity(image_bytes),
            }

    module = Bytes()
    out.parent.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.serve})
    return out


def make_versioned_base(
    base: str | os.PathLike[str],
    versions: Sequence[int] = (1, 2),
    builder: Callable[..., Path] = make_mnist_like_model,
    **kwargs: Any,
) -> Path:
    """A TF Serving model base dir: `base/0001`, `base/0002`, ... (version k uses seed=k)."""
    root = Path(base)
    for v in versions:
        builder(root / f"{v:04d}", seed=v, **kwargs)
    return root


def write_warmup_file(
    model_dir: str | os.PathLike[str],
    requests: Sequence[Mapping[str, np.ndarray]],
    *,
    model_name: str = "model",
    signature_name: str = "serving_default",
) -> Path:
    """Write TF Serving's warmup file: a TFRecord of `PredictionLog` protos."""
    tf = _tf()
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    target = Path(model_dir) / WARMUP_RELPATH
    target.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(target)) as writer:
        for inputs in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name)
            )
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return target


def reference_predict(
    model_dir: str | os.PathLike[str],
    inputs: Mapping[str, Any],
    *,
    signature_name: str = "serving_default",
) -> dict[str, np.ndarray]:
    """Call the SavedModel's signature in-process: the ground truth for served predictions."""
    tf = _tf()
    loaded = tf.saved_model.load(str(model_dir))
    fn = loaded.signatures[signature_name]
    specs = fn.structured_input_signature[1]
    feed = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()}
    return {k: v.numpy() for k, v in fn(**feed).items()}

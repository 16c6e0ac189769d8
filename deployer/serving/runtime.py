"""Load a SavedModel and call its signatures: the in-process core of the serving runtime.

Owns: TensorFlow process settings (threads, GPU memory), loading one SavedModel directory,
describing its signatures without TF types (`codec.SignatureInfo`), calling a signature on numpy
arrays, and warmup (TF Serving's `assets.extra/tf_serving_warmup_requests`, else one synthetic
request). Must not: speak HTTP or gRPC, batch, or know about versions (see `server`, `batching`,
`versions`). TensorFlow is imported lazily so the CLI can import this module's callers cheaply.

In-process API (tests, benchmarks, the batch engine):

    from deployer.serving import runtime
    model = runtime.load("models/my_mnist_model/0001")
    model.signature                     # SignatureInfo of serving_default: .inputs / .outputs
    model.predict_instances(X.tolist()) # row format in, list of predictions out (as REST)
    model.predict_json({"instances": [...]})   # the full TF Serving REST body -> response dict
    model.run({"flatten_input": X})     # checked numpy arrays in, {output: ndarray} out
"""

from __future__ import annotations

import importlib.abc
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deployer.serving.codec import (
    RequestError,
    SignatureInfo,
    TensorInfo,
    check_arrays,
    decode_json,
    encode_json,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
log = logging.getLogger("deployer.serving")

DEFAULT_SIGNATURE = "serving_default"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving's cap on replayed warmup records


class ModelLoadError(RuntimeError):
    """The SavedModel could not be loaded or warmed up."""


class _Refuse(importlib.abc.MetaPathFinder):
    """Makes the named top-level packages unimportable while installed."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name.partition(".")[0] in self.names:
            raise ImportError(f"{name} is not imported while TensorFlow loads (replica start)")
        return None


# Optional packages TensorFlow's import pulls in that no SavedModel needs: Keras's scikit-learn
# wrapper imports scikit-learn, about 1 s of CPU of the replica's ~3.5 s TensorFlow import
# (python -X importtime); Keras treats it as optional and skips the wrapper.
_NOT_FOR_TENSORFLOW = frozenset({"sklearn"})


def import_tensorflow() -> Any:
    """`import tensorflow`, the first time without the optional packages it does not need
    (`_NOT_FOR_TENSORFLOW`): a replica's ready time is mostly this import. They stay
    importable afterwards."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    refuse = _Refuse(_NOT_FOR_TENSORFLOW - sys.modules.keys())
    sys.meta_path.insert(0, refuse)
    try:
        import tensorflow as tf
    finally:
        sys.meta_path.remove(refuse)
    return tf


def configure_tensorflow(
    *,
    intra_op_threads: int = 0,
    inter_op_threads: int = 0,
    gpu_memory_growth: bool = True,
    gpu_memory_limit_mb: int | None = None,
) -> dict[str, Any]:
    """Process-wide TF settings; call once, before loading. 0 threads = TensorFlow's default.

    On a GPU, several replica processes share one card only if none grabs all memory: either
    memory growth (default) or a fixed per-process limit. Returns what was applied (for logs).
    """
    tf = import_tensorflow()

    if intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
    if inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        if gpu_memory_limit_mb:
            tf.config.set_logical_device_configuration(
                gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=gpu_memory_limit_mb)]
            )
        elif gpu_memory_growth:
            tf.config.experimental.set_memory_growth(gpu, True)
    return {
        "intra_op_threads": intra_op_threads or "default",
        "inter_op_threads": inter_op_threads or "default",
        "gpus": len(gpus),
        "gpu_memory": (
            f"limit {gpu_memory_limit_mb} MB"
            if gpu_memory_limit_mb
            else "growth"
            if gpu_memory_growth
            else "all"
        ),
    }


def threads_for_share(share: int, cpus: int | None = None) -> tuple[int, int]:
    """(intra, inter) op threads for one of `share` replica processes splitting the CPUs.

    Without a split, N replicas each start cpus-wide pools and oversubscribe the machine N times;
    small models gain little from inter-op parallelism, so it is capped at 2."""
    cpus = cpus or os.cpu_count() or 1
    intra = max(1, cpus // max(1, share))
    return intra, max(1, min(2, intra))


def _tensor_info(name: str, spec: Any) -> TensorInfo:
    from tensorflow.core.framework import types_pb2

    dtype = np.dtype(object) if spec.dtype.name == "string" else np.dtype(spec.dtype.as_numpy_dtype)
    shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
    return TensorInfo(
        name=name,
        dtype=dtype,
        dtype_name=types_pb2.DataType.Name(spec.dtype.as_datatype_enum),
        shape=shape,
    )


@dataclass
class WarmupReport:
    source: str  # "file" (assets.extra replayed), "synthetic", or "none"
    requests: int = 0  # records replayed successfully
    seconds: float = 0.0
    error: str | None = None  # a synthetic warmup failure is logged, not fatal


@dataclass
class ServedModel:
    """One loaded SavedModel directory. Thread-safe: signatures may be called concurrently."""

    path: Path
    signatures: dict[str, SignatureInfo]
    _functions: dict[str, Any] = field(repr=False)
    _loaded: Any = field(repr=False)
    warmup: WarmupReport | None = None

    @property
    def default_signature_name(self) -> str:
        return (
            DEFAULT_SIGNATURE
            if DEFAULT_SIGNATURE in self.signatures
            else next(iter(self.signatures))
        )

    @property
    def signature(self) -> SignatureInfo:
        return self.signatures[self.default_signature_name]

    def signature_for(self, name: str | None) -> SignatureInfo:
        key = name or self.default_signature_name
        sig = self.signatures.get(key)
        if sig is None:
            raise RequestError(
                f"signature '{key}' not found; the model has {sorted(self.signatures)}"
            )
        return sig

    def run(
        self,
        inputs: Mapping[str, np.ndarray],
        signature_name: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Call a signature on arrays already checked against it (see `codec.check_arrays`)."""
        fn = self._functions[signature_name or self.default_signature_name]
        result = fn(**inputs)
        return {k: v.numpy() for k, v in result.items()}

    def predict_json(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A TF Serving REST predict body -> its response body (no batching)."""
        sig = self.signature_for(body.get("signature_name"))
        arrays, row = decode_json(body, sig)
        return encode_json(self.run(arrays, sig.name), row_format=row)

    def predict_instances(
        self, instances: list[Any], signature_name: str | None = None
    ) -> list[Any]:
        """Row-format instances -> predictions, exactly as the REST API would answer them."""
        body = {"instances": instances, "signature_name": signature_name}
        result: list[Any] = self.predict_json(body)["predictions"]
        return result

    def signature_def_map(self) -> Any:
        """The SavedModel's SignatureDefMap proto (for GetModelMetadata), read from
        saved_model.pb."""
        from tensorflow.core.protobuf import saved_model_pb2
        from tensorflow_serving.apis import get_model_metadata_pb2

        saved = saved_model_pb2.SavedModel()
        saved.ParseFromString((self.path / "saved_model.pb").read_bytes())
        out = get_model_metadata_pb2.SignatureDefMap()
        for key, sig_def in saved.meta_graphs[0].signature_def.items():
            out.signature_def[key].CopyFrom(sig_def)
        return out

    def synthetic_inputs(self, signature_name: str | None = None) -> dict[str, np.ndarray]:
        """One instance of zeros (empty strings) shaped like the signature's inputs."""
        sig = self.signature_for(signature_name)
        arrays: dict[str, np.ndarray] = {}
        for name, info in sig.inputs.items():
            shape = tuple(1 if d is None else d for d in (info.shape or (1,)))
            if info.is_string:
                arrays[name] = np.full(shape, b"", dtype=object)
            else:
                arrays[name] = np.zeros(shape, dtype=info.dtype)
        return arrays


def load(path: str | os.PathLike[str], *, warmup: bool = True) -> ServedModel:
    """Load one SavedModel directory (not a versioned base dir) and warm it up."""
    tf = import_tensorflow()

    root = Path(path)
    if not (root / "saved_model.pb").is_file() and not (root / "saved_model.pbtxt").is_file():
        raise ModelLoadError(f"{root} is not a SavedModel directory (no saved_model.pb)")
    try:
        loaded = tf.saved_model.load(str(root))
    except Exception as exc:  # TF raises a zoo of types for corrupt models
        raise ModelLoadError(f"could not load the SavedModel at {root}: {exc}") from exc
    functions = dict(loaded.signatures)
    if not functions:
        raise ModelLoadError(f"the SavedModel at {root} has no serving signatures")
    signatures = {
        key: SignatureInfo(
            name=key,
            inputs={
                k: _tensor_info(k, s) for k, s in sorted(fn.structured_input_signature[1].items())
            },
            outputs={k: _tensor_info(k, s) for k, s in sorted(fn.structured_outputs.items())},
        )
        for key, fn in functions.items()
    }
    model = ServedModel(path=root, signatures=signatures, _functions=functions, _loaded=loaded)
    if warmup:
        model.warmup = run_warmup(model, model.run)
    return model


def run_warmup(
    model: ServedModel, call: Callable[[dict[str, np.ndarray], str | None], Any]
) -> WarmupReport:
    """Replay the warmup file through `call` if there is one (a failure is fatal, as in TF
    Serving), else one synthetic request (a failure is logged: e.g. an image decoder fed b"")."""
    start = time.perf_counter()
    warm_file = model.path / WARMUP_FILE
    if warm_file.is_file():
        report = WarmupReport(source="file")
        for sig_name, arrays in read_warmup_file(warm_file):
            try:
                sig = model.signature_for(sig_name)
                call(check_arrays(sig, arrays), sig.name)
            except Exception as exc:
                raise ModelLoadError(
                    f"warmup record {report.requests} of {warm_file} failed: {exc}"
                ) from exc
            report.requests += 1
    else:
        report = WarmupReport(source="synthetic")
        try:
            call(model.synthetic_inputs(), None)
            report.requests = 1
        except Exception as exc:
            report.error = str(exc).splitlines()[0][:200]
            log.warning("synthetic warmup request failed (ignored): %s", report.error)
    report.seconds = time.perf_counter() - start
    return report


def read_warmup_file(path: Path) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Predict requests from a TFRecord of PredictionLog protos: [(signature_name, arrays)]."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    requests: list[tuple[str, dict[str, np.ndarray]]] = []
    for raw in tf.data.TFRecordDataset(str(path)).take(MAX_WARMUP_RECORDS):
        entry = prediction_log_pb2.PredictionLog()
        entry.ParseFromString(raw.numpy())
        kind = entry.WhichOneof("log_type")
        if kind != "predict_log":
            raise ModelLoadError(
                f"warmup file {path}: only predict_log records are supported, got {kind}"
            )
        req = entry.predict_log.request
        arrays = {k: tf.make_ndarray(v) for k, v in req.inputs.items()}
        requests.append((req.model_spec.signature_name or DEFAULT_SIGNATURE, arrays))
    return requests

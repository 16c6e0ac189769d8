"""The replica's batch path: instances as one numpy array in, outputs as arrays out.

Owns `POST /v1/models/NAME[/versions/N]:predictArrays` (our extension, like `/stats`; TF
Serving has no such route): the body is one .npy array holding the instances of a
single-input signature (row format: the first dimension is the batch), any numeric dtype the
signature's dtype can be cast from; the answer is an .npz of the signature's outputs. The
emulator's batch jobs use it so that no instance becomes a Python object per value on either
side; the model is called once per request (no dynamic batching: the request is the batch).
Numeric outputs only: a string output is a 400 that tells the caller to use `:predict`.

Must not: speak HTTP (rest.py routes here) or import TensorFlow (the ModelServer runs it).
"""

from __future__ import annotations

import io

import numpy as np

from deployer.serving.server import ModelServer, ServingError
from deployer.serving.versions import NotServable

ACTION = ":predictArrays"
CONTENT_TYPE = "application/x-npz"


def predict_npy(model_server: ModelServer, body: bytes, version: int | None) -> bytes:
    """A .npy body of instances -> the .npz of the outputs (ServingError on bad input)."""
    try:
        instances = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ServingError(
            "INVALID_ARGUMENT", 400, f"{ACTION} takes one .npy array as its body: {exc}"
        ) from exc
    if not isinstance(instances, np.ndarray) or instances.ndim == 0:
        raise ServingError(
            "INVALID_ARGUMENT", 400, f"{ACTION} takes one .npy array of instances (rows)"
        )
    try:
        with model_server.manager.lease(version) as slot:
            assert slot.model is not None
            names = list(slot.model.signature.inputs)
    except NotServable as exc:
        raise ServingError("NOT_FOUND", 404, str(exc)) from exc
    if len(names) != 1:
        raise ServingError(
            "INVALID_ARGUMENT",
            400,
            f"{ACTION} serves single-input signatures; this one takes {names}: use :predict",
        )
    _, _, outputs, _ = model_server.predict_arrays(
        version, None, {names[0]: instances}, batching=False
    )
    for name, array in outputs.items():
        if array.dtype == object or array.dtype.kind in "SU":
            raise ServingError(
                "INVALID_ARGUMENT", 400, f"output '{name}' holds strings: use :predict"
            )
    buf = io.BytesIO()
    np.savez(buf, **outputs)  # type: ignore[arg-type]  # numpy's stub types **kwds wrongly
    return buf.getvalue()

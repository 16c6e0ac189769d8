"""The model server: one predict path shared by the REST and gRPC front ends.

Owns: `ModelServer` (lease a version, pick the signature, check the inputs, run them through the
batcher or straight through the model, map failures to TF Serving's error codes) and
`ServingError`. The process around it (bind, load, drain) is `process.run_model_server`.
Must not: parse HTTP or protobuf (see `rest` and `grpc_api`), or import the front ends (they
import this module).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from deployer.httpserve import to_thread
from deployer.serving.batching import BatcherClosed, QueueFull
from deployer.serving.codec import (
    RequestError,
    SignatureInfo,
    check_arrays,
    decode_json,
    encode_json,
)
from deployer.serving.versions import ModelManager, NotServable

log = logging.getLogger("deployer.serving")


class ServingError(Exception):
    """A request failure with TF Serving's canonical code and the matching HTTP status."""

    def __init__(self, code: str, http_status: int, message: str) -> None:
        super().__init__(message)
        self.code = code  # gRPC StatusCode name, e.g. "INVALID_ARGUMENT"
        self.http_status = http_status
        self.message = message


def _map_error(exc: Exception) -> ServingError:
    if isinstance(exc, ServingError):
        return exc
    if isinstance(exc, RequestError):
        return ServingError("INVALID_ARGUMENT", 400, str(exc))
    if isinstance(exc, NotServable):
        return ServingError("NOT_FOUND", 404, str(exc))
    if isinstance(exc, (QueueFull, BatcherClosed)):
        return ServingError("UNAVAILABLE", 503, str(exc))
    try:  # errors raised inside the graph (e.g. a bad image) are the caller's input's fault
        import tensorflow as tf

        if isinstance(exc, tf.errors.InvalidArgumentError):
            return ServingError("INVALID_ARGUMENT", 400, exc.message.splitlines()[0])
    except ImportError:  # pragma: no cover
        pass
    log.exception("predict failed", exc_info=exc)
    return ServingError("INTERNAL", 500, f"{type(exc).__name__}: {exc}")


def _parse(body: bytes) -> tuple[Any, str | None]:
    """A REST predict body -> (parsed JSON, signature name)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ServingError("INVALID_ARGUMENT", 400, f"JSON Parse error: {exc}") from exc
    sig_name = parsed.get("signature_name") if isinstance(parsed, dict) else None
    if sig_name is not None and not isinstance(sig_name, str):
        raise ServingError("INVALID_ARGUMENT", 400, '"signature_name" must be a string')
    return parsed, sig_name


def _encoded(outputs: dict[str, np.ndarray], row: bool) -> dict[str, Any]:
    try:
        return encode_json(outputs, row_format=row)
    except RequestError as exc:
        raise ServingError("INVALID_ARGUMENT", 400, str(exc)) from exc


class ModelServer:
    """Serves one model name. Thread-safe; every protocol front end calls into this."""

    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager
        self.name = manager.name

    def check_name(self, name: str) -> None:
        if name != self.name:
            raise ServingError("NOT_FOUND", 404, f"Servable not found for request: Latest({name})")

    def predict_arrays(
        self,
        version: int | None,
        signature_name: str | None,
        arrays: Mapping[str, np.ndarray] | None = None,
        *,
        json_body: Any = None,
        batching: bool = True,
    ) -> tuple[int, SignatureInfo, dict[str, np.ndarray], bool]:
        """Run one request -> (version served, signature, outputs, row_format).

        Give either numpy `arrays` (gRPC, warmup) or a parsed REST `json_body`. `batching=False`
        calls the model directly: a batch job's request is already a large batch, which the
        batcher would only split into max_batch_size pieces."""
        try:
            with self.manager.lease(version) as slot:
                model = slot.model
                assert model is not None  # AVAILABLE slots always hold their model
                sig = model.signature_for(signature_name)
                if json_body is not None:
                    inputs, row = decode_json(json_body, sig)
                else:
                    inputs, row = check_arrays(sig, arrays or {}), False
                batcher = slot.batchers.get(sig.name)
                if batching and batcher is not None and len({len(a) for a in inputs.values()}) == 1:
                    outputs = batcher.submit(inputs)
                else:
                    outputs = model.run(inputs, sig.name)
                return slot.version, sig, outputs, row
        except Exception as exc:
            raise _map_error(exc) from exc

    @property
    def batching(self) -> bool:
        """True if predictions go through a batcher (the REST front end then awaits them)."""
        return self.manager.batching is not None

    async def predict_arrays_async(
        self, version: int | None, signature_name: str | None, json_body: Any
    ) -> tuple[SignatureInfo, dict[str, np.ndarray], bool]:
        """predict_arrays for a parsed REST body, awaited on an event loop: the model runs on
        the batcher's thread (or a worker thread), never blocking the loop."""
        try:
            with self.manager.lease(version) as slot:
                model = slot.model
                assert model is not None  # AVAILABLE slots always hold their model
                sig = model.signature_for(signature_name)
                inputs, row = decode_json(json_body, sig)
                batcher = slot.batchers.get(sig.name)
                if batcher is not None and len({len(a) for a in inputs.values()}) == 1:
                    outputs = await batcher.submit_async(inputs)
                else:
                    outputs = await to_thread(model.run, inputs, sig.name)
                return sig, outputs, row
        except Exception as exc:
            raise _map_error(exc) from exc

    def predict_json(self, body: bytes, version: int | None) -> dict[str, Any]:
        parsed, sig_name = _parse(body)
        _, _, outputs, row = self.predict_arrays(version, sig_name, json_body=parsed)
        return _encoded(outputs, row)

    async def predict_json_async(self, body: bytes, version: int | None) -> dict[str, Any]:
        parsed, sig_name = _parse(body)
        _, outputs, row = await self.predict_arrays_async(version, sig_name, parsed)
        return _encoded(outputs, row)

    def metadata(self, version: int | None) -> tuple[int, Any]:
        """(version, SignatureDefMap proto) of the requested or newest version."""
        try:
            with self.manager.lease(version) as slot:
                assert slot.model is not None
                return slot.version, slot.model.signature_def_map()
        except Exception as exc:
            raise _map_error(exc) from exc

"""TF Serving request/response codec: JSON (row and columnar) and arrays, checked against a
signature.

Owns: turning a TF Serving / Vertex prediction JSON body into one numpy array per signature input
(dtype and shape checked, `{"b64": ...}` decoded), checking arrays that came another way (gRPC,
warmup) the same way, and turning output arrays back into TF Serving's JSON forms.
Must not: import TensorFlow (numpy only, so it is cheap and unit-testable) or do any I/O.
Every problem with a request is a `RequestError` whose message names the input, the expected
shape and dtype, and what was received; servers answer it with HTTP 400 / INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


class RequestError(ValueError):
    """The request does not fit the signature (HTTP 400, gRPC INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of a signature, described without TensorFlow types."""

    name: str  # the alias used in requests ("flatten_input"), not the graph tensor name
    dtype: np.dtype[Any]  # numpy dtype; object for DT_STRING
    dtype_name: str  # TF's enum name, e.g. "DT_FLOAT", used in messages and metadata
    shape: tuple[int | None, ...] | None  # None for unknown rank; None dims are "any size"

    @property
    def is_string(self) -> bool:
        return self.dtype == np.dtype(object)

    @property
    def batchable(self) -> bool:
        """Leading dimension free: requests can be concatenated along it."""
        return bool(self.shape) and self.shape[0] is None  # type: ignore[index]

    def describe(self) -> str:
        return f"shape {format_shape(self.shape)} and dtype {self.dtype_name}"


@dataclass(frozen=True)
class SignatureInfo:
    """A callable signature of a SavedModel: its name and tensors, in a stable order."""

    name: str
    inputs: Mapping[str, TensorInfo]
    outputs: Mapping[str, TensorInfo]

    @property
    def batchable(self) -> bool:
        return all(t.batchable for t in self.inputs.values())


def format_shape(shape: tuple[int | None, ...] | None) -> str:
    if shape is None:
        return "<any rank>"
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape) + "]"


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def _describe_received(value: Any) -> str:
    try:
        arr = np.asarray(value)
    except ValueError:
        return "a ragged (non-rectangular) nested list"
    if arr.dtype == object:
        return f"a value of shape {list(arr.shape)} holding non-numeric items"
    kind = {"f": "floats", "i": "integers", "u": "integers", "b": "booleans", "U": "strings"}
    return f"{kind.get(arr.dtype.kind, arr.dtype.name)} of shape {list(arr.shape)}"


def _bytes_tree(name: str, value: Any) -> Any:
    """Strings and {"b64": ...} objects -> bytes, keeping the list structure."""
    if isinstance(value, list):
        return [_bytes_tree(name, v) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise RequestError(
                f"input '{name}': invalid base64 in {{\"b64\": ...}}: {exc}"
            ) from exc
    if isinstance(value, bytes):
        return value
    raise RequestError(
        f'input \'{name}\' expects strings (DT_STRING; send binary data as {{"b64": "..."}}); '
        f"received {type(value).__name__} {str(value)[:40]}"
    )


def _string_array(name: str, value: Any) -> np.ndarray:
    tree = _bytes_tree(name, value)
    # np.array would turn equal-length bytes into a fixed-width 'S' array: build objects.
    probe = np.array(tree, dtype=object)
    if probe.dtype != object or any(isinstance(x, list) for x in probe.flat):
        raise RequestError(f"input '{name}': received a ragged (non-rectangular) nested list")
    return probe


def to_array(info: TensorInfo, value: Any, *, batched: bool) -> np.ndarray:
    """Convert one input's JSON value (a column of instances when `batched`) and check it."""
    name = info.name
    if info.is_string:
        arr = _string_array(name, value)
    else:
        if isinstance(value, dict) or (isinstance(value, list) and value and _is_b64(value[0])):
            raise RequestError(
                f"input '{name}' expects {info.describe()}; received base64 or an object, "
                "which only string (DT_STRING) inputs accept"
            )
        try:
            if info.dtype.kind in "iub":
                # np.asarray(..., int32) would silently truncate 0.5 to 0: check kind first.
                raw = np.asarray(value)
                if raw.dtype.kind not in "iub" or (
                    info.dtype.kind != "b" and raw.dtype.kind == "b"
                ):
                    raise RequestError(
                        f"input '{name}' expects {info.describe()}; received "
                        f"{_describe_received(value)}"
                    )
                arr = raw.astype(info.dtype, copy=False)
            else:
                arr = np.asarray(value, dtype=info.dtype)
        except (ValueError, TypeError) as exc:
            raise RequestError(
                f"input '{name}' expects {info.describe()}; received {_describe_received(value)}"
            ) from exc
    check_shape(info, arr, batched=batched)
    return arr


def check_shape(info: TensorInfo, arr: np.ndarray, *, batched: bool) -> None:
    expected = info.shape
    if expected is None:
        return
    ok = arr.ndim == len(expected) and all(
        d is None or d == got for d, got in zip(expected, arr.shape, strict=True)
    )
    if ok:
        return
    if batched and arr.ndim >= 1:
        got = f"instances of shape {list(arr.shape[1:])} ({arr.shape[0]} instance(s))"
        want = f"instances of shape {format_shape(expected[1:])}" if expected else "scalars"
        raise RequestError(
            f"input '{info.name}' expects {info.describe()} ({want}); received {got}"
        )
    raise RequestError(
        f"input '{info.name}' expects {info.describe()}; received a tensor of shape "
        f"{list(arr.shape)}"
    )


def decode_json(body: Any, signature: SignatureInfo) -> tuple[dict[str, np.ndarray], bool]:
    """A parsed TF Serving REST body -> ({input: array}, row_format)."""
    if not isinstance(body, dict):
        raise RequestError('request body must be a JSON object with "instances" or "inputs"')
    has_rows, has_cols = "instances" in body, "inputs" in body
    if has_rows == has_cols:
        raise RequestError(
            'request body must have exactly one of "instances" (row format) '
            'or "inputs" (columnar format)'
        )
    names = list(signature.inputs)
    if has_rows:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise RequestError('"instances" must be a non-empty list')
        named = all(isinstance(i, dict) and not _is_b64(i) for i in instances)
        if named:
            columns: dict[str, list[Any]] = {n: [] for n in names}
            for idx, inst in enumerate(instances):
                unknown = set(inst) - set(names)
                if unknown:
                    raise RequestError(
                        f"instance {idx} has unknown input(s) {sorted(unknown)}; "
                        f"signature '{signature.name}' takes {names}"
                    )
                for n in names:
                    if n not in inst:
                        raise RequestError(
                            f"instance {idx} is missing input '{n}'; "
                            f"signature '{signature.name}' takes {names}"
                        )
                    columns[n].append(inst[n])
            return {n: to_array(signature.inputs[n], columns[n], batched=True) for n in names}, True
        if len(names) != 1:
            raise RequestError(
                f"signature '{signature.name}' has {len(names)} inputs {names}: each instance "
                "must be an object keyed by input name"
            )
        return {names[0]: to_array(signature.inputs[names[0]], instances, batched=True)}, True
    inputs = body["inputs"]
    if isinstance(inputs, dict) and not _is_b64(inputs):
        unknown = set(inputs) - set(names)
        missing = [n for n in names if n not in inputs]
        if unknown or missing:
            raise RequestError(
                f"\"inputs\" keys {sorted(inputs)} do not match signature '{signature.name}' "
                f"inputs {names}"
            )
        return {n: to_array(signature.inputs[n], inputs[n], batched=False) for n in names}, False
    if len(names) != 1:
        raise RequestError(
            f"signature '{signature.name}' has inputs {names}: \"inputs\" must be "
            "an object keyed by input name"
        )
    return {names[0]: to_array(signature.inputs[names[0]], inputs, batched=False)}, False


def check_arrays(
    signature: SignatureInfo, arrays: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Arrays from gRPC or warmup: names, dtype (safe casts only) and shape checked."""
    names = list(signature.inputs)
    if set(arrays) != set(names):
        raise RequestError(
            f"request inputs {sorted(arrays)} do not match signature "
            f"'{signature.name}' inputs {names}"
        )
    out: dict[str, np.ndarray] = {}
    for n in names:
        info, arr = signature.inputs[n], np.asarray(arrays[n])
        if info.is_string:
            if arr.dtype != object and arr.dtype.kind not in "SO":
                raise RequestError(
                    f"input '{n}' expects {info.describe()}; received dtype {arr.dtype}"
                )
            arr = arr.astype(object)
        elif arr.dtype != info.dtype:
            if not np.can_cast(arr.dtype, info.dtype, casting="same_kind"):
                raise RequestError(
                    f"input '{n}' expects {info.describe()}; received dtype {arr.dtype}"
                )
            arr = arr.astype(info.dtype)
        check_shape(info, arr, batched=False)
        out[n] = arr
    return out


def _jsonable(name: str, arr: np.ndarray) -> Any:
    if arr.dtype != object and arr.dtype.kind != "S":
        return arr.tolist()
    as_b64 = name.endswith("_bytes")

    def conv(v: Any) -> Any:
        if isinstance(v, list):
            return [conv(x) for x in v]
        if isinstance(v, bytes):
            if not as_b64:
                try:
                    return v.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return {"b64": base64.b64encode(v).decode("ascii")}
        return v

    return conv(arr.tolist())


def encode_json(outputs: Mapping[str, np.ndarray], *, row_format: bool) -> dict[str, Any]:
    """Output arrays -> {"predictions": [...]} (row) or {"outputs": ...} (columnar), as TF
    Serving."""
    names = list(outputs)
    if not row_format:
        if len(names) == 1:
            return {"outputs": _jsonable(names[0], outputs[names[0]])}
        return {"outputs": {n: _jsonable(n, outputs[n]) for n in names}}
    if len(names) == 1:
        arr = outputs[names[0]]
        if arr.ndim == 0:
            raise RequestError(
                f"output '{names[0]}' is a scalar: use the columnar \"inputs\" format"
            )
        return {"predictions": _jsonable(names[0], arr)}
    sizes = {n: (outputs[n].shape[0] if outputs[n].ndim else None) for n in names}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise RequestError(
            f'outputs have different batch sizes {sizes}: use the columnar "inputs" format'
        )
    cols = {n: _jsonable(n, outputs[n]) for n in names}
    count = next(iter(sizes.values()))
    return {"predictions": [{n: cols[n][i] for n in names} for i in range(count or 0)]}

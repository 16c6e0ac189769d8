"""Online prediction request bodies: the most compact encoding a serving signature allows,
split into requests under Vertex AI's online size limit.

Owns: `serving_signature` (the signature an endpoint's deployed versions share, read from
their local artifacts), `encode_instances` (per input of the signature: float inputs as JSON
numbers at the
input's precision, integral values without a fraction; numeric data for a string input that
the model decodes with `tf.io.decode_raw` as `{"b64": ...}` of the raw little-endian bytes;
everything else as given), `request_bodies` (compact JSON bodies of at most
`MAX_REQUEST_BYTES`, instances in order) and `merge_responses`.
Must not: make API calls, or import TensorFlow (numpy is imported when encoding).

Why: the official client (GAPIC over REST, which the SDK's `endpoint.predict` uses) sends
instances as indented JSON with every float32 widened to 17 significant digits, ~29 bytes per
random float and ~14 per MNIST pixel; base64 of raw float32 costs 5.3, and a compact
JSON MNIST pixel (mostly `0`) about 2.5. See BENCHMARKS.md, section 5.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer.errors import ConfigError

if TYPE_CHECKING:
    from deployer.spec import Spec
    from deployer.wire.savedmodel import Signature, TensorSpec

# Vertex AI's online prediction request limit ("1.5 MB"), read as MiB like the emulator does.
MAX_REQUEST_BYTES = 1_572_864
_ENVELOPE = (b'{"instances":[', b"]}")

# Signature dtypes that compact to shortest-repr JSON numbers, and the numpy type of each.
_FLOAT_TYPES = {"DT_FLOAT": "float32", "DT_HALF": "float16", "DT_BFLOAT16": "float32"}
# tf.io.decode_raw's out_type -> numpy dtype (little-endian, TF's default byte order).
_RAW_TYPES = {
    "DT_FLOAT": "<f4",
    "DT_DOUBLE": "<f8",
    "DT_HALF": "<f2",
    "DT_INT32": "<i4",
    "DT_INT64": "<i8",
    "DT_INT16": "<i2",
    "DT_INT8": "i1",
    "DT_UINT8": "u1",
    "DT_UINT16": "<u2",
    "DT_BOOL": "?",
}


@dataclass
class Encoded:
    instances: list[Any]
    forms: dict[str, str] = field(default_factory=dict)  # input name -> how its values were sent


def _numeric(value: Any) -> Any:
    """`value` as a numpy array if it is a number or a (nested, rectangular) list of numbers."""
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, int | float | list):
        return None
    try:
        arr = np.asarray(value)
    except ValueError:  # ragged
        return None
    return arr if arr.dtype.kind in "iuf" else None


def _compact_floats(arr: Any, dtype: str) -> Any:
    """Nested lists of the values at `dtype` precision: shortest repr, integers without ".0"."""
    import numpy as np

    typed = arr.astype(dtype)
    if not np.isfinite(typed).all():
        return typed.astype(np.float64).tolist()  # NaN/inf: leave to the server to refuse
    # numpy prints float32/float16 with the shortest repr that round-trips at that precision.
    flat = typed.ravel().astype(str).astype(np.float64).tolist()
    compact = [int(v) if v.is_integer() and abs(v) < 2**53 else v for v in flat]
    if typed.ndim == 0:
        return compact[0]
    holder = np.empty(len(compact), dtype=object)
    holder[:] = compact
    return holder.reshape(typed.shape).tolist()


def _encode_value(
    value: Any, spec: TensorSpec, raw_types: frozenset[str], where: str
) -> tuple[Any, str | None]:
    arr = _numeric(value)
    if arr is None:
        return value, None
    if spec.dtype in _FLOAT_TYPES:
        return _compact_floats(arr, _FLOAT_TYPES[spec.dtype]), (
            f"JSON numbers at {_FLOAT_TYPES[spec.dtype]} precision"
        )
    if spec.dtype != "DT_STRING":
        return value, None
    if len(raw_types) == 1:
        (raw,) = raw_types
        if raw in _RAW_TYPES:
            import numpy as np

            data = np.ascontiguousarray(arr.astype(_RAW_TYPES[raw])).tobytes()
            return (
                {"b64": base64.b64encode(data).decode("ascii")},
                (
                    f"base64 of raw {raw.removeprefix('DT_').lower()} bytes (the model decodes "
                    "them with tf.io.decode_raw)"
                ),
            )
    why = (
        "decodes it with tf.io.decode_raw to several types"
        if raw_types
        else "decodes it itself (e.g. an encoded image)"
    )
    raise ConfigError(
        f"{where}: input '{spec.name}' is a string tensor (DT_STRING) and the model {why}, "
        "so numbers cannot be sent for it",
        hint='give each value as {"b64": "<base64 of the bytes the model expects>"}',
    )


def file_instance(path: Path) -> dict[str, str]:
    """One instance holding a file's bytes: `{"b64": ...}` (e.g. an encoded image)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    return {"b64": base64.b64encode(data).decode("ascii")}


def check_takes_bytes(signature: Signature, source: str) -> None:
    """Refuse --file instances unless the signature has one string input (before any call)."""
    if len(signature.inputs) == 1 and signature.inputs[0].dtype == "DT_STRING":
        return
    takes = ", ".join(f"'{t.name}' {t.dtype}" for t in signature.inputs) or "no inputs"
    raise ConfigError(
        f"--file sends each file's bytes as one instance, but {source} takes {takes}",
        hint="use --instances with JSON, JSON Lines or .npy for this model",
    )


def encode_instances(instances: Sequence[Any], signature: Signature) -> Encoded:
    """`instances` re-encoded as compactly as `signature` allows (see the module docstring).

    Instances use TF Serving's row format: a bare value for a one-input signature, or an
    object keyed by input name. Keys the signature lacks are left for the server to reject.
    """
    by_name = {t.name: t for t in signature.inputs}
    only = signature.inputs[0] if len(signature.inputs) == 1 else None
    out: list[Any] = []
    forms: dict[str, str] = {}

    def one(name: str, value: Any, where: str) -> Any:
        spec = by_name.get(name)
        if spec is None:
            return value
        encoded, form = _encode_value(value, spec, signature.decode_raw_types, where)
        if form:
            forms.setdefault(name, form)
        return encoded

    for i, inst in enumerate(instances):
        where = f"instance {i}"
        if isinstance(inst, dict) and not (len(inst) == 1 and "b64" in inst):
            out.append({k: one(k, v, where) for k, v in inst.items()})
        elif only is not None:
            out.append(one(only.name, inst, where))
        else:
            out.append(inst)  # multi-input signature without names: the server explains
    return Encoded(out, forms)


def request_bodies(
    instances: Sequence[Any], limit: int = MAX_REQUEST_BYTES
) -> list[tuple[int, bytes]]:
    """Compact JSON `{"instances": [...]}` bodies of at most `limit` bytes, in order.

    Returns (index of the first instance in the body, body). An instance that alone
    exceeds the limit is an error: online prediction cannot take it.
    """
    overhead = len(_ENVELOPE[0]) + len(_ENVELOPE[1])
    bodies: list[tuple[int, bytes]] = []
    parts: list[bytes] = []
    size, first = overhead, 0
    for i, inst in enumerate(instances):
        part = json.dumps(inst, separators=(",", ":")).encode()
        if overhead + len(part) > limit:
            raise ConfigError(
                f"instance {i} alone is {len(part) / 1e6:.2f} MB as JSON, over the "
                f"{limit / 1e6:.2f} MB limit of one online prediction request",
                hint="send it with `deployer batch-predict`, or make the model take a more "
                "compact input (e.g. bytes it decodes with tf.io.decode_raw)",
            )
        extra = len(part) + (1 if parts else 0)
        if parts and size + extra > limit:
            bodies.append((first, _ENVELOPE[0] + b",".join(parts) + _ENVELOPE[1]))
            parts, size, first = [], overhead, i
            extra = len(part)
        parts.append(part)
        size += extra
    if parts or not bodies:
        bodies.append((first, _ENVELOPE[0] + b",".join(parts) + _ENVELOPE[1]))
    return bodies


def merge_responses(responses: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One response from several: predictions concatenated in request order.

    With a traffic split, requests can reach different deployed models; then
    `deployedModelId` lists each distinct id, comma-separated, in order of first use.
    """
    if len(responses) == 1:
        return dict(responses[0])
    merged = dict(responses[0])
    merged["predictions"] = [p for r in responses for p in r.get("predictions", [])]
    ids = list(
        dict.fromkeys(str(r["deployedModelId"]) for r in responses if "deployedModelId" in r)
    )
    if ids:
        merged["deployedModelId"] = ",".join(ids)
    return merged


def serving_signature(spec: Spec, endpoint_name: str) -> tuple[Signature | None, str]:
    """The `serving_default` signature shared by the versions taking `endpoint_name`'s traffic.

    Read from the spec's local artifacts (no API call). (None, why) when an artifact is
    remote (gs://) or unreadable, or when the versions' inputs differ: then the instances
    are sent as given.
    """
    from deployer.wire.prebuilt import Framework, parse_prebuilt
    from deployer.wire.savedmodel import SignatureError, read_signature

    endpoint = next(e for e in spec.endpoints if e.name == endpoint_name)
    versions = {(m.name, v.alias): v for m in spec.models for v in m.versions}
    found: dict[str, Signature] = {}
    for d in endpoint.deployments:
        if d.traffic <= 0:
            continue
        label = f"{d.model}@{d.version}"
        version = versions[(d.model, d.version)]
        artifact = version.artifact
        image = parse_prebuilt(version.container_image)
        tensorflow = (
            image.framework is Framework.TENSORFLOW
            if image
            else "/prediction/tf" in version.container_image  # e.g. gcr.io/cloud-aiplatform/...
        )
        if not tensorflow:
            # scikit-learn, XGBoost and custom containers take instances as they are.
            served = image.framework.value if image else "a custom container"
            return None, f"{label} is served by {served}, which takes instances as given"
        if artifact.startswith("gs://"):
            return None, f"{label}'s artifact is in Cloud Storage ({artifact}), not read locally"
        try:
            found[label] = read_signature(artifact)
        except SignatureError as exc:
            return None, f"could not read {label}'s signature: {exc}"
    shapes = {(s.inputs, s.decode_raw_types) for s in found.values()}
    if not found:
        return None, "no deployment takes traffic"
    if len(shapes) > 1:
        return None, f"the versions taking traffic ({', '.join(found)}) have different inputs"
    return next(iter(found.values())), f"serving_default of {', '.join(found)}"

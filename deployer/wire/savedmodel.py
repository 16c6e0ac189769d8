"""Read a SavedModel's serving signature from saved_model.pb without TensorFlow.

Owns: a minimal protobuf wire-format walk of `saved_model.pb` that extracts, for one
signature, its inputs' names, dtypes and shapes, and the output types of the
`tf.io.decode_raw` ops the signature runs (what a string input is decoded to, if anything).
`deployer predict` uses it to pick the request encoding, and the spec's artifact rule uses it
to refuse a corrupt or signature-less SavedModel before any API call; importing TensorFlow
(3-5 s, ~500 MB) for either would dwarf the work itself. It lives in `wire` because both the
spec (below predict) and predict read it.
Must not: import TensorFlow, google.protobuf, numpy or any other deployer layer (the CLI core
stays light).

Field numbers are from TensorFlow's public protos (stable: they are the on-disk format):
  SavedModel       2 meta_graphs (MetaGraphDef)
  MetaGraphDef     1 meta_info_def (MetaInfoDef: 4 tags), 2 graph_def, 5 signature_def map
  GraphDef         1 node (NodeDef), 2 library (FunctionDefLibrary: 1 function)
  FunctionDef      1 signature (OpDef: 1 name), 3 node_def (NodeDef)
  NodeDef          1 name, 2 op, 3 input, 5 attr map<string, AttrValue>
  AttrValue        1 list (ListValue: 9 func), 6 type (DataType), 10 func (NameAttrList: 1 name)
  SignatureDef     1 inputs map<string, TensorInfo>, 2 outputs, 3 method_name
  TensorInfo       1 name, 2 dtype (DataType), 3 tensor_shape (TensorShapeProto)
  TensorShapeProto 2 dim (Dim: 1 size), 3 unknown_rank
Unknown fields are skipped, so newer SavedModels still read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# tensorflow/core/framework/types.proto (the values a signature can carry).
DTYPES = {
    1: "DT_FLOAT",
    2: "DT_DOUBLE",
    3: "DT_INT32",
    4: "DT_UINT8",
    5: "DT_INT16",
    6: "DT_INT8",
    7: "DT_STRING",
    8: "DT_COMPLEX64",
    9: "DT_INT64",
    10: "DT_BOOL",
    14: "DT_BFLOAT16",
    17: "DT_UINT16",
    18: "DT_COMPLEX128",
    19: "DT_HALF",
    22: "DT_UINT32",
    23: "DT_UINT64",
}
SERVE_TAG = "serve"


class SignatureError(ValueError):
    """saved_model.pb is missing, not a SavedModel, or lacks the signature asked for."""


class NoSignatureError(SignatureError):
    """saved_model.pb parses, but has no `serve` meta graph or not the signature asked for."""


@dataclass(frozen=True)
class TensorSpec:
    name: str  # the signature's key, e.g. "flatten_input"
    dtype: str  # "DT_FLOAT", ... ("DT_INVALID(n)" for a code not in DTYPES)
    shape: tuple[int, ...] | None  # -1 = any size; None = unknown rank


@dataclass(frozen=True)
class Signature:
    name: str  # e.g. "serving_default"
    inputs: tuple[TensorSpec, ...]  # sorted by name
    outputs: tuple[TensorSpec, ...]
    decode_raw_types: frozenset[str]  # out_type of every DecodeRaw op in the graph

    def input(self, name: str) -> TensorSpec | None:
        return next((t for t in self.inputs if t.name == name), None)


# ------------------------------------------------------------------ wire format


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise SignatureError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise SignatureError("varint too long")


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of one message: ints for varints, bytes for length-delimited."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise SignatureError("truncated length-delimited field")
            yield number, buf[pos : pos + size]
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:  # groups (3, 4) are not used by these protos
            raise SignatureError(f"unsupported wire type {wire}")
    if pos != end:
        raise SignatureError("message overruns its length")


def _bytes_fields(buf: bytes, number: int) -> Iterator[bytes]:
    for n, v in _fields(buf):
        if n == number and isinstance(v, bytes):
            yield v


def _int_field(buf: bytes, number: int, default: int = 0) -> int:
    found = default
    for n, v in _fields(buf):
        if n == number and isinstance(v, int):
            found = v
    return found


def _str_field(buf: bytes, number: int) -> str:
    found = b""
    for v in _bytes_fields(buf, number):
        found = v
    return found.decode("utf-8", "replace")


def _map_entries(buf: bytes, number: int) -> Iterator[tuple[str, bytes]]:
    """map<string, Message> field `number` as (key, serialized value) pairs."""
    for entry in _bytes_fields(buf, number):
        yield _str_field(entry, 1), next(_bytes_fields(entry, 2), b"")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


# ------------------------------------------------------------------ messages


def _tensor_spec(name: str, info: bytes) -> TensorSpec:
    code = _int_field(info, 2)
    shape: tuple[int, ...] | None = None
    shape_buf = next(_bytes_fields(info, 3), None)
    if shape_buf is not None and not _int_field(shape_buf, 3):
        shape = tuple(_signed(_int_field(d, 1)) for d in _bytes_fields(shape_buf, 2))
    return TensorSpec(name, DTYPES.get(code, f"DT_INVALID({code})"), shape)


def _called_functions(node: bytes) -> Iterator[str]:
    """Names of the functions a node calls: attrs holding a func or a list of funcs."""
    for _, attr in _map_entries(node, 5):
        for func in _bytes_fields(attr, 10):
            yield _str_field(func, 1)
        for listed in _bytes_fields(attr, 1):
            for func in _bytes_fields(listed, 9):
                yield _str_field(func, 1)


def _decode_raw_types(graph: bytes, outputs: list[str]) -> set[str]:
    """out_type of the DecodeRaw ops that compute `outputs` (graph tensor names, "node:0").

    TF2 SavedModels keep every traced function of the module in the library, so only the
    nodes and functions the signature's outputs reach count."""
    nodes = {_str_field(n, 1): n for n in _bytes_fields(graph, 1)}
    functions: dict[str, list[bytes]] = {}
    for library in _bytes_fields(graph, 2):
        for function in _bytes_fields(library, 1):
            name = _str_field(next(_bytes_fields(function, 1), b""), 1)
            functions[name] = list(_bytes_fields(function, 3))
    pending = [n.lstrip("^").split(":")[0] for n in outputs]
    seen_nodes: set[str] = set()
    seen_functions: set[str] = set()
    found: set[str] = set()

    def visit(node: bytes) -> None:
        if _str_field(node, 2) == "DecodeRaw":
            for key, attr in _map_entries(node, 5):
                if key == "out_type":
                    code = _int_field(attr, 6)
                    found.add(DTYPES.get(code, f"DT_INVALID({code})"))
        for fname in _called_functions(node):
            if fname in functions and fname not in seen_functions:
                seen_functions.add(fname)
                for inner in functions[fname]:  # a function's body: all of it runs
                    visit(inner)

    while pending:
        name = pending.pop()
        if name in seen_nodes or name not in nodes:
            continue
        seen_nodes.add(name)
        visit(nodes[name])
        pending.extend(
            i.decode("utf-8", "replace").lstrip("^").split(":")[0]
            for i in _bytes_fields(nodes[name], 3)
        )
    return found


def read_signature(
    model_dir: str | Path, name: str = "serving_default", *, decode_raw: bool = True
) -> Signature:
    """Signature `name` of the `serve` meta graph of the SavedModel in `model_dir`.

    decode_raw=False skips the walk of the graph behind the outputs (most of the time on a
    large model) and leaves `decode_raw_types` empty: enough to check the file and signature.
    """
    path = Path(model_dir) / "saved_model.pb"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignatureError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:  # parses as a SavedModel with nothing in it: say what it really is
        raise SignatureError(f"{path} is empty, not a SavedModel")
    try:
        graphs = list(_bytes_fields(data, 2))
        tagged = [
            g
            for g in graphs
            if SERVE_TAG
            in {
                t.decode("utf-8", "replace")
                for t in _bytes_fields(next(_bytes_fields(g, 1), b""), 4)
            }
        ]
        chosen = tagged[0] if tagged else graphs[0] if len(graphs) == 1 else None
        signatures = dict(_map_entries(chosen, 5)) if chosen is not None else {}
        sig = signatures.get(name)
        if chosen is None or sig is None:
            inputs = outputs = []
            raw: set[str] = set()
        else:
            inputs = sorted(
                (_tensor_spec(k, v) for k, v in _map_entries(sig, 1)), key=lambda t: t.name
            )
            outputs = sorted(
                (_tensor_spec(k, v) for k, v in _map_entries(sig, 2)), key=lambda t: t.name
            )
            raw = (
                _decode_raw_types(
                    next(_bytes_fields(chosen, 2), b""),
                    [_str_field(v, 1) for _, v in _map_entries(sig, 2)],
                )
                if decode_raw
                else set()
            )
    except SignatureError as exc:
        raise SignatureError(f"{path} is not a readable SavedModel: {exc}") from None
    if chosen is None:
        raise NoSignatureError(f"{path} has no meta graph tagged {SERVE_TAG!r}")
    if sig is None:
        known = ", ".join(sorted(k for k in signatures if not k.startswith("__"))) or "none"
        raise NoSignatureError(f"{path} has no signature {name!r} (it has: {known})")
    return Signature(name, tuple(inputs), tuple(outputs), frozenset(raw))

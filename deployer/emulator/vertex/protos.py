"""Proto helpers for the Vertex surface: parse requests into, and answer with, real v1 types.

Owns the conversion between the wire (lowerCamelCase JSON, enums as ints when
`$alt=json;enum-encoding=int` asks for them and as names otherwise, int64 as
strings, unknown fields refused) and the protobuf messages of `google.cloud.aiplatform_v1`,
Any-packing for operations, timestamps, and the binary (de)serialisation the
store keeps resources in.

Must not: hold state, know resource semantics, or import TensorFlow.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Collection
from typing import Any, TypeVar

from google.protobuf import any_pb2, json_format, timestamp_pb2
from google.protobuf.message import DecodeError, Message

from deployer.emulator.http import Request, Response, ServiceError

M = TypeVar("M", bound=Message)

JSON_HEADERS = {"Content-Type": "application/json; charset=UTF-8"}
# What json_format says of a field the message does not have.
_UNKNOWN_FIELD_RE = re.compile(r'no field named "(?P<field>[^"]*)" at "(?P<path>[^"]*)"')


def pb(proto_plus_cls: Any) -> type[Message]:
    """The raw protobuf class behind a proto-plus type (aiplatform_v1.Model -> model_pb2.Model)."""
    return proto_plus_cls.pb()  # type: ignore[no-any-return]


def parse_body(request: Request, cls: type[M]) -> M:
    """The request body parsed into `cls`; 400 INVALID_ARGUMENT with the parser's reason.

    Unknown fields are refused, as Google's front end refuses them (`Unknown name`).
    """
    msg: M = cls()
    body = request.body.strip()
    if not body:
        return msg
    try:
        json_format.Parse(body, msg)
    except (json_format.ParseError, UnicodeDecodeError, ValueError) as exc:
        raise ServiceError(400, "INVALID_ARGUMENT", _payload_error(exc)) from exc
    return msg


def _payload_error(exc: Exception) -> str:
    """Google's wording for a body that does not parse into the request message."""
    m = _UNKNOWN_FIELD_RE.search(str(exc))
    if m is None:
        return f"Invalid JSON payload received. {exc}"
    # The parser's path starts with the message type ("UploadModelRequest.model"); Google
    # names the field path inside the request ('model'), and nothing at the top level.
    where = _snake(m["path"].partition(".")[2])
    at = f" at '{where}'" if where else ""
    return f'Invalid JSON payload received. Unknown name "{m["field"]}"{at}: Cannot find field.'


def wants_int_enums(request: Request) -> bool:
    """True when the system parameter `$alt` asks for `enum-encoding=int` (GAPIC REST does)."""
    return any(
        "enum-encoding=int" in value
        for key in ("$alt", "alt")
        for value in request.query.get(key, ())
    )


def to_dict(msg: Message, *, int_enums: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = json_format.MessageToDict(
        msg, preserving_proto_field_name=False, use_integers_for_enums=int_enums
    )
    return out


def proto_response(request: Request, msg: Message, status: int = 200) -> Response:
    """`msg` as JSON, enums as numbers when the request asked for them, as names otherwise."""
    obj = to_dict(msg, int_enums=wants_int_enums(request))
    body = json.dumps(obj, separators=(",", ":")).encode()
    return Response(status, body, dict(JSON_HEADERS))


def dumps(msg: Message) -> bytes:
    """Binary form for the store (exact, compact, schema-evolvable)."""
    data: bytes = msg.SerializeToString(deterministic=True)
    return data


def loads(data: bytes, cls: type[M]) -> M:
    msg: M = cls()
    try:
        msg.ParseFromString(data)
    except DecodeError as exc:  # a torn row would be a store bug, not a client error
        raise ServiceError(500, "INTERNAL", f"Corrupt stored {cls.__name__}: {exc}") from exc
    return msg


def now_ts(at: float | None = None) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    seconds = time.time() if at is None else at
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def pack(msg: Message) -> any_pb2.Any:
    """Any with the type URL the clients resolve
    (type.googleapis.com/google.cloud.aiplatform.v1.X)."""
    out = any_pb2.Any()
    out.Pack(msg)
    return out


def update_mask_paths(request: Request) -> list[str]:
    """updateMask from the query (`?updateMask=a,b` or repeated), as snake_case field paths."""
    raw: list[str] = []
    for key in ("updateMask", "update_mask", "updateMask.paths", "update_mask.paths"):
        for value in request.query.get(key, []):
            raw.extend(p for p in value.split(",") if p)
    return [_snake(p.strip()) for p in raw]


def editable_paths(request: Request, editable: Collection[str]) -> list[str]:
    """The request's update mask, required and limited to `editable` (INVALID_ARGUMENT else)."""
    paths = update_mask_paths(request)
    if not paths:
        raise ServiceError(400, "INVALID_ARGUMENT", "update_mask is required.")
    bad = [p for p in paths if p not in editable]
    if bad:
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"Unsupported update_mask paths {bad}: updatable are {sorted(editable)}.",
        )
    return paths


def _snake(path: str) -> str:
    out = []
    for ch in path:
        if ch.isupper():
            out.append("_" + ch.lower())
        else:
            out.append(ch)
    return "".join(out)

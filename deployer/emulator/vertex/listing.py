"""List semantics shared by models and endpoints: AIP-160 filter subset, orderBy, page tokens.

Owns the subset of Vertex's list filter grammar deployer and the SDK use:
`labels.KEY="v"`, `labels.KEY=v`, `labels.KEY:*`, `labels.KEY!="v"`,
`display_name="x"` (or `displayName`), `name="..."`, terms joined with `AND`;
`orderBy` on create_time / update_time / display_name (`desc` allowed); opaque
page tokens. Unknown fields are INVALID_ARGUMENT, as on Vertex.

Must not: know where resources come from, or import TensorFlow.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any, cast

from deployer.emulator.http import Request, ServiceError

_TERM_RE = re.compile(
    r"""^\s*(?P<field>[A-Za-z_][\w.\-]*|labels\."[^"]+")\s*(?P<op>!=|=|:)\s*(?P<value>"(?:[^"\\]|\\.)*"|[^\s"]+)\s*$"""
)
_FIELDS = {
    "display_name": "display_name",
    "displayname": "display_name",
    "name": "name",
    "description": "description",
}


def _field_value(resource: Any, field: str) -> str | None:
    if field.startswith("labels."):
        key = field[len("labels.") :].strip('"')
        return cast(str | None, resource.labels.get(key))
    attr = _FIELDS.get(field.lower())
    if attr is None:
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"Unsupported filter field {field!r}: use labels.KEY, display_name or name.",
        )
    return str(getattr(resource, attr))


def compile_filter(text: str | None) -> Callable[[Any], bool]:
    """A predicate for a list filter; 400 INVALID_ARGUMENT on syntax the emulator cannot honour."""
    if not text or not text.strip():
        return lambda _r: True
    terms = []
    for raw in re.split(r"\s+AND\s+", text.strip()):
        m = _TERM_RE.match(raw)
        if m is None:
            raise ServiceError(
                400,
                "INVALID_ARGUMENT",
                f'Unsupported filter term {raw!r} in {text!r}: use field="value" joined with AND.',
            )
        value = m["value"]
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        terms.append((m["field"], m["op"], value))
    for field, _, _ in terms:  # validate fields once, not per resource
        if not field.startswith("labels.") and field.lower() not in _FIELDS:
            _field_value(None, field)

    def predicate(resource: Any) -> bool:
        for field, op, value in terms:
            got = _field_value(resource, field)
            if op == ":":
                ok = got is not None and (value == "*" or value in got)
            elif op == "=":
                ok = got == value
            else:
                ok = got != value
            if not ok:
                return False
        return True

    return predicate


def order(resources: list[Any], order_by: str | None) -> list[Any]:
    if not order_by:
        return resources
    keys = []
    for part in order_by.split(","):
        bits = part.split()
        if not bits:
            continue
        field = re.sub(r"(?<!^)([A-Z])", r"_\1", bits[0]).lower()
        desc = len(bits) > 1 and bits[1].lower() == "desc"
        if field not in ("create_time", "update_time", "display_name", "name"):
            raise ServiceError(
                400,
                "INVALID_ARGUMENT",
                f"Unsupported orderBy field {bits[0]!r}: use create_time, update_time or "
                f"display_name.",
            )
        keys.append((field, desc))
    out = list(resources)
    for field, desc in reversed(keys):  # stable sorts, last key first
        out.sort(key=_sort_key(field), reverse=desc)
    return out


def _sort_key(field: str) -> Callable[[Any], Any]:
    if field.endswith("_time"):
        return lambda r: getattr(r, field).ToNanoseconds()
    return lambda r: getattr(r, field)


def paginate(resources: list[Any], request: Request) -> tuple[list[Any], str]:
    """(page, next_page_token) from pageSize / pageToken (tokens are opaque offsets)."""
    size_text = request.q("pageSize") or request.q("page_size") or "0"
    try:
        size = int(size_text)
    except ValueError as exc:
        raise ServiceError(400, "INVALID_ARGUMENT", f"Invalid pageSize {size_text!r}") from exc
    if size < 0:
        raise ServiceError(400, "INVALID_ARGUMENT", "pageSize must not be negative")
    size = min(size or 100, 1000)
    token = request.q("pageToken") or request.q("page_token") or ""
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("o:"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ServiceError(400, "INVALID_ARGUMENT", f"Invalid page token {token!r}") from exc
    page = resources[start : start + size]
    nxt = ""
    if start + size < len(resources):
        nxt = base64.urlsafe_b64encode(f"o:{start + size}".encode()).decode()
    return page, nxt

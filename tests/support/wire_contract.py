"""The wire contract: what the emulator's request log shows clients sent and got, held against
Google's discovery documents.

Owns `check(entries)`, the problems found in request-log entries (the lines `RequestLog`
writes with bodies on): each request must map to exactly one documented method (verb + raw
path), use only that method's documented query parameters and, in a JSON body (or the JSON
part of a multipart upload), only documented fields of its request schema; each recorded
successful JSON response must carry only documented fields of the method's response schema
(recursively), plus the output fields clients rely on (`REQUIRED_OUTPUT`); and every
long-running operation a response holds must be pollable through a documented `get`
binding. Left out explicitly: emulator-private routes (`EXCLUDED_PREFIXES`), paths under
neither API's root (`API_ROOTS`), raw HTTP bodies (`RAW_BODY`: rawPredict), requests the
emulator refused as the service does (`REFUSED`), and the emulators of tests marked
`wire_contract_exempt` (tests/support/emulator.py never collects them); the replicas' own
servers are separate processes and never write to this log.

Must not: import deployer, or start anything (it reads entries it is given).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support import discovery

# The emulator's own admin and test routes: not Google's API, never checked.
EXCLUDED_PREFIXES = ("/_emulator/",)
# Statuses with which the emulator refused a request as the service would (400 unknown field
# or bad value, 405 verb not bound, 411, 413 too large, 416 bad range): tests send such
# requests on purpose, and a client that sent one by mistake saw the error. A 404 is still
# checked: a client that probes for existence would take "no such API" for "absent".
REFUSED = frozenset({400, 405, 411, 413, 416})
# Where the two APIs live (aiplatform's "/ui/" is its operations alias): a request under none
# of these roots is addressed to neither API (e.g. a test's "/no/such/api"), not checked.
API_ROOTS = ("/storage/", "/upload/", "/download/", "/resumable/", "/batch/", "/v1", "/ui/")
# Query parameters every Google API takes besides a method's own: the system parameters
# (cloud.google.com/apis/docs/system-parameters), each document's API-level parameters and
# their "$" spellings ("$alt=json;enum-encoding=int" from the GAPIC REST clients), and
# `upload_id`, which names a resumable upload session (the session URI the service returns).
_SYSTEM = {"access_token", "alt", "callback", "fields", "key", "prettyPrint", "quotaUser"}
PROTOCOL_PARAMS = frozenset(
    {"upload_id"}
    | _SYSTEM
    | set(discovery.document("storage").get("parameters", {}))
    | set(discovery.document("aiplatform").get("parameters", {}))
    | {f"${p}" for p in _SYSTEM}
)
# A request or response schema whose JSON is the raw HTTP body (google.api.HttpBody bound to
# the whole body: rawPredict's model input and output), not fields of the schema.
RAW_BODY = "GoogleApiHttpBody"
# Output fields clients read, per response schema: present in every such resource returned.
REQUIRED_OUTPUT: dict[str, tuple[str, ...]] = {
    "Object": ("name", "bucket", "generation", "metageneration", "etag", "timeCreated", "updated"),
    "Bucket": ("name", "etag", "timeCreated", "updated", "projectNumber"),
    "GoogleCloudAiplatformV1Model": ("name", "etag", "createTime", "updateTime", "versionId"),
    "GoogleCloudAiplatformV1Endpoint": ("name", "createTime", "updateTime"),
    "GoogleCloudAiplatformV1DeployedModel": ("id", "model"),
    "GoogleCloudAiplatformV1BatchPredictionJob": ("name", "state", "createTime"),
    "GoogleLongrunningOperation": ("name",),
}
OPERATION_SCHEMA = "GoogleLongrunningOperation"


def _where(entry: dict[str, Any]) -> str:
    return f"{entry.get('method')} {entry.get('target') or entry.get('path')}"


def _fields(
    api: str, schema_ref: str, value: Any, at: str, *, output: bool
) -> Iterator[tuple[str, str]]:
    """(problem, at) for each undocumented field in `value` under schema `schema_ref`, and
    with `output` each missing REQUIRED_OUTPUT field; ("operation", name) for each
    operation name met."""
    if not isinstance(value, dict):
        yield f"expected an object of {schema_ref}, got {type(value).__name__}", at
        return
    schema = discovery.schema(api, schema_ref)
    props = schema.get("properties", {})
    if output:
        for required in REQUIRED_OUTPUT.get(schema_ref, ()):
            if required not in value:
                yield f"missing output field {required!r} of {schema_ref}", at
        if schema_ref == OPERATION_SCHEMA and isinstance(value.get("name"), str):
            yield "operation", value["name"]
    for key, item in value.items():
        prop = props.get(key)
        if prop is None:
            if "additionalProperties" in schema or (key == "@type" and not props):
                continue
            yield f"undocumented field {key!r} of {schema_ref}", at
            continue
        yield from _value(api, prop, item, f"{at}.{key}", output=output)


def _value(
    api: str, prop: dict[str, Any], item: Any, at: str, *, output: bool
) -> Iterator[tuple[str, str]]:
    if "$ref" in prop:
        yield from _fields(api, prop["$ref"], item, at, output=output)
    elif prop.get("type") == "array" and isinstance(item, list):
        for i, element in enumerate(item):
            yield from _value(api, prop.get("items", {}), element, f"{at}[{i}]", output=output)
    elif prop.get("type") == "object" and isinstance(item, dict):
        if "properties" in prop:
            nested = {"properties": prop["properties"]}
            for key, sub in item.items():
                if key not in nested["properties"]:
                    yield f"undocumented field {key!r}", at
                else:
                    yield from _value(
                        api, nested["properties"][key], sub, f"{at}.{key}", output=output
                    )
        elif isinstance(prop.get("additionalProperties"), dict):
            for key, sub in item.items():
                yield from _value(
                    api, prop["additionalProperties"], sub, f"{at}.{key}", output=output
                )


def _multipart_json(text: str) -> Any:
    """The JSON metadata part of a multipart/related upload body, or None."""
    match = re.search(r"\r\n\r\n(\{.*?\})\r\n--", text, re.DOTALL)
    if match is None:
        return None
    try:
        return json.loads(match.group(1))
    except ValueError:
        return None


def _raw_body(api: str, schema_ref: str) -> bool:
    """Whether a request of this schema carries an HttpBody as the whole HTTP body."""
    props = discovery.schema(api, schema_ref).get("properties", {})
    return schema_ref == RAW_BODY or any(p.get("$ref") == RAW_BODY for p in props.values())


def _operation_binding(api: str, name: str) -> str:
    """The GET path a client polls an operation named `name` at (each API's convention)."""
    if api == "storage":
        m = re.fullmatch(r"projects/_/buckets/([^/]+)/operations/([^/]+)", name)
        return f"/storage/v1/b/{m[1]}/operations/{m[2]}" if m else f"/storage/v1/{name}"
    return f"/v1/{name}"


def check_entry(entry: dict[str, Any]) -> list[str]:
    """The contract problems of one request-log entry (empty: it keeps the contract)."""
    target = entry.get("target")
    if target is None:
        return [f"{_where(entry)}: no target recorded (is the request log recording targets?)"]
    parts = urlsplit(target)
    if (
        parts.path.startswith(EXCLUDED_PREFIXES)
        or not parts.path.startswith(API_ROOTS)
        or int(entry.get("status", 0)) in REFUSED
    ):
        return []
    found = discovery.match(entry["method"], parts.path, parts.query)
    if len(found) != 1:
        ids = [m.id for m in found]
        return [f"{_where(entry)}: maps to {len(found)} documented methods {ids}, not one"]
    method = found[0]
    problems = []
    for key, _ in parse_qsl(parts.query, keep_blank_values=True):
        if key not in method.query and key not in PROTOCOL_PARAMS:
            problems.append(
                f"{_where(entry)}: query parameter {key!r} not documented for {method.id}"
            )
    request = entry.get("request_body") or {}
    body = request.get("json")
    if body is None and "text" in request and "multipart" in target + request["text"][:200]:
        body = _multipart_json(request["text"])
    if body is not None and method.request and not _raw_body(method.api, method.request):
        for problem, at in _fields(method.api, method.request, body, "request", output=False):
            problems.append(f"{_where(entry)}: {at}: {problem}")
    response = (entry.get("response_body") or {}).get("json")
    ok = 200 <= int(entry.get("status", 0)) < 300 and not entry.get("fault")
    media = ("alt", "media") in parse_qsl(parts.query) or parts.path.startswith("/download/")
    if media:  # the object's own bytes, whatever they look like
        response = None
    if ok and response is not None and method.response and method.response != RAW_BODY:
        for problem, at in _fields(method.api, method.response, response, "response", output=True):
            if problem == "operation":
                polled = discovery.match("GET", _operation_binding(method.api, at))
                if [m.id.rsplit(".", 1)[-1] for m in polled] != ["get"]:
                    problems.append(
                        f"{_where(entry)}: operation {at!r} is not pollable through a "
                        f"documented get binding (matches {[m.id for m in polled]})"
                    )
            else:
                problems.append(f"{_where(entry)}: {at}: {problem}")
    return problems


def check(entries: Iterable[dict[str, Any]]) -> list[str]:
    """Every contract problem of `entries`, each named once."""
    return list(dict.fromkeys(p for entry in entries for p in check_entry(entry)))


__all__ = [
    "API_ROOTS",
    "EXCLUDED_PREFIXES",
    "PROTOCOL_PARAMS",
    "RAW_BODY",
    "REFUSED",
    "REQUIRED_OUTPUT",
    "check",
    "check_entry",
]

"""Google's published API descriptions (discovery documents) as the tests read them.

Owns loading the discovery documents that google-api-python-client ships (storage v1,
aiplatform v1), the methods in scope for deployer (storage's buckets and objects,
aiplatform's projects.locations models / endpoints / batchPredictionJobs / operations,
each with their sub-resources), each method's HTTP binding as a regex over the raw request
path, its documented query parameters, and the schemas of its request and response
(`schema`), and `match`, which names the documented methods a request (verb + raw path)
is bound to.

Must not: import deployer, start servers, or reach the network (the documents are files
of an installed package).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

# aiplatform resources under projects.locations that deployer and its users touch.
AIPLATFORM_SCOPE = ("models", "endpoints", "batchPredictionJobs", "operations")
STORAGE_SCOPE = ("buckets", "objects", "operations")  # operations: storage.buckets.operations.*
# The GAPIC REST transport of google-cloud-aiplatform polls operations under "/ui/" where the
# document says "/v1/" (its http rules for the operations mixin); the service answers both.
AIPLATFORM_PATH_ALIASES = (("/ui/", "/v1/"),)


@dataclass(frozen=True)
class Method:
    """One documented method and its HTTP binding."""

    api: str  # "storage" | "aiplatform"
    id: str  # e.g. "storage.objects.get"
    http_method: str  # upper-case verb
    paths: tuple[str, ...]  # path templates from the root ("/storage/v1/b/{bucket}/o", ...)
    query: frozenset[str]  # documented query parameters (the method's and the API's)
    request: str | None  # schema name of the JSON request body
    response: str | None  # schema name of the JSON response body
    media_download: bool  # alt=media answers with the object's bytes, not JSON

    @property
    def resource(self) -> str:
        return self.id.split(".", 1)[1].rsplit(".", 1)[0]

    def sample_path(self) -> str:
        """The first binding with each variable filled in, as a client would send it."""
        return re.sub(r"\{\+?(\w+)\}", lambda m: _sample(m.group(1)), self.paths[0])


def _sample(var: str) -> str:
    if var.startswith("projects"):
        return "sample-project"
    if var.startswith("locations"):
        return "us-central1"
    if var in ("object", "sourceObject", "destinationObject"):
        return "dir%2Fsample.txt"
    if var.endswith("Id") or var.endswith("sId"):
        return "1234567"
    return f"sample-{var.lower()}"


@cache
def document(api: str) -> dict[str, Any]:
    """The discovery document of `api` ("storage" or "aiplatform"), version v1."""
    import googleapiclient

    path = (
        Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / f"{api}.v1.json"
    )
    return dict(json.loads(path.read_text()))


def _walk(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from resource.get("methods", {}).values()
    for sub in resource.get("resources", {}).values():
        yield from _walk(sub)


def _method(api: str, doc: dict[str, Any], raw: dict[str, Any]) -> Method:
    service = "/" + doc["servicePath"]
    query = {name for name, p in raw.get("parameters", {}).items() if p["location"] == "query"}
    query |= set(doc.get("parameters", {}))
    paths = [service + raw.get("flatPath", raw["path"])]
    for protocol in raw.get("mediaUpload", {}).get("protocols", {}).values():
        paths.append(protocol["path"])
    if raw.get("useMediaDownloadService"):
        paths.append("/download" + service + raw["path"])
    return Method(
        api=api,
        id=raw["id"],
        http_method=raw["httpMethod"],
        paths=tuple(dict.fromkeys(paths)),
        query=frozenset(query),
        request=raw.get("request", {}).get("$ref"),
        response=raw.get("response", {}).get("$ref"),
        media_download=bool(raw.get("supportsMediaDownload")),
    )


@cache
def methods() -> tuple[Method, ...]:
    """Every documented method in scope, storage's first, each API's sorted by id."""
    out: list[Method] = []
    storage = document("storage")
    for name in STORAGE_SCOPE:
        found = [_method("storage", storage, m) for m in _walk(storage["resources"][name])]
        out += sorted(found, key=lambda m: m.id)
    aiplatform = document("aiplatform")
    locations = aiplatform["resources"]["projects"]["resources"]["locations"]
    for name in AIPLATFORM_SCOPE:
        found = [_method("aiplatform", aiplatform, m) for m in _walk(locations["resources"][name])]
        out += sorted(found, key=lambda m: m.id)
    return tuple(out)


@cache
def _regex(template: str, api: str) -> re.Pattern[str]:
    # A storage variable is one raw (percent-encoded) segment; an aiplatform one stops at ':'
    # too, where a custom verb (":deployModel") begins. {+var} spans segments.
    one = "[^/]+" if api == "storage" else "[^/:]+"
    parts = re.split(r"(\{\+?\w+\})", template)
    regex = "".join(
        (".+" if p.startswith("{+") else one) if p.startswith("{") else re.escape(p) for p in parts
    )
    return re.compile(regex)


def normalise_path(path: str) -> str:
    for alias, documented in AIPLATFORM_PATH_ALIASES:
        if path.startswith(alias):
            return documented + path[len(alias) :]
    return path


def _verb(http_method: str, path: str, query: str) -> str:
    verb = http_method.upper()
    if verb == "HEAD":  # HTTP: the GET without its body
        return "GET"
    if verb in ("PUT", "DELETE") and "upload_id=" in query and "/upload/" in path:
        # A resumable session's chunk (PUT) or cancel (DELETE) continues the insert that
        # opened it, at the session URI the service handed out.
        return "POST"
    return verb


@cache
def all_methods() -> tuple[Method, ...]:
    """Every documented method of both documents (in scope or not)."""
    out = []
    for api in ("storage", "aiplatform"):
        doc = document(api)
        out += [_method(api, doc, raw) for raw in _walk(doc)]
    return tuple(out)


def match(
    http_method: str, raw_path: str, query: str = "", *, scope: tuple[Method, ...] | None = None
) -> list[Method]:
    """The documented methods whose binding matches a request (verb + raw path); of every
    method of both documents unless `scope` narrows it."""
    path = normalise_path(raw_path)
    verb = _verb(http_method, path, query)
    return [
        m
        for m in (all_methods() if scope is None else scope)
        if m.http_method == verb and any(_regex(t, m.api).fullmatch(path) for t in m.paths)
    ]


def schema(api: str, name: str) -> dict[str, Any]:
    """The schema `name` of `api`'s document (its "properties", "additionalProperties", ...)."""
    return dict(document(api)["schemas"][name])


__all__ = [
    "AIPLATFORM_SCOPE",
    "STORAGE_SCOPE",
    "Method",
    "all_methods",
    "document",
    "match",
    "methods",
    "normalise_path",
    "schema",
]

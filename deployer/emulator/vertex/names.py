"""Vertex AI resource names: parsing, validation and the URL patterns that carry them.

Owns the grammar of `projects/{p}/locations/{l}/models/{id}[@version|@alias]`,
`.../endpoints/{id}` and `.../operations/{id}`, the id formats Vertex accepts,
the route regexes every Vertex handler is registered under, and naming by project
number: Vertex names every resource `projects/{project number}/...` whichever form
the request used, so requests by id are rewritten to the number (`by_number`) before
any handler sees them (`ByProjectNumber`).

Must not: touch the store, the replicas or sockets; import TensorFlow.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Protocol

from deployer.emulator.context import project_number
from deployer.emulator.http import AsyncHandler, Handler, Request, Response, ServiceError

# One path segment of a resource name (no '/', no ':' which starts a custom verb).
SEG = r"[^/:]+"
PARENT_RE = rf"projects/{SEG}/locations/{SEG}"
# Route prefixes: the GAPIC clients use /v1/; the LRO poller of the SDK uses /ui/.
API = r"/(?:v1|ui)/"

# Client-chosen ids, as the v1 reference documents them:
# - UploadModelRequest.model_id: up to 63 of [a-z0-9_-], the first not a digit or hyphen.
# - endpoints.create endpointId: letter first, up to 63 of [a-z0-9-], last a letter or digit;
#   or digits first, up to 9 digits, no leading zero.
# - DeployedModel.id: 1-10 characters of [0-9].
# Ids Vertex generates itself (19 digits) are not client-chosen and are not checked here.
_MODEL_ID_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")
_ENDPOINT_ID_RE = re.compile(r"^(?:[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?|[1-9][0-9]{0,8})$")
_DEPLOYED_ID_RE = re.compile(r"^[0-9]{1,10}$")
_ALIAS_RE = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")
# `projects/{project}/` at the start of a resource name, or after the API prefix of a path.
_PROJECT_RE = re.compile(r"^(?P<head>(?:/(?:v1|ui)/)?projects/)(?P<project>[^/:]+)(?P<tail>/|$)")


@dataclass(frozen=True)
class ModelName:
    """A parsed model name; `version` is a version id ("2"), an alias ("v1") or None."""

    parent: str  # projects/{p}/locations/{l}
    model_id: str  # the registry model id
    version: str | None  # text after '@', if any

    @property
    def base(self) -> str:
        """The name without any @version."""
        return f"{self.parent}/models/{self.model_id}"


def new_numeric_id() -> str:
    """A fresh id shaped like Vertex's own (19 digits, no leading zero)."""
    return str(random.randint(10**18, 9 * 10**18))


def by_number(name: str) -> str:
    """`name` (a resource name, or a request path under /v1/ or /ui/) with its project id
    replaced by the project number, as Vertex names resources; unchanged if it holds none."""
    m = _PROJECT_RE.match(name)
    if m is None or m["project"].isdigit():
        return name
    return f"{m['head']}{project_number(m['project'])}{m['tail']}{name[m.end() :]}"


def parse_parent(parent: str) -> str:
    """A location name, by project number; 400 INVALID_ARGUMENT if it is not one."""
    if not re.fullmatch(PARENT_RE, parent):
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"Invalid parent {parent!r}: expected projects/*/locations/*"
        )
    return by_number(parent)


def parse_model_name(name: str) -> ModelName:
    """Split `projects/p/locations/l/models/ID[@VER]`; '%40' is accepted for '@'."""
    name = by_number(name.replace("%40", "@"))
    m = re.fullmatch(rf"({PARENT_RE})/models/([^/:@]+)(?:@([^/:@]+))?", name)
    if m is None:
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"Invalid Model resource name {name!r}: expected "
            f"projects/*/locations/*/models/*[@version]",
        )
    return ModelName(m.group(1), m.group(2), m.group(3))


def _checked(pattern: re.Pattern[str], value: str, message: str) -> str:
    """`value` if it matches `pattern` whole, else 400 INVALID_ARGUMENT with `message`."""
    if not pattern.fullmatch(value):
        raise ServiceError(400, "INVALID_ARGUMENT", message)
    return value


def check_model_id(value: str) -> str:
    """UploadModelRequest.model_id as the v1 reference documents it."""
    return _checked(
        _MODEL_ID_RE,
        value,
        f"Invalid Model id {value!r}: it may be up to 63 characters of [a-z0-9_-], and the "
        "first character cannot be a number or hyphen.",
    )


def check_endpoint_id(value: str) -> str:
    """endpoints.create's endpointId as the v1 reference documents it."""
    return _checked(
        _ENDPOINT_ID_RE,
        value,
        f"Invalid Endpoint id {value!r}: if the first character is a letter, it may be up to "
        "63 characters of [a-z0-9-] and must end with a letter or number; if the first "
        "character is a number, it may be up to 9 digits with no leading zeros.",
    )


def check_deployed_model_id(value: str) -> str:
    """DeployedModel.id as the v1 reference documents it."""
    return _checked(
        _DEPLOYED_ID_RE,
        value,
        f"Invalid DeployedModel id {value!r}: it should be 1-10 characters, and valid "
        "characters are [0-9].",
    )


def check_alias(alias: str) -> str:
    """Aliases look like `v1`, `prod`, `default`; they must not look like a version id."""
    return _checked(
        _ALIAS_RE,
        alias,
        f"Invalid version alias {alias!r}: it must match [a-z][a-zA-Z0-9-]{{0,126}}[a-z0-9].",
    )


def operation_name(resource: str) -> str:
    """A new operation name under a resource (model, endpoint) or a location."""
    return f"{resource}/operations/{new_numeric_id()}"


class Routes(Protocol):
    """Where the Vertex route modules register their handlers (a Router, or ByProjectNumber)."""

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        *,
        name: str,
        mutating: bool,
        async_handler: AsyncHandler | None = None,
    ) -> None: ...


class ByProjectNumber:
    """Registers routes on `routes` so that every handler sees names by project number.

    A request by project id (`/v1/projects/my-project/...`) is matched again with the
    number in its place, so handlers, the store and every name they return agree on
    one form, as on Vertex; a request by number passes unchanged.
    """

    def __init__(self, routes: Routes) -> None:
        self._routes = routes

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        *,
        name: str,
        mutating: bool,
        async_handler: AsyncHandler | None = None,
    ) -> None:
        def by_number_handler(req: Request, m: re.Match[str]) -> Response:
            return handler(req, _by_number_match(m))

        by_number_async: AsyncHandler | None = None
        if async_handler is not None:
            twin = async_handler

            async def by_number_twin(req: Request, m: re.Match[str]) -> Response:
                return await twin(req, _by_number_match(m))

            by_number_async = by_number_twin

        self._routes.add(
            method,
            pattern,
            by_number_handler,
            name=name,
            mutating=mutating,
            async_handler=by_number_async,
        )


def _by_number_match(m: re.Match[str]) -> re.Match[str]:
    """`m` matched again on its path with the project's number in place of its id."""
    path = by_number(m.string)
    if path != m.string:
        return m.re.fullmatch(path) or m
    return m

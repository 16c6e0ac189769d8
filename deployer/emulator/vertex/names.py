"""Vertex AI resource names: parsing, validation and the URL patterns that carry them.

Owns the grammar of `projects/{p}/locations/{l}/models/{id}[@version|@alias]`,
`.../endpoints/{id}` and `.../operations/{id}`, the id formats Vertex accepts,
and the route regexes every Vertex handler is registered under.

Must not: touch the store, the replicas or HTTP; import TensorFlow.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from deployer.emulator.http import ServiceError

# One path segment of a resource name (no '/', no ':' which starts a custom verb).
SEG = r"[^/:]+"
PARENT_RE = rf"projects/{SEG}/locations/{SEG}"
# Route prefixes: the GAPIC clients use /v1/; the LRO poller of the SDK uses /ui/.
API = r"/(?:v1|ui)/"

# Client-chosen ids: Vertex documents 1-63 chars, [a-z0-9-], first char a letter
# for endpoints/models; purely numeric ids are Vertex's own and allowed back.
_ID_RE = re.compile(r"^(?:[a-z][a-z0-9-]{0,62}|[0-9]{1,63})$")
_ALIAS_RE = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")
_DEPLOYED_ID_RE = re.compile(r"^(?:[a-z][a-z0-9_-]{0,62}|[0-9]{1,63})$")


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


def parse_parent(parent: str) -> str:
    if not re.fullmatch(PARENT_RE, parent):
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"Invalid parent {parent!r}: expected projects/*/locations/*"
        )
    return parent


def parse_model_name(name: str) -> ModelName:
    """Split `projects/p/locations/l/models/ID[@VER]`; '%40' is accepted for '@'."""
    name = name.replace("%40", "@")
    m = re.fullmatch(rf"({PARENT_RE})/models/([^/:@]+)(?:@([^/:@]+))?", name)
    if m is None:
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"Invalid Model resource name {name!r}: expected "
            f"projects/*/locations/*/models/*[@version]",
        )
    return ModelName(m.group(1), m.group(2), m.group(3))


def check_resource_id(kind: str, value: str) -> str:
    if not _ID_RE.fullmatch(value):
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"Invalid {kind} id {value!r}: use 1-63 characters of [a-z0-9-] starting with a letter "
            "(or digits only).",
        )
    return value


def check_deployed_model_id(value: str) -> str:
    if not _DEPLOYED_ID_RE.fullmatch(value):
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"Invalid DeployedModel id {value!r}: use up to 63 characters of [a-z0-9_-] starting "
            "with a letter (or digits only).",
        )
    return value


def check_alias(alias: str) -> str:
    """Aliases look like `v1`, `prod`, `default`; they must not look like a version id."""
    if not _ALIAS_RE.fullmatch(alias):
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"Invalid version alias {alias!r}: it must match [a-z][a-zA-Z0-9-]{{0,126}}[a-z0-9].",
        )
    return alias


def operation_name(resource: str) -> str:
    """A new operation name under a resource (model, endpoint) or a location."""
    return f"{resource}/operations/{new_numeric_id()}"

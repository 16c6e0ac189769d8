"""PURE: the action vocabulary of a plan (what `plan` decides and `apply` executes).

Owns: `ActionKind` and `Resource` (str enums), `VersionRef`, one frozen dataclass per kind
of action payload, `Action`, `Plan` and `PlanInputs`, and the one JSON codec of actions
(`action_to_json` / `action_from_json`, lossless: decoding gives back an equal `Action`),
which saved plan files are written with. Values only: no I/O, no SDK imports, no logic
beyond counting and coding. `deployer.reconcile.plan` computes these and re-exports them, so
callers import them from there.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deployer.spec.model import Container, RolloutPolicy
from deployer.spec.production_model import (
    DeployedModelSettings,
    EndpointSettings,
    RequestResponseLogging,
)

Labels = tuple[tuple[str, str], ...]
Traffic = tuple[tuple[str, int], ...]  # (deployed model id or "0" for the one being deployed, %)


class ActionKind(str, enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"  # a new resource takes over from an old one (old removed later)
    DELETE = "delete"


class Resource(str, enum.Enum):
    BUCKET = "bucket"
    ARTIFACT = "artifact"
    MODEL_VERSION = "model_version"
    ALIASES = "aliases"
    ENDPOINT = "endpoint"
    DEPLOYMENT = "deployment"
    TRAFFIC = "traffic"
    MODEL = "model"


@dataclass(frozen=True)
class VersionRef:
    """A model version that exists, or that an earlier action of the plan creates."""

    model: str  # logical model name
    model_id: str
    spec_hash: str  # deployer-spec label of the version: identity of (artifact, container)
    version_id: str | None = None  # None until created; apply resolves it


# ----------------------------------------------------------------- action payloads


@dataclass(frozen=True)
class CreateBucket:
    name: str
    location: str
    labels: Labels


@dataclass(frozen=True)
class UploadArtifact:
    model: str
    alias: str
    source: str  # local SavedModel directory
    content_hash: str
    bucket: str
    prefix: str  # object prefix, ends with "/"


@dataclass(frozen=True)
class CreateVersion:
    version: VersionRef
    parent_exists: bool  # False: the first version creates the registry model (model_id)
    display_name: str
    description: str
    artifact_uri: str
    container_image: str
    labels: Labels
    aliases: tuple[str, ...]  # only aliases no other version holds at that point
    model_description: str = ""  # the registry model's description (model-level, like display_name)
    kms_key_name: str | None = None  # the model's encryption_spec (CMEK)
    container: Container | None = None  # the full containerSpec (None: container_image alone)


@dataclass(frozen=True)
class UpdateVersion:
    version: VersionRef
    description: str
    labels: Labels


@dataclass(frozen=True)
class UpdateModel:
    """The registry model's own fields (shared by its versions)."""

    model_id: str
    display_name: str
    description: str


@dataclass(frozen=True)
class MergeAliases:
    version: VersionRef
    add: tuple[str, ...]
    remove: tuple[str, ...]


@dataclass(frozen=True)
class CreateEndpoint:
    name: str
    endpoint_id: str
    display_name: str
    description: str
    labels: Labels
    settings: EndpointSettings = field(default_factory=EndpointSettings)  # create-only + logging


@dataclass(frozen=True)
class UpdateEndpointLogging:
    """Patch the endpoint's predict_request_response_logging_config in place."""

    endpoint_id: str
    config: RequestResponseLogging | None  # None: logging off


@dataclass(frozen=True)
class UpdateEndpoint:
    endpoint_id: str
    display_name: str
    description: str
    labels: Labels


@dataclass(frozen=True)
class Deploy:
    endpoint_id: str
    deployed_id: str
    version: VersionRef
    display_name: str  # "<model>@<alias>": what status shows
    machine_type: str
    accelerator_type: str | None
    accelerator_count: int
    min_replicas: int
    max_replicas: int
    traffic: Traffic  # the endpoint's split after this deploy ("0" = this one)
    settings: DeployedModelSettings = field(default_factory=DeployedModelSettings)


@dataclass(frozen=True)
class MutateDeployment:
    endpoint_id: str
    deployed_id: str
    min_replicas: int
    max_replicas: int
    # autoscaling targets and container logging too; None: replicas only
    settings: DeployedModelSettings | None = None


@dataclass(frozen=True)
class SetTraffic:
    endpoint_id: str
    traffic: Traffic


@dataclass(frozen=True)
class Rollout:
    """Shift an endpoint's traffic to a deployment (deployed, at 0% or at an unverified
    share) step by step, each step verified by the policy's checks."""

    endpoint: str  # logical name, for messages
    endpoint_id: str
    deployed_id: str  # the version taking traffic
    names: tuple[tuple[str, str], ...]  # deployed id -> "model@alias", for the report
    traffic: Traffic  # the spec's split, reached at the last step
    policy: RolloutPolicy


@dataclass(frozen=True)
class Undeploy:
    endpoint_id: str
    deployed_id: str
    traffic: Traffic  # the split of the others after it goes; () when it carries none


@dataclass(frozen=True)
class DeleteEndpoint:
    endpoint_id: str


@dataclass(frozen=True)
class DeleteVersion:
    version: VersionRef


@dataclass(frozen=True)
class DeleteModel:
    model_id: str


Payload = (
    CreateBucket
    | UploadArtifact
    | CreateVersion
    | UpdateVersion
    | UpdateModel
    | MergeAliases
    | CreateEndpoint
    | UpdateEndpoint
    | UpdateEndpointLogging
    | Deploy
    | MutateDeployment
    | SetTraffic
    | Rollout
    | Undeploy
    | DeleteEndpoint
    | DeleteVersion
    | DeleteModel
)


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    resource: Resource
    address: str  # what a person reads: "endpoint mnist-endpoint / mnist@v2"
    reason: str  # why, in a few words
    payload: Payload


@dataclass(frozen=True)
class Plan:
    stack: str
    actions: tuple[Action, ...]

    @property
    def is_empty(self) -> bool:
        return not self.actions

    def counts(self) -> dict[str, int]:
        out = {k.value: 0 for k in ActionKind}
        for a in self.actions:
            out[a.kind.value] += 1
        return out


@dataclass(frozen=True)
class PlanInputs:
    # (model name, alias) -> content hash of the version's artifact (sha256 hex of the tree
    # for a local dir; any stable hash of the URI for gs:// artifacts).
    artifact_hashes: Mapping[tuple[str, str], str] = field(default_factory=dict)
    expires_at: int | None = None  # unix seconds stamped as deployer-expires on creates


# ------------------------------------------------------------------------ JSON codec
#
# One codec for every payload, driven by the dataclasses' own type hints, so a new field or
# a new payload class is covered without code here (add the class to `PAYLOADS`). Tuples
# become JSON arrays and come back as tuples; `None` stays null; nothing is coerced, so a
# hand-edited file with a wrong type is refused instead of executed differently.

PAYLOADS: dict[str, type[Payload]] = {
    cls.__name__: cls
    for cls in (
        CreateBucket,
        UploadArtifact,
        CreateVersion,
        UpdateVersion,
        UpdateModel,
        MergeAliases,
        CreateEndpoint,
        UpdateEndpoint,
        UpdateEndpointLogging,
        Deploy,
        MutateDeployment,
        SetTraffic,
        Rollout,
        Undeploy,
        DeleteEndpoint,
        DeleteVersion,
        DeleteModel,
    )
}


class CodecError(ValueError):
    """A JSON document that is not an encoded action; the message names the field path."""


def action_to_json(action: Action) -> dict[str, Any]:
    return {
        "kind": action.kind.value,
        "resource": action.resource.value,
        "address": action.address,
        "reason": action.reason,
        "type": type(action.payload).__name__,
        "payload": _encode(action.payload),
    }


def action_from_json(doc: Any, where: str = "action") -> Action:
    obj = _mapping(doc, where, {"kind", "resource", "address", "reason", "type", "payload"})
    cls = PAYLOADS.get(obj["type"]) if isinstance(obj["type"], str) else None
    if cls is None:
        raise CodecError(f"{where}.type: unknown action type {obj['type']!r}")
    return Action(
        _enum(ActionKind, obj["kind"], f"{where}.kind"),
        _enum(Resource, obj["resource"], f"{where}.resource"),
        _decode(str, obj["address"], f"{where}.address"),
        _decode(str, obj["reason"], f"{where}.reason"),
        _decode(cls, obj["payload"], f"{where}.payload"),
    )


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _mapping(doc: Any, where: str, required: set[str]) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise CodecError(f"{where}: expected an object, got {type(doc).__name__}")
    missing = sorted(required - set(doc))
    if missing:
        raise CodecError(f"{where}: missing {', '.join(missing)}")
    return doc


def _enum(cls: type[enum.Enum], value: Any, where: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in cls)
        raise CodecError(f"{where}: {value!r} is not one of {choices}") from None


def _decode(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _decode(inner, value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise CodecError(f"{where}: expected an array, got {type(value).__name__}")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise CodecError(f"{where}: expected {len(args)} items, got {len(value)}")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(_decode(a, v, f"{where}[{i}]") for i, (a, v) in pairs)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        fields = dataclasses.fields(hint)
        required = {
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        obj = _mapping(value, where, required)
        unknown = sorted(set(obj) - {f.name for f in fields})
        if unknown:
            raise CodecError(f"{where}: unknown field {', '.join(unknown)}")
        hints = typing.get_type_hints(hint)
        kwargs = {
            f.name: _decode(hints[f.name], obj[f.name], f"{where}.{f.name}")
            for f in fields
            if f.name in obj
        }
        return hint(**kwargs)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum(hint, value, where)
    if hint is float:
        if type(value) not in (int, float):
            raise CodecError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint in (str, int, bool):
        # type() is: a bool is an int to isinstance, and 1 is not a bool.
        if type(value) is not hint:
            raise CodecError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    raise CodecError(f"{where}: cannot decode a {hint!r}")  # a payload field of a new type

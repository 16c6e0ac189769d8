"""PURE: the action vocabulary of a plan (what `plan` decides and `apply` executes).

Owns: `ActionKind` and `Resource` (str enums), `VersionRef`, one frozen dataclass per kind
of action payload, `Action`, `Plan` and `PlanInputs`. Values only: no I/O, no SDK imports,
no logic beyond counting. `deployer.reconcile.plan` computes these and re-exports them, so callers
import them from there.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class MutateDeployment:
    endpoint_id: str
    deployed_id: str
    min_replicas: int
    max_replicas: int


@dataclass(frozen=True)
class SetTraffic:
    endpoint_id: str
    traffic: Traffic


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
    | Deploy
    | MutateDeployment
    | SetTraffic
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

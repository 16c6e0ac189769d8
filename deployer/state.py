"""What exists for a stack (observed state), and how deployer names and labels it.

Owns: the frozen dataclasses a provider fills when it observes a stack (`StackState`
and its parts), the deterministic ids of the resources deployer creates (model id,
endpoint id, deployed model id), the label keys, and the short hashes of desired
fields that label each resource. Pure: no I/O, no SDK imports. Shared by `plan`
(which diffs desired against observed), `apply`, `teardown` and the providers.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

# Label keys stamped on every managed resource (Vertex and GCS label rules: [a-z0-9_-]).
LABEL_STACK = "deployer-stack"  # the stack name: observe and teardown select on it
LABEL_NAME = "deployer-name"  # the logical name in the spec
LABEL_SPEC = "deployer-spec"  # short hash of the resource's desired fields
LABEL_HASH = "deployer-hash"  # artifact content hash (model versions only)
LABEL_ALIAS = "deployer-alias"  # the alias the version was created for (readability only)
LABEL_EXPIRES = "deployer-expires"  # unix seconds after which `deployer reap` removes it
LABEL_CREATED = "deployer-created"  # "true" on a bucket the stack created (teardown deletes it)

DEFAULT_ALIAS = "default"  # Vertex's alias of a model's default version

ARTIFACT_PREFIX = "artifacts"  # gs://<bucket>/artifacts/<stack>/<model>/<hash>/
CONTROL_PREFIX = ".deployer"  # gs://<bucket>/.deployer/<stack>/{lock,journal.json,verified/}
BATCH_INPUT_PREFIX = "batch-inputs"  # gs://<bucket>/batch-inputs/<stack>/...: staged batch inputs


def short_hash(*parts: Any, length: int = 12) -> str:
    """A stable lowercase hex digest of JSON-encodable parts (a valid label value)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def label_value(text: str) -> str:
    """Coerce text to a Vertex/GCS label value: lowercase [a-z0-9_-], at most 63 chars."""
    value = re.sub(r"[^a-z0-9_-]", "-", text.lower())
    if len(value) > 63:
        value = value[:50] + "-" + short_hash(text, length=12)
    return value


def _resource_id(stack: str, name: str, *, allowed: str) -> str:
    # Readable and collision-free: "<stack>-<name>" plus a hash of the pair, since
    # ("a-b", "c") and ("a", "b-c") would otherwise meet at "a-b-c".
    base = re.sub(f"[^{allowed}]", "-", f"{stack}-{name}".lower()).strip("-")
    suffix = short_hash(stack, name, length=6)
    base = base[: 63 - len(suffix) - 1].rstrip("-")
    if not base or not base[0].isalpha():
        base = "d" + base
    return f"{base}-{suffix}"


def model_id(stack: str, model: str) -> str:
    """Registry model id: [a-z0-9_-], letter first, <= 63 chars (Vertex UploadModel rules)."""
    return _resource_id(stack, model, allowed="a-z0-9_-")


def endpoint_id(stack: str, endpoint: str) -> str:
    """Endpoint id: letter first, [a-z0-9-], <= 63 chars, ends alphanumeric (CreateEndpoint)."""
    return _resource_id(stack, endpoint, allowed="a-z0-9-")


def deployed_model_id(stack: str, endpoint: str, identity: str) -> str:
    """DeployedModel id: 1-10 digits. Deterministic so a retried deploy can be recognised."""
    digest = int(hashlib.sha256(f"{stack}\0{endpoint}\0{identity}".encode()).hexdigest(), 16)
    return str(1_000_000_000 + digest % 8_999_999_999)


def artifact_prefix(stack: str, model: str, content_hash: str) -> str:
    return f"{ARTIFACT_PREFIX}/{stack}/{label_value(model)}/{content_hash}/"


def lock_object(stack: str) -> str:
    return f"{CONTROL_PREFIX}/{stack}/lock"


def journal_object(stack: str) -> str:
    return f"{CONTROL_PREFIX}/{stack}/journal.json"


def stack_prefixes(stack: str) -> tuple[str, ...]:
    """Object prefixes the stack owns in its bucket (teardown removes them)."""
    return (
        f"{ARTIFACT_PREFIX}/{stack}/",
        f"{BATCH_INPUT_PREFIX}/{stack}/",
        f"{CONTROL_PREFIX}/{stack}/",
    )


# --------------------------------------------------------------------------- observed


@dataclass(frozen=True)
class ObservedBucket:
    name: str
    exists: bool
    labels: tuple[tuple[str, str], ...] = ()  # bucket labels, sorted

    @property
    def created_by_stack(self) -> bool:
        return dict(self.labels).get(LABEL_CREATED) == "true"


@dataclass(frozen=True)
class ObservedVersion:
    model_resource: str  # projects/P/locations/R/models/ID
    version_id: str  # "1", "2", ...
    aliases: tuple[str, ...]  # includes "default" on the default version
    labels: tuple[tuple[str, str], ...]  # sorted
    artifact_uri: str
    container_image: str
    description: str = ""

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


@dataclass(frozen=True)
class ObservedModel:
    name: str  # logical name (label deployer-name)
    model_id: str  # last component of the resource name
    resource: str  # projects/P/locations/R/models/ID
    versions: tuple[ObservedVersion, ...]  # ordered by version id
    # Model-level fields (all versions share them); None where the provider did not read them.
    display_name: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class ObservedDeployment:
    id: str  # DeployedModel.id
    model_resource: str  # projects/P/locations/R/models/ID (no @version)
    version_id: str
    display_name: str
    machine_type: str
    accelerator_type: str | None
    accelerator_count: int
    min_replicas: int
    max_replicas: int
    deployed_at: float | None = field(default=None, compare=False)  # unix seconds
    # What mutateDeployedModel changes besides replicas (autoscaling targets, container
    # logging) as text (deployer.spec.production_model.mutable_settings); None: not read.
    settings: tuple[tuple[str, str], ...] | None = None
    # Replicas serving now (DeployedModel.status.available_replica_count; autoscaling moves it
    # between min and max); None: not reported.
    replicas_available: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ObservedEndpoint:
    name: str  # logical name (label deployer-name)
    endpoint_id: str
    resource: str  # projects/P/locations/R/endpoints/ID
    labels: tuple[tuple[str, str], ...]
    display_name: str
    description: str
    deployments: tuple[ObservedDeployment, ...]
    traffic: tuple[tuple[str, int], ...]  # (deployed model id, percent), sorted by id
    # The create-only settings (network, PSC, CMEK, dedicated) and the request/response
    # logging config, as text (deployer.spec.production_model); None: not read.
    fixed_settings: tuple[tuple[str, str], ...] | None = None
    logging: str | None = None

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


@dataclass(frozen=True)
class ObservedBatchJob:
    name: str  # logical name (label deployer-name), "" if unlabelled
    resource: str  # projects/P/locations/R/batchPredictionJobs/N
    state: str  # JobState name, e.g. "JOB_STATE_RUNNING"
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class StackState:
    """Everything labelled with one stack, as a provider observed it."""

    stack: str
    bucket: ObservedBucket
    models: tuple[ObservedModel, ...] = ()
    endpoints: tuple[ObservedEndpoint, ...] = ()
    batch_jobs: tuple[ObservedBatchJob, ...] = ()
    api_calls: int = field(default=0, compare=False)  # how many calls observing took

    def model(self, name: str) -> ObservedModel | None:
        return next((m for m in self.models if m.name == name), None)

    def endpoint(self, name: str) -> ObservedEndpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)

    @property
    def is_empty(self) -> bool:
        return not (self.models or self.endpoints or self.batch_jobs)

"""The validated, frozen spec: what the user wants to exist.

Owns the internal spec model the core works with (frozen dataclasses, `str` enums) and
`parse_ttl`. Pure data: no I/O, no YAML, no pydantic (`deployer.spec.document` builds
these objects from a validated document; `deployer.spec.load` reads the file). Importing
it stays cheap, so plan and apply can use the types without loading the validator.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path

from deployer.spec.production_model import (
    BatchJobSettings,
    DeployedModelSettings,
    EndpointSettings,
)


class Target(str, enum.Enum):
    LOCAL = "local"  # the embedded emulator (default)
    VERTEX = "vertex"  # real Vertex AI, Application Default Credentials


class InputFormat(str, enum.Enum):
    JSONL = "jsonl"
    CSV = "csv"
    FILE_LIST = "file-list"
    TF_RECORD = "tf-record"
    BIGQUERY = "bigquery"  # a bq:// table (BatchJob.settings.bigquery_source), no paths


@dataclass(frozen=True)
class Accelerator:
    type: str  # Vertex enum name, e.g. "NVIDIA_TESLA_T4"
    count: int  # accelerators per replica, >= 1


@dataclass(frozen=True)
class Bucket:
    name: str  # GCS bucket name, validated against GCS naming rules
    location: str  # e.g. "US-CENTRAL1"; defaults to the spec's region, upper-cased
    create: bool  # True: the stack creates (and teardown deletes) it; False: must exist


@dataclass(frozen=True)
class Probe:
    """A startup or health probe of a custom container (Vertex's Probe, the fields users set)."""

    exec: tuple[str, ...] = ()  # command run in the container; exit 0 = healthy
    http_path: str = ""  # GET on the serving port; 2xx = healthy
    period_seconds: int | None = None
    timeout_seconds: int | None = None
    failure_threshold: int | None = None
    initial_delay_seconds: int | None = None


@dataclass(frozen=True)
class Container:
    """A model version's serving container: Vertex's ModelContainerSpec, as users set it."""

    image: str  # a pre-built prediction image or a custom one
    command: tuple[str, ...] = ()  # replaces ENTRYPOINT
    args: tuple[str, ...] = ()  # replaces CMD
    env: tuple[tuple[str, str], ...] = ()  # in spec order
    ports: tuple[int, ...] = ()  # the first is where Vertex sends requests
    grpc_ports: tuple[int, ...] = ()
    predict_route: str = ""  # "" = Vertex's default
    health_route: str = ""
    startup_probe: Probe | None = None
    health_probe: Probe | None = None
    shared_memory_size_mb: int | None = None
    deployment_timeout_s: int | None = None
    instance_schema: str = ""  # gs:// URIs of the model's predict schemata
    parameters_schema: str = ""
    prediction_schema: str = ""

    @property
    def fingerprint(self) -> str:
        """What identifies the container for the plan: the image alone when nothing else is set
        (so specs that only name an image keep their version hashes), else every field."""
        if self == Container(image=self.image):
            return self.image
        import json
        from dataclasses import asdict

        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class ModelVersion:
    alias: str  # version alias in the registry, e.g. "v1"; unique within the model
    artifact: str  # absolute local artifact dir (SavedModel, model.joblib, ...) or a gs:// URI
    container_image: str  # serving container image (version overrides model)
    description: str = ""  # shown in the registry
    labels: tuple[tuple[str, str], ...] = ()  # user labels, merged with deployer's
    container: Container | None = None  # the full container (None: container_image alone)

    @property
    def container_spec(self) -> Container:
        return self.container or Container(image=self.container_image)

    @property
    def is_local(self) -> bool:
        return not self.artifact.startswith("gs://")


@dataclass(frozen=True)
class Model:
    name: str  # logical name; the registry model id is derived from stack + name
    versions: tuple[ModelVersion, ...]  # in spec order; the last is the newest
    display_name: str  # registry display name (defaults to name)
    description: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    kms_key_name: str | None = None  # encryption_spec (CMEK) of every version

    def version(self, alias: str) -> ModelVersion:
        for v in self.versions:
            if v.alias == alias:
                return v
        raise KeyError(f"{self.name}@{alias}")


class OnFailure(str, enum.Enum):
    ROLLBACK = "rollback"  # restore the previous split and undeploy the new version
    HOLD = "hold"  # keep the split of the last verified step and the new version deployed


@dataclass(frozen=True)
class SmokeCheck:
    file: str  # absolute path: JSON Lines of {"instance": ..., "expected": ...}
    tolerance: float  # largest absolute difference between a number and its expected value


@dataclass(frozen=True)
class AgreementCheck:
    file: str  # absolute path: JSON Lines, one instance per line
    min_percent: float  # the new version agrees with the one it replaces on at least this
    tolerance: float  # numbers closer than this agree (class scores: the same argmax agrees)


@dataclass(frozen=True)
class RolloutPolicy:
    """How a new version takes traffic: step by step, each step verified before the next."""

    steps: tuple[int, ...]  # the new version's traffic percent per step, strictly increasing
    wait_seconds: float | None  # each step lasts this long ...
    requests: int | None  # ... or until this many check requests were answered
    smoke: SmokeCheck | None = None
    agreement: AgreementCheck | None = None
    max_error_rate: float | None = None  # 0..1, errors / requests of the new version
    max_p99_ms: float | None = None  # the new version's p99 latency, client side
    on_failure: OnFailure = OnFailure.ROLLBACK

    def describe(self) -> str:
        return "rollout " + " -> ".join(f"{s}%" for s in self.steps)


@dataclass(frozen=True)
class Deployment:
    model: str  # Model.name
    version: str  # ModelVersion.alias
    traffic: int  # percent, 0..100; an endpoint's deployments sum to 100
    machine_type: str  # e.g. "n1-standard-4"
    min_replicas: int  # >= 1
    max_replicas: int  # >= min_replicas
    accelerator: Accelerator | None = None
    # How a new deployment takes its traffic (the endpoint's policy, overridden per
    # deployment); None: shifted at once.
    rollout: RolloutPolicy | None = None
    settings: DeployedModelSettings = field(default_factory=DeployedModelSettings)

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


@dataclass(frozen=True)
class Endpoint:
    name: str  # logical name; the endpoint id is derived from stack + name
    deployments: tuple[Deployment, ...]
    display_name: str  # defaults to name
    description: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    settings: EndpointSettings = field(default_factory=EndpointSettings)


@dataclass(frozen=True)
class BatchInput:
    paths: tuple[str, ...]  # absolute local paths (files or folders) and/or gs:// URIs
    format: InputFormat


@dataclass(frozen=True)
class BatchJob:
    name: str  # logical name, labelled on the job
    model: str  # Model.name
    version: str  # ModelVersion.alias
    input: BatchInput
    output_prefix: str  # object prefix in the stack bucket, e.g. "predictions/"
    machine_type: str
    starting_replicas: int  # >= 1
    max_replicas: int  # >= starting_replicas
    accelerator: Accelerator | None = None
    batch_size: int | None = None  # manualBatchTuningParameters.batchSize, if set
    settings: BatchJobSettings = field(default_factory=BatchJobSettings)

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


@dataclass(frozen=True)
class Guards:
    max_hourly_usd: float | None = None  # apply refuses plans above this steady-state cost
    ttl_seconds: int | None = None  # expiry stamped as a label; `deployer reap` enforces it


@dataclass(frozen=True)
class Spec:
    stack: str  # label value on everything the stack owns; [a-z][a-z0-9-]{0,39}
    project: str
    region: str
    target: Target
    bucket: Bucket
    models: tuple[Model, ...]
    endpoints: tuple[Endpoint, ...] = ()
    batch_jobs: tuple[BatchJob, ...] = ()
    guards: Guards = field(default_factory=Guards)
    source: Path | None = None  # the file it was loaded from (for messages)

    def model(self, name: str) -> Model:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    def endpoint(self, name: str) -> Endpoint:
        for e in self.endpoints:
            if e.name == name:
                return e
        raise KeyError(name)

    def batch_job(self, name: str) -> BatchJob:
        for j in self.batch_jobs:
            if j.name == name:
                return j
        raise KeyError(name)


_TTL = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_ttl(text: str) -> int:
    """ "30m", "4h", "2d", "1w" -> seconds. Raises ValueError for anything else (or zero)."""
    m = _TTL.match(text) if isinstance(text, str) else None
    if not m or int(m[1]) == 0:
        raise ValueError(
            f"bad ttl {text!r}: use a positive number followed by m, h, d or w (e.g. 4h)"
        )
    return int(m[1]) * _UNIT_SECONDS[m[2]]

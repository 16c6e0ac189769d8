"""The provider interface: the only door from deployer's core to a cloud.

Owns: a few narrow Protocols, each with the value types that cross it, and `Provider`, the
composite the CLI and the reconciler hold:

    Storage      buckets and objects (artifacts, staged batch inputs, the lock, shard downloads)
    Registry     model versions, aliases, model-level fields; resolving alias -> version
    Endpoints    endpoints, deployments, traffic, online prediction
    Jobs         batch prediction jobs (JobState, JobStatus, JobRequest, TERMINAL)
    Operations   long-running operations (Operation)
    Inventory    observing by label: one stack (StackState) or every labelled resource
    Provider     all of the above, plus project, region and the API call count

Consumers take the narrowest protocol they need (deployer.batch takes Storage, Registry and
Jobs one function at a time). Two implementations ship: `deployer.providers.vertex.
VertexProvider` (official GAPIC v1 clients over REST + google-cloud-storage; the same code for
the local emulator and real Vertex AI) and `deployer.providers.fake.FakeProvider` (in memory,
records calls). One contract suite, tests/integration/test_provider_contract.py, runs the
same scenarios against both.

Rules every implementation keeps: vendor exceptions never escape (they become
`deployer.errors`); read calls retry `TransientError` themselves; mutating calls raise
`ResponseLost` when the effect is unknown, and `apply` decides how to adopt. Heavy SDK
imports happen inside the implementations, never here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from deployer.spec.production_model import (
    BatchJobSettings,
    DeployedModelSettings,
    EndpointSettings,
    RequestResponseLogging,
)
from deployer.state import (
    ObservedBatchJob,
    ObservedBucket,
    ObservedEndpoint,
    ObservedVersion,
    StackState,
)

if TYPE_CHECKING:
    from deployer.spec.model import Container

Labels = tuple[tuple[str, str], ...]
Traffic = tuple[tuple[str, int], ...]  # (deployed model id, percent); "0" is the one deploying
Progress = Callable[[int], None]  # called with bytes sent since the last call


# --- operations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """A long-running operation as last seen."""

    name: str  # full operation resource name ("" for calls that finished synchronously)
    done: bool
    error: str | None = None  # the operation's error message when it failed
    result: str | None = None  # resource name the operation produced (e.g. a model version)


class Operations(Protocol):
    def get_operation(self, name: str) -> Operation:
        """The operation as it is now; NotFound if the service does not know it."""
        ...


# --- storage ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int
    md5: str | None  # base64, as GCS reports it
    crc32c: str | None  # base64
    generation: int = 0


class Storage(Protocol):
    """Buckets and objects. Object names are relative to the bucket."""

    def get_bucket(self, name: str) -> ObservedBucket: ...
    def create_bucket(self, name: str, location: str, labels: Labels) -> None: ...
    def delete_bucket(self, name: str) -> None: ...
    def list_objects(self, bucket: str, prefix: str) -> dict[str, ObjectInfo]: ...
    def upload_files(
        self, bucket: str, files: Iterable[tuple[str, str]], progress: Progress | None = None
    ) -> None:
        """Upload (local path, object name) pairs; `progress` sees the bytes of each."""
        ...

    def download_files(self, items: Iterable[tuple[str, Path]]) -> None:
        """Download (gs:// URI, local path) pairs, each streamed to disk."""
        ...

    def copy_objects(self, bucket: str, pairs: Iterable[tuple[str, str]]) -> None: ...
    def read_object(self, bucket: str, name: str) -> tuple[bytes, int] | None:
        """(bytes, generation), or None if there is no such object."""
        ...

    def write_object(
        self, bucket: str, name: str, data: bytes, *, if_generation_match: int | None = None
    ) -> int:
        """Write and return the new generation; `if_generation_match=0`: only if absent."""
        ...

    def delete_object(
        self, bucket: str, name: str, *, if_generation_match: int | None = None
    ) -> None: ...
    def delete_prefix(self, bucket: str, prefix: str) -> int: ...


# --- registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionRequest:
    """Everything UploadModel needs for one registry version."""

    model_id: str
    parent_exists: bool  # True: upload as a new version of model_id (parentModel)
    display_name: str
    description: str
    artifact_uri: str
    container_image: str
    labels: Labels
    aliases: tuple[str, ...]
    model_description: str = ""  # model-level, sent with every version so all agree
    kms_key_name: str | None = None  # Model.encryption_spec (CMEK)
    container: Container | None = None  # containerSpec fields beyond the image, if any


class Registry(Protocol):
    """The model registry. Ids are short ids; version ids are the service's ("1", "2", ...)."""

    def list_versions(self, model_id: str) -> tuple[ObservedVersion, ...]:
        """Every version of the model, oldest first; () if there is no such model."""
        ...

    def model_version(self, model_id: str, alias: str) -> str | None:
        """`projects/P/locations/R/models/ID@VERSION` the alias names, None if none."""
        ...

    def upload_version(self, req: VersionRequest) -> Operation: ...
    def update_version(
        self, model_id: str, version_id: str, description: str, labels: Labels
    ) -> None: ...
    def update_model(self, model_id: str, display_name: str, description: str) -> None: ...
    def merge_aliases(
        self, model_id: str, version_id: str, add: tuple[str, ...], remove: tuple[str, ...]
    ) -> None: ...
    def delete_version(self, model_id: str, version_id: str) -> Operation: ...
    def delete_model(self, model_id: str) -> Operation: ...


# --- endpoints --------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployRequest:
    endpoint_id: str
    deployed_id: str
    model_id: str
    version_id: str
    display_name: str
    machine_type: str
    accelerator_type: str | None
    accelerator_count: int
    min_replicas: int
    max_replicas: int
    traffic: Traffic  # "0" is the model being deployed
    # service account, autoscaling targets, Spot, logging switches, shared pool (full name)
    settings: DeployedModelSettings = field(default_factory=DeployedModelSettings)


class Endpoints(Protocol):
    def get_endpoint(self, endpoint_id: str) -> ObservedEndpoint | None: ...
    def create_endpoint(
        self,
        endpoint_id: str,
        display_name: str,
        description: str,
        labels: Labels,
        settings: EndpointSettings | None = None,
    ) -> Operation:
        """Create it with its create-only settings (network, PSC, CMEK, dedicated, logging)."""
        ...

    def update_endpoint_logging(
        self, endpoint_id: str, config: RequestResponseLogging | None
    ) -> None:
        """Patch predict_request_response_logging_config in place (None: logging off)."""
        ...

    def update_endpoint(
        self, endpoint_id: str, display_name: str, description: str, labels: Labels
    ) -> None: ...
    def deploy(self, req: DeployRequest) -> Operation: ...
    def mutate_deployment(
        self,
        endpoint_id: str,
        deployed_id: str,
        min_replicas: int,
        max_replicas: int,
        settings: DeployedModelSettings | None = None,
    ) -> Operation:
        """mutateDeployedModel: replicas, and with `settings` its autoscaling targets and
        container logging switch too."""
        ...

    def set_traffic(self, endpoint_id: str, traffic: Traffic) -> None: ...
    def undeploy(self, endpoint_id: str, deployed_id: str, traffic: Traffic) -> Operation: ...
    def delete_endpoint(self, endpoint_id: str) -> Operation: ...
    def predict(self, endpoint_id: str, body: bytes) -> dict[str, Any]:
        """POST a JSON PredictRequest body as is (see deployer.predict.payload); the parsed
        response."""
        ...

    def endpoint_url(self, endpoint_id: str) -> str: ...


# --- batch prediction jobs --------------------------------------------------------------


class JobState(enum.StrEnum):
    """Vertex's JobState names. A StrEnum so that f-strings and JSON show the name itself."""

    UNSPECIFIED = "JOB_STATE_UNSPECIFIED"
    QUEUED = "JOB_STATE_QUEUED"
    PENDING = "JOB_STATE_PENDING"
    RUNNING = "JOB_STATE_RUNNING"
    SUCCEEDED = "JOB_STATE_SUCCEEDED"
    FAILED = "JOB_STATE_FAILED"
    CANCELLING = "JOB_STATE_CANCELLING"
    CANCELLED = "JOB_STATE_CANCELLED"
    PAUSED = "JOB_STATE_PAUSED"
    EXPIRED = "JOB_STATE_EXPIRED"
    UPDATING = "JOB_STATE_UPDATING"
    PARTIALLY_SUCCEEDED = "JOB_STATE_PARTIALLY_SUCCEEDED"

    @classmethod
    def parse(cls, name: str) -> JobState:
        """The state for a name the service sent; UNSPECIFIED for one this code predates."""
        try:
            return cls(name)
        except ValueError:
            return cls.UNSPECIFIED

    @property
    def short(self) -> str:
        """ "RUNNING" for JOB_STATE_RUNNING: what a human reads."""
        return self.value.removeprefix("JOB_STATE_")


TERMINAL = frozenset(
    {
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.EXPIRED,
        JobState.PARTIALLY_SUCCEEDED,
    }
)


@dataclass(frozen=True)
class JobStatus:
    """A batch prediction job as last seen."""

    resource: str  # projects/P/locations/R/batchPredictionJobs/N
    display_name: str
    state: JobState
    successful: int = 0
    failed: int = 0
    incomplete: int = 0  # instances not yet processed (0 if the service does not say)
    error: str | None = None  # the job's error message when it failed
    output_dir: str | None = None  # gs:// directory holding the shards
    # bq://project.dataset.table of a BigQuery output (outputInfo's dataset and table); None
    # for Cloud Storage outputs.
    bigquery_output: str | None = None
    labels: Labels = ()
    create_time: float = 0.0  # unix seconds
    model: str = ""  # model version resource the job runs

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


@dataclass(frozen=True)
class JobRequest:
    """Everything CreateBatchPredictionJob needs."""

    display_name: str
    model_version: str  # projects/P/locations/R/models/ID@VERSION
    input_uris: tuple[str, ...]
    input_format: str  # the wire instancesFormat: jsonl | csv | file-list | tf-record
    output_prefix: str  # gs://bucket/prefix
    machine_type: str
    accelerator_type: str | None
    accelerator_count: int
    starting_replicas: int
    max_replicas: int
    batch_size: int | None
    labels: Labels
    # instance_config, model_parameters, service account, predictions format, BigQuery
    # source/destination (then input_uris is empty), CMEK
    settings: BatchJobSettings = field(default_factory=BatchJobSettings)


class Jobs(Protocol):
    """Batch prediction jobs. They have no client-chosen id: find them by label."""

    @property
    def poll_interval(self) -> float:
        """Seconds between status polls that suit this service."""
        ...

    def create_job(self, req: JobRequest) -> JobStatus: ...
    def get_job(self, resource: str) -> JobStatus: ...
    def find_jobs(self, labels: dict[str, str]) -> list[JobStatus]:
        """Every job carrying all of `labels` (any state)."""
        ...

    def cancel_job(self, resource: str) -> None:
        """Ask a live job to stop; FailedPrecondition if it already ended."""
        ...

    def delete_batch_job(self, resource: str) -> Operation:
        """Delete an ended job. A live one is asked to cancel and FailedPrecondition is raised:
        the caller retries once it has ended."""
        ...


# --- observing by label -----------------------------------------------------------------


class ResourceKind(enum.StrEnum):
    """What a labelled resource is (`deployer reap` prints it)."""

    MODEL = "model"
    ENDPOINT = "endpoint"
    BATCH_JOB = "batch_job"
    BUCKET = "bucket"


@dataclass(frozen=True)
class LabelledResource:
    """Anything carrying deployer's labels, as `deployer reap` lists it."""

    kind: ResourceKind
    name: str  # full resource name (bucket name for buckets)
    labels: Labels
    artifact_uri: str = ""  # models: where the default version's artifact lives


class Inventory(Protocol):
    """Observation by label: a few list calls, never one call per resource."""

    def observe(self, stack: str, bucket: str | None) -> StackState:
        """The stack's bucket (skipped if None), models with versions, and endpoints."""
        ...

    def list_batch_jobs(self, stack: str) -> tuple[ObservedBatchJob, ...]: ...
    def list_labelled(self) -> tuple[LabelledResource, ...]:
        """Every model, endpoint, batch job and bucket carrying a deployer-stack label."""
        ...


# --- the composite ----------------------------------------------------------------------


class Provider(Storage, Registry, Endpoints, Jobs, Operations, Inventory, Protocol):
    """What deployer needs from a cloud: every narrow protocol, for one project and region."""

    project: str
    region: str

    @property
    def api_calls(self) -> int:
        """API calls made so far (observing an unchanged stack must stay O(kinds))."""
        ...


__all__ = [
    "TERMINAL",
    "DeployRequest",
    "Endpoints",
    "Inventory",
    "JobRequest",
    "JobState",
    "JobStatus",
    "Jobs",
    "LabelledResource",
    "Labels",
    "ObjectInfo",
    "Operation",
    "Operations",
    "Progress",
    "Provider",
    "Registry",
    "ResourceKind",
    "Storage",
    "Traffic",
    "VersionRequest",
]

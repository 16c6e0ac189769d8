"""The provider interface: the only door from deployer's core to a cloud.

Owns: the `Provider` Protocol that `apply`, `upload`, `teardown` and the CLI program
against, and the small value types crossing it (`Operation`, `ObjectInfo`). Two
implementations ship: `deployer.providers.vertex.VertexProvider` (official GAPIC v1
clients over REST + google-cloud-storage; the same code for the local emulator and
real Vertex AI) and `deployer.providers.fake.FakeProvider` (in memory, records calls).

Rules every implementation keeps: vendor exceptions never escape (they become
`deployer.errors`); read calls retry `TransientError` themselves; mutating calls raise
`ResponseLost` when the effect is unknown, and `apply` decides how to adopt. Heavy SDK
imports happen inside the implementations, never here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from deployer.state import (
    ObservedBatchJob,
    ObservedBucket,
    ObservedEndpoint,
    ObservedVersion,
    StackState,
)

Labels = tuple[tuple[str, str], ...]
Traffic = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Operation:
    """A long-running operation as last seen."""

    name: str  # full operation resource name ("" for calls that finished synchronously)
    done: bool
    error: str | None = None  # the operation's error message when it failed
    result: str | None = None  # resource name the operation produced (e.g. a model version)


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int
    md5: str | None  # base64, as GCS reports it
    crc32c: str | None  # base64
    generation: int = 0


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


@dataclass(frozen=True)
class LabelledResource:
    """Anything carrying deployer's labels, as `deployer reap` lists it."""

    kind: str  # "model" | "endpoint" | "batch_job" | "bucket"
    name: str  # full resource name (bucket name for buckets)
    labels: Labels
    artifact_uri: str = ""  # models: where the default version's artifact lives


Progress = Callable[[int], None]  # called with bytes sent since the last call


class Provider(Protocol):
    """What deployer needs from a cloud. Ids are short ids; names are full resource names."""

    project: str
    region: str

    # ---- observe (reads: retried internally)
    def observe(self, stack: str, bucket: str | None) -> StackState: ...
    def get_bucket(self, name: str) -> ObservedBucket: ...
    def get_endpoint(self, endpoint_id: str) -> ObservedEndpoint | None: ...
    def list_versions(self, model_id: str) -> tuple[ObservedVersion, ...]: ...
    def list_batch_jobs(self, stack: str) -> tuple[ObservedBatchJob, ...]: ...
    def get_operation(self, name: str) -> Operation: ...
    def list_labelled(self) -> tuple[LabelledResource, ...]: ...

    # ---- storage
    def create_bucket(self, name: str, location: str, labels: Labels) -> None: ...
    def delete_bucket(self, name: str) -> None: ...
    def list_objects(self, bucket: str, prefix: str) -> dict[str, ObjectInfo]: ...
    def upload_files(
        self, bucket: str, files: Iterable[tuple[str, str]], progress: Progress | None = None
    ) -> None: ...
    def copy_objects(self, bucket: str, pairs: Iterable[tuple[str, str]]) -> None: ...
    def read_object(self, bucket: str, name: str) -> tuple[bytes, int] | None: ...
    def write_object(
        self, bucket: str, name: str, data: bytes, *, if_generation_match: int | None = None
    ) -> int: ...
    def delete_object(
        self, bucket: str, name: str, *, if_generation_match: int | None = None
    ) -> None: ...
    def delete_prefix(self, bucket: str, prefix: str) -> int: ...

    # ---- models
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

    # ---- endpoints
    def create_endpoint(
        self, endpoint_id: str, display_name: str, description: str, labels: Labels
    ) -> Operation: ...
    def update_endpoint(
        self, endpoint_id: str, display_name: str, description: str, labels: Labels
    ) -> None: ...
    def deploy(self, req: DeployRequest) -> Operation: ...
    def mutate_deployment(
        self, endpoint_id: str, deployed_id: str, min_replicas: int, max_replicas: int
    ) -> Operation: ...
    def set_traffic(self, endpoint_id: str, traffic: Traffic) -> None: ...
    def undeploy(self, endpoint_id: str, deployed_id: str, traffic: Traffic) -> Operation: ...
    def delete_endpoint(self, endpoint_id: str) -> Operation: ...
    def predict(self, endpoint_id: str, body: bytes) -> dict[str, Any]:
        """POST a JSON PredictRequest body as is (see deployer.predict.payload); the parsed
        response."""
        ...

    # ---- batch jobs (teardown and reap only; batch-predict has its own module)
    def delete_batch_job(self, resource: str) -> Operation: ...

    # ---- bookkeeping
    def endpoint_url(self, endpoint_id: str) -> str: ...
    @property
    def api_calls(self) -> int: ...


# --- batch prediction jobs (deployer.batch drives them through BatchBackend) -----------

TERMINAL = (
    "JOB_STATE_SUCCEEDED",
    "JOB_STATE_FAILED",
    "JOB_STATE_CANCELLED",
    "JOB_STATE_EXPIRED",
    "JOB_STATE_PARTIALLY_SUCCEEDED",
)


@dataclass(frozen=True)
class JobStatus:
    """A batch prediction job as last seen."""

    resource: str  # projects/P/locations/R/batchPredictionJobs/N
    display_name: str
    state: str  # JobState name, e.g. "JOB_STATE_RUNNING"
    successful: int = 0
    failed: int = 0
    incomplete: int = 0  # instances not yet processed (0 if the service does not say)
    error: str | None = None  # the job's error message when it failed
    output_dir: str | None = None  # gs:// directory holding the shards
    labels: tuple[tuple[str, str], ...] = ()
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
    input_format: str  # jsonl | csv | file-list | tf-record
    output_prefix: str  # gs://bucket/prefix
    machine_type: str
    accelerator_type: str | None
    accelerator_count: int
    starting_replicas: int
    max_replicas: int
    batch_size: int | None
    labels: tuple[tuple[str, str], ...]

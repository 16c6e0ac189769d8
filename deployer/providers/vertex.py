"""The real provider: Vertex AI v1 GAPIC clients over REST, plus Cloud Storage.

Owns: `VertexProvider`, which implements `deployer.providers.Provider` with the official
clients built by clients.py (the same code for the local emulator and Vertex AI),
observation by label (one list per kind plus listVersions per model), the conversions
between API messages and deployer's state types, and long-running operation snapshots.

Must not: decide anything (apply and plan do), retry mutating calls (apply does, with
adoption), or let a vendor exception escape (errors.py maps them).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, TypeVar

from deployer.providers import (
    DeployRequest,
    LabelledResource,
    Labels,
    ObjectInfo,
    Operation,
    Progress,
    Traffic,
    VersionRequest,
)
from deployer.providers.calls import CountedCalls
from deployer.providers.clients import Clients, ClientTarget, resolve_target
from deployer.providers.gcs import GcsStore
from deployer.providers.retry import RetryPolicy
from deployer.state import (
    LABEL_NAME,
    LABEL_STACK,
    ObservedBatchJob,
    ObservedBucket,
    ObservedDeployment,
    ObservedEndpoint,
    ObservedModel,
    ObservedVersion,
    StackState,
)

T = TypeVar("T")
# Bound on one online prediction request, so a connection that hangs cannot block forever.
PREDICT_TIMEOUT_S = 90.0


def _label_filter(stack: str) -> str:
    return f'labels.{LABEL_STACK}="{stack}"'


class VertexProvider(CountedCalls):
    def __init__(self, target: ClientTarget, *, policy: RetryPolicy | None = None) -> None:
        self.target = target
        self.project, self.region = target.project, target.region
        self.clients = Clients(target)
        self.policy = policy or RetryPolicy.from_env()
        self._calls = 0
        self._lock = threading.Lock()
        self._gcs: GcsStore | None = None

    # ----------------------------------------------------------------- machinery

    def _count(self, n: int) -> None:
        with self._lock:
            self._calls += n

    @property
    def api_calls(self) -> int:
        return self._calls

    @property
    def gcs(self) -> GcsStore:
        if self._gcs is None:
            self._gcs = GcsStore(self.clients.storage, self.policy, self._count)
        return self._gcs

    def _parent(self) -> str:
        return self.target.parent

    def _model_name(self, model_id: str) -> str:
        return f"{self._parent()}/models/{model_id}"

    def _endpoint_name(self, endpoint_id: str) -> str:
        return f"{self._parent()}/endpoints/{endpoint_id}"

    @staticmethod
    def _operation(op: Any) -> Operation:
        """Snapshot of a google.api_core Operation future or an operations_pb2.Operation."""
        pb = getattr(op, "operation", op)
        error = None
        if pb.HasField("error") and pb.error.code:
            error = pb.error.message or f"operation failed with code {pb.error.code}"
        result = None
        if (
            pb.done
            and pb.HasField("response")
            and pb.response.type_url.endswith("UploadModelResponse")
        ):
            from google.cloud.aiplatform_v1.types.model_service import UploadModelResponse

            resp = UploadModelResponse.pb()()
            pb.response.Unpack(resp)
            result = f"{resp.model}@{resp.model_version_id}"
        return Operation(pb.name, bool(pb.done), error, result)

    # -------------------------------------------------------------------- observe

    def observe(self, stack: str, bucket: str | None) -> StackState:
        # bucket None: the caller does not know it (reap); skip the bucket lookup.
        start = self._calls
        b = self.get_bucket(bucket) if bucket else ObservedBucket("", False)
        models = self._read(
            "list models",
            lambda: list(
                self.clients.models.list_models(
                    request={
                        "parent": self._parent(),
                        "filter": _label_filter(stack),
                        "page_size": 100,
                    }
                )
            ),
        )
        observed_models = []
        for m in models:
            model_id = m.name.rsplit("/", 1)[-1]
            observed_models.append(
                ObservedModel(
                    dict(m.labels).get(LABEL_NAME, model_id),
                    model_id,
                    m.name,
                    self.list_versions(model_id),
                    m.display_name,
                    m.description,
                )
            )
        eps = self._read(
            "list endpoints",
            lambda: list(
                self.clients.endpoints.list_endpoints(
                    request={
                        "parent": self._parent(),
                        "filter": _label_filter(stack),
                        "page_size": 100,
                    }
                )
            ),
        )
        return StackState(
            stack,
            b,
            tuple(observed_models),
            tuple(self._observed_endpoint(e) for e in eps),
            (),
            api_calls=self._calls - start,
        )

    def get_bucket(self, name: str) -> ObservedBucket:
        return self.gcs.get_bucket(name)

    def list_versions(self, model_id: str) -> tuple[ObservedVersion, ...]:
        from google.api_core.exceptions import NotFound as GNotFound

        def list_() -> list[Any]:
            try:
                return list(
                    self.clients.models.list_model_versions(
                        request={"name": self._model_name(model_id), "page_size": 100}
                    )
                )
            except GNotFound:
                return []

        versions = self._read(f"list versions of {model_id}", list_)
        out = [
            ObservedVersion(
                v.name,
                v.version_id,
                tuple(v.version_aliases),
                tuple(sorted(dict(v.labels).items())),
                v.artifact_uri,
                v.container_spec.image_uri,
                v.version_description,
            )
            for v in versions
        ]
        out.sort(key=lambda v: (len(v.version_id), v.version_id))
        return tuple(out)

    @staticmethod
    def _observed_endpoint(e: Any) -> ObservedEndpoint:
        deps = []
        for d in e.deployed_models:
            res = d.dedicated_resources
            spec = res.machine_spec
            accel = spec.accelerator_type.name if spec.accelerator_type else None
            model, _, version = d.model.partition("@")
            deps.append(
                ObservedDeployment(
                    d.id,
                    model,
                    d.model_version_id or version,
                    d.display_name,
                    spec.machine_type,
                    accel if accel != "ACCELERATOR_TYPE_UNSPECIFIED" else None,
                    spec.accelerator_count,
                    res.min_replica_count,
                    res.max_replica_count,
                    d.create_time.timestamp() if d.create_time else None,
                )
            )
        eid = e.name.rsplit("/", 1)[-1]
        labels = dict(e.labels)
        return ObservedEndpoint(
            labels.get(LABEL_NAME, eid),
            eid,
            e.name,
            tuple(sorted(labels.items())),
            e.display_name,
            e.description,
            tuple(deps),
            tuple(sorted(dict(e.traffic_split).items())),
        )

    def get_endpoint(self, endpoint_id: str) -> ObservedEndpoint | None:
        from google.api_core.exceptions import NotFound as GNotFound

        def get() -> Any:
            try:
                return self.clients.endpoints.get_endpoint(name=self._endpoint_name(endpoint_id))
            except GNotFound:
                return None

        e = self._read(f"get endpoint {endpoint_id}", get)
        return self._observed_endpoint(e) if e is not None else None

    def list_batch_jobs(self, stack: str) -> tuple[ObservedBatchJob, ...]:
        jobs = self._read(
            "list batch prediction jobs",
            lambda: list(
                self.clients.jobs.list_batch_prediction_jobs(
                    request={
                        "parent": self._parent(),
                        "filter": _label_filter(stack),
                        "page_size": 100,
                    }
                )
            ),
        )
        return tuple(
            ObservedBatchJob(
                dict(j.labels).get(LABEL_NAME, ""),
                j.name,
                j.state.name,
                tuple(sorted(dict(j.labels).items())),
            )
            for j in jobs
        )

    def list_labelled(self) -> tuple[LabelledResource, ...]:
        """Every model, endpoint, batch job and bucket carrying a deployer-stack label."""
        flt = f"labels.{LABEL_STACK}:*"
        req = {"parent": self._parent(), "filter": flt, "page_size": 100}
        c = self.clients
        models = self._read("list models", lambda: list(c.models.list_models(request=req)))
        eps = self._read("list endpoints", lambda: list(c.endpoints.list_endpoints(request=req)))
        jobs = self._read(
            "list batch jobs", lambda: list(c.jobs.list_batch_prediction_jobs(request=req))
        )
        buckets = self._read("list buckets", lambda: list(c.storage.list_buckets(retry=None)))

        def labels(obj: Any) -> Labels:
            return tuple(sorted(dict(obj.labels or {}).items()))

        out = [LabelledResource("model", m.name, labels(m), m.artifact_uri) for m in models]
        out += [LabelledResource("endpoint", e.name, labels(e)) for e in eps]
        out += [LabelledResource("batch_job", j.name, labels(j)) for j in jobs]
        out += [
            LabelledResource("bucket", b.name, labels(b))
            for b in buckets
            if LABEL_STACK in (b.labels or {})
        ]
        return tuple(out)

    def get_operation(self, name: str) -> Operation:
        op = self._read(
            f"get operation {name}",
            lambda: self.clients.models.get_operation(request={"name": name}),
        )
        return self._operation(op)

    # -------------------------------------------------------------------- storage

    def create_bucket(self, name: str, location: str, labels: Labels) -> None:
        self.gcs.create_bucket(name, location, labels)

    def delete_bucket(self, name: str) -> None:
        self.gcs.delete_bucket(name)

    def list_objects(self, bucket: str, prefix: str) -> dict[str, ObjectInfo]:
        return self.gcs.list_objects(bucket, prefix)

    def upload_files(
        self, bucket: str, files: Iterable[tuple[str, str]], progress: Progress | None = None
    ) -> None:
        self.gcs.upload_files(bucket, files, progress)

    def copy_objects(self, bucket: str, pairs: Iterable[tuple[str, str]]) -> None:
        self.gcs.copy_objects(bucket, pairs)

    def read_object(self, bucket: str, name: str) -> tuple[bytes, int] | None:
        return self.gcs.read_object(bucket, name)

    def write_object(
        self, bucket: str, name: str, data: bytes, *, if_generation_match: int | None = None
    ) -> int:
        return self.gcs.write_object(bucket, name, data, if_generation_match=if_generation_match)

    def delete_object(
        self, bucket: str, name: str, *, if_generation_match: int | None = None
    ) -> None:
        self.gcs.delete_object(bucket, name, if_generation_match=if_generation_match)

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        return self.gcs.delete_prefix(bucket, prefix)

    # --------------------------------------------------------------------- models

    def upload_version(self, req: VersionRequest) -> Operation:
        from google.cloud.aiplatform_v1.types.model import Model, ModelContainerSpec

        model = Model(
            display_name=req.display_name,
            description=req.model_description,
            version_description=req.description,
            artifact_uri=req.artifact_uri,
            container_spec=ModelContainerSpec(image_uri=req.container_image),
            labels=dict(req.labels),
            version_aliases=list(req.aliases),
        )
        request: dict[str, Any] = {"parent": self._parent(), "model": model}
        if req.parent_exists:
            request["parent_model"] = self._model_name(req.model_id)
        else:
            request["model_id"] = req.model_id
        op = self._write(
            f"upload model {req.model_id}",
            lambda: self.clients.models.upload_model(request=request),
        )
        return self._operation(op)

    def update_version(
        self, model_id: str, version_id: str, description: str, labels: Labels
    ) -> None:
        from google.cloud.aiplatform_v1.types.model import Model
        from google.protobuf import field_mask_pb2

        model = Model(
            name=f"{self._model_name(model_id)}@{version_id}",
            version_description=description,
            labels=dict(labels),
        )
        self._write(
            f"update model {model_id}@{version_id}",
            lambda: self.clients.models.update_model(
                model=model,
                update_mask=field_mask_pb2.FieldMask(paths=["version_description", "labels"]),
            ),
        )

    def update_model(self, model_id: str, display_name: str, description: str) -> None:
        from google.cloud.aiplatform_v1.types.model import Model
        from google.protobuf import field_mask_pb2

        # No "@version": a model-level update (display name and description are shared).
        model = Model(
            name=self._model_name(model_id), display_name=display_name, description=description
        )
        self._write(
            f"update model {model_id}",
            lambda: self.clients.models.update_model(
                model=model,
                update_mask=field_mask_pb2.FieldMask(paths=["display_name", "description"]),
            ),
        )

    def merge_aliases(
        self, model_id: str, version_id: str, add: tuple[str, ...], remove: tuple[str, ...]
    ) -> None:
        aliases = [*add, *(f"-{a}" for a in remove)]
        self._write(
            f"merge aliases of {model_id}@{version_id}",
            lambda: self.clients.models.merge_version_aliases(
                name=f"{self._model_name(model_id)}@{version_id}", version_aliases=aliases
            ),
        )

    def delete_version(self, model_id: str, version_id: str) -> Operation:
        op = self._write(
            f"delete model version {model_id}@{version_id}",
            lambda: self.clients.models.delete_model_version(
                name=f"{self._model_name(model_id)}@{version_id}"
            ),
        )
        return self._operation(op)

    def delete_model(self, model_id: str) -> Operation:
        op = self._write(
            f"delete model {model_id}",
            lambda: self.clients.models.delete_model(name=self._model_name(model_id)),
        )
        return self._operation(op)

    # ------------------------------------------------------------------ endpoints

    def create_endpoint(
        self, endpoint_id: str, display_name: str, description: str, labels: Labels
    ) -> Operation:
        from google.cloud.aiplatform_v1.types.endpoint import Endpoint

        ep = Endpoint(display_name=display_name, description=description, labels=dict(labels))
        op = self._write(
            f"create endpoint {endpoint_id}",
            lambda: self.clients.endpoints.create_endpoint(
                parent=self._parent(), endpoint=ep, endpoint_id=endpoint_id
            ),
        )
        return self._operation(op)

    def update_endpoint(
        self, endpoint_id: str, display_name: str, description: str, labels: Labels
    ) -> None:
        from google.cloud.aiplatform_v1.types.endpoint import Endpoint
        from google.protobuf import field_mask_pb2

        ep = Endpoint(
            name=self._endpoint_name(endpoint_id),
            display_name=display_name,
            description=description,
            labels=dict(labels),
        )
        self._write(
            f"update endpoint {endpoint_id}",
            lambda: self.clients.endpoints.update_endpoint(
                endpoint=ep,
                update_mask=field_mask_pb2.FieldMask(
                    paths=["display_name", "description", "labels"]
                ),
            ),
        )

    def deploy(self, req: DeployRequest) -> Operation:
        from google.cloud.aiplatform_v1.types.accelerator_type import AcceleratorType
        from google.cloud.aiplatform_v1.types.endpoint import DeployedModel
        from google.cloud.aiplatform_v1.types.machine_resources import (
            DedicatedResources,
            MachineSpec,
        )

        spec = MachineSpec(machine_type=req.machine_type)
        if req.accelerator_type:
            spec.accelerator_type = AcceleratorType[req.accelerator_type]  # type: ignore[misc]
            spec.accelerator_count = req.accelerator_count
        dm = DeployedModel(
            id=req.deployed_id,
            display_name=req.display_name,
            model=f"{self._model_name(req.model_id)}@{req.version_id}",
            dedicated_resources=DedicatedResources(
                machine_spec=spec,
                min_replica_count=req.min_replicas,
                max_replica_count=req.max_replicas,
            ),
        )
        op = self._write(
            f"deploy {req.display_name} to {req.endpoint_id}",
            lambda: self.clients.endpoints.deploy_model(
                endpoint=self._endpoint_name(req.endpoint_id),
                deployed_model=dm,
                traffic_split=dict(req.traffic),
            ),
        )
        return self._operation(op)

    def mutate_deployment(
        self, endpoint_id: str, deployed_id: str, min_replicas: int, max_replicas: int
    ) -> Operation:
        from google.cloud.aiplatform_v1.types.endpoint import DeployedModel
        from google.cloud.aiplatform_v1.types.machine_resources import DedicatedResources
        from google.protobuf import field_mask_pb2

        dm = DeployedModel(
            id=deployed_id,
            dedicated_resources=DedicatedResources(
                min_replica_count=min_replicas, max_replica_count=max_replicas
            ),
        )
        op = self._write(
            f"mutate {deployed_id} on {endpoint_id}",
            lambda: self.clients.endpoints.mutate_deployed_model(
                endpoint=self._endpoint_name(endpoint_id),
                deployed_model=dm,
                update_mask=field_mask_pb2.FieldMask(
                    paths=[
                        "dedicated_resources.min_replica_count",
                        "dedicated_resources.max_replica_count",
                    ]
                ),
            ),
        )
        return self._operation(op)

    def set_traffic(self, endpoint_id: str, traffic: Traffic) -> None:
        from google.cloud.aiplatform_v1.types.endpoint import Endpoint
        from google.protobuf import field_mask_pb2

        ep = Endpoint(name=self._endpoint_name(endpoint_id), traffic_split=dict(traffic))
        self._write(
            f"set traffic on {endpoint_id}",
            lambda: self.clients.endpoints.update_endpoint(
                endpoint=ep, update_mask=field_mask_pb2.FieldMask(paths=["traffic_split"])
            ),
        )

    def undeploy(self, endpoint_id: str, deployed_id: str, traffic: Traffic) -> Operation:
        op = self._write(
            f"undeploy {deployed_id} from {endpoint_id}",
            lambda: self.clients.endpoints.undeploy_model(
                endpoint=self._endpoint_name(endpoint_id),
                deployed_model_id=deployed_id,
                traffic_split=dict(traffic),
            ),
        )
        return self._operation(op)

    def delete_endpoint(self, endpoint_id: str) -> Operation:
        op = self._write(
            f"delete endpoint {endpoint_id}",
            lambda: self.clients.endpoints.delete_endpoint(name=self._endpoint_name(endpoint_id)),
        )
        return self._operation(op)

    def predict(self, endpoint_id: str, body: bytes) -> dict[str, Any]:
        from google.api_core import exceptions

        url = self.endpoint_url(endpoint_id)
        session = self.clients.http

        def post() -> dict[str, Any]:
            resp = session.post(
                url,
                data=body,
                timeout=PREDICT_TIMEOUT_S,
                headers={"Content-Type": "application/json"},
            )
            if resp.status_code >= 400:
                # the GAPIC clients' own mapping
                raise exceptions.from_http_response(resp)  # type: ignore[no-untyped-call]
            return dict(resp.json())

        # Reads are retried on transient errors; a prediction changes nothing.
        return self._read(f"predict on {endpoint_id}", post)

    # ------------------------------------------------------------------ batch jobs

    def delete_batch_job(self, resource: str) -> Operation:
        from google.api_core.exceptions import GoogleAPICallError

        from deployer import errors
        from deployer.providers.errors import map_exception

        jobs = self.clients.jobs

        def delete() -> Any:
            try:
                return jobs.delete_batch_prediction_job(name=resource)
            except GoogleAPICallError as exc:
                # Over REST every 400 is a BadRequest: tell FAILED_PRECONDITION by the body.
                # Vertex deletes only finished jobs: cancel this one; teardown retries.
                if isinstance(map_exception(exc, mutating=True), errors.FailedPrecondition):
                    self._count(1)
                    jobs.cancel_batch_prediction_job(name=resource)
                raise

        op = self._write(f"delete batch job {resource}", delete)
        return self._operation(op)

    # ----------------------------------------------------------------- bookkeeping

    def endpoint_url(self, endpoint_id: str) -> str:
        base = self.target.api_endpoint
        if not base.startswith("http"):
            base = f"https://{base}"
        return f"{base}/v1/{self._endpoint_name(endpoint_id)}:predict"


def connect(
    target: str, project: str, region: str, *, emulator: str | None = None
) -> VertexProvider:
    """The real provider for a target ("local" or "vertex"): the CLI's one way to get one.

    `emulator` overrides the local emulator's URL (else $DEPLOYER_EMULATOR, else the
    `deployer local up` instance, started on demand).
    """
    return VertexProvider(resolve_target(target, project, region, emulator=emulator))

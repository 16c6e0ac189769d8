"""An in-memory provider that stores what it is told and records every call.

Owns: `FakeProvider`, the `Provider` unit tests of apply, upload, teardown, reap and
batch-predict run against with no server. It keeps resources, labels, objects with
generations, model versions with aliases, endpoints with deployments and traffic, batch
jobs, and long-running operations that finish after `op_polls` polls; it records each call
in `calls`, and plays scripted faults (`fail_next`, `drop_next`) in the shape the emulator
produces them.

It keeps only what a store must (ids are unique: NotFound, AlreadyExists; a generation
precondition fails with FailedPrecondition; an alias names one version; "0" in a deploy's
traffic split is the model being deployed). Vertex's rules (traffic sums, what may be
undeployed or deleted while in use, job state transitions) are not re-implemented here:
tests/contract/ checks them on the real service, and checks that this fake answers every
shared scenario as the real provider does.

Must not: import any SDK, or be used outside tests and examples.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deployer import errors
from deployer.providers import (
    DeployRequest,
    JobRequest,
    JobState,
    JobStatus,
    LabelledResource,
    Labels,
    ObjectInfo,
    Operation,
    Progress,
    ResourceKind,
    Traffic,
    VersionRequest,
)
from deployer.state import (
    DEFAULT_ALIAS,
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

MUTATING = frozenset(
    {
        *("create_bucket", "delete_bucket", "upload_files", "copy_objects", "write_object"),
        *("delete_object", "delete_prefix", "upload_version", "update_version", "update_model"),
        *("merge_aliases", "delete_version", "delete_model", "create_endpoint"),
        *("update_endpoint", "deploy", "mutate_deployment", "set_traffic", "undeploy"),
        *("delete_endpoint", "create_job", "cancel_job", "delete_batch_job"),
    }
)


@dataclass
class _Version:
    version_id: str
    aliases: list[str]
    labels: dict[str, str]
    artifact_uri: str
    container_image: str
    description: str


@dataclass
class _Model:
    model_id: str
    display_name: str
    description: str = ""
    versions: dict[str, _Version] = field(default_factory=dict)
    next_version: int = 1


@dataclass
class _Endpoint:
    endpoint_id: str
    display_name: str
    description: str
    labels: dict[str, str]
    deployed: dict[str, DeployRequest] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)


@dataclass
class _Object:
    data: bytes
    generation: int

    def info(self, name: str) -> ObjectInfo:
        md5 = base64.b64encode(hashlib.md5(self.data).digest()).decode()
        return ObjectInfo(name, len(self.data), md5, None, self.generation)


class FakeProvider:
    """In-memory `Provider`. `calls` lists (method, args) in order."""

    poll_interval = 0.0

    def __init__(
        self, project: str = "p", region: str = "us-central1", *, op_polls: int = 0
    ) -> None:
        self.project = project
        self.region = region
        self.op_polls = op_polls  # get_operation calls an operation needs before done
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.buckets: dict[str, dict[str, str]] = {}
        self.objects: dict[tuple[str, str], _Object] = {}
        self.models: dict[str, _Model] = {}
        self.endpoints: dict[str, _Endpoint] = {}
        self.jobs: dict[str, JobStatus] = {}
        self._ops: dict[str, list[Any]] = {}  # name -> [polls left, error, result]
        self._faults: list[tuple[str, int, BaseException | None]] = []  # (method, n, exc|drop)
        self._ids = itertools.count(1)
        self._gen = itertools.count(1)

    # ------------------------------------------------------------------ test controls

    def fail_next(self, method: str, count: int = 1, exc: BaseException | None = None) -> None:
        """The next `count` calls to `method` fail before any effect (503 by default)."""
        exc = exc or errors.TransientError("injected 503", status="UNAVAILABLE", http_status=503)
        self._faults.append((method, count, exc))

    def drop_next(self, method: str, count: int = 1) -> None:
        """The next `count` calls to `method` take effect, then the response is lost."""
        self._faults.append((method, count, None))

    def set_job(self, resource: str, **changes: Any) -> JobStatus:
        """Move a batch job along as the service would (state, counts, output_dir, ...)."""
        self.jobs[resource] = replace(self.jobs[resource], **changes)
        return self.jobs[resource]

    @property
    def mutating_calls(self) -> list[str]:
        return [m for m, _ in self.calls if m in MUTATING]

    @property
    def api_calls(self) -> int:
        return len(self.calls)

    # ---------------------------------------------------------------------- machinery

    @contextmanager
    def _recorded(self, method: str, **args: Any) -> Iterator[None]:
        """Record the call and play a scripted fault: a failure before the effect, or a
        response lost after it (raised on leaving the block, so a `return` inside is lost)."""
        self.calls.append((method, args))
        drop = False
        for i, (m, n, exc) in enumerate(self._faults):
            if m == method and n > 0:
                self._faults[i] = (m, n - 1, exc)
                if exc is not None:
                    raise exc
                drop = True
                break
        yield
        if drop:
            raise errors.ResponseLost(f"{method}: connection closed before the response")

    def _op(self, error: str | None = None, result: str | None = None) -> Operation:
        name = f"{self._parent()}/operations/{next(self._ids)}"
        self._ops[name] = [self.op_polls, error, result]
        done = self.op_polls == 0
        return Operation(name, done, error if done else None, result)

    def _parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def _model(self, model_id: str) -> _Model:
        if model_id not in self.models:
            raise errors.NotFound(f"model {model_id} not found")
        return self.models[model_id]

    def _version(self, model_id: str, version_id: str) -> _Version:
        m = self.models.get(model_id)
        if m is None or version_id not in m.versions:
            raise errors.NotFound(f"model {model_id}@{version_id} not found")
        return m.versions[version_id]

    def _endpoint(self, endpoint_id: str) -> _Endpoint:
        if endpoint_id not in self.endpoints:
            raise errors.NotFound(f"endpoint {endpoint_id} not found")
        return self.endpoints[endpoint_id]

    def _job(self, resource: str) -> JobStatus:
        if resource not in self.jobs:
            raise errors.NotFound(f"{resource} not found")
        return self.jobs[resource]

    @staticmethod
    def _take_aliases(m: _Model, aliases: Iterable[str], keep: _Version | None) -> None:
        """An alias names one version: adding it to one takes it from the others."""
        taken = set(aliases)
        for v in m.versions.values():
            if v is not keep:
                v.aliases = [a for a in v.aliases if a not in taken]

    # ---------------------------------------------------------------------- inventory

    def observe(self, stack: str, bucket: str | None) -> StackState:
        # bucket None: the caller does not know it (reap); skip the bucket lookup.
        b = self.get_bucket(bucket) if bucket else ObservedBucket("", False)
        with self._recorded("list_models", stack=stack):
            listed = [
                m
                for m in self.models.values()
                if m.versions and self._model_labels(m).get(LABEL_STACK) == stack
            ]
        models = [
            ObservedModel(
                self._model_labels(m).get(LABEL_NAME, m.model_id),
                m.model_id,
                f"{self._parent()}/models/{m.model_id}",
                self.list_versions(m.model_id),
                m.display_name,
                m.description,
            )
            for m in listed
        ]
        with self._recorded("list_endpoints", stack=stack):
            eps = [
                self._observed_endpoint(e)
                for e in self.endpoints.values()
                if e.labels.get(LABEL_STACK) == stack
            ]
        return StackState(stack, b, tuple(models), tuple(eps), (), api_calls=self.api_calls)

    @staticmethod
    def _model_labels(m: _Model) -> dict[str, str]:
        # Vertex reports the default version's labels as the model's.
        default = [v for v in m.versions.values() if DEFAULT_ALIAS in v.aliases]
        return (default or list(m.versions.values()))[0].labels

    def list_batch_jobs(self, stack: str) -> tuple[ObservedBatchJob, ...]:
        with self._recorded("list_batch_jobs", stack=stack):
            return tuple(
                ObservedBatchJob(j.label(LABEL_NAME) or "", j.resource, j.state.value, j.labels)
                for j in self.jobs.values()
                if j.label(LABEL_STACK) == stack
            )

    def list_labelled(self) -> tuple[LabelledResource, ...]:
        with self._recorded("list_labelled"):
            out = []
            for m in self.models.values():
                labels = self._model_labels(m) if m.versions else {}
                if LABEL_STACK in labels:
                    default = next(v for v in m.versions.values() if DEFAULT_ALIAS in v.aliases)
                    out.append(
                        LabelledResource(
                            ResourceKind.MODEL,
                            f"{self._parent()}/models/{m.model_id}",
                            tuple(sorted(labels.items())),
                            default.artifact_uri,
                        )
                    )
            out += [
                LabelledResource(
                    ResourceKind.ENDPOINT,
                    f"{self._parent()}/endpoints/{e.endpoint_id}",
                    tuple(sorted(e.labels.items())),
                )
                for e in self.endpoints.values()
                if LABEL_STACK in e.labels
            ]
            out += [
                LabelledResource(ResourceKind.BATCH_JOB, j.resource, j.labels)
                for j in self.jobs.values()
                if j.label(LABEL_STACK)
            ]
            out += [
                LabelledResource(ResourceKind.BUCKET, name, tuple(sorted(labels.items())))
                for name, labels in self.buckets.items()
                if LABEL_STACK in labels
            ]
            return tuple(out)

    # --------------------------------------------------------------------- operations

    def get_operation(self, name: str) -> Operation:
        with self._recorded("get_operation", name=name):
            if name not in self._ops:
                raise errors.NotFound(f"operation {name} not found")
            state = self._ops[name]
            state[0] = max(0, state[0] - 1)
            done = state[0] == 0
            return Operation(name, done, state[1] if done else None, state[2])

    # ------------------------------------------------------------------------ storage

    def get_bucket(self, name: str) -> ObservedBucket:
        with self._recorded("get_bucket", name=name):
            if name not in self.buckets:
                return ObservedBucket(name, False)
            return ObservedBucket(name, True, tuple(sorted(self.buckets[name].items())))

    def create_bucket(self, name: str, location: str, labels: Labels) -> None:
        with self._recorded("create_bucket", name=name):
            if name in self.buckets:
                raise errors.AlreadyExists(f"bucket {name} already exists")
            self.buckets[name] = dict(labels)

    def delete_bucket(self, name: str) -> None:
        with self._recorded("delete_bucket", name=name):
            if name not in self.buckets:
                raise errors.NotFound(f"bucket {name} not found")
            del self.buckets[name]

    def list_objects(self, bucket: str, prefix: str) -> dict[str, ObjectInfo]:
        with self._recorded("list_objects", bucket=bucket, prefix=prefix):
            return {
                n: o.info(n)
                for (b, n), o in sorted(self.objects.items())
                if b == bucket and n.startswith(prefix)
            }

    def _put(self, bucket: str, name: str, data: bytes) -> int:
        if bucket not in self.buckets:
            raise errors.NotFound(f"bucket {bucket} not found")
        gen = next(self._gen)
        self.objects[(bucket, name)] = _Object(data, gen)
        return gen

    def upload_files(
        self, bucket: str, files: Iterable[tuple[str, str]], progress: Progress | None = None
    ) -> None:
        files = list(files)
        with self._recorded("upload_files", bucket=bucket, names=[n for _, n in files]):
            for local, name in files:
                data = Path(local).read_bytes()
                self._put(bucket, name, data)
                if progress:
                    progress(len(data))

    def download_files(self, items: Iterable[tuple[str, Path]]) -> None:
        items = list(items)
        with self._recorded("download_files", uris=[u for u, _ in items]):
            for uri, path in items:
                bucket, _, name = uri.removeprefix("gs://").partition("/")
                if (bucket, name) not in self.objects:
                    raise errors.NotFound(f"{uri} not found")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(self.objects[(bucket, name)].data)

    def copy_objects(self, bucket: str, pairs: Iterable[tuple[str, str]]) -> None:
        pairs = list(pairs)
        with self._recorded("copy_objects", bucket=bucket, pairs=pairs):
            for src, dst in pairs:
                if (bucket, src) not in self.objects:
                    raise errors.NotFound(f"gs://{bucket}/{src} not found")
                self._put(bucket, dst, self.objects[(bucket, src)].data)

    def read_object(self, bucket: str, name: str) -> tuple[bytes, int] | None:
        with self._recorded("read_object", bucket=bucket, name=name):
            o = self.objects.get((bucket, name))
            return (o.data, o.generation) if o else None

    def write_object(
        self, bucket: str, name: str, data: bytes, *, if_generation_match: int | None = None
    ) -> int:
        with self._recorded("write_object", bucket=bucket, name=name):
            cur = self.objects.get((bucket, name))
            current = cur.generation if cur else 0
            if if_generation_match is not None and current != if_generation_match:
                raise errors.FailedPrecondition(
                    f"gs://{bucket}/{name}: generation mismatch",
                    status="FAILED_PRECONDITION",
                    http_status=412,
                )
            return self._put(bucket, name, data)

    def delete_object(
        self, bucket: str, name: str, *, if_generation_match: int | None = None
    ) -> None:
        with self._recorded("delete_object", bucket=bucket, name=name):
            cur = self.objects.get((bucket, name))
            if cur is None:
                raise errors.NotFound(f"gs://{bucket}/{name} not found")
            if if_generation_match is not None and cur.generation != if_generation_match:
                raise errors.FailedPrecondition("generation mismatch", http_status=412)
            del self.objects[(bucket, name)]

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        with self._recorded("delete_prefix", bucket=bucket, prefix=prefix):
            names = [k for k in self.objects if k[0] == bucket and k[1].startswith(prefix)]
            for k in names:
                del self.objects[k]
            return len(names)

    # ----------------------------------------------------------------------- registry

    def list_versions(self, model_id: str) -> tuple[ObservedVersion, ...]:
        with self._recorded("list_versions", model_id=model_id):
            m = self.models.get(model_id)
            return tuple(
                ObservedVersion(
                    f"{self._parent()}/models/{model_id}",
                    v.version_id,
                    tuple(v.aliases),
                    tuple(sorted(v.labels.items())),
                    v.artifact_uri,
                    v.container_image,
                    v.description,
                )
                for v in (m.versions.values() if m else ())
            )

    def model_version(self, model_id: str, alias: str) -> str | None:
        with self._recorded("model_version", model_id=model_id, alias=alias):
            m = self.models.get(model_id)
            for v in m.versions.values() if m else ():
                if alias in (v.version_id, *v.aliases):
                    return f"{self._parent()}/models/{model_id}@{v.version_id}"
            return None

    def upload_version(self, req: VersionRequest) -> Operation:
        args = {"model_id": req.model_id, "parent_exists": req.parent_exists}
        with self._recorded("upload_version", **args, labels=dict(req.labels)):
            if req.parent_exists:
                m = self._model(req.model_id)
            elif req.model_id in self.models:
                raise errors.AlreadyExists(f"model {req.model_id} already exists")
            else:
                m = self.models[req.model_id] = _Model(req.model_id, req.display_name)
            m.display_name, m.description = req.display_name, req.model_description
            vid = str(m.next_version)
            m.next_version += 1
            aliases = [a for a in req.aliases if a != DEFAULT_ALIAS]
            if not m.versions or DEFAULT_ALIAS in req.aliases:
                aliases.insert(0, DEFAULT_ALIAS)
            v = _Version(
                vid,
                aliases,
                dict(req.labels),
                req.artifact_uri,
                req.container_image,
                req.description,
            )
            self._take_aliases(m, aliases, keep=None)
            m.versions[vid] = v
            return self._op(result=f"{self._parent()}/models/{req.model_id}@{vid}")

    def update_model(self, model_id: str, display_name: str, description: str) -> None:
        with self._recorded("update_model", model_id=model_id):
            m = self._model(model_id)
            m.display_name, m.description = display_name, description

    def update_version(
        self, model_id: str, version_id: str, description: str, labels: Labels
    ) -> None:
        with self._recorded("update_version", model_id=model_id, version_id=version_id):
            v = self._version(model_id, version_id)
            v.description, v.labels = description, dict(labels)

    def merge_aliases(
        self, model_id: str, version_id: str, add: tuple[str, ...], remove: tuple[str, ...]
    ) -> None:
        args = {"model_id": model_id, "version_id": version_id, "add": add, "remove": remove}
        with self._recorded("merge_aliases", **args):
            v = self._version(model_id, version_id)
            self._take_aliases(self.models[model_id], add, keep=v)
            v.aliases = [a for a in v.aliases if a not in remove]
            v.aliases += [a for a in add if a not in v.aliases]

    def delete_version(self, model_id: str, version_id: str) -> Operation:
        with self._recorded("delete_version", model_id=model_id, version_id=version_id):
            self._version(model_id, version_id)
            del self.models[model_id].versions[version_id]
            return self._op()

    def delete_model(self, model_id: str) -> Operation:
        with self._recorded("delete_model", model_id=model_id):
            self._model(model_id)
            del self.models[model_id]
            return self._op()

    # ---------------------------------------------------------------------- endpoints

    def get_endpoint(self, endpoint_id: str) -> ObservedEndpoint | None:
        with self._recorded("get_endpoint", endpoint_id=endpoint_id):
            e = self.endpoints.get(endpoint_id)
            return self._observed_endpoint(e) if e else None

    def _observed_endpoint(self, e: _Endpoint) -> ObservedEndpoint:
        deps = tuple(
            ObservedDeployment(
                d.deployed_id,
                f"{self._parent()}/models/{d.model_id}",
                d.version_id,
                d.display_name,
                d.machine_type,
                d.accelerator_type,
                d.accelerator_count,
                d.min_replicas,
                d.max_replicas,
            )
            for d in e.deployed.values()
        )
        return ObservedEndpoint(
            e.labels.get(LABEL_NAME, e.endpoint_id),
            e.endpoint_id,
            f"{self._parent()}/endpoints/{e.endpoint_id}",
            tuple(sorted(e.labels.items())),
            e.display_name,
            e.description,
            deps,
            tuple(sorted(e.traffic.items())),
        )

    def create_endpoint(
        self, endpoint_id: str, display_name: str, description: str, labels: Labels
    ) -> Operation:
        with self._recorded("create_endpoint", endpoint_id=endpoint_id):
            if endpoint_id in self.endpoints:
                raise errors.AlreadyExists(f"endpoint {endpoint_id} already exists")
            e = _Endpoint(endpoint_id, display_name, description, dict(labels))
            self.endpoints[endpoint_id] = e
            return self._op()

    def update_endpoint(
        self, endpoint_id: str, display_name: str, description: str, labels: Labels
    ) -> None:
        with self._recorded("update_endpoint", endpoint_id=endpoint_id):
            e = self._endpoint(endpoint_id)
            e.display_name, e.description, e.labels = display_name, description, dict(labels)

    def deploy(self, req: DeployRequest) -> Operation:
        args = {"endpoint_id": req.endpoint_id, "deployed_id": req.deployed_id}
        with self._recorded("deploy", **args, traffic=req.traffic):
            e = self._endpoint(req.endpoint_id)
            self._version(req.model_id, req.version_id)
            if req.deployed_id in e.deployed:
                raise errors.AlreadyExists(f"deployed model {req.deployed_id} already exists")
            e.deployed[req.deployed_id] = req
            split = {(req.deployed_id if k == "0" else k): v for k, v in req.traffic}
            e.traffic = split or e.traffic
            return self._op()

    def mutate_deployment(
        self, endpoint_id: str, deployed_id: str, min_replicas: int, max_replicas: int
    ) -> Operation:
        with self._recorded("mutate_deployment", endpoint_id=endpoint_id, deployed_id=deployed_id):
            e = self._endpoint(endpoint_id)
            if deployed_id not in e.deployed:
                raise errors.NotFound(f"deployed model {deployed_id} not found")
            d = replace(e.deployed[deployed_id], min_replicas=min_replicas)
            e.deployed[deployed_id] = replace(d, max_replicas=max_replicas)
            return self._op()

    def set_traffic(self, endpoint_id: str, traffic: Traffic) -> None:
        with self._recorded("set_traffic", endpoint_id=endpoint_id, traffic=traffic):
            self._endpoint(endpoint_id).traffic = dict(traffic)

    def undeploy(self, endpoint_id: str, deployed_id: str, traffic: Traffic) -> Operation:
        args = {"endpoint_id": endpoint_id, "deployed_id": deployed_id, "traffic": traffic}
        with self._recorded("undeploy", **args):
            e = self._endpoint(endpoint_id)
            if deployed_id not in e.deployed:
                raise errors.NotFound(f"deployed model {deployed_id} not found")
            del e.deployed[deployed_id]
            split = dict(traffic) if traffic else dict(e.traffic)
            split.pop(deployed_id, None)
            e.traffic = split if e.deployed else {}
            return self._op()

    def delete_endpoint(self, endpoint_id: str) -> Operation:
        with self._recorded("delete_endpoint", endpoint_id=endpoint_id):
            self._endpoint(endpoint_id)
            del self.endpoints[endpoint_id]
            return self._op()

    def predict(self, endpoint_id: str, body: bytes) -> dict[str, Any]:
        with self._recorded("predict", endpoint_id=endpoint_id):
            e = self._endpoint(endpoint_id)
            if not e.deployed:
                raise errors.FailedPrecondition(f"endpoint {endpoint_id} has no deployed model")
            return {
                "predictions": [[0.0] for _ in json.loads(body)["instances"]],
                "deployedModelId": max(e.traffic, key=lambda k: e.traffic[k]),
            }

    def endpoint_url(self, endpoint_id: str) -> str:
        return f"fake://{self._parent()}/endpoints/{endpoint_id}:predict"

    # ----------------------------------------------------------------------- batch jobs

    def create_job(self, req: JobRequest) -> JobStatus:
        with self._recorded("create_job", display_name=req.display_name, labels=req.labels):
            n = next(self._ids)
            job = JobStatus(
                f"{self._parent()}/batchPredictionJobs/{n}",
                req.display_name,
                JobState.QUEUED,
                labels=req.labels,
                create_time=float(n),
                model=req.model_version,
            )
            self.jobs[job.resource] = job
            return job

    def get_job(self, resource: str) -> JobStatus:
        with self._recorded("get_job", resource=resource):
            return self._job(resource)

    def find_jobs(self, labels: dict[str, str]) -> list[JobStatus]:
        with self._recorded("find_jobs", labels=labels):
            return [j for j in self.jobs.values() if labels.items() <= dict(j.labels).items()]

    def cancel_job(self, resource: str) -> None:
        with self._recorded("cancel_job", resource=resource):
            self.jobs[resource] = replace(self._job(resource), state=JobState.CANCELLED)

    def delete_batch_job(self, resource: str) -> Operation:
        with self._recorded("delete_batch_job", resource=resource):
            self._job(resource)
            del self.jobs[resource]
            return self._op()

"""An in-memory provider that keeps Vertex AI's rules and records every call.

Owns: `FakeProvider`, a faithful-enough stand-in for `VertexProvider` that unit tests of
`apply`, `upload` and `teardown` run against with no server: resources, labels, aliases,
traffic rules (splits sum to 100; a deployment with traffic cannot be undeployed; an
endpoint with deployments cannot be deleted; a model with deployed versions cannot be
deleted), long-running operations that finish after `op_polls` polls, and scripted
faults (`fail_next`, `drop_next`) in the shape the emulator produces them.

Must not: import any SDK, or be used outside tests and examples.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deployer import errors
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
        "create_bucket",
        "delete_bucket",
        "upload_files",
        "copy_objects",
        "write_object",
        "delete_object",
        "delete_prefix",
        "upload_version",
        "update_version",
        "update_model",
        "merge_aliases",
        "delete_version",
        "delete_model",
        "create_endpoint",
        "update_endpoint",
        "deploy",
        "mutate_deployment",
        "set_traffic",
        "undeploy",
        "delete_endpoint",
        "delete_batch_job",
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
        self.batch_jobs: dict[str, ObservedBatchJob] = {}
        self._ops: dict[str, list[Any]] = {}  # name -> [polls left, error, result]
        self._faults: list[tuple[str, int, BaseException | None]] = []  # (method, n, exc|drop)
        self._ids = itertools.count(1)
        self._gen = itertools.count(1)

    # ------------------------------------------------------------------ test controls

    def fail_next(self, method: str, count: int = 1, exc: BaseException | None = None) -> None:
        """The next `count` calls to `method` fail before any effect (503 by default)."""
        self._faults.append(
            (
                method,
                count,
                exc or errors.TransientError("injected 503", status="UNAVAILABLE", http_status=503),
            )
        )

    def drop_next(self, method: str, count: int = 1) -> None:
        """The next `count` calls to `method` take effect, then the response is lost."""
        self._faults.append((method, count, None))

    @property
    def mutating_calls(self) -> list[str]:
        return [m for m, _ in self.calls if m in MUTATING]

    @property
    def api_calls(self) -> int:
        return len(self.calls)

    def _call(self, method: str, **args: Any) -> bool:
        """Record the call; raise a scripted failure; return True if the response drops."""
        self.calls.append((method, args))
        for i, (m, n, exc) in enumerate(self._faults):
            if m == method and n > 0:
                self._faults[i] = (m, n - 1, exc)
                if exc is not None:
                    raise exc
                return True
        return False

    def _lost(self, method: str) -> errors.ResponseLost:
        return errors.ResponseLost(f"{method}: connection closed before the response")

    def _op(self, error: str | None = None, result: str | None = None) -> Operation:
        name = f"projects/{self.project}/locations/{self.region}/operations/{next(self._ids)}"
        self._ops[name] = [self.op_polls, error, result]
        done = self.op_polls == 0
        return Operation(name, done, error if done else None, result)

    def _finish(self, method: str, drop: bool, op: Operation) -> Operation:
        if drop:
            raise self._lost(method)
        return op

    def _parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    # ---------------------------------------------------------------------- observe

    def observe(self, stack: str, bucket: str | None) -> StackState:
        # bucket None: the caller does not know it (reap); skip the bucket lookup.
        b = self.get_bucket(bucket) if bucket else ObservedBucket("", False)
        self._call("list_models", stack=stack)
        models = []
        for m in self.models.values():
            if not m.versions:
                continue
            labels = next(iter(m.versions.values())).labels
            if labels.get(LABEL_STACK) != stack:
                continue
            versions = self.list_versions(m.model_id)
            models.append(
                ObservedModel(
                    labels.get(LABEL_NAME, m.model_id),
                    m.model_id,
                    f"{self._parent()}/models/{m.model_id}",
                    versions,
                    m.display_name,
                    m.description,
                )
            )
        self._call("list_endpoints", stack=stack)
        eps = [
            self._observed_endpoint(e)
            for e in self.endpoints.values()
            if e.labels.get(LABEL_STACK) == stack
        ]
        return StackState(stack, b, tuple(models), tuple(eps), (), api_calls=self.api_calls)

    def get_bucket(self, name: str) -> ObservedBucket:
        self._call("get_bucket", name=name)
        if name not in self.buckets:
            return ObservedBucket(name, False)
        return ObservedBucket(name, True, tuple(sorted(self.buckets[name].items())))

    def get_endpoint(self, endpoint_id: str) -> ObservedEndpoint | None:
        self._call("get_endpoint", endpoint_id=endpoint_id)
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

    def list_versions(self, model_id: str) -> tuple[ObservedVersion, ...]:
        self._call("list_versions", model_id=model_id)
        m = self.models.get(model_id)
        if m is None:
            return ()
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
            for v in m.versions.values()
        )

    def list_batch_jobs(self, stack: str) -> tuple[ObservedBatchJob, ...]:
        self._call("list_batch_jobs", stack=stack)
        return tuple(
            j for j in self.batch_jobs.values() if dict(j.labels).get(LABEL_STACK) == stack
        )

    def list_labelled(self) -> tuple[LabelledResource, ...]:
        self._call("list_labelled")
        out = []
        for m in self.models.values():
            if m.versions:
                v = next(v for v in m.versions.values() if DEFAULT_ALIAS in v.aliases)
                if LABEL_STACK in v.labels:
                    out.append(
                        LabelledResource(
                            "model",
                            f"{self._parent()}/models/{m.model_id}",
                            tuple(sorted(v.labels.items())),
                            v.artifact_uri,
                        )
                    )
        out += [
            LabelledResource(
                "endpoint",
                f"{self._parent()}/endpoints/{e.endpoint_id}",
                tuple(sorted(e.labels.items())),
            )
            for e in self.endpoints.values()
            if LABEL_STACK in e.labels
        ]
        out += [
            LabelledResource("batch_job", j.resource, j.labels)
            for j in self.batch_jobs.values()
            if LABEL_STACK in dict(j.labels)
        ]
        out += [
            LabelledResource("bucket", name, tuple(sorted(labels.items())))
            for name, labels in self.buckets.items()
            if LABEL_STACK in labels
        ]
        return tuple(out)

    def get_operation(self, name: str) -> Operation:
        self._call("get_operation", name=name)
        if name not in self._ops:
            raise errors.NotFound(f"operation {name} not found")
        state = self._ops[name]
        if state[0] > 0:
            state[0] -= 1
        done = state[0] == 0
        return Operation(name, done, state[1] if done else None, state[2])

    # ---------------------------------------------------------------------- storage

    def create_bucket(self, name: str, location: str, labels: Labels) -> None:
        drop = self._call("create_bucket", name=name)
        if name in self.buckets:
            raise errors.AlreadyExists(f"bucket {name} already exists")
        self.buckets[name] = dict(labels)
        if drop:
            raise self._lost("create_bucket")

    def delete_bucket(self, name: str) -> None:
        drop = self._call("delete_bucket", name=name)
        if name not in self.buckets:
            raise errors.NotFound(f"bucket {name} not found")
        if any(b == name for b, _ in self.objects):
            raise errors.FailedPrecondition(f"bucket {name} is not empty")
        del self.buckets[name]
        if drop:
            raise self._lost("delete_bucket")

    def list_objects(self, bucket: str, prefix: str) -> dict[str, ObjectInfo]:
        self._call("list_objects", bucket=bucket, prefix=prefix)
        return {
            n: o.info(n)
            for (b, n), o in sorted(self.objects.items())
            if b == bucket and n.startswith(prefix)
        }

    def upload_files(
        self, bucket: str, files: Iterable[tuple[str, str]], progress: Progress | None = None
    ) -> None:
        files = list(files)
        drop = self._call("upload_files", bucket=bucket, names=[n for _, n in files])
        if bucket not in self.buckets:
            raise errors.NotFound(f"bucket {bucket} not found")
        for local, name in files:
            data = Path(local).read_bytes()
            self.objects[(bucket, name)] = _Object(data, next(self._gen))
            if progress:
                progress(len(data))
        if drop:
            raise self._lost("upload_files")

    def copy_objects(self, bucket: str, pairs: Iterable[tuple[str, str]]) -> None:
        pairs = list(pairs)
        self._call("copy_objects", bucket=bucket, pairs=pairs)
        for src, dst in pairs:
            self.objects[(bucket, dst)] = _Object(self.objects[(bucket, src)].data, next(self._gen))

    def read_object(self, bucket: str, name: str) -> tuple[bytes, int] | None:
        self._call("read_object", bucket=bucket, name=name)
        o = self.objects.get((bucket, name))
        return (o.data, o.generation) if o else None

    def write_object(
        self, bucket: str, name: str, data: bytes, *, if_generation_match: int | None = None
    ) -> int:
        drop = self._call("write_object", bucket=bucket, name=name)
        cur = self.objects.get((bucket, name))
        if (
            if_generation_match is not None
            and (cur.generation if cur else 0) != if_generation_match
        ):
            raise errors.FailedPrecondition(
                f"gs://{bucket}/{name}: generation mismatch",
                status="FAILED_PRECONDITION",
                http_status=412,
            )
        gen = next(self._gen)
        self.objects[(bucket, name)] = _Object(data, gen)
        if drop:
            raise self._lost("write_object")
        return gen

    def delete_object(
        self, bucket: str, name: str, *, if_generation_match: int | None = None
    ) -> None:
        drop = self._call("delete_object", bucket=bucket, name=name)
        cur = self.objects.get((bucket, name))
        if cur is None:
            raise errors.NotFound(f"gs://{bucket}/{name} not found")
        if if_generation_match is not None and cur.generation != if_generation_match:
            raise errors.FailedPrecondition("generation mismatch", http_status=412)
        del self.objects[(bucket, name)]
        if drop:
            raise self._lost("delete_object")

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        self._call("delete_prefix", bucket=bucket, prefix=prefix)
        names = [k for k in self.objects if k[0] == bucket and k[1].startswith(prefix)]
        for k in names:
            del self.objects[k]
        return len(names)

    # ----------------------------------------------------------------------- models

    def upload_version(self, req: VersionRequest) -> Operation:
        drop = self._call(
            "upload_version",
            model_id=req.model_id,
            parent_exists=req.parent_exists,
            labels=dict(req.labels),
        )
        m = self.models.get(req.model_id)
        if req.parent_exists:
            if m is None:
                raise errors.NotFound(f"model {req.model_id} not found")
        else:
            if m is not None:
                raise errors.AlreadyExists(f"model {req.model_id} already exists")
            m = self.models[req.model_id] = _Model(req.model_id, req.display_name)
        m.display_name, m.description = req.display_name, req.model_description
        vid = str(m.next_version)
        m.next_version += 1
        aliases = list(req.aliases)
        if not m.versions or DEFAULT_ALIAS in aliases:
            for v in m.versions.values():
                v.aliases = [a for a in v.aliases if a != DEFAULT_ALIAS]
            aliases = [DEFAULT_ALIAS, *[a for a in aliases if a != DEFAULT_ALIAS]]
        for a in aliases:
            if a != DEFAULT_ALIAS and any(a in v.aliases for v in m.versions.values()):
                raise errors.InvalidArgument(f"alias {a} is already used")
        m.versions[vid] = _Version(
            vid, aliases, dict(req.labels), req.artifact_uri, req.container_image, req.description
        )
        return self._finish(
            "upload_version", drop, self._op(result=f"{self._parent()}/models/{req.model_id}@{vid}")
        )

    def _version(self, model_id: str, version_id: str) -> _Version:
        m = self.models.get(model_id)
        if m is None or version_id not in m.versions:
            raise errors.NotFound(f"model {model_id}@{version_id} not found")
        return m.versions[version_id]

    def update_model(self, model_id: str, display_name: str, description: str) -> None:
        drop = self._call("update_model", model_id=model_id)
        m = self.models.get(model_id)
        if m is None:
            raise errors.NotFound(f"model {model_id} not found")
        m.display_name, m.description = display_name, description
        if drop:
            raise self._lost("update_model")

    def update_version(
        self, model_id: str, version_id: str, description: str, labels: Labels
    ) -> None:
        drop = self._call("update_version", model_id=model_id, version_id=version_id)
        v = self._version(model_id, version_id)
        v.description, v.labels = description, dict(labels)
        if drop:
            raise self._lost("update_version")

    def merge_aliases(
        self, model_id: str, version_id: str, add: tuple[str, ...], remove: tuple[str, ...]
    ) -> None:
        drop = self._call(
            "merge_aliases", model_id=model_id, version_id=version_id, add=add, remove=remove
        )
        v = self._version(model_id, version_id)
        for a in add:
            for other in self.models[model_id].versions.values():
                if other is not v and a in other.aliases:
                    if a != DEFAULT_ALIAS:
                        raise errors.InvalidArgument(f"alias {a} is used by another version")
                    other.aliases.remove(a)
        v.aliases = [a for a in v.aliases if a not in remove]
        v.aliases += [a for a in add if a not in v.aliases]
        if drop:
            raise self._lost("merge_aliases")

    def _deployed_versions(self, model_id: str) -> set[str]:
        return {
            d.version_id
            for e in self.endpoints.values()
            for d in e.deployed.values()
            if d.model_id == model_id
        }

    def delete_version(self, model_id: str, version_id: str) -> Operation:
        drop = self._call("delete_version", model_id=model_id, version_id=version_id)
        v = self._version(model_id, version_id)
        if DEFAULT_ALIAS in v.aliases:
            raise errors.FailedPrecondition("cannot delete the default version")
        if version_id in self._deployed_versions(model_id):
            raise errors.FailedPrecondition(f"version {version_id} is deployed")
        del self.models[model_id].versions[version_id]
        return self._finish("delete_version", drop, self._op())

    def delete_model(self, model_id: str) -> Operation:
        drop = self._call("delete_model", model_id=model_id)
        if model_id not in self.models:
            raise errors.NotFound(f"model {model_id} not found")
        if self._deployed_versions(model_id):
            raise errors.FailedPrecondition(f"model {model_id} has deployed versions")
        del self.models[model_id]
        return self._finish("delete_model", drop, self._op())

    # -------------------------------------------------------------------- endpoints

    def _endpoint(self, endpoint_id: str) -> _Endpoint:
        if endpoint_id not in self.endpoints:
            raise errors.NotFound(f"endpoint {endpoint_id} not found")
        return self.endpoints[endpoint_id]

    def create_endpoint(
        self, endpoint_id: str, display_name: str, description: str, labels: Labels
    ) -> Operation:
        drop = self._call("create_endpoint", endpoint_id=endpoint_id)
        if endpoint_id in self.endpoints:
            raise errors.AlreadyExists(f"endpoint {endpoint_id} already exists")
        self.endpoints[endpoint_id] = _Endpoint(
            endpoint_id, display_name, description, dict(labels)
        )
        return self._finish("create_endpoint", drop, self._op())

    def update_endpoint(
        self, endpoint_id: str, display_name: str, description: str, labels: Labels
    ) -> None:
        drop = self._call("update_endpoint", endpoint_id=endpoint_id)
        e = self._endpoint(endpoint_id)
        e.display_name, e.description, e.labels = display_name, description, dict(labels)
        if drop:
            raise self._lost("update_endpoint")

    @staticmethod
    def _check_split(split: Mapping[str, int], ids: Iterable[str]) -> None:
        if split and sum(split.values()) != 100:
            raise errors.InvalidArgument(f"traffic split must sum to 100, got {dict(split)}")
        unknown = set(split) - set(ids)
        if unknown:
            raise errors.InvalidArgument(f"traffic split names undeployed ids {unknown}")

    def deploy(self, req: DeployRequest) -> Operation:
        drop = self._call(
            "deploy", endpoint_id=req.endpoint_id, deployed_id=req.deployed_id, traffic=req.traffic
        )
        e = self._endpoint(req.endpoint_id)
        self._version(req.model_id, req.version_id)
        if req.deployed_id in e.deployed:
            raise errors.AlreadyExists(f"deployed model {req.deployed_id} already exists")
        split = {(req.deployed_id if k == "0" else k): v for k, v in req.traffic}
        self._check_split(split, [*e.deployed, req.deployed_id])
        e.deployed[req.deployed_id] = req
        if split:
            e.traffic = dict(split)
        return self._finish("deploy", drop, self._op())

    def mutate_deployment(
        self, endpoint_id: str, deployed_id: str, min_replicas: int, max_replicas: int
    ) -> Operation:
        drop = self._call("mutate_deployment", endpoint_id=endpoint_id, deployed_id=deployed_id)
        e = self._endpoint(endpoint_id)
        d = e.deployed.get(deployed_id)
        if d is None:
            raise errors.NotFound(f"deployed model {deployed_id} not found")
        e.deployed[deployed_id] = replace(d, min_replicas=min_replicas, max_replicas=max_replicas)
        return self._finish("mutate_deployment", drop, self._op())

    def set_traffic(self, endpoint_id: str, traffic: Traffic) -> None:
        drop = self._call("set_traffic", endpoint_id=endpoint_id, traffic=traffic)
        e = self._endpoint(endpoint_id)
        self._check_split(dict(traffic), e.deployed)
        e.traffic = dict(traffic)
        if drop:
            raise self._lost("set_traffic")

    def undeploy(self, endpoint_id: str, deployed_id: str, traffic: Traffic) -> Operation:
        drop = self._call(
            "undeploy", endpoint_id=endpoint_id, deployed_id=deployed_id, traffic=traffic
        )
        e = self._endpoint(endpoint_id)
        if deployed_id not in e.deployed:
            raise errors.NotFound(f"deployed model {deployed_id} not found")
        split = dict(traffic) if traffic else dict(e.traffic)
        rest = [k for k in e.deployed if k != deployed_id]
        if rest and split.get(deployed_id, 0):
            raise errors.FailedPrecondition(f"deployed model {deployed_id} still has traffic")
        split.pop(deployed_id, None)
        if rest:
            self._check_split({k: v for k, v in split.items() if v}, rest)
        del e.deployed[deployed_id]
        e.traffic = split if rest else {}
        return self._finish("undeploy", drop, self._op())

    def delete_endpoint(self, endpoint_id: str) -> Operation:
        drop = self._call("delete_endpoint", endpoint_id=endpoint_id)
        e = self._endpoint(endpoint_id)
        if e.deployed:
            raise errors.FailedPrecondition(f"endpoint {endpoint_id} has deployed models")
        del self.endpoints[endpoint_id]
        return self._finish("delete_endpoint", drop, self._op())

    def predict(self, endpoint_id: str, body: bytes) -> dict[str, Any]:
        self._call("predict", endpoint_id=endpoint_id)
        instances = json.loads(body)["instances"]
        e = self._endpoint(endpoint_id)
        if not e.deployed:
            raise errors.FailedPrecondition(f"endpoint {endpoint_id} has no deployed model")
        return {
            "predictions": [[0.0] for _ in instances],
            "deployedModelId": max(e.traffic, key=lambda k: e.traffic[k]),
        }

    def delete_batch_job(self, resource: str) -> Operation:
        drop = self._call("delete_batch_job", resource=resource)
        if resource not in self.batch_jobs:
            raise errors.NotFound(f"{resource} not found")
        del self.batch_jobs[resource]
        return self._finish("delete_batch_job", drop, self._op())

    def endpoint_url(self, endpoint_id: str) -> str:
        return f"fake://{self._parent()}/endpoints/{endpoint_id}:predict"

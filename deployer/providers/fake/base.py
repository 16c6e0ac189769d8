"""The fake provider's shared state: records, scripted faults, lookups (see the package doc).

Must not: import any SDK, or be used outside tests and examples.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from deployer import errors
from deployer.providers import DeployRequest, JobStatus, ObjectInfo, Operation
from deployer.state import DEFAULT_ALIAS, LABEL_NAME, ObservedDeployment, ObservedEndpoint

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


class FakeBase:
    """The state every part of the fake shares; `calls` lists (method, args) in order."""

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
        """The next `count` calls to `method` fail before any effect (503 by default).

        A transient failure of a read is retried inside, as the real provider does."""
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
            if m != method or n <= 0:
                continue
            if isinstance(exc, errors.TransientError) and method not in MUTATING:
                # Providers retry reads themselves: each failed try is one more call.
                self._faults[i] = (m, 0, exc)
                self.calls += [(method, args)] * n
                continue
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

    @staticmethod
    def _model_labels(m: _Model) -> dict[str, str]:
        # Vertex reports the default version's labels as the model's.
        default = [v for v in m.versions.values() if DEFAULT_ALIAS in v.aliases]
        return (default or list(m.versions.values()))[0].labels

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

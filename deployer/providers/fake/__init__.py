"""An in-memory provider that stores what it is told and records every call.

Owns: `FakeProvider`, the `Provider` unit tests of apply, upload, teardown, reap and
batch-predict run against with no server. It keeps resources, labels, objects with
generations, model versions with aliases, endpoints with deployments and traffic, batch
jobs, and long-running operations that finish after `op_polls` polls; it records each call
in `calls`, and plays scripted faults (`fail_next`, `drop_next`) in the shape the emulator
produces them.

One part per protocol (storage.py, registry.py, endpoints.py, jobs.py) on the shared state
and call records of base.py; this module adds observation by label and operations.

It keeps only what a store must (ids are unique: NotFound, AlreadyExists; a generation
precondition fails with FailedPrecondition; an alias names one version; "0" in a deploy's
traffic split is the model being deployed). Vertex's rules (traffic sums, what may be
undeployed or deleted while in use, job state transitions) are not re-implemented here:
tests/integration/test_provider_contract.py checks them on the real service, and checks
that this fake answers every shared scenario as the real provider does.

Must not: import any SDK, or be used outside tests and examples.
"""

from __future__ import annotations

from deployer import errors
from deployer.providers import LabelledResource, Operation, ResourceKind
from deployer.providers.fake.base import MUTATING, _Endpoint, _Model, _Version
from deployer.providers.fake.endpoints import FakeEndpoints
from deployer.providers.fake.jobs import FakeJobs
from deployer.providers.fake.registry import FakeRegistry
from deployer.providers.fake.storage import FakeStorage
from deployer.state import (
    DEFAULT_ALIAS,
    LABEL_NAME,
    LABEL_STACK,
    ObservedBatchJob,
    ObservedBucket,
    ObservedModel,
    StackState,
)


class FakeProvider(FakeStorage, FakeRegistry, FakeEndpoints, FakeJobs):
    """In-memory `Provider`: every part, plus observation by label and operations."""

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


__all__ = ["MUTATING", "FakeProvider", "_Endpoint", "_Model", "_Version"]

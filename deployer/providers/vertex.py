"""The real provider: Vertex AI v1 GAPIC clients over REST, plus Cloud Storage.

Owns: `VertexProvider`, which implements `deployer.providers.Provider` with the official
clients built by clients.py (the same code for the local emulator and Vertex AI). Its parts:
this module (inventory: observation by label, one list per kind plus listVersions per model;
the registry; operations; storage by delegation to gcs.py), vertex_endpoints.py (endpoints,
deployments, prediction) and batch_jobs.py (batch prediction jobs), on vertex_base.py.
`connect` is the CLI's one way to get one.

Must not: decide anything (apply and plan do), retry mutating calls (apply does, with
adoption), or let a vendor exception escape (errors.py maps them).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deployer.providers import (
    LabelledResource,
    Labels,
    ObjectInfo,
    Operation,
    Progress,
    ResourceKind,
    VersionRequest,
    vertex_production,
)
from deployer.providers.batch_jobs import VertexJobs
from deployer.providers.clients import resolve_target
from deployer.providers.containers import container_spec, predict_schemata
from deployer.providers.vertex_endpoints import VertexEndpoints
from deployer.state import (
    LABEL_NAME,
    LABEL_STACK,
    ObservedBucket,
    ObservedModel,
    ObservedVersion,
    StackState,
)


def _label_filter(stack: str) -> str:
    return f'labels.{LABEL_STACK}="{stack}"'


class VertexProvider(VertexEndpoints, VertexJobs):
    """`Provider` over the official clients of one target (see the module docstring)."""

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

        out = [
            LabelledResource(ResourceKind.MODEL, m.name, labels(m), m.artifact_uri) for m in models
        ]
        out += [LabelledResource(ResourceKind.ENDPOINT, e.name, labels(e)) for e in eps]
        out += [LabelledResource(ResourceKind.BATCH_JOB, j.name, labels(j)) for j in jobs]
        out += [
            LabelledResource(ResourceKind.BUCKET, b.name, labels(b))
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

    def download_files(self, items: Iterable[tuple[str, Path]]) -> None:
        self.gcs.download_files(items)

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

    def model_version(self, model_id: str, alias: str) -> str | None:
        from google.api_core.exceptions import NotFound as GNotFound

        name = f"{self._model_name(model_id)}@{alias}"

        def get() -> str | None:
            try:
                m = self.clients.models.get_model(name=name)
            except GNotFound:
                return None
            return f"{m.name.split('@', 1)[0]}@{m.version_id}"

        return self._read(f"get model {model_id}@{alias}", get)

    def upload_version(self, req: VersionRequest) -> Operation:
        from google.cloud.aiplatform_v1.types.model import Model

        model = Model(
            display_name=req.display_name,
            description=req.model_description,
            version_description=req.description,
            artifact_uri=req.artifact_uri,
            container_spec=container_spec(req.container_image, req.container),
            labels=dict(req.labels),
            version_aliases=list(req.aliases),
        )
        if req.kms_key_name:
            model.encryption_spec = vertex_production.encryption(req.kms_key_name)
        schemata = predict_schemata(req.container)
        if schemata is not None:
            model.predict_schemata = schemata
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


def connect(
    target: str, project: str, region: str, *, emulator: str | None = None
) -> VertexProvider:
    """The real provider for a target ("local" or "vertex"): the CLI's one way to get one.

    `emulator` overrides the local emulator's URL (else $DEPLOYER_EMULATOR, else the
    `deployer local up` instance, started on demand).
    """
    return VertexProvider(resolve_target(target, project, region, emulator=emulator))

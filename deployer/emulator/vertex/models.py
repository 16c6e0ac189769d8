"""The Model Registry surface: upload (with versions), get, list, listVersions,
mergeVersionAliases, patch, delete, deleteVersion.

Owns version and alias semantics as Vertex has them: the first version of a
model holds the `default` alias; an alias names at most one version of a model
and giving it to a version moves it; `models/ID` means the default version;
list returns each model's default version. Which images the emulator runs, and what
their artifact directory must hold, is `serving_kinds`'.

Must not: start replicas, or import TensorFlow.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from google.cloud.aiplatform_v1.types import deployed_model_ref as dmr_t
from google.cloud.aiplatform_v1.types import model as model_t
from google.cloud.aiplatform_v1.types import model_service as ms
from google.cloud.aiplatform_v1.types import operation as operation_t

from deployer.emulator.context import EmulatorContext
from deployer.emulator.http import Request, Response, ServiceError
from deployer.emulator.vertex import protos, serving_kinds
from deployer.emulator.vertex.listing import compile_filter, order, paginate
from deployer.emulator.vertex.names import (
    API,
    PARENT_RE,
    Routes,
    check_alias,
    check_model_id,
    new_numeric_id,
    parse_model_name,
)
from deployer.emulator.vertex.operations import generic_metadata, start_operation
from deployer.emulator.vertex.store import Model, VertexStore, pick_version

UploadModelRequest = protos.pb(ms.UploadModelRequest)
UploadModelResponse = protos.pb(ms.UploadModelResponse)
UploadModelOperationMetadata = protos.pb(ms.UploadModelOperationMetadata)
ListModelsResponse = protos.pb(ms.ListModelsResponse)
ListModelVersionsResponse = protos.pb(ms.ListModelVersionsResponse)
MergeVersionAliasesRequest = protos.pb(ms.MergeVersionAliasesRequest)
DEDICATED = protos.pb(model_t.Model).DeploymentResourcesType.DEDICATED_RESOURCES
DeployedModelRef = protos.pb(dmr_t.DeployedModelRef)
DeleteOperationMetadata = protos.pb(operation_t.DeleteOperationMetadata)

_BATCH_INPUT_FORMATS = ["jsonl", "csv", "tf-record", "tf-record-gzip", "file-list"]
_BATCH_OUTPUT_FORMATS = ["jsonl"]
_EDITABLE = {"display_name", "description", "labels", "version_description", "version_aliases"}


class ModelRegistry:
    """Handlers of the ModelService routes, over the shared store."""

    def __init__(self, ctx: EmulatorContext, store: VertexStore) -> None:
        self.ctx = ctx
        self.store = store
        # Called with a model's base name after its display name changed, so predict
        # answers carry the new modelDisplayName (wired to the endpoints' routing).
        self.on_renamed: Callable[[str], None] | None = None

    # -- rendering --------------------------------------------------------------

    def render(self, model: Any) -> Any:
        """The Model as clients see it: with deployed_models refs from the deployments table."""
        out = Model()
        out.CopyFrom(model)
        base = parse_model_name(model.name).base
        for row in self.store.deployments(model_base=base, version=int(model.version_id)):
            if row["state"] == "deployed":
                out.deployed_models.append(
                    DeployedModelRef(
                        endpoint=row["endpoint"], deployed_model_id=row["deployed_model_id"]
                    )
                )
        return out

    def _versions(self, base: str) -> list[Any]:
        versions = self.store.model_versions(base)
        if not versions:
            raise ServiceError(404, "NOT_FOUND", f"Model {base} not found.")
        return versions

    # -- upload -------------------------------------------------------------------

    def upload(self, req: Request, m: re.Match[str]) -> Response:
        parent = m["parent"]
        body = protos.parse_body(req, UploadModelRequest)
        model = body.model
        if not model.display_name:
            raise ServiceError(400, "INVALID_ARGUMENT", "Model.display_name must be set.")
        serving = serving_kinds.classify(model.container_spec)
        serving_kinds.check_artifact(self.ctx, serving, model.artifact_uri)
        aliases = [check_alias(a) for a in model.version_aliases]
        if len(set(aliases)) != len(aliases):
            raise ServiceError(400, "INVALID_ARGUMENT", f"Duplicate version aliases in {aliases}.")
        now = protos.now_ts()
        with self.store.tx():
            if body.parent_model:
                pm = parse_model_name(body.parent_model)
                if pm.parent != parent:
                    raise ServiceError(
                        400,
                        "INVALID_ARGUMENT",
                        f"parent_model {body.parent_model} is not under {parent}.",
                    )
                versions = self._versions(pm.base)
                model_id = pm.model_id
                version = max(int(v.version_id) for v in versions) + 1
                created = versions[0].create_time
            else:
                model_id = check_model_id(body.model_id) if body.model_id else new_numeric_id()
                versions = self.store.model_versions(f"{parent}/models/{model_id}")
                if versions:
                    raise ServiceError(
                        409, "ALREADY_EXISTS", f"Model {parent}/models/{model_id} already exists."
                    )
                version = 1
                created = now
                if "default" not in aliases:
                    aliases.insert(0, "default")
            base = f"{parent}/models/{model_id}"
            self._take_aliases(versions, aliases)
            model.name = base
            model.version_id = str(version)
            del model.version_aliases[:]
            model.version_aliases.extend(aliases)
            model.create_time.CopyFrom(created)
            model.update_time.CopyFrom(now)
            model.version_create_time.CopyFrom(now)
            model.version_update_time.CopyFrom(now)
            del model.supported_deployment_resources_types[:]
            model.supported_deployment_resources_types.append(DEDICATED)
            del model.supported_input_storage_formats[:]
            model.supported_input_storage_formats.extend(_BATCH_INPUT_FORMATS)
            del model.supported_output_storage_formats[:]
            model.supported_output_storage_formats.extend(_BATCH_OUTPUT_FORMATS)
            model.ClearField("deployed_models")
            self.store.put_model(model)
            meta = UploadModelOperationMetadata(generic_metadata=generic_metadata())
            op = start_operation(
                self.store,
                self.ctx,
                resource=base,
                kind="upload",
                metadata=meta,
                response=UploadModelResponse(model=base, model_version_id=str(version)),
            )
        return protos.proto_response(req, op)

    def _take_aliases(
        self, versions: list[Any], aliases: list[str], keep: str | None = None
    ) -> None:
        """Remove `aliases` from every version but `keep` (an alias names one version)."""
        for v in versions:
            if v.version_id == keep:
                continue
            remaining = [a for a in v.version_aliases if a not in aliases]
            if len(remaining) != len(v.version_aliases):
                del v.version_aliases[:]
                v.version_aliases.extend(remaining)
                v.version_update_time.CopyFrom(protos.now_ts())
                self.store.put_model(v)

    # -- reads ----------------------------------------------------------------------

    def get(self, req: Request, m: re.Match[str]) -> Response:
        return protos.proto_response(req, self.render(self.store.resolve_model(m["name"])))

    def list_models(self, req: Request, m: re.Match[str]) -> Response:
        pred = compile_filter(req.q("filter"))
        defaults = [v for v in self.store.models_in(m["parent"]) if "default" in v.version_aliases]
        chosen = order([v for v in defaults if pred(v)], req.q("orderBy") or req.q("order_by"))
        page, token = paginate(chosen, req)
        out = ListModelsResponse(models=[self.render(v) for v in page], next_page_token=token)
        return protos.proto_response(req, out)

    def list_versions(self, req: Request, m: re.Match[str]) -> Response:
        name = parse_model_name(m["name"])
        pred = compile_filter(req.q("filter"))
        versions = [v for v in self._versions(name.base) if pred(v)]
        chosen = order(versions, req.q("orderBy") or req.q("order_by"))
        page, token = paginate(chosen, req)
        out = ListModelVersionsResponse(
            models=[self.render(v) for v in page], next_page_token=token
        )
        return protos.proto_response(req, out)

    # -- changes ---------------------------------------------------------------------

    def merge_aliases(self, req: Request, m: re.Match[str]) -> Response:
        name = parse_model_name(m["name"])
        if not name.version:
            raise ServiceError(
                400,
                "INVALID_ARGUMENT",
                "mergeVersionAliases needs a model version: models/ID@VERSION.",
            )
        body = protos.parse_body(req, MergeVersionAliasesRequest)
        with self.store.tx():
            versions = self._versions(name.base)
            target = pick_version(versions, name)
            if target is None:
                raise ServiceError(404, "NOT_FOUND", f"Model {m['name']} not found.")
            self._apply_alias_changes(versions, target, list(body.version_aliases))
            target = pick_version(
                self.store.model_versions(name.base),
                parse_model_name(f"{name.base}@{target.version_id}"),
            )
        return protos.proto_response(req, self.render(target))

    def _apply_alias_changes(self, versions: list[Any], target: Any, changes: list[str]) -> None:
        add = [check_alias(a) for a in changes if not a.startswith("-")]
        remove = [check_alias(a[1:]) for a in changes if a.startswith("-")]
        if "default" in remove:
            raise ServiceError(
                400,
                "INVALID_ARGUMENT",
                "The 'default' alias cannot be removed; move it by adding it to another version.",
            )
        if set(add) & set(remove):
            raise ServiceError(
                400,
                "INVALID_ARGUMENT",
                f"Aliases both added and removed: {sorted(set(add) & set(remove))}.",
            )
        self._take_aliases(versions, add, keep=target.version_id)
        current = [a for a in target.version_aliases if a not in remove]
        current += [a for a in add if a not in current]
        del target.version_aliases[:]
        target.version_aliases.extend(current)
        target.version_update_time.CopyFrom(protos.now_ts())
        self.store.put_model(target)

    def update(self, req: Request, m: re.Match[str]) -> Response:
        name = parse_model_name(m["name"])
        patch = protos.parse_body(req, Model)
        paths = protos.editable_paths(req, _EDITABLE)
        with self.store.tx():
            versions = self._versions(name.base)
            target = pick_version(versions, name)
            if target is None:
                raise ServiceError(404, "NOT_FOUND", f"Model {m['name']} not found.")
            if patch.etag and patch.etag != target.etag:
                raise ServiceError(
                    409, "ABORTED", f"Model {m['name']} changed (etag mismatch); read it again."
                )
            now = protos.now_ts()
            for v in versions:
                # Display name and description belong to the model (all versions);
                # labels, version description and aliases to the addressed version.
                if "display_name" in paths:
                    if not patch.display_name:
                        raise ServiceError(
                            400, "INVALID_ARGUMENT", "Model.display_name must not be empty."
                        )
                    v.display_name = patch.display_name
                if "description" in paths:
                    v.description = patch.description
                if v.version_id == target.version_id:
                    if "labels" in paths:
                        v.labels.clear()
                        v.labels.update(patch.labels)
                    if "version_description" in paths:
                        v.version_description = patch.version_description
                    target = v
                v.update_time.CopyFrom(now)
                self.store.put_model(v)
            if "version_aliases" in paths:
                self._apply_alias_changes(versions, target, list(patch.version_aliases))
            target = pick_version(
                self.store.model_versions(name.base),
                parse_model_name(f"{name.base}@{target.version_id}"),
            )
        if "display_name" in paths and self.on_renamed is not None:
            self.on_renamed(name.base)
        return protos.proto_response(req, self.render(target))

    def _deployed_to(self, base: str, version: int | None = None) -> list[str]:
        return sorted(
            {r["endpoint"] for r in self.store.deployments(model_base=base, version=version)}
        )

    def delete(self, req: Request, m: re.Match[str]) -> Response:
        name = parse_model_name(m["name"])
        with self.store.tx():
            self._versions(name.base)
            endpoints = self._deployed_to(name.base)
            if endpoints:
                raise ServiceError(
                    400,
                    "FAILED_PRECONDITION",
                    f'The Model "{name.base}" is deployed or being deployed at the following '
                    f"Endpoint(s): {', '.join(endpoints)}. Undeploy it first.",
                )
            self.store.delete_model(name.base)
            meta = DeleteOperationMetadata(generic_metadata=generic_metadata())
            op = start_operation(
                self.store, self.ctx, resource=name.base, kind="deleteModel", metadata=meta
            )
        return protos.proto_response(req, op)

    def delete_version(self, req: Request, m: re.Match[str]) -> Response:
        name = parse_model_name(m["name"])
        if not name.version:
            raise ServiceError(
                400, "INVALID_ARGUMENT", "deleteVersion needs a model version: models/ID@VERSION."
            )
        with self.store.tx():
            versions = self._versions(name.base)
            target = pick_version(versions, name)
            if target is None:
                raise ServiceError(404, "NOT_FOUND", f"Model {m['name']} not found.")
            if "default" in target.version_aliases:
                raise ServiceError(
                    400,
                    "FAILED_PRECONDITION",
                    f"Version {target.version_id} of {name.base} is the default version and cannot "
                    f"be "
                    "deleted: move the 'default' alias first, or delete the whole model.",
                )
            endpoints = self._deployed_to(name.base, int(target.version_id))
            if endpoints:
                raise ServiceError(
                    400,
                    "FAILED_PRECONDITION",
                    f'The Model "{name.base}@{target.version_id}" is deployed or being deployed at '
                    f"the "
                    f"following Endpoint(s): {', '.join(endpoints)}. Undeploy it first.",
                )
            self.store.delete_model(name.base, int(target.version_id))
            meta = DeleteOperationMetadata(generic_metadata=generic_metadata())
            op = start_operation(
                self.store, self.ctx, resource=name.base, kind="deleteModelVersion", metadata=meta
            )
        return protos.proto_response(req, op)


def register(router: Routes, ctx: EmulatorContext, store: VertexStore) -> ModelRegistry:
    reg = ModelRegistry(ctx, store)
    model = rf"{API}(?P<name>{PARENT_RE}/models/[^/:]+)"
    router.add(
        "POST",
        rf"{API}(?P<parent>{PARENT_RE})/models:upload",
        reg.upload,
        name="upload",
        mutating=True,
    )
    router.add(
        "GET",
        rf"{API}(?P<parent>{PARENT_RE})/models",
        reg.list_models,
        name="listModels",
        mutating=False,
    )
    router.add(
        "GET", model + ":listVersions", reg.list_versions, name="listModelVersions", mutating=False
    )
    router.add(
        "POST",
        model + ":mergeVersionAliases",
        reg.merge_aliases,
        name="mergeVersionAliases",
        mutating=True,
    )
    router.add(
        "DELETE",
        model + ":deleteVersion",
        reg.delete_version,
        name="deleteModelVersion",
        mutating=True,
    )
    router.add("GET", model, reg.get, name="getModel", mutating=False)
    router.add("PATCH", model, reg.update, name="updateModel", mutating=True)
    router.add("DELETE", model, reg.delete, name="deleteModel", mutating=True)
    return reg

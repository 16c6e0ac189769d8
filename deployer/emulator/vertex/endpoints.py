"""The Endpoint surface: create, get, list, patch, delete, and the shared endpoint helpers.

Owns endpoint resources and their traffic split rules (keys must name deployed
models, values sum to 100), and keeps the in-memory routing table
(predict.Routing) in step with every endpoint change. Deploy, undeploy and
mutate live in deploy.py.

Must not: start or stop replicas (deploy.py does), or import TensorFlow.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from google.cloud.aiplatform_v1.types import endpoint_service as es
from google.cloud.aiplatform_v1.types import operation as operation_t

from deployer.emulator.context import EmulatorContext
from deployer.emulator.http import Request, Response, ServiceError
from deployer.emulator.vertex import protos
from deployer.emulator.vertex.listing import compile_filter, order, paginate
from deployer.emulator.vertex.names import (
    API,
    PARENT_RE,
    SEG,
    Routes,
    check_endpoint_id,
    new_numeric_id,
)
from deployer.emulator.vertex.operations import generic_metadata, start_operation
from deployer.emulator.vertex.predict import Routing
from deployer.emulator.vertex.store import Endpoint, VertexStore

CreateEndpointOperationMetadata = protos.pb(es.CreateEndpointOperationMetadata)
ListEndpointsResponse = protos.pb(es.ListEndpointsResponse)
DeleteOperationMetadata = protos.pb(operation_t.DeleteOperationMetadata)
# Vertex patches request/response logging in place (endpoints.patch with its mask); the
# emulator stores it and returns it (it writes no BigQuery rows).
_LOGGING = "predict_request_response_logging_config"
_EDITABLE = {"display_name", "description", "labels", "traffic_split", _LOGGING}


def check_traffic(
    split: Mapping[str, int], deployed_ids: set[str], *, where: str = "traffic_split"
) -> dict[str, int]:
    """Validate a traffic split against the deployed model ids it may name; returns a copy.

    Vertex's rules: every key is a deployed model of the endpoint, values are
    0..100 and sum to exactly 100 (an endpoint with nothing deployed has an
    empty split).
    """
    out = {k: int(v) for k, v in split.items()}
    unknown = sorted(set(out) - deployed_ids)
    if unknown:
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"{where} names DeployedModel id(s) {unknown} that are not deployed to this "
            f"Endpoint (deployed: {sorted(deployed_ids) or 'none'}).",
        )
    if any(v < 0 or v > 100 for v in out.values()):
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"{where} values must be between 0 and 100: {out}."
        )
    total = sum(out.values())
    if deployed_ids and total != 100:
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"The sum of all {where} percentages must be 100, got {total}: {out}.",
        )
    if not deployed_ids and out:
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"{where} must be empty when no model is deployed."
        )
    return out


class EndpointService:
    """Handlers of the EndpointService CRUD routes; shared by deploy.py."""

    def __init__(self, ctx: EmulatorContext, store: VertexStore, routing: Routing) -> None:
        self.ctx = ctx
        self.store = store
        self.routing = routing

    def refresh_route(self, endpoint: Any) -> None:
        """Rebuild the predict routing of one endpoint from its stored proto."""
        models: dict[str, tuple[str, str]] = {}
        for dm in endpoint.deployed_models:
            base = dm.model.split("@")[0]
            versions = self.store.model_versions(base)
            display = versions[0].display_name if versions else ""
            models[dm.id] = (display, base)
        self.routing.refresh(endpoint, models)

    def save(self, endpoint: Any) -> None:
        """Persist an endpoint (fresh etag, update time); call inside store.tx()."""
        endpoint.update_time.CopyFrom(protos.now_ts())
        endpoint.etag = uuid.uuid4().hex[:16]
        self.store.put_endpoint(endpoint, parent=endpoint.name.rsplit("/endpoints/", 1)[0])

    def create(self, req: Request, m: re.Match[str]) -> Response:
        parent = m["parent"]
        ep = protos.parse_body(req, Endpoint)
        if not ep.display_name:
            raise ServiceError(400, "INVALID_ARGUMENT", "Endpoint.display_name must be set.")
        wanted = req.q("endpointId") or req.q("endpoint_id")
        endpoint_id = check_endpoint_id(wanted) if wanted else new_numeric_id()
        name = f"{parent}/endpoints/{endpoint_id}"
        with self.store.tx():
            if self.store.get_endpoint(name) is not None:
                raise ServiceError(409, "ALREADY_EXISTS", f"Endpoint {name} already exists.")
            ep.name = name
            ep.ClearField("deployed_models")
            ep.traffic_split.clear()
            ep.create_time.CopyFrom(protos.now_ts())
            self.save(ep)
            meta = CreateEndpointOperationMetadata(generic_metadata=generic_metadata())
            op = start_operation(
                self.store,
                self.ctx,
                resource=name,
                kind="createEndpoint",
                metadata=meta,
                response=ep,
            )
        self.refresh_route(ep)
        return protos.proto_response(req, op)

    def with_status(self, endpoint: Any) -> Any:
        """The endpoint with each DeployedModel's status as Vertex reports it: replicas
        serving now (autoscaling moves it) and when that last changed."""
        for dm in endpoint.deployed_models:
            key = (endpoint.name, dm.id)
            dm.status.available_replica_count = len(self.routing.replicas_of(*key))
            changed = self.routing.changed_at.get(key)
            if changed is not None:
                dm.status.last_update_time.FromNanoseconds(int(changed * 1e9))
        return endpoint

    def get(self, req: Request, m: re.Match[str]) -> Response:
        return protos.proto_response(req, self.with_status(self.store.require_endpoint(m["name"])))

    def list_endpoints(self, req: Request, m: re.Match[str]) -> Response:
        pred = compile_filter(req.q("filter"))
        found = [self.with_status(e) for e in self.store.endpoints_in(m["parent"]) if pred(e)]
        page, token = paginate(order(found, req.q("orderBy") or req.q("order_by")), req)
        return protos.proto_response(
            req, ListEndpointsResponse(endpoints=page, next_page_token=token)
        )

    def update(self, req: Request, m: re.Match[str]) -> Response:
        patch = protos.parse_body(req, Endpoint)
        paths = protos.editable_paths(req, _EDITABLE)
        with self.store.tx():
            ep = self.store.require_endpoint(m["name"])
            if patch.etag and patch.etag != ep.etag:
                raise ServiceError(
                    409, "ABORTED", f"Endpoint {ep.name} changed (etag mismatch); read it again."
                )
            if "display_name" in paths:
                if not patch.display_name:
                    raise ServiceError(
                        400, "INVALID_ARGUMENT", "Endpoint.display_name must not be empty."
                    )
                ep.display_name = patch.display_name
            if "description" in paths:
                ep.description = patch.description
            if "labels" in paths:
                ep.labels.clear()
                ep.labels.update(patch.labels)
            if "traffic_split" in paths:
                split = check_traffic(patch.traffic_split, {d.id for d in ep.deployed_models})
                ep.traffic_split.clear()
                ep.traffic_split.update(split)
            if _LOGGING in paths:
                rate = patch.predict_request_response_logging_config.sampling_rate
                if not 0 <= rate <= 1:
                    raise ServiceError(
                        400,
                        "INVALID_ARGUMENT",
                        f"{_LOGGING}.sampling_rate must be within [0, 1], got {rate}.",
                    )
                ep.predict_request_response_logging_config.CopyFrom(
                    patch.predict_request_response_logging_config
                )
            self.save(ep)
        self.refresh_route(ep)
        return protos.proto_response(req, ep)

    def delete(self, req: Request, m: re.Match[str]) -> Response:
        name = m["name"]
        with self.store.tx():
            self.store.require_endpoint(name)
            rows = self.store.deployments(endpoint=name)
            if rows:
                ids = sorted(r["deployed_model_id"] for r in rows)
                raise ServiceError(
                    400,
                    "FAILED_PRECONDITION",
                    f"Endpoint {name} has deployed model(s) {ids}; undeploy them before deleting "
                    f"the endpoint.",
                )
            self.store.delete_endpoint(name)
            meta = DeleteOperationMetadata(generic_metadata=generic_metadata())
            op = start_operation(
                self.store, self.ctx, resource=name, kind="deleteEndpoint", metadata=meta
            )
        self.routing.forget(name)
        return protos.proto_response(req, op)


def register(
    router: Routes, ctx: EmulatorContext, store: VertexStore, routing: Routing
) -> EndpointService:
    svc = EndpointService(ctx, store, routing)
    one = rf"{API}(?P<name>{PARENT_RE}/endpoints/{SEG})"
    many = rf"{API}(?P<parent>{PARENT_RE})/endpoints"
    router.add("POST", many, svc.create, name="createEndpoint", mutating=True)
    router.add("GET", many, svc.list_endpoints, name="listEndpoints", mutating=False)
    router.add("GET", one, svc.get, name="getEndpoint", mutating=False)
    router.add("PATCH", one, svc.update, name="updateEndpoint", mutating=True)
    router.add("DELETE", one, svc.delete, name="deleteEndpoint", mutating=True)
    for ep in store.all_endpoints():
        svc.refresh_route(ep)
    return svc

"""Endpoints through the official clients: the `Endpoints` part of `VertexProvider`.

Owns: `VertexEndpoints`, which implements `deployer.providers.Endpoints` with the GAPIC v1
EndpointService client (REST): create / update / delete endpoints, deploy, mutate and
undeploy models, traffic splits, the conversion of an Endpoint message into an
`ObservedEndpoint`, and online prediction over an authorized HTTP session (the compact JSON
body is sent as is, see clients.py).

Must not: decide anything (apply and plan do), retry mutating calls (apply does, with
adoption), or let a vendor exception escape (errors.py maps them).
"""

from __future__ import annotations

from typing import Any

from deployer.providers import DeployRequest, Labels, Operation, Traffic
from deployer.providers import vertex_production as production
from deployer.providers.vertex_base import VertexBase
from deployer.spec.production_model import (
    DeployedModelSettings,
    EndpointSettings,
    RequestResponseLogging,
)
from deployer.state import LABEL_NAME, ObservedDeployment, ObservedEndpoint

# Bound on one online prediction request, so a connection that hangs cannot block forever.
PREDICT_TIMEOUT_S = 90.0


def _available_replicas(d: Any) -> int | None:
    """DeployedModel.status.available_replica_count, None when Vertex sent no status."""
    if not type(d).pb(d).HasField("status"):
        return None
    return int(d.status.available_replica_count)


class VertexEndpoints(VertexBase):
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
                    production.observed_deployment_settings(d),
                    _available_replicas(d),
                )
            )
        eid = e.name.rsplit("/", 1)[-1]
        labels = dict(e.labels)
        fixed, logging = production.observed_endpoint_settings(e)
        return ObservedEndpoint(
            labels.get(LABEL_NAME, eid),
            eid,
            e.name,
            tuple(sorted(labels.items())),
            e.display_name,
            e.description,
            tuple(deps),
            tuple(sorted(dict(e.traffic_split).items())),
            fixed,
            logging,
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

    def create_endpoint(
        self,
        endpoint_id: str,
        display_name: str,
        description: str,
        labels: Labels,
        settings: EndpointSettings | None = None,
    ) -> Operation:
        from google.cloud.aiplatform_v1.types.endpoint import Endpoint

        ep = Endpoint(
            display_name=display_name,
            description=description,
            labels=dict(labels),
            **production.endpoint_fields(settings or EndpointSettings()),
        )
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

    def update_endpoint_logging(
        self, endpoint_id: str, config: RequestResponseLogging | None
    ) -> None:
        from google.cloud.aiplatform_v1.types.endpoint import Endpoint
        from google.protobuf import field_mask_pb2

        ep = Endpoint(
            name=self._endpoint_name(endpoint_id),
            predict_request_response_logging_config=production.logging_config(config),
        )
        mask = field_mask_pb2.FieldMask(paths=["predict_request_response_logging_config"])
        self._write(
            f"update request/response logging of {endpoint_id}",
            lambda: self.clients.endpoints.update_endpoint(endpoint=ep, update_mask=mask),
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
        production.deployed_model(dm, req.settings, self.project, self.region)
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
        self,
        endpoint_id: str,
        deployed_id: str,
        min_replicas: int,
        max_replicas: int,
        settings: DeployedModelSettings | None = None,
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
        paths = ["dedicated_resources.min_replica_count", "dedicated_resources.max_replica_count"]
        if settings is not None:
            production.mutated_model(dm, settings)
            paths += production.MUTATE_SETTINGS_MASK
        op = self._write(
            f"mutate {deployed_id} on {endpoint_id}",
            lambda: self.clients.endpoints.mutate_deployed_model(
                endpoint=self._endpoint_name(endpoint_id),
                deployed_model=dm,
                update_mask=field_mask_pb2.FieldMask(paths=paths),
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

    def endpoint_url(self, endpoint_id: str) -> str:
        base = self.target.api_endpoint
        if not base.startswith("http"):
            base = f"https://{base}"
        return f"{base}/v1/{self._endpoint_name(endpoint_id)}:predict"

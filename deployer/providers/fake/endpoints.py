"""`FakeEndpoints`: the `Endpoints` part of FakeProvider, in memory.

Stores what it is told and records each call (see the package docstring for what it keeps
and what it leaves to the contract suite). Must not: import any SDK.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from deployer import errors
from deployer.providers import DeployRequest, Labels, Operation, Traffic
from deployer.providers.fake.base import FakeBase, _Endpoint
from deployer.state import ObservedEndpoint


class FakeEndpoints(FakeBase):
    def get_endpoint(self, endpoint_id: str) -> ObservedEndpoint | None:
        with self._recorded("get_endpoint", endpoint_id=endpoint_id):
            e = self.endpoints.get(endpoint_id)
            return self._observed_endpoint(e) if e else None

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

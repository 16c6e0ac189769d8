"""deployModel, undeployModel and mutateDeployedModel, with real replica processes.

Owns the deployment lifecycle. deployModel validates at once (endpoint, model
version, serving image, resources, traffic split), records the deployment as
`deploying` and a running operation in one transaction, and hands the rest to
a worker thread: fetch the artifact, start replicas, wait until warm (and
until --op-delay has passed), then in one transaction add the DeployedModel
to the endpoint, apply the traffic split and finish the operation. Any
failure rolls the deployment back and finishes the operation with an error.
After an emulator restart (`recover`), running deploy operations resume and
deployed models get their replicas started again.

Must not: import TensorFlow (replicas are processes), or serve predictions.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from google.cloud.aiplatform_v1.types import endpoint as endpoint_t
from google.cloud.aiplatform_v1.types import endpoint_service as es

from deployer.emulator.context import EmulatorContext
from deployer.emulator.http import Request, Response, ServiceError
from deployer.emulator.vertex import protos, serving_kinds
from deployer.emulator.vertex.autoscale import Autoscaler, replica_cap
from deployer.emulator.vertex.endpoints import EndpointService, check_traffic
from deployer.emulator.vertex.names import (
    API,
    PARENT_RE,
    SEG,
    Routes,
    check_deployed_model_id,
    new_numeric_id,
    parse_model_name,
)
from deployer.emulator.vertex.operations import (
    CANCELLED,
    INTERNAL,
    error_status,
    generic_metadata,
    start_operation,
)
from deployer.emulator.vertex.replicas import Replica, ReplicaError, ReplicaManager
from deployer.emulator.vertex.store import VertexStore

log = logging.getLogger("deployer.emulator.vertex")

DeployedModel = protos.pb(endpoint_t.DeployedModel)
DeployModelRequest = protos.pb(es.DeployModelRequest)
DeployModelResponse = protos.pb(es.DeployModelResponse)
DeployModelOperationMetadata = protos.pb(es.DeployModelOperationMetadata)
UndeployModelRequest = protos.pb(es.UndeployModelRequest)
UndeployModelResponse = protos.pb(es.UndeployModelResponse)
UndeployModelOperationMetadata = protos.pb(es.UndeployModelOperationMetadata)
MutateDeployedModelRequest = protos.pb(es.MutateDeployedModelRequest)
MutateDeployedModelResponse = protos.pb(es.MutateDeployedModelResponse)
MutateDeployedModelOperationMetadata = protos.pb(es.MutateDeployedModelOperationMetadata)

# How often dead replicas are looked for (and replaced).
SUPERVISE_INTERVAL_S = 2.0
_MUTABLE = {
    "dedicated_resources.min_replica_count",
    "dedicated_resources.max_replica_count",
    "dedicated_resources.autoscaling_metric_specs",
    "dedicated_resources",
    "automatic_resources",
    "automatic_resources.min_replica_count",
    "automatic_resources.max_replica_count",
    "disable_container_logging",
    "enable_access_logging",
}


def _replica_count(dm: Any) -> int:
    if dm.HasField("dedicated_resources"):
        count: int = dm.dedicated_resources.min_replica_count
    else:
        count = dm.automatic_resources.min_replica_count
    return max(1, count)


def _check_resources(dm: Any) -> None:
    if dm.HasField("dedicated_resources"):
        res = dm.dedicated_resources
        if not res.machine_spec.machine_type:
            raise ServiceError(
                400,
                "INVALID_ARGUMENT",
                "dedicated_resources.machine_spec.machine_type must be set.",
            )
        if res.min_replica_count < 1:
            raise ServiceError(
                400, "INVALID_ARGUMENT", "dedicated_resources.min_replica_count must be at least 1."
            )
        if res.max_replica_count and res.max_replica_count < res.min_replica_count:
            raise ServiceError(
                400,
                "INVALID_ARGUMENT",
                "dedicated_resources.max_replica_count must be >= min_replica_count.",
            )
        if res.max_replica_count == 0:
            res.max_replica_count = res.min_replica_count
        spec = res.machine_spec
        if spec.accelerator_count and not spec.accelerator_type:
            raise ServiceError(
                400, "INVALID_ARGUMENT", "machine_spec.accelerator_count needs an accelerator_type."
            )
    elif dm.HasField("automatic_resources"):
        res = dm.automatic_resources
        if res.max_replica_count and res.max_replica_count < res.min_replica_count:
            raise ServiceError(
                400,
                "INVALID_ARGUMENT",
                "automatic_resources.max_replica_count must be >= min_replica_count.",
            )
    else:
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            "DeployedModel needs dedicated_resources (or automatic_resources).",
        )


class Deployer:
    """Handlers for deploy / undeploy / mutate, the deploy workers, and restart recovery."""

    def __init__(
        self,
        ctx: EmulatorContext,
        store: VertexStore,
        endpoints: EndpointService,
        replicas: ReplicaManager,
        autoscaler: Autoscaler,
    ) -> None:
        self.ctx = ctx
        self.store = store
        self.endpoints = endpoints
        self.routing = endpoints.routing
        self.replicas = replicas
        self.autoscaler = autoscaler

    # -- deployModel ------------------------------------------------------------------

    def deploy(self, req: Request, m: re.Match[str]) -> Response:
        name = m["name"]
        body = protos.parse_body(req, DeployModelRequest)
        dm = body.deployed_model
        if not dm.model:
            raise ServiceError(400, "INVALID_ARGUMENT", "deployed_model.model must be set.")
        _check_resources(dm)
        with self.store.tx():
            ep = self.store.require_endpoint(name)
            model = self.store.resolve_model(dm.model)
            serving = serving_kinds.classify(model.container_spec)
            serving_kinds.check_deployable(serving)
            dm.id = check_deployed_model_id(dm.id) if dm.id else new_numeric_id()[:18]
            taken = {r["deployed_model_id"] for r in self.store.deployments(endpoint=name)}
            if dm.id in taken:
                raise ServiceError(
                    409,
                    "ALREADY_EXISTS",
                    f"DeployedModel {dm.id} already exists on Endpoint {name}.",
                )
            split = {(dm.id if k == "0" else k): v for k, v in body.traffic_split.items()}
            if split:
                check_traffic(split, {d.id for d in ep.deployed_models} | {dm.id})
            parsed = parse_model_name(dm.model)
            dm.model = parsed.base + (f"@{parsed.version}" if parsed.version else "")
            dm.model_version_id = model.version_id
            if not dm.display_name:
                dm.display_name = model.display_name
            body.traffic_split.clear()
            body.traffic_split.update(split)
            meta = DeployModelOperationMetadata(generic_metadata=generic_metadata())
            op = start_operation(
                self.store, self.ctx, resource=name, kind="deploy", metadata=meta, running=True
            )
            self.store.put_deployment(
                endpoint=name,
                deployed_model_id=dm.id,
                model_base=parsed.base,
                version=int(model.version_id),
                state="deploying",
                operation=op.name,
                body=protos.dumps(body),
            )
        gpu = (
            dm.dedicated_resources.machine_spec.accelerator_type
            if dm.HasField("dedicated_resources")
            else 0
        )
        if gpu or serving.gpu:
            log.info(
                "deployModel %s on %s: GPU requested (accelerator %s, image %s); the local "
                "emulator serves it on CPU",
                dm.id,
                name,
                gpu,
                model.container_spec.image_uri,
            )
        self._spawn(op.name)
        return protos.proto_response(req, op)

    def _spawn(self, op_name: str) -> None:
        threading.Thread(
            target=self._run_deploy,
            args=(op_name,),
            daemon=True,
            name=f"deploy-{op_name.rsplit('/', 1)[1]}",
        ).start()

    def _start_replicas(
        self, endpoint: str, dm: Any, model: Any, cancelled: threading.Event | None = None
    ) -> list[Replica]:
        wanted = _replica_count(dm)
        # The machine is shared: $DEPLOYER_EMULATOR_MAX_REPLICAS caps it (the log says so).
        count = min(wanted, replica_cap())
        if count < wanted:
            log.info(
                "deployed model %s asks for %d replicas; the local emulator starts %d",
                dm.id,
                wanted,
                count,
            )
        ep_id = endpoint.rsplit("/", 1)[1]
        started: list[Replica] = []
        try:
            with ThreadPoolExecutor(count) as pool:
                futures = [
                    pool.submit(
                        self.replicas.start,
                        model.artifact_uri,
                        name=f"{ep_id}-{dm.id}-{i}",
                        model_name=dm.id,
                        container=model.container_spec,
                        endpoint=endpoint,
                        cancelled=cancelled,
                    )
                    for i in range(count)
                ]
                errors = []
                for f in futures:
                    try:
                        started.append(f.result())
                    except Exception as exc:
                        errors.append(exc)
            if errors:
                raise errors[0]
        except BaseException:
            for r in started:
                self.replicas.stop(r)
            raise
        return started

    def _run_deploy(self, op_name: str) -> None:
        rows = [
            r
            for r in self.store.deployments()
            if r["operation"] == op_name and r["state"] == "deploying"
        ]
        if not rows:
            self.store.finish_operation(
                op_name, error=error_status(INTERNAL, "Deployment record lost.")
            )
            return
        row = rows[0]
        endpoint = row["endpoint"]
        request = protos.loads(row["body"], DeployModelRequest)
        dm = request.deployed_model
        cancelled = threading.Event()
        watcher = threading.Thread(
            target=self._watch_cancel, args=(op_name, cancelled), daemon=True
        )
        watcher.start()
        started: list[Replica] = []
        try:
            model = self.store.resolve_model(f"{row['model_base']}@{row['version']}")
            started = self._start_replicas(endpoint, dm, model, cancelled)
            op_row = self.store.operation_row(op_name)
            while op_row is not None and time.time() < op_row["done_at"] and not cancelled.is_set():
                time.sleep(0.05)
            if cancelled.is_set() or op_row is None:
                raise ReplicaError("Operation cancelled.", http_status=499)
            with self.store.tx():
                ep = self.store.require_endpoint(endpoint)
                dm.create_time.CopyFrom(protos.now_ts())
                ep.deployed_models.append(dm)
                ids = {d.id for d in ep.deployed_models}
                if request.traffic_split:
                    split = check_traffic(request.traffic_split, ids)
                elif len(ids) == 1:
                    split = {dm.id: 100}
                else:
                    split = dict(ep.traffic_split)
                ep.traffic_split.clear()
                ep.traffic_split.update(split)
                self.endpoints.save(ep)
                self.store.put_deployment(
                    endpoint=endpoint,
                    deployed_model_id=dm.id,
                    model_base=row["model_base"],
                    version=row["version"],
                    state="deployed",
                    operation=None,
                    body=protos.dumps(dm),
                )
                self.store.finish_operation(
                    op_name, response=protos.pack(DeployModelResponse(deployed_model=dm))
                )
            self.routing.set_replicas(endpoint, dm.id, started)
            self.endpoints.refresh_route(ep)
            log.info(
                "deployed %s (model %s) on %s with %d replica(s)",
                dm.id,
                dm.model,
                endpoint,
                len(started),
            )
        except Exception as exc:
            for r in started:
                self.replicas.stop(r)
            if self.replicas.closed:
                # A clean shutdown interrupted it: leave the operation running so the
                # next start resumes it (recover) instead of reporting a failure.
                log.info("deploy %s interrupted by shutdown; it resumes at the next start", op_name)
                return
            if isinstance(exc, ReplicaError) and exc.http_status == 499:
                status = error_status(CANCELLED, "Operation cancelled.")
            elif isinstance(exc, ServiceError):
                status = error_status(_rpc_code(exc.status), exc.message)
            else:
                log.exception("deploy of %s on %s failed", dm.id, endpoint)
                status = error_status(INTERNAL, f"Deploying {dm.id} failed: {exc}")
            with self.store.tx():
                self.store.delete_deployment(endpoint, dm.id)
                self.store.finish_operation(op_name, error=status)
            log.warning("deployModel %s on %s failed: %s", dm.id, endpoint, status.message)
        finally:
            cancelled.set()  # also stops the watcher

    def _watch_cancel(self, op_name: str, cancelled: threading.Event) -> None:
        while not cancelled.wait(0.25):
            row = self.store.operation_row(op_name)
            if row is None or row["cancel_requested"]:
                cancelled.set()

    # -- undeployModel -----------------------------------------------------------------

    def undeploy(self, req: Request, m: re.Match[str]) -> Response:
        name = m["name"]
        body = protos.parse_body(req, UndeployModelRequest)
        dmid = body.deployed_model_id
        if not dmid:
            raise ServiceError(400, "INVALID_ARGUMENT", "deployed_model_id must be set.")
        with self.store.tx():
            ep = self.store.require_endpoint(name)
            rows = self.store.deployments(endpoint=name)
            row = next((r for r in rows if r["deployed_model_id"] == dmid), None)
            if row is None:
                raise ServiceError(
                    404, "NOT_FOUND", f"DeployedModel {dmid} not found on Endpoint {name}."
                )
            if row["state"] != "deployed":
                raise ServiceError(
                    400,
                    "FAILED_PRECONDITION",
                    f"DeployedModel {dmid} is still being deployed ({row['operation']}).",
                )
            remaining = [d for d in ep.deployed_models if d.id != dmid]
            ids = {d.id for d in remaining}
            if body.traffic_split:
                split = check_traffic(body.traffic_split, ids)
            elif not remaining:
                split = {}
            else:
                if ep.traffic_split.get(dmid, 0) > 0:
                    raise ServiceError(
                        400,
                        "FAILED_PRECONDITION",
                        f"DeployedModel {dmid} still receives {ep.traffic_split[dmid]}% of the "
                        f"traffic: "
                        "pass a traffic_split that moves it to the remaining models.",
                    )
                split = {k: v for k, v in ep.traffic_split.items() if k != dmid}
            del ep.deployed_models[:]
            ep.deployed_models.extend(remaining)
            ep.traffic_split.clear()
            ep.traffic_split.update(split)
            self.endpoints.save(ep)
            self.store.delete_deployment(name, dmid)
            meta = UndeployModelOperationMetadata(generic_metadata=generic_metadata())
            op = start_operation(
                self.store,
                self.ctx,
                resource=name,
                kind="undeploy",
                metadata=meta,
                response=UndeployModelResponse(),
            )
        self.endpoints.refresh_route(ep)
        stopping = self.routing.pop_replicas(name, dmid)
        threading.Thread(target=self._stop_all_of, args=(stopping,), daemon=True).start()
        log.info("undeployed %s from %s (%d replica(s) stopping)", dmid, name, len(stopping))
        return protos.proto_response(req, op)

    def _stop_all_of(self, replicas: list[Replica]) -> None:
        for r in replicas:
            self.replicas.stop(r)

    # -- mutateDeployedModel -------------------------------------------------------------

    def mutate(self, req: Request, m: re.Match[str]) -> Response:
        name = m["name"]
        body = protos.parse_body(req, MutateDeployedModelRequest)
        paths = list(body.update_mask.paths) or protos.update_mask_paths(req)
        if not paths:
            raise ServiceError(400, "INVALID_ARGUMENT", "update_mask is required.")
        bad = [p for p in paths if p not in _MUTABLE]
        if bad:
            raise ServiceError(
                400,
                "INVALID_ARGUMENT",
                f"Unsupported update_mask paths {bad}: mutable are {sorted(_MUTABLE)}.",
            )
        patch = body.deployed_model
        with self.store.tx():
            ep = self.store.require_endpoint(name)
            dm = next((d for d in ep.deployed_models if d.id == patch.id), None)
            if dm is None:
                raise ServiceError(
                    404, "NOT_FOUND", f"DeployedModel {patch.id!r} not found on Endpoint {name}."
                )
            for path in paths:
                head, _, leaf = path.partition(".")
                if not leaf:
                    if head in ("dedicated_resources", "automatic_resources"):
                        keep = (
                            getattr(dm, head).machine_spec
                            if head == "dedicated_resources"
                            else None
                        )
                        getattr(dm, head).CopyFrom(getattr(patch, head))
                        if keep is not None and not patch.dedicated_resources.HasField(
                            "machine_spec"
                        ):
                            dm.dedicated_resources.machine_spec.CopyFrom(keep)
                    else:
                        setattr(dm, head, getattr(patch, head))
                elif leaf == "autoscaling_metric_specs":
                    del dm.dedicated_resources.autoscaling_metric_specs[:]
                    dm.dedicated_resources.autoscaling_metric_specs.extend(
                        patch.dedicated_resources.autoscaling_metric_specs
                    )
                else:
                    setattr(getattr(dm, head), leaf, getattr(getattr(patch, head), leaf))
            _check_resources(dm)
            self.endpoints.save(ep)
            row = next(
                r for r in self.store.deployments(endpoint=name) if r["deployed_model_id"] == dm.id
            )
            self.store.put_deployment(
                endpoint=name,
                deployed_model_id=dm.id,
                model_base=row["model_base"],
                version=row["version"],
                state="deployed",
                operation=None,
                body=protos.dumps(dm),
            )
            meta = MutateDeployedModelOperationMetadata(generic_metadata=generic_metadata())
            op = start_operation(
                self.store,
                self.ctx,
                resource=name,
                kind="mutateDeployedModel",
                metadata=meta,
                response=MutateDeployedModelResponse(deployed_model=dm),
            )
        # New bounds: the replica count moves into them (autoscaling goes on from there).
        threading.Thread(target=self.autoscaler.fit, args=(name, dm), daemon=True).start()
        return protos.proto_response(req, op)

    # -- restart -----------------------------------------------------------------------

    def recover(self) -> None:
        """After a (re)start: resume running deploys; restart replicas of deployed models."""
        for row in self.store.running_operations():
            if row["kind"] == "deploy":
                log.info("resuming deploy operation %s after restart", row["name"])
                self._spawn(row["name"])
            else:
                self.store.finish_operation(
                    row["name"],
                    error=error_status(
                        INTERNAL, "The emulator restarted while this operation was in flight."
                    ),
                )
        for row in self.store.deployments():
            if row["state"] == "deployed":
                threading.Thread(target=self._restart_replicas, args=(row,), daemon=True).start()
        threading.Thread(target=self._supervise, daemon=True, name="replica-supervisor").start()

    def _supervise(self) -> None:
        """Replace replicas that died while serving (crash, OOM kill), as Vertex would."""
        while not self.replicas.closed:
            time.sleep(SUPERVISE_INTERVAL_S)
            for (endpoint, dmid), current in self.routing.all_replicas().items():
                dead = [r for r in current if not r.alive()]
                if dead and not self.replicas.closed:
                    self._replace(endpoint, dmid, dead)

    def _replace(self, endpoint: str, dmid: str, dead: list[Replica]) -> None:
        rows = [
            r for r in self.store.deployments(endpoint=endpoint) if r["deployed_model_id"] == dmid
        ]
        if not rows or rows[0]["state"] != "deployed":
            return  # being undeployed: nothing to replace
        # Out of the rotation at once: until the replacement is warm, the live ones serve
        # (or predict answers 503 UNAVAILABLE if none is left).
        self.routing.set_replicas(
            endpoint, dmid, [r for r in self.routing.replicas_of(endpoint, dmid) if r not in dead]
        )
        for r in dead:
            log.warning(
                "replica %s of %s exited with status %s; starting a replacement",
                r.name,
                dmid,
                r.process.returncode,
            )
            self.replicas.stop(r)
        try:
            model = self.store.resolve_model(f"{rows[0]['model_base']}@{rows[0]['version']}")
            fresh = [
                self.replicas.start(
                    model.artifact_uri,
                    name=f"{r.name}-r",
                    model_name=dmid,
                    container=model.container_spec,
                    endpoint=endpoint,
                )
                for r in dead
            ]
        except Exception as exc:
            log.error("could not replace replicas of %s on %s: %s", dmid, endpoint, exc)
            return
        still = [
            r for r in self.store.deployments(endpoint=endpoint) if r["deployed_model_id"] == dmid
        ]
        if still and still[0]["state"] == "deployed":
            self.routing.set_replicas(
                endpoint, dmid, self.routing.replicas_of(endpoint, dmid) + fresh
            )
        else:
            self._stop_all_of(fresh)  # undeployed meanwhile

    def _restart_replicas(self, row: dict[str, Any]) -> None:
        dm = protos.loads(row["body"], DeployedModel)
        try:
            model = self.store.resolve_model(f"{row['model_base']}@{row['version']}")
            started = self._start_replicas(row["endpoint"], dm, model)
        except Exception as exc:
            log.error("could not restart replicas of %s on %s: %s", dm.id, row["endpoint"], exc)
            return
        self.routing.set_replicas(row["endpoint"], dm.id, started)
        log.info("restarted %d replica(s) of %s on %s", len(started), dm.id, row["endpoint"])


def _rpc_code(status: str) -> int:
    from google.rpc import code_pb2

    return int(code_pb2.Code.Value(status)) if status in code_pb2.Code.keys() else INTERNAL


def register(
    router: Routes,
    ctx: EmulatorContext,
    store: VertexStore,
    endpoints: EndpointService,
    replicas: ReplicaManager,
    autoscaler: Autoscaler,
) -> Deployer:
    dep = Deployer(ctx, store, endpoints, replicas, autoscaler)
    one = rf"{API}(?P<name>{PARENT_RE}/endpoints/{SEG})"
    router.add("POST", one + ":deployModel", dep.deploy, name="deployModel", mutating=True)
    router.add("POST", one + ":undeployModel", dep.undeploy, name="undeployModel", mutating=True)
    router.add(
        "POST", one + ":mutateDeployedModel", dep.mutate, name="mutateDeployedModel", mutating=True
    )
    return dep

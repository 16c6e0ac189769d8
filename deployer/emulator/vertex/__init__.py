"""The emulated Vertex AI v1 REST surface: models, endpoints, deployments, predict, operations.

`register(router, ctx)` (called by deployer.emulator.server) opens the store
(`<data_dir>/vertex.sqlite3`), registers every route under `/v1/` (operations
also under `/ui/`) through `names.ByProjectNumber` (handlers see names by project
number, as Vertex returns them), restores replicas of deployed models after a restart,
and registers batch prediction jobs, passing them the store and the replica manager:

    batch_jobs.register(routes, ctx, store, replicas)

Must not: import TensorFlow or deployer.serving (replicas are separate processes).
"""

from __future__ import annotations

import logging

from deployer import lazyimport

# Before any aiplatform_v1 type is imported by this package's modules: the control
# plane needs a dozen message types, not every client of the API (see deployer.lazyimport).
lazyimport.install()

from deployer.emulator.context import EmulatorContext  # noqa: E402 - after install(), on purpose
from deployer.emulator.http import Router  # noqa: E402 - after install(), on purpose

log = logging.getLogger("deployer.emulator.vertex")


def register(router: Router, ctx: EmulatorContext) -> None:
    from deployer.emulator import misbehave
    from deployer.emulator.vertex import (
        autoscale,
        batch_jobs,
        deploy,
        endpoints,
        models,
        operations,
        predict,
    )
    from deployer.emulator.vertex.names import ByProjectNumber
    from deployer.emulator.vertex.replicas import ReplicaManager
    from deployer.emulator.vertex.reqlog import RequestResponseLog
    from deployer.emulator.vertex.store import VertexStore

    # Vertex names resources by project number: requests by id are matched again by number.
    routes = ByProjectNumber(router)
    store = VertexStore(ctx.data_dir / "vertex.sqlite3")
    replicas = ReplicaManager(ctx)
    routing = predict.Routing(RequestResponseLog(ctx.data_dir / "bigquery"))
    misbehaviours = misbehave.Misbehaviours()
    # Predict first: the hot path should not scan the other routes' regexes.
    predict.register(routes, routing, misbehaviours)
    misbehave.register(router, misbehaviours)
    operations.register(routes, ctx, store)
    registry = models.register(routes, ctx, store)
    svc = endpoints.register(routes, ctx, store, routing)

    def refresh_routes_of(model_base: str) -> None:
        for name in sorted({r["endpoint"] for r in store.deployments(model_base=model_base)}):
            ep = store.get_endpoint(name)
            if ep is not None:
                svc.refresh_route(ep)

    registry.on_renamed = refresh_routes_of
    autoscaler = autoscale.Autoscaler(ctx, store, routing, replicas)
    dep = deploy.register(routes, ctx, store, svc, replicas, autoscaler)
    batch_jobs.register(routes, ctx, store, replicas)
    dep.recover()
    autoscaler.start()
    ctx.on_shutdown(store.close)

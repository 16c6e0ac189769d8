"""Online prediction: the in-memory routing table and the :predict / :rawPredict routes.

Owns the hot path. Each endpoint's traffic split and its deployed models'
replicas live in memory (`Routing`), rebuilt from the store whenever an
endpoint changes, so a predict call never touches SQLite or parses protobuf:
it checks the payload size, picks a deployed model by weighted random choice
over the traffic split, picks a replica round-robin, forwards the body over a
pooled keep-alive connection (on the server's event loop: no thread hand-off),
and splices `deployedModelId`, `model`, `modelDisplayName` and `modelVersionId`
into the replica's JSON answer (rawPredict sends them as `X-Vertex-AI-*` headers
instead, as Vertex does).

Must not: change state, or import TensorFlow.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from deployer.emulator import jsonlimits
from deployer.emulator.http import Request, Response, ServiceError
from deployer.emulator.misbehave import Misbehaviours
from deployer.emulator.vertex.names import API, PARENT_RE, SEG, Routes
from deployer.emulator.vertex.replicas import Replica, ReplicaError, error_message
from deployer.emulator.vertex.reqlog import RequestResponseLog
from deployer.httpserve import to_thread

# Printable ASCII but '%' (the escape itself) passes into header values unchanged.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
# Vertex's online prediction request limit: 1.5 MB.
MAX_PAYLOAD_BYTES = 1_572_864
_JSON = {"Content-Type": "application/json; charset=UTF-8"}
# GAPIC's RawPredictRequest JSON (MessageToJson, so indented): {"httpBody": {...}}.
_HTTP_BODY_RE = re.compile(rb'\s*\{\s*"http_?[bB]ody"\s*:')


@dataclass
class Target:
    """A deployed model as the hot path needs it."""

    deployed_model_id: str
    model: str  # registry model name without @version
    model_display_name: str
    model_version_id: str
    suffix: bytes  # ',"deployedModelId":...' spliced before the replica answer's closing brace
    replicas: list[Replica] = field(default_factory=list)
    turn: itertools.count[int] = field(default_factory=itertools.count)  # round-robin position


@dataclass
class Route:
    """One endpoint's routing: deployed models and their cumulative traffic weights."""

    targets: dict[str, Target]
    weighted: list[Target]  # targets with traffic > 0
    weights: list[int]
    logging: tuple[float, str] | None = None  # (sampling rate, bq:// destination) when enabled


class Routing:
    """Endpoint name -> Route, plus the replicas of each (endpoint, deployed model)."""

    def __init__(self, reqlog: RequestResponseLog | None = None) -> None:
        self.reqlog = reqlog  # request/response logging in place of BigQuery (None: off)
        self._routes: dict[str, Route] = {}
        self._replicas: dict[tuple[str, str], list[Replica]] = {}
        self._lock = threading.Lock()
        # Autoscaling's request meter (autoscale.Meter.hit), called per routed request.
        self.meter: Callable[[str, str], None] | None = None
        # When each replica set last changed: DeployedModel.status.last_update_time.
        self.changed_at: dict[tuple[str, str], float] = {}

    def refresh(self, endpoint: Any, models: dict[str, tuple[str, str]]) -> None:
        """Rebuild an endpoint's route from its Endpoint proto.

        `models` maps deployed model id -> (model display name, model base name).
        """
        name = endpoint.name
        targets: dict[str, Target] = {}
        for dm in endpoint.deployed_models:
            display, base = models.get(dm.id, ("", dm.model.split("@")[0]))
            suffix = (
                ',"deployedModelId":'
                + json.dumps(dm.id)
                + ',"model":'
                + json.dumps(base)
                + ',"modelDisplayName":'
                + json.dumps(display)
                + ',"modelVersionId":'
                + json.dumps(dm.model_version_id)
            ).encode()
            with self._lock:
                replicas = self._replicas.get((name, dm.id), [])
            targets[dm.id] = Target(dm.id, base, display, dm.model_version_id, suffix, replicas)
        weighted = [targets[k] for k, v in endpoint.traffic_split.items() if v > 0 and k in targets]
        weights = [endpoint.traffic_split[t.deployed_model_id] for t in weighted]
        cfg = endpoint.predict_request_response_logging_config
        project = name.split("/")[1] if name.startswith("projects/") else ""
        logging = (
            (cfg.sampling_rate, cfg.bigquery_destination.output_uri or f"bq://{project}")
            if cfg.enabled
            else None
        )
        with self._lock:
            self._routes[name] = Route(targets, weighted, weights, logging)

    def logging_on(self, endpoint_name: str) -> bool:
        """True if the endpoint's request/response logging may write a row."""
        route = self._routes.get(endpoint_name)
        return self.reqlog is not None and route is not None and route.logging is not None

    def log(self, endpoint_name: str, target: Target, request: bytes, response: bytes) -> None:
        route = self._routes.get(endpoint_name)
        if self.reqlog is not None and route is not None:
            self.reqlog.record(
                route.logging, endpoint_name, target.deployed_model_id, request, response
            )

    def forget(self, endpoint_name: str) -> None:
        with self._lock:
            self._routes.pop(endpoint_name, None)

    def set_replicas(
        self, endpoint_name: str, deployed_model_id: str, replicas: list[Replica]
    ) -> None:
        with self._lock:
            self._replicas[(endpoint_name, deployed_model_id)] = replicas
            self.changed_at[(endpoint_name, deployed_model_id)] = time.time()
            route = self._routes.get(endpoint_name)
            if route and deployed_model_id in route.targets:
                route.targets[deployed_model_id].replicas = replicas

    def pop_replicas(self, endpoint_name: str, deployed_model_id: str) -> list[Replica]:
        with self._lock:
            replicas = self._replicas.pop((endpoint_name, deployed_model_id), [])
            self.changed_at.pop((endpoint_name, deployed_model_id), None)
            route = self._routes.get(endpoint_name)
            if route and deployed_model_id in route.targets:
                route.targets[deployed_model_id].replicas = []
        return replicas

    def replicas_of(self, endpoint_name: str, deployed_model_id: str) -> list[Replica]:
        with self._lock:
            return list(self._replicas.get((endpoint_name, deployed_model_id), []))

    def all_replicas(self) -> dict[tuple[str, str], list[Replica]]:
        """(endpoint, deployed model id) -> its serving replicas (a snapshot)."""
        with self._lock:
            return {k: list(v) for k, v in self._replicas.items()}

    def choose(self, endpoint_name: str) -> tuple[Target, Replica]:
        route = self._routes.get(endpoint_name)
        if route is None:
            raise ServiceError(404, "NOT_FOUND", f"Endpoint {endpoint_name} not found.")
        if not route.targets:
            raise ServiceError(
                400,
                "FAILED_PRECONDITION",
                f"Endpoint {endpoint_name} does not have any deployed model to serve the request.",
            )
        if not route.weighted:
            raise ServiceError(
                400,
                "FAILED_PRECONDITION",
                f"Endpoint {endpoint_name} has no traffic split assigned to any deployed model.",
            )
        if len(route.weighted) == 1:
            target = route.weighted[0]
        else:
            target = random.choices(route.weighted, route.weights)[0]
        replicas = target.replicas
        if not replicas:
            raise ServiceError(
                503,
                "UNAVAILABLE",
                f"Deployed model {target.deployed_model_id} on {endpoint_name} is starting "
                "(its replicas are not ready yet); retry shortly.",
            )
        if self.meter is not None:
            self.meter(endpoint_name, target.deployed_model_id)
        return target, replicas[next(target.turn) % len(replicas)]


def _check_size(body: bytes) -> None:
    """Vertex's payload limit, and a nesting bound: neither this process's JSON parser nor
    the replica's may recurse into a body deep enough to raise RecursionError (a 500)."""
    if len(body) > MAX_PAYLOAD_BYTES:
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"Request payload size exceeds the limit: {MAX_PAYLOAD_BYTES} bytes.",
        )
    try:
        jsonlimits.check_depth(body)
    except jsonlimits.JsonRejected as exc:
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {exc}."
        ) from exc


def _answer(target: Target, replica: Replica, status: int, data: bytes) -> bytes:
    """The replica's answer on 200; its failure as Vertex reports it otherwise."""
    if status == 200:
        return data
    message = error_message(data)
    if 400 <= status < 500:
        # Vertex answers a pre-built image's "Prediction failed: ..." as FAILED_PRECONDITION.
        code = "FAILED_PRECONDITION" if replica.kind == "prebuilt" else "INVALID_ARGUMENT"
        raise ServiceError(400, code, message)
    raise ServiceError(
        503 if status in (502, 503, 504) else 500,
        "UNAVAILABLE" if status in (502, 503, 504) else "INTERNAL",
        f"Deployed model {target.deployed_model_id} failed: {message}",
    )


def _unavailable(target: Target, exc: ReplicaError) -> ServiceError:
    return ServiceError(
        503,
        "UNAVAILABLE",
        f"Deployed model {target.deployed_model_id} is unavailable: {exc.message}",
    )


def _forward(target: Target, replica: Replica, body: bytes) -> bytes:
    try:
        status, data = replica.post_predict(body)
    except ReplicaError as exc:
        raise _unavailable(target, exc) from exc
    return _answer(target, replica, status, data)


async def _forward_async(target: Target, replica: Replica, body: bytes) -> bytes:
    try:
        status, data = await replica.post_predict_async(body)
    except ReplicaError as exc:
        raise _unavailable(target, exc) from exc
    return _answer(target, replica, status, data)


def _without_parameters(body: bytes, replica: Replica) -> bytes:
    """TF Serving's REST API knows no "parameters"; the pre-built TF containers drop them."""
    if b'"parameters"' not in body or replica.kind != "tensorflow":
        return body
    try:
        obj = json.loads(body)
    except ValueError as exc:
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {exc}"
        ) from exc
    if isinstance(obj, dict):
        obj.pop("parameters", None)
        body = json.dumps(obj).encode()
    return body


def _spliced(target: Target, data: bytes) -> bytes:
    """The replica's {"predictions": ...} with the deployed model's fields added, as Vertex
    answers."""
    data = data.rstrip()
    if not data.endswith(b"}"):
        raise ServiceError(500, "INTERNAL", "The replica answered a non-object JSON body.")
    return data[:-1] + target.suffix + b"}"


def _raw_headers(endpoint_name: str, target: Target) -> dict[str, str]:
    headers = dict(_JSON)
    # Which deployed model answered: the SDK's Endpoint.predict(use_raw_predict=True)
    # reads the deployed model id, the model and its version from these headers.
    headers["X-Vertex-AI-Endpoint-Id"] = endpoint_name.rsplit("/", 1)[1]
    headers["X-Vertex-AI-Deployed-Model-Id"] = target.deployed_model_id
    headers["X-Vertex-AI-Model"] = target.model
    headers["X-Vertex-AI-Model-Display-Name"] = _header_value(target.model_display_name)
    headers["X-Vertex-AI-Model-Version-Id"] = target.model_version_id
    return headers


def _raw_answer(data: bytes) -> bytes:
    """GAPIC's raw_predict gets its answer back as an HttpBody."""
    out = {"contentType": "application/json", "data": base64.b64encode(data).decode()}
    return json.dumps(out).encode()


def register(router: Routes, routing: Routing, misbehaviours: Misbehaviours | None = None) -> None:
    endpoint = rf"{API}(?P<name>{PARENT_RE}/endpoints/{SEG})"
    misbehaving = misbehaviours or Misbehaviours()  # tests break a canary through it

    # Each route twice: the synchronous handler (worker threads: a request whose body had to
    # be streamed) and its event-loop twin, the hot path (no thread hand-off, the replica
    # reached over the loop's keep-alive connections). They differ only in how they wait.

    def predict(req: Request, m: re.Match[str]) -> Response:
        _check_size(req.body)
        target, replica = routing.choose(m["name"])
        effect = misbehaving.before(m["name"], target.deployed_model_id)
        body = _without_parameters(req.body, replica)
        data = Misbehaviours.after(effect, _forward(target, replica, body))
        answer = _spliced(target, data)
        routing.log(m["name"], target, req.body, answer)
        return Response(200, answer, dict(_JSON))

    async def predict_async(req: Request, m: re.Match[str]) -> Response:
        _check_size(req.body)
        target, replica = routing.choose(m["name"])
        effect = None
        if misbehaving.get(m["name"], target.deployed_model_id) is not None:
            # Rare (tests breaking a canary): its added latency sleeps, so off the loop.
            effect = await to_thread(misbehaving.before, m["name"], target.deployed_model_id)
        body = _without_parameters(req.body, replica)
        data = Misbehaviours.after(effect, await _forward_async(target, replica, body))
        answer = _spliced(target, data)
        if routing.logging_on(m["name"]):
            await to_thread(routing.log, m["name"], target, req.body, answer)
        return Response(200, answer, dict(_JSON))

    def raw_predict(req: Request, m: re.Match[str]) -> Response:
        _check_size(req.body)
        target, replica = routing.choose(m["name"])
        misbehaving.before(m["name"], target.deployed_model_id)
        headers = _raw_headers(m["name"], target)
        http_body = _as_http_body(req.body)
        if http_body is not None:
            return Response(200, _raw_answer(_forward(target, replica, http_body)), headers)
        return Response(200, _forward(target, replica, req.body), headers)

    async def raw_predict_async(req: Request, m: re.Match[str]) -> Response:
        _check_size(req.body)
        target, replica = routing.choose(m["name"])
        if misbehaving.get(m["name"], target.deployed_model_id) is not None:
            await to_thread(misbehaving.before, m["name"], target.deployed_model_id)
        headers = _raw_headers(m["name"], target)
        http_body = _as_http_body(req.body)
        if http_body is not None:
            data = await _forward_async(target, replica, http_body)
            return Response(200, _raw_answer(data), headers)
        return Response(200, await _forward_async(target, replica, req.body), headers)

    router.add(
        "POST",
        endpoint + ":predict",
        predict,
        name="predict",
        mutating=False,
        async_handler=predict_async,
    )
    router.add(
        "POST",
        endpoint + ":rawPredict",
        raw_predict,
        name="rawPredict",
        mutating=False,
        async_handler=raw_predict_async,
    )


def _header_value(text: str) -> str:
    """Text fit for a header value: printable ASCII kept, anything else percent-encoded."""
    return quote(text, safe=_HEADER_SAFE)


def _as_http_body(body: bytes) -> bytes | None:
    """The payload of a GAPIC RawPredictRequest ({"httpBody": {"contentType", "data"}}), else
    None."""
    if _HTTP_BODY_RE.match(body) is None:
        return None
    try:
        obj = json.loads(body)
        hb = obj.get("httpBody", obj.get("http_body"))
        return base64.b64decode(hb.get("data", ""))
    except (ValueError, AttributeError, TypeError):
        return None

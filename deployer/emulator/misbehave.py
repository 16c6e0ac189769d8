"""Make one deployed model misbehave on purpose, so tests can break a canary.

Owns `Misbehaviours` (endpoint id, deployed model id -> `Misbehaviour`: an error rate,
added latency, wrong outputs), what the predict path asks of it (`before`: wait, maybe
fail; `after`: maybe corrupt the answer), and the admin route:

    POST /_emulator/misbehave {"endpoint": ID or NAME, "deployed_model_id": ID,
                               "error_rate": 0..1, "latency_ms": >= 0, "wrong_outputs": bool}
    GET  /_emulator/misbehave -> {"misbehaviours": [...]}

All zero (or `"clear": true`) removes it. Errors answer 500 INTERNAL, as Vertex does when a
model's container fails; wrong outputs reverse each list of numbers in the predictions
(class scores change their argmax) and negate lone numbers. The choice of which requests
fail is seeded, so a test sees the same sequence every run.

Must not: change anything but the answers of the deployed model it names, or import the
core (the emulator never does).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from deployer.emulator.http import Request, Response, Router, ServiceError, json_response

ROUTE = "/_emulator/misbehave"
MAX_LATENCY_MS = 60_000.0  # a misbehaving model is slow, not hung


@dataclass(frozen=True)
class Misbehaviour:
    error_rate: float = 0.0  # share of its predictions that fail (500 INTERNAL)
    latency_ms: float = 0.0  # added before each of its answers
    wrong_outputs: bool = False  # its predictions come back corrupted

    @property
    def is_noop(self) -> bool:
        return not (self.error_rate or self.latency_ms or self.wrong_outputs)


class Misbehaviours:
    """The misbehaving deployed models of one emulator; thread-safe."""

    def __init__(self, seed: int = 0) -> None:
        self._by_model: dict[tuple[str, str], Misbehaviour] = {}
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def set(self, endpoint_id: str, deployed_model_id: str, m: Misbehaviour) -> None:
        with self._lock:
            if m.is_noop:
                self._by_model.pop((endpoint_id, deployed_model_id), None)
            else:
                self._by_model[(endpoint_id, deployed_model_id)] = m

    def get(self, endpoint_name: str, deployed_model_id: str) -> Misbehaviour | None:
        """`endpoint_name`: the endpoint's id or its resource name."""
        key = (endpoint_name.rsplit("/", 1)[-1], deployed_model_id)
        with self._lock:
            return self._by_model.get(key)

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"endpoint": e, "deployed_model_id": d, **asdict(m)}
                for (e, d), m in sorted(self._by_model.items())
            ]

    def before(self, endpoint_name: str, deployed_model_id: str) -> Misbehaviour | None:
        """Called by the predict path once it chose a deployed model: wait, maybe fail."""
        m = self.get(endpoint_name, deployed_model_id)
        if m is None:
            return None
        if m.latency_ms:
            time.sleep(m.latency_ms / 1000)  # a slow model, not a poll
        with self._lock:
            fails = self._random.random() < m.error_rate
        if fails:
            raise ServiceError(
                500,
                "INTERNAL",
                f"Deployed model {deployed_model_id} failed: misbehaving on purpose "
                "(/_emulator/misbehave)",
            )
        return m

    @staticmethod
    def after(m: Misbehaviour | None, answer: bytes) -> bytes:
        """The replica's JSON answer, corrupted when `m` asks for wrong outputs."""
        if m is None or not m.wrong_outputs:
            return answer
        try:
            doc = json.loads(answer)
        except ValueError:
            return answer
        if isinstance(doc, dict) and "predictions" in doc:
            doc["predictions"] = _corrupt(doc["predictions"])
        return json.dumps(doc).encode()


def _corrupt(value: Any) -> Any:
    if isinstance(value, list):
        if value and all(_is_number(v) for v in value):
            return list(reversed(value)) if len(value) > 1 else [-value[0]]
        return [_corrupt(v) for v in value]
    if isinstance(value, dict):
        return {k: _corrupt(v) for k, v in value.items()}
    if _is_number(value):
        return -value
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse(body: Any) -> tuple[str, str, Misbehaviour]:
    """The admin request's (endpoint id, deployed model id, misbehaviour); 400 otherwise."""
    if not isinstance(body, dict):
        raise ServiceError(400, "INVALID_ARGUMENT", "misbehave: the body must be a JSON object")
    allowed = {
        "endpoint",
        "deployed_model_id",
        "error_rate",
        "latency_ms",
        "wrong_outputs",
        "clear",
    }
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"misbehave: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})",
        )
    endpoint, deployed = body.get("endpoint"), body.get("deployed_model_id")
    for field, value in (("endpoint", endpoint), ("deployed_model_id", deployed)):
        if not isinstance(value, str) or not value or len(value) > 512:
            raise ServiceError(400, "INVALID_ARGUMENT", f"misbehave: {field} must be a string")
    assert isinstance(endpoint, str) and isinstance(deployed, str)
    rate = _number(body, "error_rate", 0.0, 1.0)
    latency = _number(body, "latency_ms", 0.0, MAX_LATENCY_MS)
    wrong = body.get("wrong_outputs", False)
    clear = body.get("clear", False)
    if not isinstance(wrong, bool) or not isinstance(clear, bool):
        raise ServiceError(
            400, "INVALID_ARGUMENT", "misbehave: wrong_outputs and clear are true or false"
        )
    m = Misbehaviour() if clear else Misbehaviour(rate, latency, wrong)
    return endpoint.rsplit("/", 1)[-1], deployed, m


def _number(body: dict[str, Any], field: str, low: float, high: float) -> float:
    value = body.get(field, 0)
    if not _is_number(value) or not math.isfinite(value) or not low <= value <= high:
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"misbehave: {field} must be a number in {low:g}..{high:g}"
        )
    return float(value)


def register(router: Router, misbehaviours: Misbehaviours) -> None:
    def configure(req: Request, _m: Any) -> Response:
        endpoint, deployed, m = parse(req.json())
        misbehaviours.set(endpoint, deployed, m)
        return json_response({"misbehaviours": misbehaviours.listing()})

    def show(req: Request, _m: Any) -> Response:
        return json_response({"misbehaviours": misbehaviours.listing()})

    router.add("POST", ROUTE, configure, name="_emulator.misbehave", mutating=False)
    router.add("GET", ROUTE, show, name="_emulator.misbehaviours", mutating=False)

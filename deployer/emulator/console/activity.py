"""Recent API calls of one emulator, in memory: the console's request log and its rates.

Owns `Activity`: a bounded ring of the last `capacity` API calls (`Call`: when, method, path,
API method name, service, status, duration, fault, and for online predictions the endpoint
and the deployed model that answered), filtered for the console's request-log view, and
`endpoint_stats`, each deployed model's request rate, error rate and latency over a rolling
window. The transport (emulator/server.py) records every API call here as it writes the
--request-log file; admin routes are not API calls and are not recorded.

Which deployed model answered is read from what the predict path already says: the
`deployedModelId` it splices into a :predict answer, the `X-Vertex-AI-Deployed-Model-Id`
header of a :rawPredict answer, or "Deployed model ID" in the message of a failure that
happened after a deployed model was chosen. A failure before that (no replica ready, a bad
payload) counts for the endpoint only.

Must not: touch disk or sockets, block a request beyond a deque append, or import the core.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CAPACITY = 5000  # calls kept; the oldest fall off
WINDOW_S = 60.0  # rates and latencies are over this many recent seconds

_PREDICT_APIS = frozenset({"predict", "rawPredict"})
# locations/L/endpoints/ID in a predict path (the project may be an id or a number).
_ENDPOINT_RE = re.compile(r"/locations/([^/:]+)/endpoints/([^/:]+):")
_ANSWERED_BY_RE = re.compile(rb'"deployedModelId":\s*"([^"\\]{1,64})"')
_FAILED_IN_RE = re.compile(rb"Deployed model ([0-9A-Za-z_-]{1,64}) ")
_TAIL = 512  # the predict path splices deployedModelId at the end of its answer
_MAX_ERROR_BODY = 8192  # error bodies searched for the deployed model they name


@dataclass(frozen=True)
class Call:
    """One API call as the console shows it."""

    at: float  # epoch seconds the call started
    method: str  # HTTP verb
    path: str  # decoded path, without the query string
    api: str  # API method name ("predict", "storage.objects.insert", "unknown")
    service: str  # "vertex" | "storage"
    status: int  # HTTP status answered (or that would have been, for a dropped reply)
    duration_ms: float
    fault: str | None  # "injected" | "dropped" | None
    endpoint: str | None  # "LOCATION/ENDPOINT_ID" for predict calls
    deployed_model_id: str | None  # the deployed model that answered (or failed), if known


@dataclass(frozen=True)
class Stats:
    """One deployed model's (or one endpoint's unattributed) traffic over the window."""

    requests: int
    errors: int  # status >= 400
    rate_per_s: float
    error_rate: float  # errors / requests (0 with no requests)
    p50_ms: float | None
    p95_ms: float | None


def service_of(api: str) -> str:
    return "storage" if api.startswith("storage.") else "vertex"


def endpoint_key(name: str) -> str:
    """The key `Call.endpoint` uses for an endpoint name (".../locations/L/endpoints/ID")."""
    parts = name.split("/")
    return f"{parts[3]}/{parts[5]}" if len(parts) >= 6 else name


def _attribution(
    api: str, path: str, status: int, body: bytes | None, headers: Mapping[str, str]
) -> tuple[str | None, str | None]:
    if api not in _PREDICT_APIS:
        return None, None
    match = _ENDPOINT_RE.search(path)
    endpoint = f"{match[1]}/{match[2]}" if match else None
    deployed = headers.get("X-Vertex-AI-Deployed-Model-Id")
    if deployed is None and body is not None:
        # A success ends with the spliced ids; an error body is small and names the model
        # in its message.
        found = (
            _ANSWERED_BY_RE.search(body[-_TAIL:])
            if status < 400
            else _FAILED_IN_RE.search(body[:_MAX_ERROR_BODY])
        )
        deployed = found[1].decode() if found else None
    return endpoint, deployed


class Activity:
    """The last calls of one emulator; thread-safe (appends are atomic, reads copy)."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._calls: deque[Call] = deque(maxlen=capacity)
        self._lock = threading.Lock()  # readers copy under it; a deque append needs none

    def record(
        self,
        *,
        method: str,
        path: str,
        api: str,
        status: int,
        started: float,
        fault: str | None,
        body: bytes | None,
        headers: Mapping[str, str],
    ) -> None:
        endpoint, deployed = _attribution(api, path, status, body, headers)
        self._calls.append(
            Call(
                at=started,
                method=method,
                path=path,
                api=api,
                service=service_of(api),
                status=status,
                duration_ms=round((time.time() - started) * 1000.0, 3),
                fault=fault,
                endpoint=endpoint,
                deployed_model_id=deployed,
            )
        )

    def calls(self) -> list[Call]:
        """Every call kept, oldest first."""
        with self._lock:
            return list(self._calls)

    def recent(
        self,
        *,
        method: str = "",
        service: str = "",
        path: str = "",
        status: str = "",
        limit: int = 200,
    ) -> list[Call]:
        """Newest first, filtered: `method` exact (any case), `service` "vertex"/"storage",
        `path` a substring of the path or the API method name, `status` "2xx".."5xx" or a
        code; empty means any."""
        method = method.upper()
        out: list[Call] = []
        for call in reversed(self.calls()):
            if method and call.method != method:
                continue
            if service and call.service != service:
                continue
            if path and path not in call.path and path not in call.api:
                continue
            if status and not _status_matches(call.status, status):
                continue
            out.append(call)
            if len(out) >= limit:
                break
        return out

    def endpoint_stats(
        self, endpoint_name: str, *, window_s: float = WINDOW_S, now: float | None = None
    ) -> dict[str | None, Stats]:
        """Deployed model id (None: failed before one was chosen) -> its traffic in the window."""
        key = endpoint_key(endpoint_name)
        since = (time.time() if now is None else now) - window_s
        groups: dict[str | None, list[Call]] = {}
        for call in self.calls():
            if call.endpoint == key and call.at >= since:
                groups.setdefault(call.deployed_model_id, []).append(call)
        return {dm: summarize(calls, window_s) for dm, calls in groups.items()}


def _status_matches(code: int, wanted: str) -> bool:
    wanted = wanted.strip().lower()
    if len(wanted) == 3 and wanted.endswith("xx") and wanted[0].isdigit():
        return code // 100 == int(wanted[0])
    return wanted.isdigit() and code == int(wanted)


def summarize(calls: Iterable[Call], window_s: float) -> Stats:
    items = list(calls)
    errors = sum(1 for c in items if c.status >= 400)
    latencies = sorted(c.duration_ms for c in items)
    return Stats(
        requests=len(items),
        errors=errors,
        rate_per_s=len(items) / window_s if window_s > 0 else 0.0,
        error_rate=errors / len(items) if items else 0.0,
        p50_ms=_percentile(latencies, 0.50),
        p95_ms=_percentile(latencies, 0.95),
    )


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

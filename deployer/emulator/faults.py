"""Fault injection, the request log and the admin route of the local emulator.

Owns: `FaultController` (random fault rate, dropped responses, operation delay,
scripted faults such as "the next 2 deployModel calls fail with 503"), the
`RequestLog` (one JSON line per API call: target with its query string, and with
`bodies` the request and response bodies, credentials redacted), and the `/_emulator/...` admin
routes (health, faults). Faults are decided BEFORE a handler runs, so an
injected 503/429 never has an effect; a dropped response is decided after a
mutating call took effect, and the server then closes the connection.

Must not: know any API's semantics (it keys on the route's method name only),
or import TensorFlow / deployer.serving.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from deployer.emulator.http import (
    Request,
    Response,
    Router,
    ServiceError,
    error_response,
    json_response,
)
from deployer.emulator.jsonlimits import request_json
from deployer.emulator.redact import install_log_redaction, redact_json, redact_text

if TYPE_CHECKING:
    from deployer.emulator.context import EmulatorContext

_FAULT_STATUSES = (503, 429)


@dataclass
class ScriptedFault:
    """One scripted rule: the next `count` calls to `method` fail (or lose their response)."""

    method: str  # API method name as registered on the router, e.g. "deployModel"; "*" = any
    count: int  # how many more calls it applies to
    http_status: int = 503  # status answered (ignored when drop=True)
    drop: bool = False  # let the call take effect, then close the connection without a response
    message: str = "Injected fault (scripted)"

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "count": self.count,
            "http_status": self.http_status,
            "drop": self.drop,
            "message": self.message,
        }


def _rate(value: Any, name: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError) as exc:
        raise ServiceError(400, "INVALID_ARGUMENT", f"{name} must be a number in [0, 1]") from exc
    if not 0.0 <= rate <= 1.0:
        raise ServiceError(400, "INVALID_ARGUMENT", f"{name} must be in [0, 1], got {rate}")
    return rate


def _seed(value: Any) -> int | None:
    """A seed is an integer (or null, for an unseeded generator); anything else is 400."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"seed must be an integer or null, not {value!r}"
        )
    return value


class FaultController:
    """Decides, per API call, whether to fail it before any effect or drop its response."""

    def __init__(
        self,
        *,
        fault_rate: float = 0.0,
        drop_rate: float = 0.0,
        op_delay: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self.fault_rate = fault_rate  # probability an API call first fails with 503 or 429
        self.drop_rate = drop_rate  # probability a mutating call's response is dropped
        self.op_delay = op_delay  # seconds a long-running operation stays done:false
        self.seed = seed
        self._rng = random.Random(seed)
        self._script: list[ScriptedFault] = []
        self.injected = 0  # counts, reported by GET /_emulator/faults
        self.dropped = 0

    def configure(self, body: dict[str, Any]) -> None:
        """Apply an admin update: any of inject_faults/fault_rate, drop_responses/drop_rate,
        op_delay, seed, script (replaces), append_script (adds), clear_script."""
        with self._lock:
            for key in ("inject_faults", "fault_rate"):
                if key in body:
                    self.fault_rate = _rate(body[key], key)
            for key in ("drop_responses", "drop_rate"):
                if key in body:
                    self.drop_rate = _rate(body[key], key)
            if "op_delay" in body:
                try:
                    delay = float(body["op_delay"])
                except (TypeError, ValueError) as exc:
                    raise ServiceError(400, "INVALID_ARGUMENT", "op_delay must be seconds") from exc
                if not math.isfinite(delay):
                    raise ServiceError(400, "INVALID_ARGUMENT", "op_delay must be a finite number")
                self.op_delay = max(0.0, delay)
            if "seed" in body:
                self.seed = _seed(body["seed"])
                self._rng = random.Random(self.seed)
            if body.get("clear_script"):
                self._script = []
            if "script" in body:
                self._script = self._parse_script(body["script"])
            if "append_script" in body:
                self._script.extend(self._parse_script(body["append_script"]))

    @staticmethod
    def _parse_script(items: Any) -> list[ScriptedFault]:
        if not isinstance(items, list):
            raise ServiceError(400, "INVALID_ARGUMENT", "script must be a list of rules")
        rules = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("method"), str):
                raise ServiceError(
                    400, "INVALID_ARGUMENT", 'each script rule needs "method" (API method name)'
                )
            try:
                rule = ScriptedFault(
                    method=item["method"],
                    count=int(item.get("count", 1)),
                    http_status=int(item.get("http_status", 503)),
                    drop=bool(item.get("drop", False)),
                    message=str(item.get("message", "Injected fault (scripted)")),
                )
            except (TypeError, ValueError) as exc:
                raise ServiceError(
                    400, "INVALID_ARGUMENT", f"bad script rule {item!r}: {exc}"
                ) from exc
            if not rule.drop and not 400 <= rule.http_status <= 599:
                raise ServiceError(400, "INVALID_ARGUMENT", "http_status must be a 4xx or 5xx code")
            rules.append(rule)
        return rules

    def settings(self) -> dict[str, Any]:
        with self._lock:
            return {
                "inject_faults": self.fault_rate,
                "drop_responses": self.drop_rate,
                "op_delay": self.op_delay,
                "seed": self.seed,
                "script": [r.to_json() for r in self._script if r.count > 0],
                "injected": self.injected,
                "dropped": self.dropped,
            }

    def _take_rule(self, method: str, *, drop: bool) -> ScriptedFault | None:
        for rule in self._script:
            if rule.count > 0 and rule.drop == drop and rule.method in (method, "*"):
                rule.count -= 1
                return rule
        return None

    def before_call(self, method: str) -> Response | None:
        """A fault response to send instead of running the call, or None to run it."""
        with self._lock:
            rule = self._take_rule(method, drop=False)
            if rule is not None:
                self.injected += 1
                return error_response(
                    rule.http_status, _status_name(rule.http_status), rule.message
                )
            if self.fault_rate > 0 and self._rng.random() < self.fault_rate:
                self.injected += 1
                code = self._rng.choice(_FAULT_STATUSES)
                return error_response(
                    code, _status_name(code), f"Injected fault ({code}); retry the call"
                )
        return None

    def drop_after(self, method: str, *, mutating: bool, status: int) -> bool:
        """True if this call's response must be dropped (it already took effect)."""
        if not mutating or status >= 400:
            return False
        with self._lock:
            if self._take_rule(method, drop=True) is not None:
                self.dropped += 1
                return True
            if self.drop_rate > 0 and self._rng.random() < self.drop_rate:
                self.dropped += 1
                return True
        return False


def _status_name(code: int) -> str:
    from deployer.emulator.http import canonical_status

    return canonical_status(code)


# Bodies larger than this are logged as their size only (the log is for reading, not replay).
MAX_LOGGED_BODY = 256 * 1024


def _logged_body(body: bytes | None, content_type: str) -> dict[str, Any]:
    """A body as the request log keeps it: decoded JSON (credential fields redacted), else
    text (redacted), else only its size; nothing for an empty body."""
    if not body:
        return {}
    if len(body) > MAX_LOGGED_BODY:
        return {"omitted": f"{len(body)} bytes, over {MAX_LOGGED_BODY}"}
    if "json" in content_type or body[:1] in (b"{", b"["):
        try:
            return {"json": redact_json(json.loads(body))}
        except (ValueError, UnicodeDecodeError, RecursionError):
            pass
    try:
        return {"text": redact_text(body.decode("utf-8"))}
    except UnicodeDecodeError:
        return {"omitted": f"{len(body)} bytes of binary data"}


class RequestLog:
    """Appends one JSON line per API call; thread-safe; a no-op without a path.

    Each line has the call's method, path (decoded), target (raw path and query string),
    API method name, status, duration and body size; with `bodies=True` also the request
    and response bodies (`request_body` / `response_body`: {"json": ...} or {"text": ...},
    or {"omitted": why}). Credentials are redacted from all of it.
    """

    def __init__(self, path: Path | None, *, bodies: bool = False) -> None:
        self.path = path
        self.bodies = bodies  # also record request and response bodies (--request-log-bodies)
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Line-buffered appends: tests read the file while the server runs.
            self._file = open(path, "ab", buffering=0)

    def record(
        self,
        *,
        method: str,
        path: str,
        name: str,
        status: int,
        started: float,
        mutating: bool,
        fault: str | None = None,
        request_bytes: int | None = None,
        target: str | None = None,
        request_body: bytes | None = None,
        request_type: str = "",
        response_body: bytes | None = None,
        response_type: str = "",
    ) -> None:
        """Write one line. `target` is the raw path with the query string; the bodies
        (bytes, with their content types) are kept only when the log records bodies."""
        if self._file is None:
            return
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started))
            + f".{int(started % 1 * 1e6):06d}Z",
            "method": method,
            "path": redact_text(path),  # a target with its query string may hold a credential
            "api": name,
            "status": status,
            "duration_ms": round((time.time() - started) * 1000.0, 3),
            "mutating": mutating,
            "request_bytes": request_bytes,  # body size (declared size for streamed uploads)
        }
        if target is not None:
            entry["target"] = redact_text(target)
        if fault:
            entry["fault"] = fault  # "injected" or "dropped": the call was not answered normally
        if self.bodies:
            if logged := _logged_body(request_body, request_type.lower()):
                entry["request_body"] = logged
            if logged := _logged_body(response_body, response_type.lower()):
                entry["response_body"] = logged
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        with self._lock:
            self._file.write(line)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def register_admin(router: Router, ctx: EmulatorContext) -> None:
    """Admin routes under /_emulator/: never logged as API calls, never faulted.

    Also turns on credential redaction in the emulator's logs: every server registers these
    routes once, after logging is configured (server.run's basicConfig), so the filter
    reaches the handlers too.
    """
    install_log_redaction()

    def health(req: Request, m: Any) -> Response:
        return json_response(
            {
                "status": "ok",
                "pid": ctx.pid,
                "url": ctx.base_url,
                "data_dir": str(ctx.data_dir),
                "apis": ctx.apis,
                "uptime_s": round(time.time() - ctx.started_at, 3),
            }
        )

    def get_faults(req: Request, m: Any) -> Response:
        return json_response(ctx.faults.settings())

    def set_faults(req: Request, m: Any) -> Response:
        body = request_json(req)
        if not isinstance(body, dict):
            raise ServiceError(400, "INVALID_ARGUMENT", "body must be a JSON object")
        ctx.faults.configure(body)
        return json_response(ctx.faults.settings())

    router.add("GET", r"/_emulator/health", health, name="_emulator.health", mutating=False)
    router.add("GET", r"/_emulator/faults", get_faults, name="_emulator.faults.get", mutating=False)
    router.add(
        "POST", r"/_emulator/faults", set_faults, name="_emulator.faults.set", mutating=False
    )
    router.add("PUT", r"/_emulator/faults", set_faults, name="_emulator.faults.set", mutating=False)

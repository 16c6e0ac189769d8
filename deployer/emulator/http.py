"""HTTP primitives of the local emulator: requests, responses, Google JSON errors, the router.

Owns the small, transport-free vocabulary every API surface (GCS, Vertex AI) is
written in: a parsed `Request`, a `Response` (bytes or a streamed iterable), the
`ServiceError` a handler raises to answer with Google's error body, and the
`Router` mapping (method, path regex) to a handler plus the API method name the
request log and fault injection key on.

Must not: touch sockets (that is `server.py`), know any API's semantics, or
import TensorFlow / deployer.serving.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from deployer.wire.jsonlimits import MAX_DEPTH, check_depth

log = logging.getLogger("deployer.emulator")

# HTTP status -> canonical Google status string, for errors raised without one.
_CANONICAL = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    411: "LENGTH_REQUIRED",
    412: "FAILED_PRECONDITION",
    413: "PAYLOAD_TOO_LARGE",
    416: "OUT_OF_RANGE",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# GCS's per-error "reason" strings (errors[].reason), which its clients display.
_GCS_REASON = {
    400: "invalid",
    401: "required",
    403: "forbidden",
    404: "notFound",
    409: "conflict",
    412: "conditionNotMet",
    416: "requestedRangeNotSatisfiable",
    429: "rateLimitExceeded",
    500: "backendError",
    503: "backendError",
}


# Bounds on request bodies a handler reads whole (bytes); streamed media has none. The
# transport picks one per route (deployer.emulator.admission.body_limit) and answers 413 beyond.
PREDICT_MAX_BODY = 1_572_864  # Vertex's online prediction request limit: 1.5 MB
METADATA_MAX_BODY = 1 << 20  # Cloud Storage JSON (custom metadata alone is capped at 8 KiB)
CONTROL_MAX_BODY = 4 << 20  # every other JSON route (Vertex control plane, admin)
MULTIPART_MAX_BODY = 64 << 20  # a multipart upload, held whole (clients switch to resumable
# uploads, which stream, above 8 MiB)


def canonical_status(http_status: int) -> str:
    """The google.rpc status name conventionally paired with an HTTP status."""
    return _CANONICAL.get(http_status, "UNKNOWN")


class ServiceError(Exception):
    """Raised by a handler to answer with Google's JSON error body and this status."""

    def __init__(self, http_status: int, status: str, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status  # e.g. 404
        self.status = status  # google.rpc code name, e.g. "NOT_FOUND"
        self.message = message  # human-readable, shown by the clients

    def to_response(self) -> Response:
        return error_response(self.http_status, self.status, self.message)


@dataclass
class Request:
    """One parsed HTTP request, as handlers see it."""

    method: str  # upper-case verb
    path: str  # percent-decoded path, without the query string
    raw_path: str  # path exactly as received (still percent-encoded), without the query
    query: dict[str, list[str]]  # parsed query string (blank values kept)
    headers: dict[str, str]  # header names lower-cased
    body: bytes = b""  # the whole body; empty for streaming routes (read `stream` instead)
    # Unread body stream, set only for routes registered with streaming=True;
    # reading past `content_length` is prevented by the server.
    stream: BinaryIO | None = None
    content_length: int | None = None  # declared body size, None if chunked/absent
    max_body: int = CONTROL_MAX_BODY  # most bytes `read_body` takes (the route's bound)
    # A path prefix the transport removed before routing (the containers' reader door,
    # deployer.emulator.access): links a handler returns to this client must keep it.
    base_path: str = ""

    @classmethod
    def from_target(
        cls, method: str, target: str, headers: dict[str, str], body: bytes = b""
    ) -> Request:
        """Build a request from the request-line target ("/a%2Fb?x=1")."""
        parts = urlsplit(target)
        raw_path = parts.path or "/"
        return cls(
            method=method.upper(),
            path=unquote(raw_path),
            raw_path=raw_path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in headers.items()},
            body=body,
        )

    def json(self) -> Any:
        """The body parsed as JSON (empty body -> {}); 400 INVALID_ARGUMENT otherwise.

        Nesting is bounded by the one `MAX_DEPTH` every JSON body meets (deployer.wire.
        jsonlimits, which `jsonlimits.request_json` applies too), not orjson's own 1,024:
        a body one parser takes, the other takes too. orjson refuses lone surrogates itself.
        """
        if not self.body.strip():
            return {}
        try:
            check_depth(self.body, MAX_DEPTH)
            return orjson.loads(self.body)
        except ValueError as exc:  # JsonRejected, orjson.JSONDecodeError, UnicodeDecodeError
            raise ServiceError(
                400, "INVALID_ARGUMENT", f"Invalid JSON payload received: {exc}"
            ) from exc

    def q(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter, or `default`."""
        values = self.query.get(name)
        return values[0] if values else default

    def read_body(self, limit: int | None = None) -> bytes:
        """The whole body, reading the stream of a streaming route if needed; 413 beyond
        `limit` bytes (default: the route's `max_body`), found before reading when declared."""
        if self.stream is not None:
            bound = self.max_body if limit is None else limit
            if self.content_length is not None and self.content_length > bound:
                raise too_large(bound)
            parts: list[bytes] = []
            total = 0
            while chunk := self.stream.read(1 << 20):
                total += len(chunk)
                if total > bound:
                    raise too_large(bound)
                parts.append(chunk)
            self.body = parts[0] if len(parts) == 1 else b"".join(parts)
            self.stream = None
        return self.body


@dataclass
class Response:
    """What a handler returns; an iterable body is streamed (chunked unless Content-Length)."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Called once the body has been written (or abandoned): close files, etc.
    on_close: Callable[[], None] | None = None


def json_response(obj: Any, status: int = 200) -> Response:
    """A JSON response with the content type the Google clients expect (compact UTF-8)."""
    body = orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    return Response(status, body, {"Content-Type": "application/json; charset=UTF-8"})


def too_large(limit: int) -> ServiceError:
    """413 with Google's body, for a request body over `limit` bytes."""
    return ServiceError(
        413, "PAYLOAD_TOO_LARGE", f"Request body too large: this method accepts {limit} bytes"
    )


def error_response(http_status: int, status: str, message: str) -> Response:
    """Google's JSON error body: {"error": {"code", "message", "status", "errors": [...]}}."""
    reason = _GCS_REASON.get(http_status, status.lower() or "error")
    payload = {
        "error": {
            "code": http_status,
            "message": message,
            "status": status,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }
    }
    return json_response(payload, http_status)


Handler = Callable[[Request, "re.Match[str]"], Response]
# The event-loop twin of a route's handler (online prediction): it must never block.
AsyncHandler = Callable[[Request, "re.Match[str]"], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    """One registered route."""

    method: str  # upper-case verb, or "*" for any
    pattern: re.Pattern[str]  # matched with fullmatch
    handler: Handler
    # API method name: request log, scripted faults ("deployModel", "storage.objects.insert")
    name: str
    mutating: bool  # changes state: eligible for --drop-responses, counted as mutating in the log
    raw: bool  # match only the raw (still encoded) path: needed where names hold encoded '/'
    streaming: bool  # the handler reads request.stream itself (large uploads)
    async_handler: AsyncHandler | None = None  # served on the event loop when set


class Router:
    """Maps (method, path regex) to handlers; first registered match wins."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        *,
        name: str,
        mutating: bool,
        raw: bool = False,
        streaming: bool = False,
        async_handler: AsyncHandler | None = None,
    ) -> None:
        """Register a route. `pattern` is fullmatched against request.path, then raw_path
        (or raw_path only with raw=True)."""
        self._routes.append(
            Route(
                method.upper(),
                re.compile(pattern),
                handler,
                name,
                mutating,
                raw,
                streaming,
                async_handler,
            )
        )

    def resolve(self, request: Request) -> tuple[Route, re.Match[str]] | None:
        """The route and match for a request; None if no pattern matches any method.

        Raises ServiceError(405) when a path matches but not with this method.
        """
        path_matched = False
        for route in self._routes:
            match = None
            if not route.raw:
                match = route.pattern.fullmatch(request.path)
            if match is None:
                match = route.pattern.fullmatch(request.raw_path)
            if match is None:
                continue
            if route.method in ("*", request.method):
                return route, match
            path_matched = True
        if path_matched:
            raise ServiceError(
                405, "METHOD_NOT_ALLOWED", f"Method {request.method} not allowed on {request.path}"
            )
        return None

    def call(self, route: Route, match: re.Match[str], request: Request) -> Response:
        """Run a resolved route's handler, mapping exceptions to Google error bodies."""
        try:
            return route.handler(request, match)
        except ServiceError as exc:
            return exc.to_response()
        except Exception:
            log.exception(
                "handler %s failed on %s %s", route.name, request.method, request.raw_path
            )
            return error_response(
                500, "INTERNAL", f"Internal error in {route.name}; see the emulator log."
            )

    async def call_async(self, route: Route, match: re.Match[str], request: Request) -> Response:
        """`call` for a route's async handler."""
        assert route.async_handler is not None
        try:
            return await route.async_handler(request, match)
        except ServiceError as exc:
            return exc.to_response()
        except Exception:
            log.exception(
                "handler %s failed on %s %s", route.name, request.method, request.raw_path
            )
            return error_response(
                500, "INTERNAL", f"Internal error in {route.name}; see the emulator log."
            )

    def dispatch(self, request: Request) -> Response:
        """Resolve and call; unknown routes answer 404 with a Google JSON error."""
        try:
            resolved = self.resolve(request)
        except ServiceError as exc:
            return exc.to_response()
        if resolved is None:
            return error_response(404, "NOT_FOUND", f"No such API: {request.method} {request.path}")
        route, match = resolved
        return self.call(route, match, request)

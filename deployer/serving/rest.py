"""TF Serving's REST API, on the shared HTTP stack (`deployer.httpserve`).

Owns: routes and wire format of `/v1/models/NAME[/versions/N][:predict|/metadata|/stats]` and
`/healthz`, error bodies `{"error": "..."}` with TF Serving's HTTP statuses, and draining on
stop (stop accepting, finish in-flight requests, then close; health answers 503 meanwhile).
Must not: decode tensors or touch TensorFlow (the `ModelServer` does the work).

`/v1/models/NAME/stats` is our extension (not in TF Serving): per-version request counts,
warmup report and batch-size histograms, so tests can observe batching.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson

from deployer.httpserve import HttpRequest, HttpResponse, HttpServer, IncompleteBody
from deployer.serving import arrays
from deployer.serving.server import ModelServer, ServingError

log = logging.getLogger("deployer.serving.rest")

_ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>-?\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<action>/metadata|/stats|:predictArrays|:predict|:classify|:regress)?/?$"
)
_HEALTH = ("/healthz", "/readyz", "/health")
_JSON = {"Content-Type": "application/json"}
# The emulator keeps pooled connections to its replicas: do not close them while idle.
_KEEP_ALIVE_S = 3600


def _json(payload: Any) -> bytes:
    # Compact, like json.dumps(separators=(",", ":")); non-str keys (histograms) as strings.
    return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)


def _error_body(status: int, message: str) -> tuple[str, bytes]:
    return _JSON["Content-Type"], _json({"error": message})


class _Api:
    """The request handler (runs on the HTTP server's worker threads; the batched predict
    path on its event loop)."""

    def __init__(self, model_server: ModelServer) -> None:
        self.model_server = model_server
        self.closing = False

    def __call__(self, request: HttpRequest) -> HttpResponse:
        close = self.closing
        try:
            if request.method in ("GET", "HEAD"):
                status, payload = self._get(request)
            elif request.method == "POST":
                answer = self._post(request)
                if isinstance(answer, HttpResponse):  # :predictArrays answers .npz, not JSON
                    return answer
                status, payload = 200, answer
            else:
                raise ServingError(
                    "METHOD_NOT_ALLOWED", 405, f"{request.method} is not supported here"
                )
        except ServingError as exc:
            status, payload = exc.http_status, {"error": exc.message}
            close = close or exc.http_status == 411
        except IncompleteBody as exc:
            status, payload, close = 400, {"error": f"request body ended early: {exc}"}, True
        except Exception as exc:  # a bug must cost one 500, not the connection
            log.exception("internal error on %s %s", request.method, request.raw_path)
            status, payload = 500, {"error": f"{type(exc).__name__}: {exc}"}
        return HttpResponse(status, _json(payload), _JSON, close=close)

    async def handle_async(self, request: HttpRequest) -> HttpResponse | None:
        """The predict hot path on the event loop when batching is on (the batcher wakes the
        loop once per batch); None sends every other request to `__call__` on a thread."""
        if (
            request.method != "POST"
            or not request.raw_path.endswith(":predict")
            or request.content_length is None
            or not self.model_server.batching
        ):
            return None
        close = self.closing
        try:
            _, version, action = self._route(request.raw_path)
            if action != ":predict":
                return None
            status, payload = (
                200,
                await self.model_server.predict_json_async(request.body.read(), version),
            )
        except ServingError as exc:
            status, payload = exc.http_status, {"error": exc.message}
        except Exception as exc:  # a bug must cost one 500, not the connection
            log.exception("internal error on %s %s", request.method, request.raw_path)
            status, payload = 500, {"error": f"{type(exc).__name__}: {exc}"}
        return HttpResponse(status, _json(payload), _JSON, close=close)

    def _route(self, path: str) -> tuple[str, int | None, str]:
        m = _ROUTE.match(path)
        if m is None:
            raise ServingError(
                "NOT_FOUND",
                404,
                f"no route for {path}; expected /v1/models/NAME[/versions/N][:predict|/metadata]",
            )
        self.model_server.check_name(m["name"])
        if m["label"]:
            raise ServingError(
                "NOT_FOUND",
                404,
                "version labels are not supported; use /versions/N or the latest version",
            )
        version = int(m["version"]) if m["version"] is not None else None
        return m["name"], version, m["action"] or ""

    def _get(self, request: HttpRequest) -> tuple[int, Any]:
        ms = self.model_server
        if request.raw_path in _HEALTH:
            ready = ms.manager.ready and not self.closing
            return (200 if ready else 503), {"status": "ok" if ready else "loading"}
        name, version, action = self._route(request.raw_path)
        if action == "":
            statuses = ms.manager.statuses(version)
            if not statuses:
                what = (
                    f"version {version} of model {name}"
                    if version
                    else f"any versions of model {name}"
                )
                raise ServingError("NOT_FOUND", 404, f"Could not find {what}")
            return 200, {"model_version_status": statuses}
        if action == "/metadata":
            from google.protobuf import json_format

            served, sig_map = ms.metadata(version)
            return 200, {
                "model_spec": {"name": name, "signature_name": "", "version": str(served)},
                "metadata": {"signature_def": _message_to_dict(json_format, sig_map)},
            }
        if action == "/stats":
            return 200, ms.manager.stats()
        raise ServingError("METHOD_NOT_ALLOWED", 405, f"use POST for {action}")

    def _post(self, request: HttpRequest) -> Any:
        if request.content_length is None:
            raise ServingError("INVALID_ARGUMENT", 411, "a Content-Length header is required")
        body = request.body.read()
        _, version, action = self._route(request.raw_path)
        if action == arrays.ACTION:
            data = arrays.predict_npy(self.model_server, body, version)
            return HttpResponse(
                200, data, {"Content-Type": arrays.CONTENT_TYPE}, close=self.closing
            )
        if action != ":predict":
            raise ServingError(
                "UNIMPLEMENTED",
                501 if action else 405,
                f"{action or 'POST'} is not supported here; use :predict",
            )
        return self.model_server.predict_json(body, version)


def _message_to_dict(json_format: Any, message: Any) -> dict[str, Any]:
    # TF Serving prints proto field names and default values (e.g. "unknown_rank": false).
    out: dict[str, Any]
    try:
        out = json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    except TypeError:  # protobuf < 5 spells it differently
        out = json_format.MessageToDict(
            message, preserving_proto_field_name=True, including_default_value_fields=True
        )
    return out


class RestServer:
    """The REST front end, bound at construction (OSError if it cannot), served on a thread."""

    def __init__(self, model_server: ModelServer, host: str, port: int) -> None:
        self._api = _Api(model_server)
        self._http = HttpServer(
            self._api,
            host=host,
            port=port,
            error_body=_error_body,
            name="rest",
            keep_alive_s=_KEEP_ALIVE_S,
            async_handler=self._api.handle_async,
        )

    @property
    def port(self) -> int:
        return self._http.port

    def start(self) -> None:
        self._http.start()

    def stop(self, drain_timeout: float) -> None:
        """Stop accepting, let in-flight requests finish (bounded), then close the socket."""
        self._api.closing = True
        self._http.stop(drain_timeout)

"""TF Serving's REST API over HTTP/1.1 keep-alive, on the standard library's threading server.

Owns: routes and wire format of `/v1/models/NAME[/versions/N][:predict|/metadata|/stats]` and
`/healthz`, error bodies `{"error": "..."}` with TF Serving's HTTP statuses, Nagle off, and
draining on stop (stop accepting, finish in-flight requests, then close).
Must not: decode tensors or touch TensorFlow (the `ModelServer` does the work).

`/v1/models/NAME/stats` is our extension (not in TF Serving): per-version request counts,
warmup report and batch-size histograms, so tests can observe batching.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from deployer.serving.server import ModelServer, ServingError

log = logging.getLogger("deployer.serving.rest")

_ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>-?\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<action>/metadata|/stats|:predict|:classify|:regress)?/?$"
)
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # many clients connecting at once must not see resets
    model_server: ModelServer
    closing: bool = False
    in_flight: int = 0
    lock: threading.Lock

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-request is routine, not a traceback on stderr.
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("client %s went away: %s", client_address, exc)
            return
        log.exception("unexpected error serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one TCP connection per client
    disable_nagle_algorithm = True  # else small responses wait ~40 ms for delayed ACKs
    server_version = "deployer-serving"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        closing = self.server.closing or self.close_connection
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            + ("Connection: close\r\n" if closing else "")
            + "\r\n"
        )
        if closing:
            self.close_connection = True
        self.wfile.write(head.encode("latin-1") + body)  # one write: headers and body together

    def _error(self, exc: ServingError) -> None:
        self._send(exc.http_status, {"error": exc.message})

    # A request counts as in flight from its request line to its response, so a drain waits
    # for it even if SIGTERM lands while its body is still arriving; idle keep-alive
    # connections (waiting for a request line) do not hold the drain up.
    _counted = False

    def parse_request(self) -> bool:
        with self.server.lock:
            self.server.in_flight += 1
        self._counted = True
        return super().parse_request()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            if self._counted:
                self._counted = False
                with self.server.lock:
                    self.server.in_flight -= 1

    def do_GET(self) -> None:
        self._dispatch(self._get)

    def do_POST(self) -> None:
        self._dispatch(self._post)

    def _dispatch(self, handler: Any) -> None:
        try:
            handler()
        except ServingError as exc:
            self._error(exc)
        except (ConnectionError, TimeoutError):
            raise  # the client is gone: nothing to answer
        except Exception as exc:  # a bug must cost one 500, not the connection
            log.exception("internal error on %s %s", self.command, self.path)
            self._error(ServingError("INTERNAL", 500, f"{type(exc).__name__}: {exc}"))

    def _route(self) -> tuple[str, int | None, str]:
        path = self.path.split("?", 1)[0]
        m = _ROUTE.match(path)
        if m is None:
            raise ServingError(
                "NOT_FOUND",
                404,
                f"no route for {path}; expected /v1/models/NAME[/versions/N][:predict|/metadata]",
            )
        self.server.model_server.check_name(m["name"])
        if m["label"]:
            raise ServingError(
                "NOT_FOUND",
                404,
                "version labels are not supported; use /versions/N or the latest version",
            )
        version = int(m["version"]) if m["version"] is not None else None
        return m["name"], version, m["action"] or ""

    def _get(self) -> None:
        ms = self.server.model_server
        if self.path in ("/healthz", "/readyz", "/health"):
            ready = ms.manager.ready and not self.server.closing
            self._send(200 if ready else 503, {"status": "ok" if ready else "loading"})
            return
        name, version, action = self._route()
        if action == "":
            statuses = ms.manager.statuses(version)
            if not statuses:
                what = (
                    f"version {version} of model {name}"
                    if version
                    else f"any versions of model {name}"
                )
                raise ServingError("NOT_FOUND", 404, f"Could not find {what}")
            self._send(200, {"model_version_status": statuses})
        elif action == "/metadata":
            from google.protobuf import json_format

            served, sig_map = ms.metadata(version)
            self._send(
                200,
                {
                    "model_spec": {"name": name, "signature_name": "", "version": str(served)},
                    "metadata": {"signature_def": _message_to_dict(json_format, sig_map)},
                },
            )
        elif action == "/stats":
            self._send(200, ms.manager.stats())
        else:
            raise ServingError("METHOD_NOT_ALLOWED", 405, f"use POST for {action}")

    def _post(self) -> None:
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise ServingError("INVALID_ARGUMENT", 411, "a Content-Length header is required")
        body = self.rfile.read(int(length))
        _, version, action = self._route()
        if action != ":predict":
            raise ServingError(
                "UNIMPLEMENTED",
                501 if action else 405,
                f"{action or 'POST'} is not supported here; use :predict",
            )
        self._send(200, self.server.model_server.predict_json(body, version))


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
    """The REST front end on its own thread."""

    def __init__(self, model_server: ModelServer, host: str, port: int) -> None:
        self._httpd = _HttpServer((host, port), _Handler)
        self._httpd.model_server = model_server
        self._httpd.lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="rest",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self, drain_timeout: float) -> None:
        """Stop accepting, let in-flight requests finish (bounded), then close the socket."""
        self._httpd.closing = True
        self._httpd.shutdown()
        deadline = time.monotonic() + drain_timeout
        while self._httpd.in_flight and time.monotonic() < deadline:
            time.sleep(0.005)
        self._httpd.server_close()

"""The emulator's HTTP transport: requests to routes, faults, request log, lifecycle.

Owns: turning each request of the shared HTTP server (`deployer.httpserve`: keep-alive,
bodies, streaming, graceful stop) into the emulator's `Request` once the access rules
(`deployer.emulator.access`: Host, Origin, token) admit it, buffering bodies of
non-streaming routes (bounded per route by `admission.body_limit`: 413 beyond, refused on
the declared Content-Length before reading) or handing streaming routes the body stream (what
they read whole is bounded too: `Request.read_body`), fault injection before any effect,
dropped responses after mutating calls, the request log (and the console's in-memory
`Activity`), in-process API calls for the console (`call_in_process`), starting the console's own
listener (`--console-port`; console/listener.py), and a clean stop on SIGINT/SIGTERM
that runs the context's shutdown hooks (replica processes are stopped that way).

Must not: know any API's semantics (routes do), or import TensorFlow / deployer.serving.
A malformed request answers 4xx with Google's error body; nothing a client sends may kill
the server.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import parse_qs, unquote

from deployer.emulator.access import AccessPolicy, Denial, Scope, check_bind, reader_may
from deployer.emulator.admission import Body, body_limit, error_body, note_denial
from deployer.emulator.console.activity import Activity
from deployer.emulator.context import EmulatorContext
from deployer.emulator.faults import FaultController, RequestLog, register_admin
from deployer.emulator.http import (
    Request,
    Response,
    Router,
    ServiceError,
    error_response,
)
from deployer.emulator.latency import Latency
from deployer.emulator.objects import ObjectStore
from deployer.errors import ConfigError
from deployer.httpserve import HttpRequest, HttpResponse, HttpServer

log = logging.getLogger("deployer.emulator")

# An unread body larger than this closes the connection instead of being skipped.
_SKIP_UNREAD_BODY = 8 * 1024 * 1024
_ADMIN_PREFIX = "_emulator."
_STOP_GRACE_S = 5.0  # in-flight requests get this long to finish on SIGTERM


class _App:
    """Per-request glue between the HTTP server and the router (runs on a worker thread)."""

    router: Router
    ctx: EmulatorContext
    request_log: RequestLog
    access: AccessPolicy
    activity: Activity | None = None  # recent calls for the console (None: console off)

    def handle(self, http_request: HttpRequest) -> HttpResponse:
        started = time.time()
        raw_path = http_request.raw_path or "/"
        query = parse_qs(http_request.query_string, keep_blank_values=True)
        # Host, Origin and token first: a refused request reaches no route (no effect at all).
        verdict = self.access.check(http_request.method, raw_path, http_request.headers, query)
        if not isinstance(verdict, Denial):
            raw_path = verdict.raw_path
        request = Request(
            method=http_request.method,
            path=unquote(raw_path),
            raw_path=raw_path,
            query=query,
            headers=http_request.headers,
            base_path="" if isinstance(verdict, Denial) else verdict.base_path,
        )
        length = http_request.content_length
        request.content_length = length
        body = Body(http_request.body)
        if isinstance(verdict, Denial):
            note_denial(verdict, http_request)
            refused = ServiceError(verdict.status, verdict.reason, verdict.message)
            response, name, mutating, fault = refused.to_response(), "unknown", False, None
        else:
            response, name, mutating, fault = self._run(request, body, verdict.scope)
        close = False
        if body.failed or (
            not http_request.body.done and (length is None or length > _SKIP_UNREAD_BODY)
        ):
            # A broken or large unread body: answer, then close rather than read it all.
            close = True
        return self._finish(http_request, request, response, name, mutating, fault, started, close)

    async def handle_async(self, http_request: HttpRequest) -> HttpResponse | None:
        """`handle` on the event loop, for routes with an async twin (online prediction);
        None (every other request) sends the request to `handle` on a worker thread.

        Everything `handle` applies around a call applies here too: the access rules before
        it (anything but a full admit goes to `handle`, which answers the refusal), the
        route's body limit, faults, the request log and the access line after it. httpserve
        calls this only once the body is complete, so reading it never blocks."""
        if http_request.method != "POST" or not http_request.raw_path.endswith(
            ("predict", "Predict")
        ):
            return None  # a cheap filter: the async routes are :predict and :rawPredict
        started = time.time()
        query = parse_qs(http_request.query_string, keep_blank_values=True)
        verdict = self.access.check(
            http_request.method, http_request.raw_path, http_request.headers, query
        )
        if isinstance(verdict, Denial) or verdict.scope is not Scope.FULL:
            return None
        raw_path = verdict.raw_path
        request = Request(
            method=http_request.method,
            path=unquote(raw_path),
            raw_path=raw_path,
            query=query,
            headers=http_request.headers,
            base_path=verdict.base_path,
        )
        try:
            resolved = self.router.resolve(request)
        except ServiceError:
            return None
        if resolved is None or resolved[0].async_handler is None:
            return None
        route, match = resolved
        limit, _ = body_limit(route.name)
        length = http_request.content_length
        if length is None or length > limit:
            return None  # `handle` refuses it with the route's answer
        request.content_length = length
        request.max_body = limit
        request.body = http_request.body.read()
        fault = None
        response = self.ctx.faults.before_call(route.name)
        if response is not None:
            fault = "injected"
        else:
            response = await self.router.call_async(route, match, request)
            if self.ctx.faults.drop_after(
                route.name, mutating=route.mutating, status=response.status
            ):
                fault = "dropped"
        return self._finish(
            http_request, request, response, route.name, route.mutating, fault, started, False
        )

    def _finish(
        self,
        http_request: HttpRequest,
        request: Request,
        response: Response,
        name: str,
        mutating: bool,
        fault: str | None,
        started: float,
        close: bool,
    ) -> HttpResponse:
        """The request log, the console's activity and the access line, then the answer (or
        its drop)."""
        self._record(request, response, name, mutating, fault, started, http_request.query_string)
        # The access line, at DEBUG: the target as received (credentials in it are redacted
        # by the filter faults.register_admin installs on this logger).
        log.debug(
            '"%s %s" %d%s',
            request.method,
            http_request.target,
            response.status,
            f" ({fault})" if fault else "",
        )
        # "dropped": the call took effect; the client never learns it (like a lost reply).
        return HttpResponse(
            status=response.status,
            body=response.body,
            headers=response.headers,
            close=close,
            abort=fault == "dropped",
            on_close=response.on_close,
        )

    def call_in_process(self, request: Request) -> tuple[Response, str | None]:
        """An API call made inside this process (the console's try-predict form, already
        admitted by the access rules), its body in `request.body`: the same routing, body
        bounds, faults, request log and activity as a call over HTTP, without a socket.
        Returns the response and the fault, if one was made."""
        started = time.time()
        request.content_length = len(request.body)
        response, name, mutating, fault = self._run(request, None, Scope.FULL)
        self._record(request, response, name, mutating, fault, started, "")
        return response, fault

    def _run(
        self, request: Request, body: Body | None, scope: Scope
    ) -> tuple[Response, str, bool, str | None]:
        """Resolve, fault, call: (response, API method name, mutating, fault). `body` None:
        an in-process call whose body is already in `request.body`."""
        length = request.content_length
        name, mutating, fault = "unknown", False, None
        try:
            resolved = self.router.resolve(request)
            if resolved is not None and scope is Scope.READER:
                if not reader_may(request.method, resolved[0].name):
                    raise ServiceError(
                        403,
                        "PERMISSION_DENIED",
                        "The serving containers' storage URL may only read Cloud Storage",
                    )
            if resolved is None:
                response = error_response(
                    404, "NOT_FOUND", f"No such API: {request.method} {request.path}"
                )
                return response, name, mutating, fault
            route, match = resolved
            name, mutating = route.name, route.mutating
            admin = name.startswith(_ADMIN_PREFIX)
            fault_response = None if admin else self.ctx.faults.before_call(name)
            if fault_response is not None:
                return fault_response, name, mutating, "injected"
            limit, refusal = body_limit(name)
            request.max_body = limit  # what read_body takes on a streaming route
            if length is not None and length > limit and not route.streaming:
                raise refusal  # refused before reading a byte of it
            if body is None:
                if route.streaming:
                    request.stream = io.BytesIO(request.body)
            elif route.streaming:
                request.stream = cast(BinaryIO, body)
            else:
                request.body = body.read_bounded(limit, refusal)
            response = self.router.call(route, match, request)
            if not admin and self.ctx.faults.drop_after(
                name, mutating=mutating, status=response.status
            ):
                fault = "dropped"
        except ServiceError as exc:
            response = exc.to_response()
        return response, name, mutating, fault

    def _record(
        self,
        request: Request,
        response: Response,
        name: str,
        mutating: bool,
        fault: str | None,
        started: float,
        query_string: str,
    ) -> None:
        if name.startswith(_ADMIN_PREFIX):
            return
        body = response.body if isinstance(response.body, bytes) else None
        # Logged before the reply goes out, so a client that got its answer finds the line.
        self.request_log.record(
            method=request.method,
            path=request.path,
            name=name,
            status=response.status,
            started=started,
            mutating=mutating,
            fault=fault,
            request_bytes=request.content_length
            if request.stream is not None
            else len(request.body),
            target=request.raw_path + (f"?{query_string}" if query_string else ""),
            request_body=request.body,
            request_type=request.headers.get("content-type", ""),
            response_body=body,
            response_type=response.headers.get("Content-Type", ""),
        )
        if self.activity is not None:
            self.activity.record(
                method=request.method,
                path=request.path,
                api=name,
                status=response.status,
                started=started,
                fault=fault,
                body=body,
                headers=response.headers,
            )


def build_server(**options: Any) -> tuple[HttpServer, EmulatorContext]:
    """Bind the API server without the console (`build_servers`' options but console_port)."""
    server, ctx, _ = build_servers(**options, console_port=None)
    return server, ctx


def build_servers(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    auth_token: str | None = None,
    allow_hosts: tuple[str, ...] = (),
    data_dir: Path,
    request_log: Path | None = None,
    request_log_bodies: bool = False,
    fault_rate: float = 0.0,
    drop_rate: float = 0.0,
    op_delay: float = 0.0,
    seed: int | None = None,
    with_vertex: bool = True,
    latency: Latency | None = None,
    console_port: int | None = None,
) -> tuple[HttpServer, EmulatorContext, HttpServer | None]:
    """Bind the server and register every API surface; with `console_port` (0 = any free
    port) also bind the console's own listener on the same host (`latency` delays the API
    only). The caller start()s them.

    Refuses (ConfigError), before binding, a non-loopback `host` without `auth_token`."""
    check_bind(host, auth_token)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    app = _App()
    try:
        server = HttpServer(
            app.handle,
            host=host,
            port=port,
            error_body=error_body,
            name="emulator",
            delay=latency.delay if latency is not None and latency.active else None,
            async_handler=app.handle_async,
        )
    except OSError as exc:
        raise ConfigError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="pick another --port (0 = any free port) or stop what holds it",
        ) from exc
    access = AccessPolicy(
        bind_host=host, port=server.port, token=auth_token, extra_hosts=allow_hosts
    )
    faults = FaultController(
        fault_rate=fault_rate, drop_rate=drop_rate, op_delay=op_delay, seed=seed
    )
    ctx = EmulatorContext(
        data_dir=data_dir,
        host=host,
        port=server.port,
        objects=ObjectStore(data_dir),
        faults=faults,
        access=access,
    )
    router = Router()
    register_admin(router, ctx)
    from deployer.emulator import gcs

    gcs.register(router, ctx)
    ctx.apis.append("gcs")
    if with_vertex:
        _register_vertex(router, ctx)
    request_log_obj = RequestLog(request_log, bodies=request_log_bodies)
    app.router, app.ctx, app.request_log, app.access = router, ctx, request_log_obj, access
    ctx.on_shutdown(ctx.objects.close)
    ctx.on_shutdown(request_log_obj.close)
    console_server = None
    if console_port is not None:
        from deployer.emulator.console.listener import build_console

        console_server, app.activity = build_console(
            ctx, access, app.call_in_process, host=host, port=console_port
        )
    return server, ctx, console_server


def _register_vertex(router: Router, ctx: EmulatorContext) -> None:
    try:
        from deployer.emulator import vertex

        register = vertex.register
    except (ImportError, AttributeError) as exc:
        # Tolerated only while the Vertex surface is being written; GCS still works.
        log.warning("Vertex AI API not available in this build (%s); serving GCS only", exc)
        return
    register(router, ctx)
    ctx.apis.append("vertex")


def _console_url(base_url: str, port: int) -> str:
    """The console's address: the API's host with the console's port."""
    return f"{base_url.rsplit(':', 1)[0]}:{port}/_console/"


def run(
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    auth_token: str | None = None,
    allow_hosts: tuple[str, ...] = (),
    data_dir: Path,
    request_log: Path | None = None,
    request_log_bodies: bool = False,
    fault_rate: float = 0.0,
    drop_rate: float = 0.0,
    op_delay: float = 0.0,
    seed: int | None = None,
    log_level: str = "INFO",
    latency: Latency | None = None,
    console_port: int | None = 0,
) -> int:
    """Run the emulator in the foreground until SIGINT/SIGTERM; returns the exit status."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    server, ctx, console = build_servers(
        host=host,
        port=port,
        auth_token=auth_token,
        allow_hosts=allow_hosts,
        data_dir=data_dir,
        request_log=request_log,
        request_log_bodies=request_log_bodies,
        fault_rate=fault_rate,
        drop_rate=drop_rate,
        op_delay=op_delay,
        seed=seed,
        latency=latency,
        console_port=console_port,
    )
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        if stopping.is_set():
            # A second signal while the shutdown hooks run: the user wants out now.
            log.warning("signal %d again: exiting without waiting for shutdown hooks", signum)
            os._exit(1)
        else:
            log.info("signal %d: stopping", signum)
            stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    server.start()
    if console is not None:
        console.start()
    # Printed whatever the log level: launchers that asked for port 0 read the real one here.
    sys.stderr.write(
        f"deployer emulator listening on {ctx.base_url} (data dir {data_dir}; APIs: "
        f"{', '.join(ctx.apis)})\n"
        f"use api_endpoint={ctx.base_url} and STORAGE_EMULATOR_HOST={ctx.base_url}\n"
        + (
            "clients must send the auth token (deployer: set DEPLOYER_EMULATOR_TOKEN)\n"
            if auth_token
            else ""
        )
        + (f"console at {_console_url(ctx.base_url, console.port)}\n" if console else "")
    )
    sys.stderr.flush()
    try:
        # A timed wait, so the signal handler runs promptly on this (the main) thread.
        while not stopping.wait(0.2) and not server.wait(0):
            pass
    finally:
        if console is not None:
            console.stop(1.0)
        server.stop(_STOP_GRACE_S)
        ctx.run_shutdown_hooks()
        log.info("stopped")
    return 0

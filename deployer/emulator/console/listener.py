"""The console's own listener: its port, the emulator's access rules, bounded form bodies.

Owns `build_console`, which binds the console's HTTP server (deployer.httpserve) on the API's
host and a port of its own, and `ConsoleApp`, the per-request glue: the same access rules as
the API (the port is added to those the policy serves, so its Host and Origin are the
emulator's own), form bodies bounded, no faults, not logged as API calls (the console is not
an API). The site itself is `deployer.emulator.console.Console`.

Must not: import the core, or reach the API except through the in-process `call_api` it is
given.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, unquote

from deployer.emulator.access import AccessPolicy, Denial
from deployer.emulator.admission import Body, error_body, note_denial
from deployer.emulator.console import Console
from deployer.emulator.console.activity import Activity
from deployer.emulator.context import EmulatorContext
from deployer.emulator.http import Request, Response, ServiceError, too_large
from deployer.errors import ConfigError
from deployer.httpserve import HttpRequest, HttpResponse, HttpServer

# The console's forms (a try-predict payload is at most Vertex's 1.5 MB, form-encoded).
MAX_CONSOLE_BODY = 8 * 1024 * 1024


class ConsoleApp:
    """Per-request glue for the console's own listener: the same access rules as the API
    (its port is one the policy serves), bounded bodies, no faults, not logged as API calls
    (the console is not an API)."""

    def __init__(self, site: Console, access: AccessPolicy) -> None:
        self.site = site
        self.access = access

    def handle(self, http_request: HttpRequest) -> HttpResponse:
        raw_path = http_request.raw_path or "/"
        query = parse_qs(http_request.query_string, keep_blank_values=True)
        request = Request(
            method=http_request.method,
            path=unquote(raw_path),
            raw_path=raw_path,
            query=query,
            headers=http_request.headers,
            content_length=http_request.content_length,
        )
        body = Body(http_request.body)
        verdict = self.access.check(http_request.method, raw_path, http_request.headers, query)
        try:
            if isinstance(verdict, Denial):
                note_denial(verdict, http_request)
                raise ServiceError(verdict.status, verdict.reason, verdict.message)
            refusal = too_large(MAX_CONSOLE_BODY)
            length = http_request.content_length
            if length is not None and length > MAX_CONSOLE_BODY:
                raise refusal
            request.body = body.read_bounded(MAX_CONSOLE_BODY, refusal)
            response = self.site.handle(request)
        except ServiceError as exc:
            response = self.site.error_page(exc.http_status, exc.message)
        return HttpResponse(
            status=response.status,
            body=response.body,
            headers=response.headers,
            close=body.failed or not http_request.body.done,
            on_close=response.on_close,
        )


def build_console(
    ctx: EmulatorContext,
    access: AccessPolicy,
    call_api: Callable[[Request], tuple[Response, str | None]],
    *,
    host: str,
    port: int,
) -> tuple[HttpServer, Activity]:
    """The console's listener and the activity window the API's transport feeds: its own
    port, the same host and access rules, state read in-process."""
    activity = Activity()
    site = Console(ctx, activity=activity, call_api=call_api)
    try:
        server = HttpServer(
            ConsoleApp(site, access).handle,
            host=host,
            port=port,
            error_body=error_body,
            name="console",
        )
    except OSError as exc:
        raise ConfigError(
            f"Cannot listen on {host}:{port} for the console: {exc.strerror or exc}",
            hint="pick another --console-port (0 = any free port), or pass --no-console",
        ) from exc
    access.serve_port(server.port)  # its Host and Origin values are the emulator's own
    return server, activity

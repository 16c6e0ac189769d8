"""The one HTTP/1.1 server stack of the emulator and of the serving REST front end.

Owns: binding, the event loop and HTTP parser (uvicorn with httptools and uvloop), running
synchronous handlers off the loop (and async ones on it, for hot routes), request bodies
streamed with backpressure, streamed responses, protocol-level errors in the caller's error
format, and graceful stop (`server`); a pooled keep-alive async client for loopback peers
(`client`).
Must not: know any API's routes or semantics, or import the core, the emulator or serving
(it sits below both: they are siblings that never import each other).
"""

from deployer.httpserve.client import AsyncPool, ClientError
from deployer.httpserve.server import (
    AsyncHandler,
    Handler,
    HttpRequest,
    HttpResponse,
    HttpServer,
    IncompleteBody,
    RequestBody,
    to_thread,
)

__all__ = [
    "AsyncHandler",
    "AsyncPool",
    "ClientError",
    "Handler",
    "HttpRequest",
    "HttpResponse",
    "HttpServer",
    "IncompleteBody",
    "RequestBody",
    "to_thread",
]

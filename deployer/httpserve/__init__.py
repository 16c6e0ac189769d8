"""The one HTTP/1.1 server stack of the emulator and of the serving REST front end.

Owns: binding, the event loop and HTTP parser (uvicorn with httptools and uvloop), running
synchronous handlers off the loop, request bodies streamed with backpressure, streamed
responses, protocol-level errors in the caller's error format, and graceful stop (`server`).
Must not: know any API's routes or semantics, or import the core, the emulator or serving
(it sits below both: they are siblings that never import each other).
"""

from deployer.httpserve.server import (
    Handler,
    HttpRequest,
    HttpResponse,
    HttpServer,
    IncompleteBody,
    RequestBody,
)

__all__ = [
    "Handler",
    "HttpRequest",
    "HttpResponse",
    "HttpServer",
    "IncompleteBody",
    "RequestBody",
]

"""The minimal `:predict`-shaped app used to pick the HTTP server library (issue 12).

Owns: one blocking handler doing what the emulator's `:predict` route does besides the proxy
hop (route regex, size check, JSON parse, JSON answer; orjson), served by each candidate:

    python -m benchmarks.http_candidates KIND PORT    # KIND: uvicorn, cheroot, waitress,
                                                      # aiohttp, stdlib
    granian --interface wsgi --workers 1 --blocking-threads 32 --port PORT \
        benchmarks.http_candidates:wsgi               # granian, WSGI
    wrk -t1 -c32 -d8s --latency -s post.lua http://127.0.0.1:PORT/v1/projects/p/locations/l/endpoints/1:predict

Async servers run the handler on a thread pool, as the emulator's synchronous handlers need.
The candidates other than uvicorn/httptools/uvloop are not dependencies: install them into a
scratch virtualenv (`pip install cheroot waitress aiohttp granian`). Figures: BENCHMARKS.md.
Must not: be imported by deployer, or be mistaken for a test.
"""

from __future__ import annotations

import asyncio
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

ROUTE = re.compile(r"/v1/projects/[^/]+/locations/[^/]+/endpoints/[^/:]+:predict")
POOL = ThreadPoolExecutor(64)


def handle(path: str, body: bytes) -> bytes:
    if ROUTE.fullmatch(path) is None or len(body) > 1_572_864:
        raise ValueError(path)
    instances = orjson.loads(body)["instances"]
    return orjson.dumps({"predictions": [[0.1] * 10] * len(instances), "deployedModelId": "1"})


def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    out = handle(environ["PATH_INFO"], body)
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))]
    )
    return [out]


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    loop = asyncio.get_running_loop()
    out = await loop.run_in_executor(POOL, handle, scope["path"], b"".join(chunks))
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})


def main(kind: str, port: int) -> None:
    if kind == "uvicorn":
        import uvicorn

        uvicorn.run(
            asgi,
            host="127.0.0.1",
            port=port,
            loop="uvloop",
            http="httptools",
            interface="asgi3",
            lifespan="off",
            access_log=False,
            log_level="warning",
        )
    elif kind == "cheroot":
        from cheroot import wsgi as cheroot_wsgi

        cheroot_wsgi.Server(("127.0.0.1", port), wsgi, numthreads=64).start()
    elif kind == "waitress":
        import waitress

        waitress.serve(wsgi, host="127.0.0.1", port=port, threads=32)
    elif kind == "aiohttp":
        import uvloop
        from aiohttp import web

        async def predict(request: Any) -> Any:
            body = await request.read()
            loop = asyncio.get_running_loop()
            out = await loop.run_in_executor(POOL, handle, request.path, body)
            return web.Response(body=out, content_type="application/json")

        app = web.Application()
        app.router.add_post("/{tail:.*}", predict)
        uvloop.install()
        web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)
    elif kind == "stdlib":
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                out = handle(self.path, self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        ThreadingHTTPServer.daemon_threads = True
        ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
    else:
        raise SystemExit(f"unknown server {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))

"""A small custom prediction server for Vertex AI, on Python's standard library only.

Serves a linear model (`model.json`: {"coef": [...], "intercept": x}) under Vertex's
custom-container contract: listens on $AIP_HTTP_PORT, answers $AIP_HEALTH_ROUTE with 200 once
the model is loaded, and $AIP_PREDICT_ROUTE with {"predictions": [...]} for
{"instances": [[x1, ..., xn], ...]}. The model comes from $AIP_STORAGE_URI (gs://BUCKET/PATH,
read through Cloud Storage's JSON API: the emulator's when STORAGE_EMULATOR_HOST is set, else
Google's with the metadata server's token, as on Vertex AI) or from a local directory
(`--model-dir`, or AIP_STORAGE_URI set to a path), so the same file runs in a container,
under the local emulator, or by hand:

    python examples/custom-container/server.py --model-dir models/custom_diabetes --port 8080
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

METADATA_TOKEN = (
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
)


def read_gcs(uri: str, name: str) -> bytes:
    """The bytes of object `name` under the gs:// directory `uri`."""
    bucket, _, prefix = uri[len("gs://") :].partition("/")
    obj = (prefix.rstrip("/") + "/" + name) if prefix else name
    host = os.environ.get("STORAGE_EMULATOR_HOST", "").rstrip("/")
    url = f"{host or 'https://storage.googleapis.com'}/storage/v1/b/{bucket}/o/"
    url += urllib.parse.quote(obj, safe="") + "?alt=media"
    headers = {}
    if not host:
        req = urllib.request.Request(METADATA_TOKEN, headers={"Metadata-Flavor": "Google"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            headers["Authorization"] = "Bearer " + json.loads(resp.read())["access_token"]
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as resp:
        data: bytes = resp.read()
        return data


def load_model(source: str) -> dict[str, Any]:
    raw = read_gcs(source, "model.json") if source.startswith("gs://") else (
        Path(source) / "model.json"
    ).read_bytes()
    model: dict[str, Any] = json.loads(raw)
    return model


def predict(model: dict[str, Any], instances: list[Any]) -> list[float]:
    """intercept + coef . x for each instance; ValueError naming the first bad one."""
    coef, width = model["coef"], len(model["coef"])
    out = []
    for i, row in enumerate(instances):
        if not isinstance(row, list) or len(row) != width:
            raise ValueError(f"instance {i} must be a list of {width} numbers")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row):
            raise ValueError(f"instance {i} must hold numbers only")
        out.append(model["intercept"] + sum(c * v for c, v in zip(coef, row, strict=True)))
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "custom-example"
    model: dict[str, Any] | None = None
    health_route = "/health"
    predict_route = "/predict"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would drown the replica log

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.split("?")[0] != self.health_route:
            self._send(404, {"error": f"no route {self.path}"})
        elif Handler.model is None:
            self._send(503, {"error": "loading"})
        else:
            self._send(200, {"status": "ok"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path.split("?")[0] != self.predict_route:
            self._send(404, {"error": f"no route {self.path}"})
            return
        if Handler.model is None:
            self._send(503, {"error": "loading"})
            return
        try:
            request = json.loads(body)
            predictions = predict(Handler.model, request["instances"])
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, {"error": f"bad request: {exc}"})
            return
        self._send(200, {"predictions": predictions})


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(description="Linear-model prediction server (Vertex AI).")
    parser.add_argument("--model-dir", default=env.get("AIP_STORAGE_URI", ""))
    parser.add_argument("--port", type=int, default=int(env.get("AIP_HTTP_PORT", "8080")))
    # Vertex needs 0.0.0.0; under the local emulator (host network) loopback is enough.
    default_host = "127.0.0.1" if env.get("STORAGE_EMULATOR_HOST") else "0.0.0.0"
    parser.add_argument("--host", default=default_host)
    args = parser.parse_args(argv)
    if not args.model_dir:
        sys.exit("error: no model: set AIP_STORAGE_URI or pass --model-dir")
    Handler.health_route = env.get("AIP_HEALTH_ROUTE", "/health")
    Handler.predict_route = env.get("AIP_PREDICT_ROUTE", "/predict")
    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    httpd.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    print(f"listening on {args.host}:{httpd.server_address[1]}", flush=True)
    Handler.model = load_model(args.model_dir)
    print(f"model loaded from {args.model_dir}", flush=True)
    httpd.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

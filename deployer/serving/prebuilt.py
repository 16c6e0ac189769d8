"""Replica process for Vertex's pre-built scikit-learn / XGBoost / PyTorch images.

    python -m deployer.serving.prebuilt --framework sklearn|xgboost|pytorch --artifact DIR
        [--host 127.0.0.1] [--port P] [--health-route R] [--predict-route R] [--verbose]

Owns: the HTTP contract Vertex holds a serving container to, for one loaded model: the port,
health route and predict route from the flags, else from Vertex's variables `AIP_HTTP_PORT`
(8080), `AIP_HEALTH_ROUTE` (/health), `AIP_PREDICT_ROUTE` (/predict), and the artifact from
`--artifact`, else `AIP_STORAGE_URI` when it is a local directory. The socket is bound first
and the model loaded in the background: the health route answers 503 until it is loaded,
then 200. Predict takes `{"instances": [...], "parameters": {...}}` and answers
`{"predictions": [...]}`, or 400 `{"error": "..."}` worded as the pre-built containers word it.
Batch prediction jobs send their instances through the same route (one predictor for both).
Exit codes: 0 after SIGTERM/SIGINT (in-flight requests drained), 1 when the model cannot be
loaded, 2 when the port cannot be bound.
Must not: import a framework before the port is bound, or know the emulator.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from deployer.serving.frameworks import ModelLoadError, PredictionError, Predictor
from deployer.serving.http_seam import HttpAnswer, SimpleHttpServer
from deployer.wire.prebuilt import Framework

log = logging.getLogger("deployer.serving.prebuilt")

DEFAULT_PORT = 8080
DEFAULT_HEALTH_ROUTE = "/health"
DEFAULT_PREDICT_ROUTE = "/predict"
SERVED = (Framework.SKLEARN, Framework.XGBOOST, Framework.PYTORCH)


@dataclass(frozen=True)
class Routes:
    health: str  # GET: 200 once the model is loaded, 503 before
    predict: str  # POST: {"instances": [...]} -> {"predictions": [...]}


class PrebuiltModelServer:
    """One model's HTTP semantics, transport-free (the seam maps requests onto `handle`)."""

    def __init__(self, framework: Framework, artifact_dir: Path, routes: Routes) -> None:
        self.framework = framework
        self.artifact_dir = artifact_dir
        self.routes = routes
        self.predictor: Predictor | None = None
        self.failed: str | None = None
        self.loaded = threading.Event()

    def load(self) -> None:
        """Load the model (on a background thread); sets `predictor` or `failed`."""
        from deployer.serving import frameworks

        try:
            self.predictor = frameworks.load(self.framework, self.artifact_dir)
        except ModelLoadError as exc:
            self.failed = str(exc)
        except Exception as exc:  # a loader bug must still end the process with a message
            self.failed = f"{type(exc).__name__}: {exc}"
        self.loaded.set()

    def handle(self, method: str, path: str, body: bytes) -> HttpAnswer:
        path = path.split("?", 1)[0]
        if path == self.routes.health:
            if method not in ("GET", "HEAD"):
                return _error(405, f"use GET for {path}")
            if self.predictor is None:
                return _error(503, "the model is loading")
            return HttpAnswer(200, b"{}")
        if path == self.routes.predict:
            if method != "POST":
                return _error(405, f"use POST for {path}")
            return self._predict(body)
        return _error(404, f"no route for {path}; serving {self.routes.predict}")

    def _predict(self, body: bytes) -> HttpAnswer:
        predictor = self.predictor
        if predictor is None:
            return _error(503, "the model is loading")
        try:
            request = json.loads(body)
        except (ValueError, RecursionError) as exc:
            return _error(400, f"JSON deserialization failed for the request data: {exc}")
        if not isinstance(request, dict) or not isinstance(request.get("instances"), list):
            return _error(400, 'the request body must be a JSON object with an "instances" list')
        parameters = request.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            return _error(400, '"parameters" must be a JSON object')
        try:
            predictions = predictor.predict(request["instances"], parameters)
        except PredictionError as exc:
            return _error(400, str(exc))
        try:
            out = json.dumps({"predictions": predictions}, allow_nan=False)
        except ValueError as exc:  # NaN or infinity: not JSON
            return _error(500, f"Prediction failed: the predictions are not valid JSON: {exc}")
        return HttpAnswer(200, out.encode())


def _error(status: int, message: str) -> HttpAnswer:
    return HttpAnswer(status, json.dumps({"error": message}).encode())


def _parser() -> argparse.ArgumentParser:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m deployer.serving.prebuilt",
        description="Serve one model as Vertex's pre-built sklearn/XGBoost/PyTorch image does.",
    )
    parser.add_argument("--framework", required=True, choices=[f.value for f in SERVED])
    parser.add_argument(
        "--artifact",
        type=Path,
        default=Path(env["AIP_STORAGE_URI"]) if _local_dir(env.get("AIP_STORAGE_URI")) else None,
        help="directory holding the model file (default: AIP_STORAGE_URI if a local directory)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port",
        type=int,
        default=int(env.get("AIP_HTTP_PORT", DEFAULT_PORT)),
        help="0 = any free port (the one bound is printed)",
    )
    parser.add_argument("--health-route", default=env.get("AIP_HEALTH_ROUTE", DEFAULT_HEALTH_ROUTE))
    parser.add_argument(
        "--predict-route", default=env.get("AIP_PREDICT_ROUTE", DEFAULT_PREDICT_ROUTE)
    )
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    parser.add_argument("--verbose", action="store_true")
    return parser


def _fail(message: str) -> None:
    sys.stderr.write(message + "\n")  # the emulator shows this line as the replica's error


def _local_dir(value: str | None) -> bool:
    return bool(value) and not str(value).startswith("gs://") and Path(str(value)).is_dir()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.artifact is None:
        _fail("error: no model directory: pass --artifact DIR or set AIP_STORAGE_URI")
        return 1
    model = PrebuiltModelServer(
        Framework(args.framework),
        args.artifact.resolve(),
        Routes(health=args.health_route, predict=args.predict_route),
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        http = SimpleHttpServer(model.handle, args.host, args.port)
    except OSError as exc:
        _fail(f"error: cannot listen on {args.host}:{args.port}: {exc}")
        return 2
    http.start()
    log.info("HTTP API listening on http://%s:%d", args.host, http.port)
    threading.Thread(target=model.load, name="load", daemon=True).start()
    code = 0
    announced = False
    while not stop.wait(0.05):
        if announced or not model.loaded.is_set():
            continue
        if model.failed is not None:
            _fail(f"error: {args.framework} model failed to load: {model.failed}")
            code = 1
            break
        announced = True
        assert model.predictor is not None
        log.info("model ready: %s (%s)", model.predictor.artifact, args.framework)
    http.stop(args.drain_timeout)
    return code


if __name__ == "__main__":
    sys.exit(main())

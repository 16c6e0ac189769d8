"""The model server: one predict path shared by REST and gRPC, and the process runner.

Owns: `ModelServer` (lease a version, pick the signature, check the inputs, run them through the
batcher or straight through the model, map failures to TF Serving's error codes) and
`run_model_server` (the life of a server process: bind REST (and gRPC), load in the background,
report ready, drain and exit on SIGTERM/SIGINT). `deployer serve` and the emulator's replica
entry point (`python -m deployer.serving.replica`) both run through here: one code path.
Must not: parse HTTP or protobuf (see `rest` and `grpc_api`).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click
import numpy as np

from deployer.serving.batching import BatcherClosed, BatchingParameters, QueueFull
from deployer.serving.codec import (
    RequestError,
    SignatureInfo,
    check_arrays,
    decode_json,
    encode_json,
)
from deployer.serving.versions import ModelManager, NotServable, Policy, VersionSource

log = logging.getLogger("deployer.serving")


class ServingError(Exception):
    """A request failure with TF Serving's canonical code and the matching HTTP status."""

    def __init__(self, code: str, http_status: int, message: str) -> None:
        super().__init__(message)
        self.code = code  # gRPC StatusCode name, e.g. "INVALID_ARGUMENT"
        self.http_status = http_status
        self.message = message


def _map_error(exc: Exception) -> ServingError:
    if isinstance(exc, ServingError):
        return exc
    if isinstance(exc, RequestError):
        return ServingError("INVALID_ARGUMENT", 400, str(exc))
    if isinstance(exc, NotServable):
        return ServingError("NOT_FOUND", 404, str(exc))
    if isinstance(exc, (QueueFull, BatcherClosed)):
        return ServingError("UNAVAILABLE", 503, str(exc))
    try:  # errors raised inside the graph (e.g. a bad image) are the caller's input's fault
        import tensorflow as tf

        if isinstance(exc, tf.errors.InvalidArgumentError):
            return ServingError("INVALID_ARGUMENT", 400, exc.message.splitlines()[0])
    except ImportError:  # pragma: no cover
        pass
    log.exception("predict failed", exc_info=exc)
    return ServingError("INTERNAL", 500, f"{type(exc).__name__}: {exc}")


class ModelServer:
    """Serves one model name. Thread-safe; every protocol front end calls into this."""

    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager
        self.name = manager.name

    def check_name(self, name: str) -> None:
        if name != self.name:
            raise ServingError("NOT_FOUND", 404, f"Servable not found for request: Latest({name})")

    def predict_arrays(
        self,
        version: int | None,
        signature_name: str | None,
        arrays: Mapping[str, np.ndarray] | None = None,
        *,
        json_body: Any = None,
    ) -> tuple[int, SignatureInfo, dict[str, np.ndarray], bool]:
        """Run one request -> (version served, signature, outputs, row_format).

        Give either numpy `arrays` (gRPC, warmup) or a parsed REST `json_body`."""
        try:
            with self.manager.lease(version) as slot:
                model = slot.model
                assert model is not None  # AVAILABLE slots always hold their model
                sig = model.signature_for(signature_name)
                if json_body is not None:
                    inputs, row = decode_json(json_body, sig)
                else:
                    inputs, row = check_arrays(sig, arrays or {}), False
                batcher = slot.batchers.get(sig.name)
                if batcher is not None and len({len(a) for a in inputs.values()}) == 1:
                    outputs = batcher.submit(inputs)
                else:
                    outputs = model.run(inputs, sig.name)
                return slot.version, sig, outputs, row
        except Exception as exc:
            raise _map_error(exc) from exc

    def predict_json(self, body: bytes, version: int | None) -> dict[str, Any]:
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ServingError("INVALID_ARGUMENT", 400, f"JSON Parse error: {exc}") from exc
        sig_name = parsed.get("signature_name") if isinstance(parsed, dict) else None
        if sig_name is not None and not isinstance(sig_name, str):
            raise ServingError("INVALID_ARGUMENT", 400, '"signature_name" must be a string')
        _, _, outputs, row = self.predict_arrays(version, sig_name, json_body=parsed)
        try:
            return encode_json(outputs, row_format=row)
        except RequestError as exc:
            raise ServingError("INVALID_ARGUMENT", 400, str(exc)) from exc

    def metadata(self, version: int | None) -> tuple[int, Any]:
        """(version, SignatureDefMap proto) of the requested or newest version."""
        try:
            with self.manager.lease(version) as slot:
                assert slot.model is not None
                return slot.version, slot.model.signature_def_map()
        except Exception as exc:
            raise _map_error(exc) from exc


@dataclass(frozen=True)
class ServerOptions:
    """How a model server process runs (from `deployer serve` or the replica flags)."""

    name: str  # model name in URLs and ModelSpec
    host: str = "127.0.0.1"
    rest_port: int = 8501  # 0 = any free port (printed on stderr)
    grpc_port: int | None = None  # None = no gRPC front end
    batching: BatchingParameters | None = None  # None = every request is its own model call
    policy: Policy = Policy.AVAILABILITY
    poll_interval: float = 1.0
    intra_op_threads: int = 0  # 0 = TF's default, or the cpu_share split when cpu_share > 1
    inter_op_threads: int = 0
    cpu_share: int = 1  # replica processes sharing this machine's CPUs
    gpu_memory_growth: bool = True
    gpu_memory_limit_mb: int | None = None
    drain_timeout: float = 30.0
    exit_on_load_failure: bool = True  # TF Serving refuses to start if the first load fails


def run_model_server(source: VersionSource, options: ServerOptions) -> int:
    """Run until SIGTERM/SIGINT; return the process exit code. Logs go to stderr."""
    from deployer.serving.rest import RestServer

    manager = ModelManager(
        options.name,
        source,
        batching=options.batching,
        policy=options.policy,
        poll_interval=options.poll_interval,
    )
    server = ModelServer(manager)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # REST comes up before TensorFlow is imported so health checks see LOADING, not a refusal.
    try:
        rest = RestServer(server, options.host, options.rest_port)
    except OSError as exc:
        click.echo(f"error: cannot listen on {options.host}:{options.rest_port}: {exc}", err=True)
        return 2
    rest.start()
    log.info("REST API listening on http://%s:%d", options.host, rest.port)

    from deployer.serving.runtime import configure_tensorflow, threads_for_share

    intra, inter = options.intra_op_threads, options.inter_op_threads
    if options.cpu_share > 1:
        auto_intra, auto_inter = threads_for_share(options.cpu_share)
        intra, inter = intra or auto_intra, inter or auto_inter
    applied = configure_tensorflow(
        intra_op_threads=intra,
        inter_op_threads=inter,
        gpu_memory_growth=options.gpu_memory_growth,
        gpu_memory_limit_mb=options.gpu_memory_limit_mb,
    )
    log.info("TensorFlow settings: %s; batching: %s", applied, options.batching or "off")
    grpc_server = None
    if options.grpc_port is not None:
        from deployer.serving.grpc_api import start_grpc_server

        try:
            grpc_server, bound = start_grpc_server(server, options.host, options.grpc_port)
        except RuntimeError as exc:
            click.echo(f"error: {exc}", err=True)
            rest.stop(0)
            return 2
        log.info("gRPC API listening on %s:%d", options.host, bound)
    manager.start()
    code = 0
    announced = False
    while not stop.wait(0.05):
        if not announced and manager.ready:
            announced = True
            log.info("model %s ready", options.name)
        elif not announced and options.exit_on_load_failure and manager.failed:
            click.echo(f"error: model {options.name} failed to load: {manager.failed}", err=True)
            code = 1
            break
    log.info("shutting down: draining in-flight requests")
    start = time.monotonic()
    rest.stop(options.drain_timeout)
    if grpc_server is not None:
        grpc_server.stop(grace=max(0.1, options.drain_timeout - (time.monotonic() - start))).wait()
    manager.stop(options.drain_timeout)
    log.info("stopped")
    return code


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

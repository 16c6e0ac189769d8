"""The life of a model server process, for `deployer serve` and the emulator's replicas.

Owns: `ServerOptions` and `run_model_server` (bind REST (and gRPC), load in the background,
report ready, drain and exit on SIGTERM/SIGINT), and `setup_logging`. `deployer serve` and the
replica entry point (`python -m deployer.serving.replica`) both run through here: one code path.
Must not: parse HTTP or protobuf (the front ends do) or decide predictions (`server` does).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass

import click

from deployer.serving.batching import BatchingParameters
from deployer.serving.rest import RestServer
from deployer.serving.server import ModelServer
from deployer.serving.versions import ModelManager, Policy, VersionSource

log = logging.getLogger("deployer.serving")


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

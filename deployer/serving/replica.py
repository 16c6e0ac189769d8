"""Replica process entry point: `python -m deployer.serving.replica --saved-model DIR ...`.

Owns: the command-line contract the local emulator relies on to run a deployed model:

    python -m deployer.serving.replica --saved-model DIR --model-name NAME
        [--host 127.0.0.1] --port PORT [--grpc-port PORT]
        [--batching/--no-batching] [--batching-parameters FILE] [--max-batch-size N]
        [--batch-timeout-micros N] [--max-enqueued-batches N] [--num-batch-threads N]
        [--intra-op-threads N] [--inter-op-threads N] [--cpu-share REPLICAS]
        [--gpu-memory-limit-mb N | --no-gpu-memory-growth] [--verbose]

It serves ONE SavedModel directory as version 1 of NAME with TF Serving's REST API:
`GET /v1/models/NAME` says LOADING until the model is loaded and warmed, then AVAILABLE;
`GET /healthz` is 503 then 200; `POST /v1/models/NAME[/versions/1]:predict`.
SIGTERM/SIGINT: stop accepting, drain in-flight requests, exit 0. A model that cannot be loaded:
exit 1 with `error: ...` on stderr. A port that cannot be bound: exit 2.
Must not: do anything `deployer serve` does not (both run `process.run_model_server`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployer.serving.batching import BatchingParameters

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _batching_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batching",
        dest="batching",
        action="store_true",
        default=True,
        help="merge concurrent requests into one model call (default)",
    )
    parser.add_argument("--no-batching", dest="batching", action="store_false")
    parser.add_argument(
        "--batching-parameters",
        type=Path,
        default=None,
        help="TF Serving batching parameters text proto; flags below override it",
    )
    parser.add_argument("--max-batch-size", type=int, default=None)
    parser.add_argument("--batch-timeout-micros", type=int, default=None)
    parser.add_argument("--max-enqueued-batches", type=int, default=None)
    parser.add_argument("--num-batch-threads", type=int, default=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deployer.serving.replica",
        description="Serve one SavedModel dir as version 1 (TF Serving REST).",
    )
    parser.add_argument("--saved-model", type=Path, required=True, help="a SavedModel directory")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="REST port (0 = any free port)")
    parser.add_argument("--grpc-port", type=int, default=None, help="also serve gRPC on this port")
    _batching_args(parser)
    parser.add_argument("--intra-op-threads", type=int, default=0, help="0 = TensorFlow's default")
    parser.add_argument("--inter-op-threads", type=int, default=0, help="0 = TensorFlow's default")
    parser.add_argument(
        "--cpu-share",
        type=int,
        default=1,
        help="number of replicas sharing this machine's CPUs: unless given, "
        "intra-op threads = cpus // N and inter-op threads = min(2, that)",
    )
    parser.add_argument(
        "--gpu-memory-limit-mb",
        type=int,
        default=None,
        help="per-process GPU memory cap, so replicas share a card",
    )
    parser.add_argument("--no-gpu-memory-growth", dest="gpu_memory_growth", action="store_false")
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    import click

    from deployer.serving.process import ServerOptions, run_model_server, setup_logging
    from deployer.serving.versions import FixedSource

    setup_logging(args.verbose)
    model_dir = args.saved_model.resolve()
    if not (model_dir / "saved_model.pb").is_file():
        click.echo(
            f"error: {model_dir} is not a SavedModel directory (no saved_model.pb)", err=True
        )
        return 1
    try:
        batching = build_batching(args)
    except (OSError, ValueError) as exc:
        click.echo(f"error: batching parameters: {exc}", err=True)
        return 2
    options = ServerOptions(
        name=args.model_name,
        host=args.host,
        rest_port=args.port,
        grpc_port=args.grpc_port,
        batching=batching,
        intra_op_threads=args.intra_op_threads,
        inter_op_threads=args.inter_op_threads,
        cpu_share=args.cpu_share,
        gpu_memory_growth=args.gpu_memory_growth,
        gpu_memory_limit_mb=args.gpu_memory_limit_mb,
        drain_timeout=args.drain_timeout,
    )
    return run_model_server(FixedSource(model_dir), options)


def build_batching(args: argparse.Namespace) -> BatchingParameters | None:
    """BatchingParameters from the file (if any) with flag overrides, or None when off."""
    from deployer.serving.batching import BatchingParameters, load_batching_parameters

    if not args.batching:
        return None
    base = (
        load_batching_parameters(args.batching_parameters)
        if args.batching_parameters
        else BatchingParameters()
    )
    return base.with_overrides(
        max_batch_size=args.max_batch_size,
        batch_timeout_micros=args.batch_timeout_micros,
        max_enqueued_batches=args.max_enqueued_batches,
        num_batch_threads=args.num_batch_threads,
    )


if __name__ == "__main__":
    sys.exit(main())

"""`deployer serve`: a local TF Serving (REST + gRPC) for a versioned SavedModel base dir.

Owns: the command's options and their translation into `deployer.serving.process.ServerOptions`.
Must not: import TensorFlow or the serving runtime at module top level (the CLI root imports
this module to run the command; `deployer --help` must stay fast).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from deployer.errors import ConfigError


@click.command("serve")
@click.argument("model_base_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--model-name", required=True, help="Name in URLs: /v1/models/NAME.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--rest-port", type=int, default=8501, show_default=True, help="REST API port.")
@click.option(
    "--grpc-port",
    type=int,
    default=8500,
    show_default=True,
    help="gRPC API port (0 = any free port; -1 = no gRPC).",
)
@click.option(
    "--enable-batching/--no-enable-batching",
    default=True,
    show_default=True,
    help="Merge concurrent requests into one model call.",
)
@click.option(
    "--batching-parameters",
    "batching_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TF Serving batching parameters text proto (max_batch_size, ...).",
)
@click.option(
    "--poll-interval",
    type=float,
    default=1.0,
    show_default=True,
    help="Seconds between scans of MODEL_BASE_DIR for new versions.",
)
@click.option(
    "--policy",
    type=click.Choice(["availability", "resource"]),
    default="availability",
    show_default=True,
    help="availability: old version serves until the new one is warm; "
    "resource: unload the old version first.",
)
@click.option("--intra-op-threads", type=int, default=0, help="TF intra-op threads (0 = default).")
@click.option("--inter-op-threads", type=int, default=0, help="TF inter-op threads (0 = default).")
@click.option(
    "--cpu-share",
    type=int,
    default=1,
    show_default=True,
    help="Server processes sharing the CPUs (splits TF's thread pools).",
)
@click.option(
    "--gpu-memory-limit-mb",
    type=int,
    default=None,
    help="Cap this process's GPU memory (else memory growth).",
)
@click.option("--verbose", is_flag=True, help="Log every request.")
def serve(
    model_base_dir: Path,
    model_name: str,
    host: str,
    rest_port: int,
    grpc_port: int,
    enable_batching: bool,
    batching_file: Path | None,
    poll_interval: float,
    policy: str,
    intra_op_threads: int,
    inter_op_threads: int,
    cpu_share: int,
    gpu_memory_limit_mb: int | None,
    verbose: bool,
) -> None:
    """Serve the newest version under MODEL_BASE_DIR (numeric subdirs 0001, 0002, ...).

    New versions are picked up while serving. REST: GET /v1/models/NAME[/versions/N][/metadata],
    POST /v1/models/NAME[/versions/N]:predict. gRPC: PredictionService.Predict and
    GetModelMetadata, ModelService.GetModelStatus.
    """
    from deployer.serving.batching import BatchingParameters, load_batching_parameters
    from deployer.serving.process import ServerOptions, run_model_server, setup_logging
    from deployer.serving.versions import BaseDirSource, Policy

    if not model_base_dir.is_dir():
        raise ConfigError(
            f"{model_base_dir} is not a directory",
            hint="give the model base dir holding version subdirs 0001, 0002, ...",
        )
    if (model_base_dir / "saved_model.pb").is_file():
        raise ConfigError(
            f"{model_base_dir} is a SavedModel, not a base dir of versions",
            hint=f"move it into {model_base_dir}/0001/ (TF Serving's layout)",
        )
    batching = None
    if enable_batching:
        try:
            batching = (
                load_batching_parameters(batching_file) if batching_file else BatchingParameters()
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(f"batching parameters: {exc}") from exc
    elif batching_file:
        raise ConfigError(
            "--batching-parameters needs batching on", hint="drop --no-enable-batching"
        )
    setup_logging(verbose)
    options = ServerOptions(
        name=model_name,
        host=host,
        rest_port=rest_port,
        grpc_port=None if grpc_port < 0 else grpc_port,
        batching=batching,
        policy=Policy(policy),
        poll_interval=poll_interval,
        intra_op_threads=intra_op_threads,
        inter_op_threads=inter_op_threads,
        cpu_share=cpu_share,
        gpu_memory_limit_mb=gpu_memory_limit_mb,
    )
    code = run_model_server(BaseDirSource(model_base_dir.resolve()), options)
    if code:
        sys.exit(code)

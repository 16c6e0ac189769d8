"""Online predict through the emulator's Vertex endpoint vs the same replica called directly.

Owns one command that starts an emulator (tests.support.emulator.EmulatorProcess, free port,
temp data dir), puts an MNIST-size SavedModel (784-300-100-10 MLP, fixed weights, flat 784
input) in its bucket with google-cloud-storage, uploads / creates / deploys it with the GAPIC
v1 REST clients, then measures, one instance per request:

- p50 / p99 latency at 1 client and throughput at 1 and 32 closed-loop clients on
  `POST /v1/.../endpoints/E:predict` (the emulator's proxy path), and
- the same on a replica started directly (`python -m deployer.serving.replica`, same model,
  same flags), so the emulator's overhead shows as a ratio measured in the same run.

    python -m benchmarks.predict_smoke [--seconds 3] [--latency-requests 400]

Must not: leave processes running (stopped in `finally`) or judge anything. The load generator
runs in this process and competes with the server for the machine's cores: the figures are a
floor for what a separate client machine would see.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import loadgen
from benchmarks.common import free_port, percentile, stop_process

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
PARENT = "projects/bench-project/locations/us-central1"
IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest"


def _deploy(url: str, model_dir: Path) -> str:
    """Bucket + upload + endpoint + deploy through the official clients; returns the endpoint
    name."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1 as v1
    from google.cloud import storage

    creds = AnonymousCredentials()
    gcs = storage.Client(
        project="bench-project", credentials=creds, client_options={"api_endpoint": url}
    )
    bucket = gcs.create_bucket("bench-predict")
    for f in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        bucket.blob(f"mnist/{f.relative_to(model_dir).as_posix()}").upload_from_filename(str(f))
    kw: dict[str, Any] = {
        "transport": "rest",
        "client_options": {"api_endpoint": url},
        "credentials": creds,
    }
    models, endpoints = v1.ModelServiceClient(**kw), v1.EndpointServiceClient(**kw)
    model = (
        models.upload_model(
            request=v1.UploadModelRequest(
                parent=PARENT,
                model=v1.Model(
                    display_name="mnist",
                    artifact_uri="gs://bench-predict/mnist/",
                    container_spec=v1.ModelContainerSpec(image_uri=IMAGE),
                ),
            )
        )
        .result(timeout=60)
        .model
    )
    ep = endpoints.create_endpoint(
        parent=PARENT, endpoint=v1.Endpoint(display_name="bench"), endpoint_id="bench"
    ).result(timeout=60)
    endpoints.deploy_model(
        endpoint=ep.name,
        traffic_split={"0": 100},
        deployed_model=v1.DeployedModel(
            model=model,
            id="1",  # Vertex: 1-10 digits
            dedicated_resources=v1.DedicatedResources(
                machine_spec=v1.MachineSpec(machine_type="n1-standard-4"),
                min_replica_count=1,
                max_replica_count=1,
            ),
        ),
    ).result(timeout=300)
    return str(ep.name)


def _direct_replica(model_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deployer.serving.replica",
                "--saved-model",
                str(model_dir),
                "--model-name",
                "mnist",
                "--port",
                str(port),
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    import urllib.request

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"replica exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/v1/models/mnist", timeout=2) as r:
                if b"AVAILABLE" in r.read():
                    return proc, f"{base}/v1/models/mnist:predict"
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("replica not ready")


def _measure(url: str, bodies: list[bytes], *, seconds: float, n_latency: int) -> dict[str, float]:
    loadgen.serial_latencies(url, bodies, n=50)  # warm connections and caches
    lat = loadgen.serial_latencies(url, bodies, n=n_latency)
    out = {"p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000}
    for clients in (1, 32):
        res = loadgen.closed_loop(url, bodies, clients=clients, seconds=seconds)
        if res.errors:
            raise RuntimeError(f"{res.errors} errors at {clients} clients: {res.first_error}")
        out[f"rps_{clients}"] = res.throughput
        out[f"p50_{clients}_ms"] = percentile(res.latencies, 50) * 1000
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="closed-loop window per client count"
    )
    parser.add_argument("--latency-requests", type=int, default=400)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.support.emulator import EmulatorProcess
    from tests.support.savedmodels import make_mnist_like_model

    with tempfile.TemporaryDirectory(prefix="predict-smoke-") as tmp:
        model_dir = make_mnist_like_model(Path(tmp) / "mnist", input_shape=(784,), seed=1)
        rng = np.random.default_rng(0)
        bodies = [
            json.dumps({"instances": [x.tolist()]}).encode()
            for x in rng.random((64, 784), dtype=np.float32)
        ]
        emu = EmulatorProcess()
        direct = None
        try:
            emu.start()
            endpoint = _deploy(emu.url, model_dir)
            via = _measure(
                f"{emu.url}/v1/{endpoint}:predict",
                bodies,
                seconds=args.seconds,
                n_latency=args.latency_requests,
            )
            emu.stop()  # its replica too: the direct replica gets the machine to itself
            direct, url = _direct_replica(model_dir, Path(tmp) / "replica.log")
            raw = _measure(url, bodies, seconds=args.seconds, n_latency=args.latency_requests)
        finally:
            if direct is not None:
                stop_process(direct)
            emu.cleanup()
    print(
        f"# predict smoke: {platform.node()} {os.cpu_count()} cores, python "
        f"{platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print("one 784-float instance per request, JSON, keep-alive connections, client in-process\n")
    print(
        "| path | p50 ms (1 client) | p99 ms (1 client) | req/s 1 client | req/s 32 clients | p50 "
        "ms @32 |"
    )
    print("|---|---|---|---|---|---|")
    for label, r in (("emulator endpoint :predict", via), ("replica direct", raw)):
        print(
            f"| {label} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['rps_1']:.0f} | "
            f"{r['rps_32']:.0f} "
            f"| {r['p50_32_ms']:.2f} |"
        )
    print(
        f"\nemulator overhead at p50: {via['p50_ms'] - raw['p50_ms']:+.2f} ms; "
        f"throughput ratio at 32 clients: {via['rps_32'] / raw['rps_32']:.2f}x of direct"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

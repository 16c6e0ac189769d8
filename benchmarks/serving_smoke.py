"""Serving smoke benchmark: `deployer serve` (REST and gRPC, batching on/off) vs the model
in-process.

Owns: one command that builds an MNIST-like MLP (784-300-100-10, fixed random weights; input
[None, 28, 28] like the seed book's model), measures the SavedModel signature in-process (one
instance; 1,024 instances = the ceiling) and the runtime's full in-process REST path (JSON decode,
checks, call, JSON encode), then starts `deployer serve` with batching on and off side by side and
measures in interleaved rounds, for REST and gRPC, p50/p99 latency at 1 client and throughput at 1,
8 and 32
closed-loop clients (one instance per request), and prints a markdown table.

    python -m benchmarks.serving_smoke [--seconds 2] [--rounds 3] [--latency-requests 300]

Must not: leave servers running (stopped in `finally`) or judge anything (tests do that).
The load generator runs in this process, so on a 2-core machine it competes with the server:
the figures are a floor for what a separate client machine would see.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import loadgen
from benchmarks.common import free_ports, percentile, stop_process

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
CLIENTS = (1, 8, 32)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def in_process(model_dir: Path, images: np.ndarray) -> dict[str, Any]:
    import tensorflow as tf

    from deployer.serving import runtime

    model = runtime.load(model_dir)
    fn = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    one = tf.constant(images[:1])
    big = tf.constant(np.resize(images, (1024, 28, 28)))
    out: dict[str, Any] = {}
    for label, x, n in (("1 instance", one, 2000), ("1,024 instances", big, 100)):
        fn(flatten_input=x)
        lat = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn(flatten_input=x)
            lat.append(time.perf_counter() - t0)
        out[label] = (percentile(lat, 50), int(x.shape[0]) / percentile(lat, 50))
    body = json.dumps({"instances": images[:1].tolist()})
    lat = []
    for _ in range(2000):
        t0 = time.perf_counter()
        json.dumps(model.predict_json(json.loads(body)))
        lat.append(time.perf_counter() - t0)
    out["REST path in-process (decode+call+encode)"] = (
        percentile(lat, 50),
        1 / percentile(lat, 50),
    )
    return out


def grpc_closed_loop(
    target: str, requests: list[Any], clients: int, seconds: float, warmup: float = 0.3
) -> tuple[float, list[float], int]:
    """(throughput, latencies, errors) of `clients` closed-loop gRPC clients, one channel each."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    lock = threading.Lock()
    lat_all: list[float] = []
    counts = {"ok": 0, "err": 0}
    barrier = threading.Barrier(clients)
    start = time.perf_counter() + 0.5  # channels connect before the clock
    window = (start + warmup, start + warmup + seconds)

    def client(idx: int) -> None:
        channel = grpc.insecure_channel(target)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        stub.Predict(requests[0], timeout=10.0)
        lat: list[float] = []
        ok = err = 0
        i = idx
        barrier.wait()
        while True:
            t0 = time.perf_counter()
            if t0 >= window[1]:
                break
            try:
                stub.Predict(requests[i % len(requests)], timeout=10.0)
                good = True
            except grpc.RpcError:
                good = False
            i += clients
            t1 = time.perf_counter()
            if window[0] <= t1 <= window[1]:
                if good:
                    ok += 1
                    lat.append(t1 - t0)
                else:
                    err += 1
        channel.close()
        with lock:
            lat_all.extend(lat)
            counts["ok"] += ok
            counts["err"] += err

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts["ok"] / seconds, lat_all, counts["err"]


def grpc_serial(target: str, requests: list[Any], n: int) -> list[float]:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    for r in requests[:20]:
        stub.Predict(r, timeout=10.0)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        stub.Predict(requests[i % len(requests)], timeout=10.0)
        out.append(time.perf_counter() - t0)
    return out


class Server:
    """One `deployer serve` process under test, with its request bodies prepared."""

    def __init__(self, base: Path, workdir: Path, mode: str, params: Path | None) -> None:
        self.mode = mode
        self.rest, self.grpc_port = free_ports(2)
        self.log = workdir / f"serve-{mode}.log"
        cmd = [
            sys.executable,
            "-m",
            "deployer",
            "serve",
            str(base),
            "--model-name",
            "mnist",
            "--rest-port",
            str(self.rest),
            "--grpc-port",
            str(self.grpc_port),
            "--enable-batching" if mode == "on" else "--no-enable-batching",
        ]
        if mode == "on" and params is not None:
            cmd += ["--batching-parameters", str(params)]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            )
        self.url = f"http://127.0.0.1:{self.rest}/v1/models/mnist:predict"
        self.target = f"127.0.0.1:{self.grpc_port}"
        self.latency: dict[str, list[float]] = {"REST": [], "gRPC": []}
        self.tput: dict[tuple[str, int], list[float]] = {}
        self.errors = {"REST": 0, "gRPC": 0}


def measure(
    servers: list[Server], images: np.ndarray, seconds: float, latency_requests: int, rounds: int
) -> None:
    """Interleave rounds across servers, so load drift on a shared machine hits all alike."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    bodies = [json.dumps({"instances": images[i : i + 1].tolist()}).encode() for i in range(64)]
    reqs = []
    for i in range(64):
        r = predict_pb2.PredictRequest()
        r.model_spec.name = "mnist"
        r.inputs["flatten_input"].CopyFrom(tf.make_tensor_proto(images[i : i + 1]))
        reqs.append(r)
    for s in servers:
        _wait_ready(f"http://127.0.0.1:{s.rest}/healthz", s.proc, s.log)
        loadgen.serial_latencies(s.url, bodies, n=50)
    for _ in range(rounds):
        for s in servers:
            s.latency["REST"] += loadgen.serial_latencies(s.url, bodies, n=latency_requests)
            s.latency["gRPC"] += grpc_serial(s.target, reqs, latency_requests)
        for clients in CLIENTS:
            for s in servers:
                r = loadgen.closed_loop(s.url, bodies, clients=clients, seconds=seconds)
                s.tput.setdefault(("REST", clients), []).append(r.throughput)
                s.errors["REST"] += r.errors
                tput, _, errs = grpc_closed_loop(s.target, reqs, clients, seconds)
                s.tput.setdefault(("gRPC", clients), []).append(tput)
                s.errors["gRPC"] += errs


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"deployer serve exited: {log.read_text()[-2000:]}")
        try:
            _get(url)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"deployer serve not ready after {timeout}s")


def render(inproc: dict[str, Any], servers: list[Server], rounds: int) -> str:
    lines = [
        (
            f"Serving smoke benchmark - {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
            f"medians of {rounds} interleaved rounds"
        ),
        "",
        "| in-process (SavedModel signature) | p50 ms | instances/s |",
        "|---|---|---|",
    ]
    for label, (p50, ips) in inproc.items():
        lines.append(f"| {label} | {_ms(p50)} | {ips:,.0f} |")
    lines += [
        "",
        "| deployer serve, one instance per request | p50 ms (1 client) | p99 ms | "
        + " | ".join(f"req/s @{c}" for c in CLIENTS)
        + " | errors |",
        "|---|---|---|" + "---|" * len(CLIENTS) + "---|",
    ]
    for s in servers:
        for proto in ("REST", "gRPC"):
            lat = s.latency[proto]
            lines.append(
                f"| {proto}, batching {s.mode} | {_ms(percentile(lat, 50))} | "
                f"{_ms(percentile(lat, 99))} | "
                + " | ".join(f"{statistics.median(s.tput[(proto, c)]):,.0f}" for c in CLIENTS)
                + f" | {s.errors[proto]} |"
            )
    by_mode = {s.mode: s for s in servers}
    if "on" in by_mode and "off" in by_mode:
        on, off = by_mode["on"], by_mode["off"]
        stats = json.loads(_get(f"http://127.0.0.1:{on.rest}/v1/models/mnist/stats"))
        mean = stats["versions"]["1"]["batching"]["serving_default"]["mean_batch_size"]
        lines.append("")
        for proto in ("REST", "gRPC"):
            ratio = statistics.median(on.tput[(proto, 32)]) / max(
                1e-9, statistics.median(off.tput[(proto, 32)])
            )
            lines.append(f"{proto} at 32 clients: batching on / off = {ratio:.2f}x")
        lines.append(f"mean batch size with batching on, over the whole run: {mean}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="window per throughput run")
    parser.add_argument("--latency-requests", type=int, default=300, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="on,off", help="batching modes to run: on,off")
    parser.add_argument(
        "--batching-parameters",
        type=Path,
        default=None,
        help="TF Serving batching parameters file for the batching-on server",
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.support.savedmodels import make_mnist_like_model

    with tempfile.TemporaryDirectory(prefix="serving-smoke-") as tmp:
        work = Path(tmp)
        base = work / "mnist"
        make_mnist_like_model(base / "0001")
        images = np.random.default_rng(0).random((1024, 28, 28), dtype=np.float32).round(3)
        inproc = in_process(base / "0001", images)
        servers = [
            Server(base, work, mode, args.batching_parameters) for mode in args.modes.split(",")
        ]
        try:
            measure(servers, images, args.seconds, args.latency_requests, args.rounds)
            report = render(inproc, servers, args.rounds)
        finally:
            for s in servers:
                stop_process(s.proc)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

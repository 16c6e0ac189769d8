"""Per framework: replica ready time and one-instance predict latency (p50, p99).

Owns one measured comparison on one machine, for the replicas the emulator starts:
- scikit-learn, XGBoost and PyTorch (when torch is installed: the `pytorch` extra):
  `python -m deployer.serving.prebuilt` on the example models (scripts/train_frameworks.py),
  as the emulator runs them;
- the custom container: examples/custom-container's image under Podman/Docker, its model
  read from a directory mounted read-only (skipped when no runtime works);
Ready time = process start -> health route answers 200 (imports, model load, container start).
Latency = sequential POSTs of one instance over one keep-alive connection (--n of them after
20 warmups), measured client-side with http.client.

Run: `python -m benchmarks.frameworks_smoke [--n 500]` (trains the examples into a temp dir).
Must not: leave processes or containers behind.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import train_frameworks  # noqa: E402 - scripts/ is importable only after the line above


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, route: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"replica exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", route)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError("replica not ready")


def _latency(port: int, route: str, instance: list[float], n: int) -> tuple[float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = json.dumps({"instances": [instance]}).encode()
    times = []
    for i in range(n + 20):
        t0 = time.perf_counter()
        conn.request("POST", route, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"predict answered {resp.status}")
        if i >= 20:
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1e3, times[int(len(times) * 0.99)] * 1e3


def _measure(name: str, cmd: list[str], port: int, instance: list[float], n: int) -> None:
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(port, "/health", proc)
        ready = time.monotonic() - t0
        p50, p99 = _latency(port, "/predict", instance, n)
        print(f"{name:18s} ready {ready:6.2f} s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    finally:
        proc.terminate()
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        models, data = Path(tmp) / "models", Path(tmp) / "data"
        train_frameworks.train_sklearn(models / "sklearn_iris", data)
        train_frameworks.train_xgboost(models / "xgboost_cancer", data)
        train_frameworks.train_custom(models / "custom_diabetes", data)
        served = [("sklearn", "sklearn_iris", "iris"), ("xgboost", "xgboost_cancer", "cancer")]
        if train_frameworks.train_pytorch(models / "pytorch_wine", data) is None:
            print("pytorch            skipped: torch is not installed")
        else:
            served.append(("pytorch", "pytorch_wine", "wine"))
        for framework, model, stem in served:
            port = _free_port()
            instance = json.loads((data / f"{stem}_batch.jsonl").read_text().splitlines()[0])
            cmd = [sys.executable, "-m", "deployer.serving.prebuilt", "--framework", framework]
            cmd += ["--artifact", str(models / model), "--port", str(port)]
            _measure(framework, cmd, port, instance, args.n)

        from deployer.emulator.vertex import containers

        try:
            runtime = containers.find_runtime()
        except containers.ContainerRuntimeMissing as exc:
            print(f"custom-container   skipped: {exc}")
            return 0
        build = ROOT / "examples" / "custom-container" / "build.sh"
        subprocess.run(["bash", str(build)], check=True, stdout=subprocess.DEVNULL)
        port = _free_port()
        name = f"deployer-bench-{os.getpid()}"
        cmd = [runtime, "run", "--rm", "--name", name, "--network=host", "--pull=never"]
        cmd += ["-v", f"{models / 'custom_diabetes'}:/model:ro", "-e", f"AIP_HTTP_PORT={port}"]
        cmd += ["-e", "AIP_STORAGE_URI=/model", "-e", "STORAGE_EMULATOR_HOST=unused"]
        cmd.append("localhost/deployer-custom-example:1")
        instance = json.loads((data / "diabetes_batch.jsonl").read_text().splitlines()[0])
        try:
            _measure("custom-container", cmd, port, instance, args.n)
        finally:
            subprocess.run([runtime, "rm", "-f", name], capture_output=True, check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

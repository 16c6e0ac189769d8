"""Emulator `:predict` through wrk, one emulator per source tree, rounds interleaved.

Owns: the before/after measurement of the HTTP stack (issue 12): it starts one emulator from
each given source tree (same virtualenv; `PYTHONPATH` and working dir set to the tree), deploys
the MNIST MLP on each with the official SDK (`emulator_setup.deploy_endpoint`), then runs wrk
(a C load generator: the Python closed-loop client spends about half of this 2-core machine
itself) against each `:predict` URL, alternating trees round by round so load drift on the
shared machine hits them alike, and prints requests/s, latency percentiles and the CPU time
per request of the emulator and of its replica process tree (read from /proc: on a machine
shared with other work, CPU per request is steadier than throughput).

    python -m benchmarks.http_compare --tree /work/wt/main-before --tree . [--seconds 8]
        [--rounds 2] [--connections 1,32]

Needs `wrk` on PATH (`apt-get install -y wrk`) and the example model (scripts/train_mnist.py).
Must not: be a timed test, or write BENCHMARKS.md (its figures are copied there by hand).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.common import (
    Emulator,
    Skip,
    mnist_model_dir,
    mnist_test_images,
    stop_process,
    temp_dir,
    wait_http,
)
from benchmarks.procfs import process_cpu_seconds, process_tree


class TreeEmulator(Emulator):
    """An emulator run from another source tree (e.g. a worktree of main for "before")."""

    def __init__(self, workdir: Path, tree: Path) -> None:
        super().__init__(workdir)
        self.tree = tree.resolve()

    def start(self, *, timeout: float = 60.0) -> TreeEmulator:
        env = dict(os.environ, PYTHONPATH=str(self.tree), TF_CPP_MIN_LOG_LEVEL="2")
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        cmd = [sys.executable, "-m", "deployer", "local", "run", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir)]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=self.tree, env=env
            )
        wait_http(f"{self.url}/_emulator/health", timeout=timeout, proc=self.proc)
        return self


def _cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of the emulator process itself and of its descendants (the replicas)."""
    tree = process_tree(pid)
    return process_cpu_seconds(pid), sum(process_cpu_seconds(p) for p in tree[1:])


def _wrk(url: str, lua: Path, connections: int, seconds: int, pid: int) -> dict[str, float]:
    cpu_before = _cpu(pid)
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(lua),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m[1]) * units[m[2]] if m else float("nan")

    cpu_after = _cpu(pid)
    total = re.search(r"(\d+) requests in", out)
    n = int(total[1]) if total else 0
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if bad or errors:
        print(f"  warning: {bad[0] if bad else ''} {errors[0] if errors else ''}", flush=True)
    return {
        "rps": float(rps[1]) if rps else 0.0,
        "p50": latency("50"),
        "p99": latency("99"),
        # CPU milliseconds per request: emulator, replica(s)
        "cpu_emu": (cpu_after[0] - cpu_before[0]) * 1e3 / max(n, 1),
        "cpu_rep": (cpu_after[1] - cpu_before[1]) * 1e3 / max(n, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http_compare")
    parser.add_argument("--tree", type=Path, action="append", required=True)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", default="1,32")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not on PATH (apt-get install -y wrk)", file=sys.stderr)
        return 2
    from benchmarks.emulator_setup import deploy_endpoint

    conns = [int(c) for c in args.connections.split(",")]
    x, _ = mnist_test_images(1)
    body = json.dumps({"instances": [x[0].tolist()]})
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    with temp_dir() as work:
        lua = work / "post.lua"
        lua.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = [==[{body}]==]\n"
        )
        emulators: list[tuple[str, TreeEmulator, str]] = []
        try:
            for i, tree in enumerate(args.tree):
                emu = TreeEmulator(work, tree).start()
                url = deploy_endpoint(emu, mnist_model_dir(), name=f"http-compare-{i}")
                label = f"{tree.resolve()} ({_git_head(tree)})"
                emulators.append((label, emu, url))
                subprocess.run(  # warm up: the first requests load and trace the model
                    ["wrk", "-t1", "-c4", "-d2s", "-s", str(lua), url],
                    capture_output=True,
                    check=False,
                )
            for r in range(args.rounds):
                for c in conns:
                    for label, emu, url in emulators:
                        assert emu.proc is not None
                        m = _wrk(url, lua, c, args.seconds, emu.proc.pid)
                        results.setdefault((label, c), []).append(m)
                        print(
                            f"round {r + 1} c={c:<3} {m['rps']:>9,.0f} req/s  "
                            f"p50 {m['p50']:.2f} ms  p99 {m['p99']:.2f} ms  "
                            f"CPU/req emulator {m['cpu_emu']:.3f} ms replica {m['cpu_rep']:.3f} ms"
                            f"  {label}",
                            flush=True,
                        )
        except Skip as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            return 2
        finally:
            for _, emu, _ in emulators:
                if emu.proc is not None:
                    stop_process(emu.proc, timeout=20)
    print("\nmedian over rounds:")
    for (label, c), ms in results.items():
        print(
            f"c={c:<3} {statistics.median(m['rps'] for m in ms):>9,.0f} req/s  "
            f"p50 {statistics.median(m['p50'] for m in ms):.2f} ms  "
            f"CPU/req emulator {statistics.median(m['cpu_emu'] for m in ms):.3f} ms "
            f"replica {statistics.median(m['cpu_rep'] for m in ms):.3f} ms  {label}"
        )
    if len(args.tree) == 2:
        first, second = (f"{t.resolve()} ({_git_head(t)})" for t in args.tree)
        for c in conns:
            a = statistics.median(m["rps"] for m in results[(first, c)])
            b = statistics.median(m["rps"] for m in results[(second, c)])
            print(f"c={c}: second/first = {b / a:.2f}x")
    return 0


def _git_head(tree: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


if __name__ == "__main__":
    sys.exit(main())

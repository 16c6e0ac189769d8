"""Benchmark 3: online prediction of the MNIST example, one instance per request.

Owns: p50/p99 latency at 1 client and throughput at 1, 8 and 32 closed-loop clients for
- the emulator's Vertex endpoint (`:predict`, routed to a replica process),
- a serving replica called directly (TF Serving REST), with dynamic batching on and off,
- the naive Flask server (`benchmarks/naive_server.py`, `model.predict` per request),
and the in-process references: the SavedModel signature on one instance and on 1,024
instances (the ceiling). Rounds are interleaved across servers so load drift on the shared
machine hits all of them alike; medians over rounds, IQR as spread.

Must not: run servers past the benchmark (every process it starts is stopped in `finally`).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import loadgen, serving_rows
from benchmarks.common import (
    REPO_ROOT,
    BenchResult,
    Skip,
    Stats,
    bench_env,
    fmt_num,
    free_port,
    mnist_model_dir,
    mnist_test_images,
    percentile,
    stop_process,
    summarize,
)

TITLE = "3. Online prediction"
MODEL_NAME = "mnist"
MNIST_CNN = REPO_ROOT / "models" / "my_mnist_model" / "0002"  # F's CNN: a costlier model call
CONCURRENCY = (1, 8, 32)


@dataclass
class Target:
    """A server under test."""

    name: str
    url: str = ""  # the predict URL
    proc: subprocess.Popen[bytes] | None = None
    error: str = ""  # why it is not available
    stats: dict[int, list[float]] = field(default_factory=dict)  # clients -> throughput per round
    latencies: list[float] = field(default_factory=list)  # 1-client serial latencies (s)
    errors: int = 0
    first_error: str = ""
    log: Path | None = None  # the process's output, quoted when it fails


def _spawn(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as err:
        return subprocess.Popen(
            cmd,
            stdout=err,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=bench_env(),
            start_new_session=True,
        )


def _tail(path: Path, n: int = 300) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-n:].strip().replace("\n", " | ")
    return ""


def start_replica(model_dir: Path, workdir: Path, *, batching: bool) -> Target:
    name = f"replica, batching {'on' if batching else 'off'}"
    try:
        import deployer.serving.replica  # noqa: F401 - only checks that it exists
    except ImportError as exc:
        return Target(name, error=f"deployer.serving.replica is not importable ({exc})")
    port = free_port()
    log = workdir / f"replica-{port}.log"
    proc = _spawn(
        [
            sys.executable,
            "-m",
            "deployer.serving.replica",
            "--saved-model",
            str(model_dir),
            "--model-name",
            MODEL_NAME,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--batching" if batching else "--no-batching",
        ],
        log,
    )
    return Target(
        name, url=f"http://127.0.0.1:{port}/v1/models/{MODEL_NAME}:predict", proc=proc, log=log
    )


def start_naive(model_dir: Path, workdir: Path) -> Target:
    port = free_port()
    log = workdir / f"naive-{port}.log"
    proc = _spawn(
        [
            sys.executable,
            "-m",
            "benchmarks.naive_server",
            "--saved-model",
            str(model_dir),
            "--port",
            str(port),
            "--model-name",
            MODEL_NAME,
        ],
        log,
    )
    return Target(
        "naive Flask + model.predict",
        url=f"http://127.0.0.1:{port}/v1/models/{MODEL_NAME}:predict",
        proc=proc,
        log=log,
    )


def _log_tail(t: Target) -> str:
    return _tail(t.log) if t.log else ""


def wait_ready(t: Target, body: bytes, *, timeout: float) -> None:
    """Wait until a predict answers 200; on failure keep the reason in t.error."""
    if not t.url:
        return
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if t.proc is not None and t.proc.poll() is not None:
            t.error = f"exited with {t.proc.returncode}; {_log_tail(t)}"
            t.url = ""
            return
        try:
            loadgen.serial_latencies(t.url, [body], n=1)
            t.error = ""
            return
        except (OSError, RuntimeError) as exc:
            last = str(exc)[:200]
            time.sleep(0.25)
    t.error = f"not ready after {timeout:.0f} s ({last}); {_log_tail(t)}"
    t.url = ""


def in_process(model_dir: Path, x: Any, *, repeat: int) -> tuple[Stats, Stats]:
    """(seconds per single-instance call, seconds per 1,024-instance call) of the signature."""
    import tensorflow as tf

    fn = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    one = [tf.constant(x[i : i + 1]) for i in range(200)]
    batch = tf.constant(x[:1024])
    for t in one[:20]:
        fn(flatten_input=t)
    fn(flatten_input=batch)
    singles: list[float] = []
    for _ in range(repeat):
        for t in one:
            t0 = time.perf_counter()
            fn(flatten_input=t)
            singles.append(time.perf_counter() - t0)
    batches = []
    for _ in range(max(10, repeat * 5)):
        t0 = time.perf_counter()
        fn(flatten_input=batch)
        batches.append(time.perf_counter() - t0)
    return summarize(singles), summarize(batches)


@contextlib.contextmanager
def running(targets: list[Target]) -> Iterator[list[Target]]:
    try:
        yield targets
    finally:
        for t in targets:
            if t.proc is not None:
                stop_process(t.proc)


def _measure_round(t: Target, bodies: list[bytes], seconds: float) -> None:
    for c in CONCURRENCY:
        r = loadgen.closed_loop(t.url, bodies, clients=c, seconds=seconds)
        t.stats.setdefault(c, []).append(r.throughput)
        t.errors += r.errors
        t.first_error = t.first_error or r.first_error


def run(ctx: Any) -> BenchResult:
    res = BenchResult(name="serving", title=TITLE)
    model_dir = mnist_model_dir()
    x, source = mnist_test_images(1024)
    bodies = [json.dumps({"instances": [img.tolist()]}).encode() for img in x[:256]]
    rounds = ctx.repeats(full=3, quick=1)
    seconds = 1.0 if ctx.quick else 2.0
    n_serial = 100 if ctx.quick else 300

    # Start every server first (they load TensorFlow in parallel), then measure.
    from benchmarks.emulator_setup import deploy_endpoint  # lazy: needs the emulator pieces

    work = ctx.workdir / "serving"
    work.mkdir()
    targets = [
        start_replica(model_dir, work, batching=True),
        start_replica(model_dir, work, batching=False),
        start_naive(model_dir, work),
    ]
    emulator_target = Target("emulator endpoint (:predict)")
    with running(targets):
        try:
            emulator_target.url = deploy_endpoint(ctx.emulator(), model_dir, name="bench-serving")
        except Skip as exc:
            emulator_target.error = str(exc)
        all_targets = [emulator_target, *targets]
        for t in all_targets:
            wait_ready(t, bodies[0], timeout=180)
        live = [t for t in all_targets if t.url]
        if not live:
            raise Skip(
                "no server came up: " + "; ".join(f"{t.name}: {t.error}" for t in all_targets)
            )

        ceiling_single, ceiling_batch = in_process(model_dir, x, repeat=rounds)

        for t in live:
            n = n_serial if "naive" not in t.name else max(30, n_serial // 5)
            t.latencies = loadgen.serial_latencies(t.url, bodies, n=n)
        for _ in range(rounds):
            for t in live:
                _measure_round(t, bodies, seconds)
        wrk_rows = BenchResult(name="serving", title=TITLE)
        _wrk_rows(wrk_rows, ctx, targets, emulator_target, bodies[0], ceiling_single.median)

    # ---- rows
    res.add(
        "in-process signature, 1 instance",
        ceiling_single.median * 1e3,
        "ms",
        spread=f"p99 {fmt_num(ceiling_single.p99 * 1e3)} ms (n={ceiling_single.n})",
    )
    ceiling = 1024 / ceiling_batch.median
    res.add(
        "in-process signature, 1,024 instances (ceiling)",
        ceiling,
        "pred/s",
        spread=f"{fmt_num(ceiling_batch.median * 1e3)} ms/batch; IQR "
        f"{fmt_num(1024 / ceiling_batch.q3)}–"
        f"{fmt_num(1024 / ceiling_batch.q1)} (n={ceiling_batch.n})",
    )
    by_name = {t.name: t for t in all_targets}
    naive = by_name["naive Flask + model.predict"]
    naive32 = _median(naive.stats.get(32))
    on = by_name["replica, batching on"]
    off = by_name["replica, batching off"]

    for t in all_targets:
        if not t.url and not t.stats:
            res.notes.append(f"{t.name}: not measured ({t.error})")
            continue
        lat = summarize(t.latencies)
        is_emu = t is emulator_target
        res.add(
            f"{t.name}: latency, 1 client",
            lat.median * 1e3,
            "ms",
            spread=f"p99 {fmt_num(percentile(t.latencies, 99) * 1e3)} ms (n={lat.n})",
            figures={"p99": percentile(t.latencies, 99) * 1e3},
            target="p50 <= 3 ms" if is_emu else "",
            met=(lat.median <= 0.003) if is_emu else None,
        )
        for c in CONCURRENCY:
            s = t.stats.get(c)
            if not s:
                continue
            st = summarize(s)
            row = res.add(
                f"{t.name}: throughput, {c} client{'s' if c > 1 else ''}",
                st.median,
                "pred/s",
                spread=f"IQR {fmt_num(st.q1)}–{fmt_num(st.q3)} (n={st.n})",
            )
            if c == 32 and t is not naive and naive32:
                row.ratio, row.baseline = st.median / naive32, "naive server"
            if c == 32 and is_emu:
                row.target = ">= 1,000 pred/s and >= 40x naive"
                row.met = st.median >= 1000 and (row.ratio or 0) >= 40
                res.notes.append(
                    f"emulator endpoint at 32 clients = {st.median / ceiling:.1%} of the "
                    "in-process 1,024-batch ceiling."
                )
            if c == 32 and t is on and off.stats.get(32):
                row.ratio, row.baseline = st.median / _median(off.stats[32]), "batching off"
                row.target, row.met = "batching >= 1.5x off", row.ratio >= 1.5
        if t.errors:
            res.notes.append(f"{t.name}: {t.errors} failed requests (first: {t.first_error})")
    res.rows.extend(wrk_rows.rows)
    res.notes.extend(wrk_rows.notes)
    serving_rows.ready_times(res, ctx)
    cnn_batching(res, ctx, bodies, rounds=rounds, seconds=seconds)
    res.notes.append(
        f"Instances: {source}, one 28x28 float32 image per request as a JSON list "
        "(~4 KB bodies: pixel values 0..255), pre-encoded before the clock starts."
    )
    res.notes.append(
        f"Closed-loop clients (benchmarks/loadgen.py, one keep-alive http.client connection each) "
        f"in the benchmark process; {rounds} round(s) of {seconds:.0f} s per concurrency, "
        "interleaved across servers. Clients and servers share the machine's cores, so "
        "throughput here is a floor of what a separate client machine would see."
    )
    return res


def _wrk_rows(
    res: BenchResult,
    ctx: Any,
    targets: list[Target],
    emulator: Target,
    body: bytes,
    in_process_s: float,
) -> None:
    """The wrk-measured rows (serving_rows): batching on/off five runs, p50 over in-process."""
    if not serving_rows.has_wrk():
        res.notes.append("wrk rows: not measured (wrk is not on PATH: apt-get install -y wrk)")
        return
    lua = serving_rows.wrk_script(ctx.workdir / "serving", body)
    by_name = {t.name: t for t in targets}
    on, off = by_name["replica, batching on"], by_name["replica, batching off"]
    seconds = 1 if ctx.quick else 2
    if on.url and off.url and on.proc is not None and off.proc is not None:
        serving_rows.batching_five_runs(
            res, (on.url, on.proc.pid), (off.url, off.proc.pid), lua, seconds=seconds
        )
    emu_proc = ctx.emulator().proc
    if emulator.url and emu_proc is not None:
        serving_rows.p50_over_in_process(
            res, emulator.url, lua, emu_proc.pid, in_process_s * 1e3, seconds=seconds
        )


def cnn_batching(
    res: BenchResult, ctx: Any, bodies: list[bytes], *, rounds: int, seconds: float
) -> None:
    """Batching on vs off at 32 clients for the example's CNN (0002): a model whose call costs
    more than the MLP's, so it shows what batching buys once the model dominates a request."""
    cnn = MNIST_CNN
    if not (cnn / "saved_model.pb").exists():
        res.notes.append(f"CNN batching: skipped ({cnn} is missing; run scripts/train_mnist.py)")
        return
    work = ctx.workdir / "serving-cnn"
    work.mkdir()
    targets = [start_replica(cnn, work, batching=True), start_replica(cnn, work, batching=False)]
    with running(targets):
        for t in targets:
            wait_ready(t, bodies[0], timeout=180)
        if not all(t.url for t in targets):
            res.notes.append(
                "CNN batching: not measured (" + "; ".join(t.error for t in targets) + ")"
            )
            return
        for _ in range(rounds):
            for t in targets:
                r = loadgen.closed_loop(t.url, bodies, clients=32, seconds=seconds)
                t.stats.setdefault(32, []).append(r.throughput)
    on, off = (summarize(t.stats[32]) for t in targets)
    ratio = on.median / off.median
    res.add(
        "CNN (0002) replica, batching off: throughput, 32 clients",
        off.median,
        "pred/s",
        spread=f"IQR {fmt_num(off.q1)}–{fmt_num(off.q3)} (n={off.n})",
    )
    res.add(
        "CNN (0002) replica, batching on: throughput, 32 clients",
        on.median,
        "pred/s",
        spread=f"IQR {fmt_num(on.q1)}–{fmt_num(on.q3)} (n={on.n})",
        ratio=ratio,
        baseline="batching off",
        target="batching >= 1.5x off",
        met=ratio >= 1.5,
    )


def _median(xs: list[float] | None) -> float:
    return summarize(xs).median if xs else 0.0

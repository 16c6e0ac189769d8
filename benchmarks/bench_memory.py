"""Benchmark 6: resident memory of the emulator control plane, a replica, batch jobs and uploads.

Owns: RSS (from /proc, process trees included) of
- the emulator control plane idle, and with 20 models registered (and whether TensorFlow is
  mapped into it: it must not be; only replicas load TensorFlow),
- one serving replica of the MNIST example, after warmup and after a burst of requests,
- a batch job over a large and a small MNIST input (peak of the CLI and of the emulator tree,
  replicas included): flat means streamed,
- uploading a large and a small artifact (peak of the uploading CLI and of the emulator).
Peaks are sampled every 50 ms by `common.PeakRss`. Big inputs are generated in the run's temp
dir (sparse where the format allows) and removed with it.

Must not: leave processes or the multi-GB temp files behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import loadgen
from benchmarks.common import (
    MB,
    BenchResult,
    Emulator,
    Skip,
    bench_env,
    free_port,
    mnist_model_dir,
    mnist_test_images,
    stop_process,
    wait_http,
)
from benchmarks.procfs import PeakRss, modules_loaded, rss_bytes

TITLE = "6. Memory"
CONTROL_PLANE_LIMIT_MB = 150
# Input sizes of the batch memory runs (rows); 10x apart so growth shows. The 1,000,000-row run
# issue 8 names takes ~10+ minutes on 2 cores: BENCH_BATCH_ROWS=10000,1000000 runs it.
BATCH_ROWS = (10_000, 100_000)
BATCH_ROWS_QUICK = (2_000, 20_000)
FLAT_TARGET = "flat (+<= 10%)"
TF_MARKER = "_pywrap_tensorflow"  # the TensorFlow extension's shared object, mapped once imported


def is_flat(small_mb: float, big_mb: float) -> bool:
    """Flat: 10x (or 8x) the input costs at most 10% (and at least 16 MB of slack) more memory."""
    return big_mb - small_mb <= max(0.10 * small_mb, 16.0)


def control_plane(res: BenchResult, ctx: Any) -> None:
    emu = Emulator(ctx.workdir / "memory").start()
    try:
        time.sleep(1.0)  # let start-up garbage settle
        idle = rss_bytes(emu.pid) / MB
        tf_idle = modules_loaded(emu.pid, TF_MARKER)
        res.add(
            "emulator control plane, idle",
            idle,
            "MB",
            spread="TensorFlow mapped!" if tf_idle else "no TensorFlow mapped",
            target=f"< {CONTROL_PLANE_LIMIT_MB} MB, no TF",
            met=idle < CONTROL_PLANE_LIMIT_MB and not tf_idle,
        )
        from benchmarks.emulator_setup import init_aiplatform, register_model

        model_dir = mnist_model_dir()
        try:
            first = register_model(emu, model_dir, name="mem-model-00")
            aiplatform = init_aiplatform(emu)
            for i in range(1, 20):
                aiplatform.Model.upload(
                    display_name=f"mem-model-{i:02d}",
                    artifact_uri=first.uri,
                    serving_container_image_uri=first.container_spec.image_uri,
                    sync=True,
                )
        except Exception as exc:
            res.notes.append(
                f"20 models: could not register ({type(exc).__name__}: {str(exc)[:200]})"
            )
            return
        time.sleep(0.5)
        loaded = rss_bytes(emu.pid) / MB
        tf_loaded = modules_loaded(emu.pid, TF_MARKER)
        res.add(
            "emulator control plane, 20 models registered",
            loaded,
            "MB",
            spread=("TensorFlow mapped!" if tf_loaded else "no TensorFlow mapped")
            + f"; +{loaded - idle:.1f} MB over idle",
            target=f"< {CONTROL_PLANE_LIMIT_MB} MB, no TF",
            met=loaded < CONTROL_PLANE_LIMIT_MB and not tf_loaded,
        )
    finally:
        emu.stop()


def replica(res: BenchResult, ctx: Any) -> None:
    model_dir = mnist_model_dir()
    try:
        import deployer.serving.replica  # noqa: F401
    except ImportError as exc:
        raise Skip(f"deployer.serving.replica is not importable ({exc})") from exc
    port = free_port()
    log = ctx.workdir / f"mem-replica-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deployer.serving.replica",
                "--saved-model",
                str(model_dir),
                "--model-name",
                "mnist",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=bench_env(),
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=180, proc=proc)
        warm = rss_bytes(proc.pid) / MB
        x, _ = mnist_test_images(256)
        bodies = [json.dumps({"instances": [img.tolist()]}).encode() for img in x]
        url = f"http://127.0.0.1:{port}/v1/models/mnist:predict"
        with PeakRss(proc.pid) as peak:
            r = loadgen.closed_loop(url, bodies, clients=32, seconds=3.0 if not ctx.quick else 1.0)
        after = rss_bytes(proc.pid) / MB
        res.add(
            "serving replica (MNIST MLP), warm",
            warm,
            "MB",
            spread=f"after {r.ok:,} requests at 32 clients: {after:.0f} MB (peak "
            f"{peak.peak / MB:.0f})",
        )
    finally:
        stop_process(proc)


def run(ctx: Any) -> BenchResult:
    res = BenchResult(name="memory", title=TITLE)
    parts = [
        ("control plane", control_plane),
        ("replica", replica),
        ("batch job", batch_flat),
        ("upload", upload_flat),
    ]
    for label, fn in parts:
        try:
            fn(res, ctx)
        except Skip as exc:
            res.notes.append(f"{label}: skipped ({exc})")
        except Exception as exc:
            res.notes.append(f"{label}: failed ({type(exc).__name__}: {str(exc)[:300]})")
    if not res.rows:
        raise Skip("; ".join(res.notes) or "nothing measured")
    res.notes.append(
        "RSS from /proc/<pid>/status (VmRSS); trees sum their processes; peaks sampled every 50 ms."
    )
    return res


def batch_flat(res: BenchResult, ctx: Any) -> None:
    """Peak RSS of `deployer batch-predict` and of the emulator for a small and a large input."""
    from benchmarks.bench_batch import deployer_cmd, write_jsonl, write_spec

    try:
        import deployer.cli.batch  # noqa: F401
    except ImportError as exc:
        raise Skip(f"deployer.cli.batch is not importable ({exc})") from exc
    model_dir = mnist_model_dir()
    override = os.environ.get("BENCH_BATCH_ROWS")  # e.g. "10000,1000000" for the 1M-row run
    sizes = (
        tuple(int(v) for v in override.split(","))
        if override
        else BATCH_ROWS_QUICK
        if ctx.quick
        else BATCH_ROWS
    )
    work = ctx.workdir / "mem-batch"
    work.mkdir()
    emu = Emulator(work).start()
    runs: list[tuple[int, float, float, float, float]] = []
    try:
        env = emu.client_env()
        for rows in sizes:
            root = work / f"rows-{rows}"
            root.mkdir()
            x, _ = mnist_test_images(min(rows, 10_000))
            data = write_jsonl(root / "instances.jsonl", x, rows=rows)
            spec = write_spec(root / "stack.yaml", model_dir, data, stack=f"mem-batch-{rows}")
            subprocess.run(
                [*deployer_cmd(), "apply", str(spec), "--yes"],
                env=env,
                check=True,
                capture_output=True,
                timeout=600,
            )
            t0 = time.perf_counter()
            with open(root / "batch.log", "wb") as log:
                proc = subprocess.Popen(
                    [
                        *deployer_cmd(),
                        "batch-predict",
                        str(spec),
                        "--job",
                        "mnist-batch",
                        "--output",
                        str(root / "out.jsonl"),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
                with (
                    PeakRss(proc.pid) as cli,
                    PeakRss(emu.pid, children=False) as plane,
                    PeakRss(emu.pid) as tree,
                ):
                    rc = proc.wait(timeout=3600)
            wall = time.perf_counter() - t0
            if rc != 0:
                raise Skip(
                    f"batch-predict over {rows:,} rows failed (exit {rc}): "
                    f"{(root / 'batch.log').read_text(errors='replace')[-300:]}"
                )
            runs.append((rows, cli.peak / MB, plane.peak / MB, tree.peak / MB, wall))
            shutil.rmtree(root, ignore_errors=True)
    finally:
        emu.stop()
        shutil.rmtree(work, ignore_errors=True)
    (n1, cli1, plane1, tree1, w1), (n2, cli2, plane2, tree2, w2) = runs
    per_million = (cli2 - cli1) / (n2 - n1) * 1_000_000
    res.add(
        f"batch-predict CLI, {n1:,} rows, peak",
        cli1,
        "MB",
        spread=f"emulator control plane {plane1:.0f} MB, with job replicas {tree1:.0f} MB; "
        f"{w1:.0f} s",
    )
    res.add(
        f"batch-predict CLI, {n2:,} rows, peak",
        cli2,
        "MB",
        spread=f"emulator control plane {plane2:.0f} MB, with job replicas {tree2:.0f} MB; "
        f"{w2:.0f} s",
        ratio=cli2 / cli1,
        baseline=f"the {n1:,}-row run",
        target=FLAT_TARGET,
        met=is_flat(cli1, cli2),
    )
    res.add(
        f"emulator control plane during the {n2:,}-row job, peak",
        plane2,
        "MB",
        ratio=plane2 / plane1,
        baseline=f"the {n1:,}-row run",
        target=FLAT_TARGET,
        met=is_flat(plane1, plane2),
    )
    res.notes.append(
        f"batch-predict CLI memory grows {per_million:,.0f} MB per million rows "
        f"(slope between the two runs); 1,000,000 rows would peak near "
        f"{cli1 + per_million * (1_000_000 - n1) / 1_000_000:,.0f} MB."
    )


def _sparse_artifact(root: Path, big_bytes: int) -> Path:
    """A valid tiny SavedModel plus one sparse file of `big_bytes` (zeros; no disk used here)."""
    from benchmarks.bench_noop_apply import make_models

    model = make_models(root, 1)[0]
    (model / "assets").mkdir(exist_ok=True)
    with open(model / "assets" / "big.bin", "wb") as f:
        f.truncate(big_bytes)
    return model


def upload_flat(res: BenchResult, ctx: Any) -> None:
    """Peak RSS of `deployer apply` (hash + upload + register) for a small and a large artifact."""
    from benchmarks.bench_noop_apply import deployer_cmd

    try:
        import deployer.cli.stack  # noqa: F401
    except ImportError as exc:
        raise Skip(f"deployer.cli.stack is not importable ({exc})") from exc
    sizes = [64 * MB, 512 * MB] if ctx.quick else [256 * MB, 2048 * MB]
    work = ctx.workdir / "mem-upload"
    work.mkdir()
    emu = Emulator(work).start()
    peaks: list[tuple[int, float, float, float]] = []
    try:
        for size in sizes:
            root = work / f"artifact-{size // MB}"
            model = _sparse_artifact(root, size)
            spec = root / "stack.yaml"
            stack = f"mem-up-{size // MB}"
            spec.write_text(
                f"stack: {stack}\nproject: bench-project\nregion: us-central1\ntarget: local\n"
                f"bucket: {{name: {stack}-artifacts, create: true}}\nmodels:\n  - name: big\n"
                "    container: us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest\n"
                f"    versions:\n      - {{alias: v1, artifact: {model}}}\n"
            )
            emu_before = rss_bytes(emu.pid)
            t0 = time.perf_counter()
            with open(root / "apply.log", "wb") as log:
                proc = subprocess.Popen(
                    [*deployer_cmd(), "apply", str(spec), "--yes"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=emu.client_env(),
                    start_new_session=True,
                )
                with PeakRss(proc.pid) as cli_peak, PeakRss(emu.pid) as emu_peak:
                    rc = proc.wait(timeout=1800)
            wall = time.perf_counter() - t0
            if rc != 0:
                raise Skip(
                    f"apply of a {size // MB} MB artifact failed (exit {rc}): "
                    f"{(root / 'apply.log').read_text(errors='replace')[-300:]}"
                )
            peaks.append((size, cli_peak.peak / MB, (emu_peak.peak - emu_before) / MB, wall))
            shutil.rmtree(root, ignore_errors=True)
    finally:
        emu.stop()
        shutil.rmtree(work, ignore_errors=True)
    (s_small, cli_small, emu_small, w_small), (s_big, cli_big, emu_big, w_big) = peaks
    res.add(
        f"`deployer apply` uploading a {s_small // MB:,} MB artifact, peak",
        cli_small,
        "MB",
        spread=f"emulator +{emu_small:.0f} MB; {w_small:.0f} s",
    )
    res.add(
        f"`deployer apply` uploading a {s_big // MB:,} MB artifact, peak",
        cli_big,
        "MB",
        spread=f"emulator +{emu_big:.0f} MB; {w_big:.0f} s ({s_big / MB / w_big:.0f} MB/s)",
        ratio=cli_big / cli_small,
        baseline=f"the {s_small // MB} MB run",
        target=FLAT_TARGET,
        met=is_flat(cli_small, cli_big),
    )

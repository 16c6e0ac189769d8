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
import subprocess
import sys
import time
from typing import Any

from benchmarks import loadgen
from benchmarks.common import (
    MB,
    BenchResult,
    Emulator,
    PeakRss,
    Skip,
    bench_env,
    free_port,
    mnist_model_dir,
    mnist_test_images,
    modules_loaded,
    rss_bytes,
    stop_process,
    wait_http,
)

TITLE = "6. Memory"
CONTROL_PLANE_LIMIT_MB = 150
TF_MARKER = "_pywrap_tensorflow"  # the TensorFlow extension's shared object, mapped once imported


def control_plane(res: BenchResult, ctx: Any) -> None:
    emu = Emulator(ctx.workdir / "memory").start()
    try:
        time.sleep(1.0)  # let start-up garbage settle
        idle = rss_bytes(emu.pid) / MB
        tf_idle = modules_loaded(emu.pid, TF_MARKER)
        res.add("emulator control plane, idle", idle, "MB",
                spread="TensorFlow mapped!" if tf_idle else "no TensorFlow mapped",
                target=f"< {CONTROL_PLANE_LIMIT_MB} MB, no TF",
                met=idle < CONTROL_PLANE_LIMIT_MB and not tf_idle)
        from benchmarks.emulator_setup import init_aiplatform, register_model

        model_dir = mnist_model_dir()
        try:
            first = register_model(emu, model_dir, name="mem-model-00")
            aiplatform = init_aiplatform(emu)
            for i in range(1, 20):
                aiplatform.Model.upload(
                    display_name=f"mem-model-{i:02d}", artifact_uri=first.uri,
                    serving_container_image_uri=first.container_spec.image_uri, sync=True,
                )
        except Exception as exc:  # noqa: BLE001 - report, keep the idle figure
            res.notes.append(f"20 models: could not register ({type(exc).__name__}: {str(exc)[:200]})")
            return
        time.sleep(0.5)
        loaded = rss_bytes(emu.pid) / MB
        tf_loaded = modules_loaded(emu.pid, TF_MARKER)
        res.add("emulator control plane, 20 models registered", loaded, "MB",
                spread=("TensorFlow mapped!" if tf_loaded else "no TensorFlow mapped")
                + f"; +{loaded - idle:.1f} MB over idle",
                target=f"< {CONTROL_PLANE_LIMIT_MB} MB, no TF",
                met=loaded < CONTROL_PLANE_LIMIT_MB and not tf_loaded)
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
            [sys.executable, "-m", "deployer.serving.replica", "--saved-model", str(model_dir),
             "--model-name", "mnist", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=bench_env(), start_new_session=True,
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
        res.add("serving replica (MNIST MLP), warm", warm, "MB",
                spread=f"after {r.ok:,} requests at 32 clients: {after:.0f} MB (peak {peak.peak / MB:.0f})")
    finally:
        stop_process(proc)


def run(ctx: Any) -> BenchResult:
    res = BenchResult(name="memory", title=TITLE)
    parts = [("control plane", control_plane), ("replica", replica), ("batch job", batch_flat),
             ("upload", upload_flat)]
    for label, fn in parts:
        try:
            fn(res, ctx)
        except Skip as exc:
            res.notes.append(f"{label}: skipped ({exc})")
        except Exception as exc:  # noqa: BLE001 - one part failing keeps the others
            res.notes.append(f"{label}: failed ({type(exc).__name__}: {str(exc)[:300]})")
    if not res.rows:
        raise Skip("; ".join(res.notes) or "nothing measured")
    res.notes.append("RSS from /proc/<pid>/status (VmRSS); trees sum their processes; peaks sampled "
                     "every 50 ms.")
    return res


def batch_flat(res: BenchResult, ctx: Any) -> None:
    raise Skip("not written yet")


def upload_flat(res: BenchResult, ctx: Any) -> None:
    raise Skip("not written yet")

"""Batch prediction smoke benchmark: 10,000 MNIST instances end to end vs the in-process ceiling.

Owns one measured comparison, run in one process on one machine:
- end to end: `deployer batch-predict SPEC --json` as a subprocess against a private
  emulator (stage the JSON Lines input, create the job, the emulator streams it to a
  replica process in batches, shards are downloaded in parallel and merged in input
  order), cold (input not yet staged) and warm (input already in the bucket);
  the job's own time (create -> end, from the job's timestamps) is split out;
- the ceiling: the same SavedModel's signature called in this process in batches of 1,024.
Checks that every row's argmax equals the in-process one (input order kept).

Run: `python -m benchmarks.batch_smoke [--n 10000] [--replicas 1] [--batch-size 64]`
(needs models/my_mnist_model/0001: `python scripts/train_mnist.py`).

Must not: leave the emulator, its replicas or temp files behind.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_batch import write_jsonl, write_spec
from benchmarks.common import REPO_ROOT, Emulator, mnist_model_dir, mnist_test_images, temp_dir


def _cli(args: list[str], env: dict[str, str]) -> tuple[float, str, str]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=1800,
        check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(
            f"deployer {args[0]} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
        )
    return wall, proc.stdout, proc.stderr


def _job_seconds(url: str, job: str) -> tuple[float, float]:
    """(create -> end, start -> end) of a finished job, from its own timestamps."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1 as v1

    client = v1.JobServiceClient(
        transport="rest", credentials=AnonymousCredentials(), client_options={"api_endpoint": url}
    )
    j = client.get_batch_prediction_job(name=job)
    return (
        (j.end_time - j.create_time).total_seconds(),
        (j.end_time - j.start_time).total_seconds(),
    )


def _replica_start_seconds(stderr_log: Path, job: str) -> float | None:
    """Seconds from the job's first replica `starting` to its last `ready` (emulator log)."""
    from datetime import datetime

    stem = f"replica batch-{job.rsplit('/', 1)[-1]}-"
    times: dict[str, list[datetime]] = {"starting": [], "ready": []}
    for line in stderr_log.read_text(errors="replace").splitlines():
        if stem in line:
            for word, seen in times.items():
                if f" {word} on port" in line:
                    seen.append(datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f"))
    if not times["starting"] or not times["ready"]:
        return None
    return (max(times["ready"]) - min(times["starting"])).total_seconds()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args(argv)

    import tensorflow as tf

    model_dir = mnist_model_dir()
    x, source = mnist_test_images(args.n)
    fn = tf.saved_model.load(str(model_dir)).signatures["serving_default"]

    def in_process() -> np.ndarray:
        return np.concatenate(
            [
                fn(flatten_input=tf.constant(x[i : i + 1024]))["output_0"].numpy()
                for i in range(0, args.n, 1024)
            ]
        ).argmax(axis=1)

    reference = in_process()  # warm-up (traces the function), also the reference classes
    ceiling = min(_timed(in_process) for _ in range(3))

    with temp_dir() as work:
        data = write_jsonl(work / "mnist.jsonl", x)
        spec = write_spec(
            work / "stack.yaml",
            model_dir,
            data,
            stack="batchsmoke",
            replicas=args.replicas,
            batch_size=args.batch_size,
        )
        emu = Emulator(work).start()
        try:
            env = emu.client_env()
            _cli(["apply", str(spec), "--yes"], env)  # registers the version (untimed)
            rows: list[tuple[str, float, float, float, float | None]] = []
            for label in ("cold (input uploaded)", "warm (input already staged)"):
                out = work / f"out-{len(rows)}.npy"
                wall, stdout, _ = _cli(
                    ["batch-predict", str(spec), "--output", str(out), "--json"], env
                )
                summary = json.loads(stdout.strip().splitlines()[-1])
                job_total, job_running = _job_seconds(emu.url, summary["job"])
                got = np.load(out).argmax(axis=1)
                agree = float(np.mean(got == reference)) if len(got) == args.n else 0.0
                rows.append(
                    (
                        label,
                        wall,
                        job_total,
                        job_running,
                        _replica_start_seconds(emu.stderr_path, summary["job"]),
                    )
                )
                if agree != 1.0:
                    print(f"WARNING: {label}: argmax agrees on {agree:.2%} of rows only")
        finally:
            emu.stop()

    print(
        f"batch prediction smoke: {args.n:,} instances ({source}); model "
        f"{model_dir.relative_to(REPO_ROOT)}; "
        f"{args.replicas} replica(s), batch size {args.batch_size}"
    )
    print(
        f"  in-process signature, batches of 1,024 (ceiling): {ceiling:7.2f} s  "
        f"{args.n / ceiling:10,.0f} inst/s"
    )
    for label, wall, job_total, _job_running, replica_start in rows:
        start_text = f"{replica_start:.2f} s" if replica_start is not None else "?"
        print(
            f"  deployer batch-predict end to end, {label}: {wall:7.2f} s  {args.n / wall:10,.0f} "
            f"inst/s  "
            f"({wall / ceiling:.0f}x the ceiling's time)"
        )
        print(
            f"      job create->end {job_total:.2f} s (replica start incl. TensorFlow load "
            f"{start_text}, "
            f"so {args.n / max(1e-9, job_total - (replica_start or 0)):,.0f} inst/s once serving); "
            f"CLI staging + collect + process start {wall - job_total:.2f} s"
        )
    print("  every row's argmax equals the in-process one (input order kept)")
    return 0


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark 4, second half: an emulated batch job once its replica serves, against the ceiling.

Owns: one job per input size through the official GAPIC JobServiceClient, on N MNIST rows
(JSON lines of integer pixels, the 10,000 test images cycled) uploaded to the emulated bucket
beforehand (untimed); the job's own split of its time, replica start apart from serving (the
runner's log line: replicas ready after X s; scored in Y s and published in Z s once serving);
CPU seconds of the emulator and its replica over the serving window (sampled from /proc); their
peak RSS; and the in-process ceiling on the same rows (the SavedModel signature, batches of
1,024, wall and CPU), measured right before and right after the job so both see the same load.

Must not: leave the inputs or outputs behind (callers remove the work dir), or stop the
emulator (the caller owns it).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import MB, Emulator, Skip
from benchmarks.procfs import PeakRss, process_cpu_seconds, process_tree, rss_bytes

_DONE = re.compile(
    r"^(?P<stamp>\S+ \S+) INFO deployer\.emulator\.batch: batch job (?P<name>\S+): replicas "
    r"ready after (?P<ready>[\d.]+) s; (?P<rows>\d+) instances scored in (?P<scored>[\d.]+) s "
    r"and published in (?P<published>[\d.]+) s once serving",
    re.M,
)
CEILING_BATCH = 1024


@dataclass(frozen=True)
class ServingRun:
    """One job, timed by the emulator itself, with what it cost."""

    rows: int
    ready_s: float  # job running -> replicas ready (TensorFlow import and model load)
    scored_s: float  # replicas ready -> every row scored and written locally
    published_s: float  # outputs moved into the bucket (hashed, fsynced)
    job_wall_s: float  # create -> the client sees SUCCEEDED (polling at 0.2 s)
    cpu_s: float  # emulator + replica CPU seconds while serving
    plane_before_mb: float  # the emulator process when the job was created
    plane_peak_mb: float  # the emulator process alone, during the job
    replica_peak_mb: float  # the job's replica process(es)

    @property
    def serving_s(self) -> float:
        return self.scored_s + self.published_s

    @property
    def rate(self) -> float:
        return self.rows / self.serving_s

    @property
    def cpu_us_per_row(self) -> float:
        return self.cpu_s / self.rows * 1e6


@dataclass(frozen=True)
class Ceiling:
    rate: float  # instances/s, in-process
    cpu_us_per_row: float  # this process's CPU (TensorFlow's threads included) per row


def ceiling(fn: Any, x: np.ndarray, rows: int) -> Ceiling:
    """The signature over `rows` rows of `x` (cycled), in batches of 1,024: the ceiling."""
    import tensorflow as tf

    starts = [(i % len(x)) // CEILING_BATCH * CEILING_BATCH for i in range(0, rows, CEILING_BATCH)]
    wall, cpu = time.perf_counter(), time.process_time()
    for i, start in enumerate(starts):
        n = min(CEILING_BATCH, rows - i * CEILING_BATCH)
        fn(flatten_input=tf.constant(x[start : start + n]))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Ceiling(rows / wall, cpu / rows * 1e6)


class _Sampler:
    """CPU seconds of the emulator and each descendant every 50 ms (a replica's are gone once
    it exits, so the serving window is read from samples taken while it ran), and the peak RSS
    of the processes that were not there at the start: the job's replicas."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, dict[int, float]]] = []
        self.replica_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        existing = set(process_tree(self.pid))
        while not self._stop.is_set():
            now = time.time()
            tree = process_tree(self.pid)
            self.samples.append((now, {p: process_cpu_seconds(p) for p in tree}))
            new = sum(rss_bytes(p) for p in tree if p not in existing)
            self.replica_peak = max(self.replica_peak, new)
            self._stop.wait(0.05)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, start: float, end: float) -> float:
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return float("nan")
        first, last = inside[0][1], inside[-1][1]
        return sum(cpu - first[p] for p, cpu in last.items() if p in first)


def run_job(emu: Emulator, model: str, uri: str, rows: int, out_prefix: str) -> ServingRun:
    """Run one batch job over `uri` (already uploaded) and read back how its time was spent."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1 as v1

    jobs = v1.JobServiceClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emu.url},
    )
    job = v1.BatchPredictionJob(
        display_name=f"serving-{rows}",
        model=model,
        input_config=v1.BatchPredictionJob.InputConfig(
            instances_format="jsonl", gcs_source=v1.GcsSource(uris=[uri])
        ),
        output_config=v1.BatchPredictionJob.OutputConfig(
            predictions_format="jsonl",
            gcs_destination=v1.GcsDestination(output_uri_prefix=out_prefix),
        ),
        dedicated_resources=v1.BatchDedicatedResources(
            machine_spec=v1.MachineSpec(machine_type="n1-standard-4"),
            starting_replica_count=1,
            max_replica_count=1,
        ),
    )
    parent = model.split("/models/", 1)[0]
    before = rss_bytes(emu.pid) / MB
    with PeakRss(emu.pid, children=False) as plane, _Sampler(emu.pid) as sampler:
        t0 = time.perf_counter()
        name = jobs.create_batch_prediction_job(parent=parent, batch_prediction_job=job).name
        while True:
            got = jobs.get_batch_prediction_job(name=name)
            if got.state.name in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
                break
            time.sleep(0.2)
        wall = time.perf_counter() - t0
    if got.state.name != "JOB_STATE_SUCCEEDED":
        raise Skip(f"the {rows:,}-row job ended {got.state.name}: {got.error.message[:300]}")
    match = next(
        (m for m in _DONE.finditer(emu.stderr_path.read_text()) if m["name"] == name), None
    )
    if match is None:
        raise Skip("the emulator did not log the job's timing (an older emulator?)")
    end = datetime.strptime(match["stamp"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    scored, published = float(match["scored"]), float(match["published"])
    return ServingRun(
        rows=int(match["rows"]),
        ready_s=float(match["ready"]),
        scored_s=scored,
        published_s=published,
        job_wall_s=wall,
        cpu_s=sampler.between(end - scored - published, end),
        plane_before_mb=before,
        plane_peak_mb=plane.peak / MB,
        replica_peak_mb=sampler.replica_peak / MB,
    )


def upload(emu: Emulator, path: Path, bucket: str, name: str) -> str:
    from benchmarks.emulator_setup import ensure_bucket, storage_client

    blob = ensure_bucket(storage_client(emu), bucket).blob(name)
    blob.chunk_size = 8 * MB  # resumable, streamed: the emulator holds one chunk at a time
    blob.upload_from_filename(str(path))
    return f"gs://{bucket}/{name}"

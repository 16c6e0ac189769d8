"""The background runner of one emulated batch prediction job.

Owns what happens between QUEUED and a final state: resolving the model version,
starting replica processes through the ReplicaManager (in parallel, while the
input is counted), streaming instances in batches to the replicas concurrently
(`batch_scoring` scores a batch: JSON Lines of numbers as one array each),
keeping input order (results are drained in submission order),
writing `prediction.results-0000N-of-0000M` / `prediction.errors_stats-...`
shards (shard N holds a contiguous input range) under
`<prefix>/prediction-<model display name>-<timestamp>/`, updating
completionStats as it goes, honouring cancellation between batches, and turning
every input problem into the job's error.

Must not: import TensorFlow or deployer.serving (replicas are processes), load
whole input files in memory, or touch HTTP routes (batch_jobs.py owns the API).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import re
import shutil
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.rpc import code_pb2, status_pb2

from deployer import settings
from deployer.emulator.http import ServiceError
from deployer.emulator.objects import parse_gs_uri
from deployer.emulator.vertex import batch_tables, protos
from deployer.emulator.vertex.batch_formats import (
    InputError,
    count_valid_instances,
    expand_sources,
    iter_batches,
)
from deployer.emulator.vertex.batch_scoring import Row, Scorer, dumps, status_code
from deployer.wire import batch_formats as formats

if TYPE_CHECKING:
    from deployer.emulator.vertex.batch_jobs import BatchJobs

log = logging.getLogger("deployer.emulator.batch")

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLING, CANCELLED = 1, 3, 4, 5, 6, 7
TERMINAL = {SUCCEEDED, FAILED, CANCELLED}
STATE_NAMES = {
    "JOB_STATE_QUEUED": QUEUED,
    "JOB_STATE_RUNNING": RUNNING,
    "JOB_STATE_SUCCEEDED": SUCCEEDED,
    "JOB_STATE_FAILED": FAILED,
    "JOB_STATE_CANCELLING": CANCELLING,
    "JOB_STATE_CANCELLED": CANCELLED,
}

DEFAULT_BATCH_SIZE = 64
# Rows per request on the array path when the job sets no batch size: a TF call on 1,024
# rows costs about as much per row as on more (the in-process ceiling is measured so), and
# a 1,024-row block keeps memory small.
DEFAULT_ARRAY_BATCH_SIZE = 1024
_PERSIST_EVERY_S = 0.5
_PUBLISH_THREADS = 4  # shards are hashed and fsynced as they are published: overlap them
_WRITE_BUFFER = 1 << 20


class JobRun:
    """One execution of one job."""

    def __init__(self, jobs: BatchJobs, name: str, cancel: threading.Event) -> None:
        self.jobs = jobs
        self.name = name
        self.cancel = cancel
        self.job = jobs.require(name)
        self.ok = 0
        self.failed = 0
        self.total = 0  # instances in the input, once counted
        self._saved_at = 0.0

    def stopping(self) -> bool:
        return self.cancel.is_set() or self.jobs._shutdown.is_set()

    def execute(self) -> None:
        # --op-delay keeps jobs QUEUED that long, so tests can act on a job before it runs.
        delay = float(getattr(self.jobs.ctx.faults, "op_delay", 0.0) or 0.0)
        if delay:
            self.cancel.wait(delay)
        if self.stopping():
            return self._end(CANCELLED, code_pb2.CANCELLED, "Job cancelled before it started.")
        replicas: list[Any] = []
        try:
            state, code, message = self._process(replicas)
            self._end(state, code, message)
        finally:
            # The job is already final: stopping replicas (a drain of seconds) must not delay it.
            if replicas:
                threading.Thread(
                    target=self._stop_replicas, args=(replicas,), name="batch-replica-stop"
                ).start()

    def _process(self, replicas: list[Any]) -> tuple[int, int, str]:
        """Run the job; (final state, google.rpc code, error message). Fills `replicas`."""
        job = self.job
        job.state = RUNNING
        job.start_time.CopyFrom(protos.now_ts())
        started = time.monotonic()
        try:
            model = self.jobs.store.resolve_model(job.model)
        except ServiceError as exc:
            return FAILED, code_pb2.NOT_FOUND, exc.message
        job.model_version_id = model.version_id
        to_table = job.output_config.predictions_format == "bigquery"  # batch_tables writes it
        out_bucket, out_dir = (
            ("", "") if to_table else self._output_dir(model.display_name or "model")
        )
        self.jobs.save(job)
        objects = self.jobs.ctx.objects
        fmt = job.input_config.instances_format
        table: batch_tables.TableInput | None = None
        try:
            if fmt == "bigquery":
                uri = job.input_config.bigquery_source.input_uri
                table = batch_tables.TableInput(self.jobs.ctx.data_dir, uri)
            sources = (
                [] if table else expand_sources(objects, list(job.input_config.gcs_source.uris))
            )
        except InputError as exc:
            return FAILED, code_pb2.INVALID_ARGUMENT, str(exc)
        if not to_table and not objects.bucket_exists(out_bucket):
            return FAILED, code_pb2.INVALID_ARGUMENT, f"Output bucket {out_bucket} does not exist."
        # Replicas take seconds to load TensorFlow: count the input meanwhile (and validate
        # it, except JSON Lines rows: those are validated as they are scored, as parsing them
        # twice would double the job's cost; a malformed row still fails the job, and nothing
        # is published).
        abort = threading.Event()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-start") as pool:
            starting = pool.submit(self._start_replicas, model, abort)
            try:
                total = table.count() if table else count_valid_instances(objects, sources, fmt)
            except InputError as exc:
                abort.set()
                replicas.extend(_quiet_result(starting))
                return FAILED, code_pb2.INVALID_ARGUMENT, str(exc)
            try:
                replicas.extend(starting.result())
            except ServiceError as exc:  # the artifact is missing or unreadable
                return FAILED, status_code(exc.status), exc.message
            except _StartError as exc:
                return (
                    FAILED,
                    code_pb2.FAILED_PRECONDITION,
                    f"Could not start the model server for {job.model}: {exc}",
                )
        if total == 0:
            return FAILED, code_pb2.INVALID_ARGUMENT, "The input holds no instances."
        self.total = total
        if not replicas or self.cancel.is_set():
            return CANCELLED, code_pb2.CANCELLED, "Job cancelled."
        serving = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix="batch-", dir=self._work_root()))
        try:
            writer = _ShardWriter(work)
            try:
                self._predict_all(objects, sources, fmt, table, replicas, writer)
            except InputError as exc:  # a malformed row, or changed since it was counted
                return FAILED, code_pb2.INVALID_ARGUMENT, str(exc)
            if self.jobs._shutdown.is_set():
                return (
                    FAILED,
                    code_pb2.ABORTED,
                    "The emulator stopped while this job was running; create the job again.",
                )
            if self.cancel.is_set():
                return CANCELLED, code_pb2.CANCELLED, "Job cancelled."
            predicted = time.monotonic()
            if job.output_config.predictions_format in ("csv", "bigquery"):
                shards = writer.shards()
                batch_tables.publish(self.jobs.ctx, job, shards, model.display_name, out_dir)
            else:
                writer.publish(objects, out_bucket, out_dir)
            done = time.monotonic()
            # Benchmarks read this line: replica start apart from serving (issue 12).
            log.info(
                "batch job %s: replicas ready after %.3f s; %d instances scored in %.3f s "
                "and published in %.3f s once serving (%.0f instances/s)",
                self.name,
                serving - started,
                self.ok + self.failed,
                predicted - serving,
                done - predicted,
                (self.ok + self.failed) / max(done - serving, 1e-9),
            )
        except ServiceError as exc:  # the object store refused an output
            return FAILED, status_code(exc.status), exc.message
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if self.ok == 0:
            where = job.output_info.gcs_output_directory
            return (
                FAILED,
                code_pb2.INVALID_ARGUMENT,
                f"All {self.failed} instances failed; see prediction.errors_stats-* under {where}.",
            )
        return SUCCEEDED, 0, ""

    def _start_replicas(self, model: Any, abort: threading.Event) -> list[Any]:
        """Start the replicas in parallel (each loads TensorFlow: seconds); [] if cancelled."""
        wanted = min(
            # A laptop is not a fleet: at most this many replica processes per job.
            max(1, self.job.dedicated_resources.starting_replica_count or 1),
            settings.EMULATOR_BATCH_MAX_REPLICAS.get(),
        )
        stem = f"batch-{self.job.name.rsplit('/', 1)[-1]}"
        machine = self.job.dedicated_resources.machine_spec
        if machine.accelerator_count:
            log.info(
                "batch job %s asks for %d x %s per replica: served on CPU here",
                self.name,
                machine.accelerator_count,
                machine.accelerator_type,
            )
        stop = _AnyEvent(abort, self.cancel, self.jobs._shutdown)
        with ThreadPoolExecutor(max_workers=wanted) as pool:
            futures = [
                pool.submit(
                    self.jobs.replicas.start,
                    model.artifact_uri,
                    name=f"{stem}-{i}",
                    container=model.container_spec,
                    endpoint=self.job.name,  # AIP_PROJECT_NUMBER; the job id stands for an endpoint
                    cancelled=stop,
                )
                for i in range(wanted)
            ]
        started, errors = [], []
        for f in futures:
            try:
                started.append(f.result())
            except Exception as exc:
                errors.append(exc)
        if errors:
            self._stop_replicas(started)
            if stop.is_set():
                return []
            if isinstance(errors[0], ServiceError):
                raise errors[0]
            raise _StartError(getattr(errors[0], "message", str(errors[0])))
        return started

    def _stop_replicas(self, replicas: list[Any]) -> None:
        for r in replicas:
            try:
                self.jobs.replicas.stop(r)
            except Exception:
                log.exception("stopping batch replica %s failed", getattr(r, "name", r))

    def _work_root(self) -> Path:
        root = Path(self.jobs.ctx.data_dir) / "batch-work"
        root.mkdir(parents=True, exist_ok=True)
        return root

    def _output_dir(self, display_name: str) -> tuple[str, str]:
        prefix = self.job.output_config.gcs_destination.output_uri_prefix
        bucket, path = parse_gs_uri(prefix)
        stamp = datetime.now(UTC).strftime("%Y_%m_%dT%H_%M_%S_%f")[:-3] + "Z"
        safe = re.sub(r"[^A-Za-z0-9_-]+", "_", display_name)
        directory = f"{path.rstrip('/') + '/' if path.strip('/') else ''}prediction-{safe}-{stamp}"
        self.job.output_info.gcs_output_directory = f"gs://{bucket}/{directory}"
        return bucket, directory

    def _predict_all(
        self,
        objects: Any,
        sources: list[tuple[str, str]],
        fmt: str,
        table: batch_tables.TableInput | None,
        replicas: list[Any],
        writer: _ShardWriter,
    ) -> None:
        # BigQuery rows go to the model as arrays unless instance_type says otherwise (Vertex).
        shaper = InstanceShaper(self.job.instance_config, default_array=table is not None)
        # JSON Lines of number arrays go to TF replicas as arrays (batch_arrays), unless the
        # instance_config reshapes instances (a JSON-object operation).
        arrays = (
            fmt == "jsonl"
            and table is None
            and not shaper.active
            and all(getattr(r, "kind", "") == "tensorflow" for r in replicas)
        )
        size = self.job.manual_batch_tuning_parameters.batch_size or (
            DEFAULT_ARRAY_BATCH_SIZE if arrays else DEFAULT_BATCH_SIZE
        )
        scorer = Scorer(shaper, arrays=arrays)
        batches = (
            table.batches(size) if table is not None else iter_batches(objects, sources, fmt, size)
        )
        # Two batches in flight per replica keeps each busy while the next one is decoded and
        # travels; decoding runs in the pool's threads too (numpy releases the GIL).
        window = 2 * len(replicas)
        pending: deque[Future[list[Row]]] = deque()
        with ThreadPoolExecutor(max_workers=window, thread_name_prefix="batch-predict") as pool:
            for n, item in enumerate(batches):
                if self.stopping():
                    break
                replica = replicas[n % len(replicas)]
                pending.append(pool.submit(scorer.score, replica, item))
                while len(pending) >= window:
                    self._drain_one(pending, writer)
            while pending:
                self._drain_one(pending, writer)

    def _drain_one(self, pending: deque[Future[list[Row]]], writer: _ShardWriter) -> None:
        ok, failed = writer.add_rows(pending.popleft().result())
        self.ok += ok
        self.failed += failed
        _release_free_memory()
        now = time.monotonic()
        if now - self._saved_at >= _PERSIST_EVERY_S:
            self._saved_at = now
            self._save_progress()

    def _save_progress(self) -> None:
        # Re-read: a cancel request may have changed the state meanwhile.
        current = self.jobs.require(self.name)
        self.job.state = CANCELLING if current.state == CANCELLING else self.job.state
        self._set_counts()
        self.jobs.save(self.job)

    def _set_counts(self) -> None:
        stats = self.job.completion_stats
        stats.successful_count = self.ok
        stats.failed_count = self.failed
        stats.incomplete_count = max(0, self.total - self.ok - self.failed)

    def _end(self, state: int, code: int = 0, message: str = "") -> None:
        self._set_counts()
        finish(self.job, state, code, message)
        self.jobs.save(self.job)
        log.info(
            "batch job %s ended %s (%d ok, %d failed) %s",
            self.name,
            state_name(state),
            self.ok,
            self.failed,
            message,
        )


class _ShardWriter:
    """Writes result/error rows to local shard files, `shard_rows` input rows per shard.

    Shards are contiguous input ranges, so their count follows the input.
    """

    def __init__(self, work: Path) -> None:
        self.work = work
        self.index = -1
        self.shard_rows = settings.EMULATOR_BATCH_SHARD_ROWS.get()
        self.rows = self.shard_rows
        self._results: Any = None
        self._errors: Any = None

    def add_rows(self, rows: list[Row]) -> tuple[int, int]:
        """Write rows in order; (succeeded, failed). Each echo is the instance's JSON text (or,
        with a key_field, the key's: its field is then b"key"), written without re-encoding."""
        ok = failed = 0
        at = 0
        while at < len(rows):
            if self.rows >= self.shard_rows:
                self._roll()
            take = rows[at : at + self.shard_rows - self.rows]
            results: list[bytes] = []
            errors: list[bytes] = []
            bad = 0
            for field, echo, prediction, error in take:
                if error is None:
                    assert prediction is not None
                    results += (b'{"', field, b'":', echo, b',"prediction":', prediction, b"}\n")
                else:
                    bad += 1
                    errors += (b'{"', field, b'":', echo, b',"error":', dumps(error), b"}\n")
            # One join and one write per shard and batch: rows are not copied piece by piece.
            if results:
                self._results.write(b"".join(results))
            if errors:
                self._errors.write(b"".join(errors))
            failed += bad
            ok += len(take) - bad
            self.rows += len(take)
            at += len(take)
        return ok, failed

    def _roll(self) -> None:
        self._close()
        self.index += 1
        self.rows = 0
        self._results = open(self.work / f"r{self.index}", "wb", buffering=_WRITE_BUFFER)
        self._errors = open(self.work / f"e{self.index}", "wb", buffering=_WRITE_BUFFER)

    def _close(self) -> None:
        for fh in (self._results, self._errors):
            if fh is not None:
                fh.close()

    def shards(self) -> list[tuple[Path, Path]]:
        """The finished (results, errors) JSON Lines files, in input order (batch_tables
        turns them into CSV files or table rows)."""
        self._close()
        return [(self.work / f"r{i}", self.work / f"e{i}") for i in range(self.index + 1)]

    def publish(self, objects: Any, bucket: str, directory: str) -> None:
        self._close()
        count = max(1, self.index + 1)
        if self.index < 0:  # no rows: still write one empty pair, as Vertex does
            (self.work / "r0").touch()
            (self.work / "e0").touch()
        shards = [
            (self.work / local, f"{directory}/{formats.shard_name(stem, i, count)}")
            for i in range(count)
            for local, stem in ((f"r{i}", formats.RESULTS_STEM), (f"e{i}", formats.ERRORS_STEM))
        ]
        # The local files become the objects (moved, not copied); hashing and fsync of one
        # shard overlap the others'.
        with ThreadPoolExecutor(_PUBLISH_THREADS, thread_name_prefix="batch-publish") as pool:
            for _ in pool.map(
                lambda shard: objects.put(
                    bucket, shard[1], shard[0], content_type="application/jsonl", take_file=True
                ),
                shards,
            ):
                pass


class InstanceShaper:
    """BatchPredictionJob.instance_config applied to one instance, as Vertex documents it.

    JSON objects only (JSON Lines objects: what this emulator reads that has fields): the
    key_field is taken out and echoed as `key` in place of the instance; included_fields keep
    only those fields (in that order for instance_type array), excluded_fields drop those;
    instance_type array sends the values, object the object. Other instances pass unchanged.
    """

    def __init__(self, config: Any, *, default_array: bool = False) -> None:
        self.key = config.key_field or None
        self.included = list(config.included_fields)
        self.excluded = set(config.excluded_fields)
        self.array = config.instance_type == "array" or (default_array and not config.instance_type)
        self.active = bool(self.key or self.included or self.excluded or self.array)

    def __call__(self, instance: bytes) -> tuple[bytes, tuple[bytes, bytes]]:
        """(what the model gets, (output field, echoed JSON))."""
        if not self.active or not instance.lstrip().startswith(b"{"):
            return instance, (b"instance", instance)
        obj = json.loads(instance)
        key = obj.pop(self.key, None) if self.key else None
        if self.included:
            obj = {k: obj[k] for k in self.included if k in obj}
        obj = {k: v for k, v in obj.items() if k not in self.excluded}
        value: Any = list(obj.values()) if self.array else obj
        sent = json.dumps(value, separators=(",", ":")).encode()
        if self.key:
            return sent, (b"key", json.dumps(key, separators=(",", ":")).encode())
        return sent, (b"instance", instance)


def _release_free_memory() -> None:
    """Hand freed heap memory back to the OS (glibc's malloc_trim; a no-op elsewhere).

    Each batch allocates and frees megabytes from several threads; glibc keeps what they
    freed in per-thread arenas, so without this the emulator's RSS ratchets up over a long
    job although nothing is held.
    """
    global _TRIM
    if _TRIM is None:
        try:
            _TRIM = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM: Any = None


class _AnyEvent:
    """Set when any of its events is (duck-types threading.Event.is_set for the ReplicaManager)."""

    def __init__(self, *events: threading.Event) -> None:
        self._events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self._events)


def _quiet_result(future: Future[list[Any]]) -> list[Any]:
    try:
        return future.result()
    except Exception:
        return []


class _StartError(Exception):
    """No replica could serve the model."""


def finish(job: Any, state: int, code: int = 0, message: str = "") -> None:
    job.state = state
    job.end_time.CopyFrom(protos.now_ts())
    if code and message:
        job.error.CopyFrom(status_pb2.Status(code=code, message=message))


def state_name(state: int) -> str:
    for name, value in STATE_NAMES.items():
        if value == state:
            return name
    return str(state)

"""Batch prediction jobs of the emulated Vertex AI: the v1 API and the job records.

Owns `batchPredictionJobs` create / get / list (label and state filters,
pagination) / cancel / delete under `/v1/` (and `/ui/`), parsed and answered
with the real v1 protos, persisted in the Vertex store's database (table
`batch_jobs`), one runner thread per job (batch_runner.JobRun does the work),
and recovery: a job that was running when the emulator stopped ends FAILED at
the next start, never stuck. States go QUEUED -> RUNNING -> SUCCEEDED / FAILED /
CANCELLED; a missing or malformed input fails the job (job.error), never the API.

Must not: import TensorFlow or deployer.serving, or answer 500 for anything a
job's input can cause.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from google.cloud.aiplatform_v1.types import batch_prediction_job as bpj_t
from google.cloud.aiplatform_v1.types import job_service as job_service_t
from google.cloud.aiplatform_v1.types import operation as operation_t
from google.protobuf import empty_pb2
from google.rpc import code_pb2

from deployer.emulator.context import EmulatorContext
from deployer.emulator.http import Request, Response, ServiceError
from deployer.emulator.objects import parse_gs_uri
from deployer.emulator.vertex import batch_tables, listing, protos
from deployer.emulator.vertex.batch_runner import (
    CANCELLING,
    FAILED,
    QUEUED,
    STATE_NAMES,
    TERMINAL,
    JobRun,
    finish,
    state_name,
)
from deployer.emulator.vertex.names import (
    API,
    PARENT_RE,
    SEG,
    Routes,
    by_number,
    new_numeric_id,
    parse_parent,
)
from deployer.emulator.vertex.operations import generic_metadata, start_operation
from deployer.emulator.vertex.store import VertexStore
from deployer.wire import batch_formats as formats

log = logging.getLogger("deployer.emulator.batch")

BatchPredictionJob = protos.pb(bpj_t.BatchPredictionJob)
ListBatchPredictionJobsResponse = protos.pb(job_service_t.ListBatchPredictionJobsResponse)
DeleteOperationMetadata = protos.pb(operation_t.DeleteOperationMetadata)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_jobs (
    name TEXT PRIMARY KEY,         -- projects/p/locations/l/batchPredictionJobs/ID
    parent TEXT NOT NULL,
    created REAL NOT NULL,
    body BLOB NOT NULL             -- google.cloud.aiplatform.v1.BatchPredictionJob, serialized
)
"""


class BatchJobs:
    """Job records (in the Vertex store) and their runner threads."""

    def __init__(self, ctx: EmulatorContext, store: VertexStore, replicas: Any) -> None:
        self.ctx = ctx
        self.store = store
        self.replicas = replicas
        self._lock = threading.Lock()
        self._cancel: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._shutdown = threading.Event()
        with store.tx() as c:
            c.execute(_SCHEMA)
        self._fail_interrupted()

    # -- records --------------------------------------------------------------------------

    def load(self, name: str) -> Any | None:
        with self.store.tx() as c:
            row = c.execute("SELECT body FROM batch_jobs WHERE name=?", (name,)).fetchone()
        return protos.loads(row[0], BatchPredictionJob) if row else None

    def require(self, name: str) -> Any:
        job = self.load(name)
        if job is None:
            raise ServiceError(404, "NOT_FOUND", f"BatchPredictionJob {name} not found.")
        return job

    def save(self, job: Any) -> None:
        job.update_time.CopyFrom(protos.now_ts())
        with self.store.tx() as c:
            c.execute("UPDATE batch_jobs SET body=? WHERE name=?", (protos.dumps(job), job.name))

    def jobs_in(self, parent: str) -> list[Any]:
        with self.store.tx() as c:
            rows = c.execute(
                "SELECT body FROM batch_jobs WHERE parent=? ORDER BY created, name", (parent,)
            ).fetchall()
        return [protos.loads(r[0], BatchPredictionJob) for r in rows]

    def _fail_interrupted(self) -> None:
        """After a restart, a job that was running has lost its thread: it ends FAILED, never
        stuck."""
        with self.store.tx() as c:
            rows = c.execute("SELECT body FROM batch_jobs").fetchall()
        for (body,) in rows:
            job = protos.loads(body, BatchPredictionJob)
            if job.state not in TERMINAL:
                finish(
                    job,
                    FAILED,
                    code_pb2.ABORTED,
                    "The emulator stopped while this job was running; create the job again.",
                )
                self.save(job)

    # -- API ------------------------------------------------------------------------------

    def create(self, parent: str, job: Any) -> Any:
        parent = parse_parent(parent)
        _validate(job)
        job.model = by_number(job.model)  # as Vertex answers it: by project number
        job.name = f"{parent}/batchPredictionJobs/{new_numeric_id()}"
        job.state = QUEUED
        now = protos.now_ts()
        job.create_time.CopyFrom(now)
        job.update_time.CopyFrom(now)
        job.ClearField("output_info")
        job.ClearField("completion_stats")
        job.ClearField("error")
        with self.store.tx() as c:
            c.execute(
                "INSERT INTO batch_jobs(name, parent, created, body) VALUES (?,?,?,?)",
                (job.name, parent, time.time(), protos.dumps(job)),
            )
        cancel = threading.Event()
        thread = threading.Thread(
            target=self._run,
            args=(job.name, cancel),
            name=f"batch-{job.name.rsplit('/', 1)[-1]}",
            daemon=True,
        )
        with self._lock:
            self._cancel[job.name] = cancel
            self._threads[job.name] = thread
        thread.start()
        return job

    def cancel(self, name: str) -> None:
        job = self.require(name)
        if job.state in TERMINAL:
            raise ServiceError(
                400,
                "FAILED_PRECONDITION",
                f"BatchPredictionJob {name} is already in a final state "
                f"({state_name(job.state)}) and cannot be cancelled.",
            )
        with self._lock:
            event = self._cancel.get(name)
        if event is not None:
            event.set()
        if job.state != CANCELLING:
            job.state = CANCELLING
            self.save(job)

    def delete(self, name: str) -> Any:
        job = self.require(name)
        if job.state not in TERMINAL:
            raise ServiceError(
                400,
                "FAILED_PRECONDITION",
                f"BatchPredictionJob {name} is {state_name(job.state)}; "
                "cancel it and wait for it to end before deleting it.",
            )
        with self.store.tx() as c:
            c.execute("DELETE FROM batch_jobs WHERE name=?", (name,))
            meta = DeleteOperationMetadata()
            meta.generic_metadata.CopyFrom(generic_metadata())
            # Under the location, as Vertex names it: projects/*/locations/*/operations/* is
            # the documented operations.get binding that polls it (there is none under a job).
            return start_operation(
                self.store,
                self.ctx,
                resource=name.rsplit("/batchPredictionJobs/", 1)[0],
                kind="delete_batch_job",
                metadata=meta,
                response=empty_pb2.Empty(),
            )

    def shutdown(self) -> None:
        """Stop every running job (each stops its replicas); they are failed at next start."""
        self._shutdown.set()
        with self._lock:
            threads = list(self._threads.values())
        for t in threads:
            t.join(timeout=10)

    # -- runner ---------------------------------------------------------------------------

    def _run(self, name: str, cancel: threading.Event) -> None:
        try:
            JobRun(self, name, cancel).execute()
        except Exception:
            log.exception("batch job %s crashed", name)
            job = self.load(name)
            if job is not None and job.state not in TERMINAL:
                finish(
                    job,
                    FAILED,
                    code_pb2.INTERNAL,
                    "Internal error in the emulator's batch runner; see its log.",
                )
                self.save(job)
        finally:
            with self._lock:
                self._cancel.pop(name, None)
                self._threads.pop(name, None)


def _validate(job: Any) -> None:
    def bad(msg: str) -> ServiceError:
        return ServiceError(400, "INVALID_ARGUMENT", msg)

    if not job.display_name:
        raise bad("BatchPredictionJob.display_name is required.")
    if not job.model:
        raise bad(
            "BatchPredictionJob.model is required (projects/*/locations/*/models/*[@version])."
        )
    fmt = job.input_config.instances_format
    if fmt not in (*formats.FORMATS, "bigquery"):
        raise bad(
            f"Unsupported instances_format {fmt!r}: the emulator supports "
            f"{', '.join(formats.FORMATS)}, bigquery."
        )
    if fmt == "bigquery":
        # The local table file is looked for when the job runs (a missing one fails the job).
        _check_bq(job.input_config.bigquery_source.input_uri, "input_config.bigquery_source")
    elif not job.input_config.gcs_source.uris:
        raise bad("input_config.gcs_source.uris is required.")
    out = job.output_config
    if out.predictions_format not in ("jsonl", "csv", "bigquery", ""):
        raise bad(
            f"Unsupported predictions_format {out.predictions_format!r}: use jsonl, csv or "
            "bigquery."
        )
    if not out.predictions_format:
        out.predictions_format = "jsonl"
    if out.predictions_format == "bigquery":
        _check_bq(out.bigquery_destination.output_uri, "output_config.bigquery_destination")
    else:
        prefix = out.gcs_destination.output_uri_prefix
        if not prefix:
            raise bad("output_config.gcs_destination.output_uri_prefix is required.")
        parse_gs_uri(prefix)
    res = job.dedicated_resources
    if res.max_replica_count and res.starting_replica_count > res.max_replica_count:
        raise bad("dedicated_resources.starting_replica_count must not exceed max_replica_count.")
    if job.manual_batch_tuning_parameters.batch_size < 0:
        raise bad("manual_batch_tuning_parameters.batch_size must be positive.")


def _check_bq(uri: str, where: str) -> None:
    field = "input_uri" if "source" in where else "output_uri"
    if not uri:
        raise ServiceError(400, "INVALID_ARGUMENT", f"{where}.{field} is required.")
    try:
        _, _, table = batch_tables.parse_bq_uri(uri)
    except ValueError as exc:
        raise ServiceError(400, "INVALID_ARGUMENT", f"{where}.{field}: {exc}.") from exc
    if field == "input_uri" and table is None:
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"{where}.{field} must be bq://project.dataset.table."
        )


def register(router: Routes, ctx: EmulatorContext, store: VertexStore, replicas: Any) -> BatchJobs:
    """Routes for batchPredictionJobs; called by the Vertex surface's register()."""
    jobs = BatchJobs(ctx, store, replicas)
    ctx.on_shutdown(jobs.shutdown)
    coll = rf"{API}(?P<parent>{PARENT_RE})/batchPredictionJobs"
    item = rf"{API}(?P<name>{PARENT_RE}/batchPredictionJobs/{SEG})"

    def create(req: Request, m: re.Match[str]) -> Response:
        job = protos.parse_body(req, BatchPredictionJob)
        return protos.proto_response(req, jobs.create(m["parent"], job))

    def get(req: Request, m: re.Match[str]) -> Response:
        return protos.proto_response(req, jobs.require(m["name"]))

    def list_(req: Request, m: re.Match[str]) -> Response:
        parse_parent(m["parent"])
        text, states = _split_state_terms(req.q("filter") or "")
        keep = listing.compile_filter(text)
        found = [
            j for j in jobs.jobs_in(m["parent"]) if keep(j) and (not states or j.state in states)
        ]
        found = listing.order(found, req.q("orderBy") or req.q("order_by"))
        page, token = listing.paginate(found, req)
        out = ListBatchPredictionJobsResponse(batch_prediction_jobs=page)
        if token:
            out.next_page_token = token
        return protos.proto_response(req, out)

    def cancel(req: Request, m: re.Match[str]) -> Response:
        jobs.cancel(m["name"])
        return protos.proto_response(req, empty_pb2.Empty())

    def delete(req: Request, m: re.Match[str]) -> Response:
        return protos.proto_response(req, jobs.delete(m["name"]))

    router.add("POST", coll, create, name="createBatchPredictionJob", mutating=True)
    router.add("GET", coll, list_, name="listBatchPredictionJobs", mutating=False)
    router.add("POST", item + ":cancel", cancel, name="cancelBatchPredictionJob", mutating=True)
    router.add("GET", item, get, name="getBatchPredictionJob", mutating=False)
    router.add("DELETE", item, delete, name="deleteBatchPredictionJob", mutating=True)
    return jobs


def _split_state_terms(text: str) -> tuple[str, set[int]]:
    """Pull `state=JOB_STATE_X` terms (OR-ed among themselves) out of a filter."""
    states: set[int] = set()
    rest: list[str] = []
    for term in re.split(r"\s+AND\s+", text.strip()) if text.strip() else []:
        m = re.fullmatch(r'\s*state\s*=\s*"?(JOB_STATE_[A-Z_]+)"?\s*', term)
        if m is None:
            rest.append(term)
            continue
        if m[1] not in STATE_NAMES:
            raise ServiceError(400, "INVALID_ARGUMENT", f"Unknown job state {m[1]!r} in filter.")
        states.add(STATE_NAMES[m[1]])
    return " AND ".join(rest), states

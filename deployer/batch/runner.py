"""Run one batch job of a spec: stage, create or re-attach, wait, collect.

Owns: the batch job journal (`BatchJobJournal`, `.deployer/batch-jobs.json` next to the
spec: the job a run started, so a killed or interrupted run re-attaches instead of starting
a second job), finding a job to adopt by labels when the journal is lost (batch jobs have no
client-chosen id), waiting with progress callbacks, and collecting the outputs. Each step
takes the narrowest provider protocol it needs (`Registry`, `Storage`, `Jobs`).

Must not: render anything (the CLI does, through the callbacks), prompt, or
import google.cloud / deployer.emulator.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer.batch.results import (
    Merged,
    RowError,
    Score,
    csv_shard,
    load_labels,
    merge,
    score,
    write_output,
)
from deployer.batch.staging import StagedInput, infer_format, stage_input
from deployer.errors import BatchJobFailed, ConfigError, NotFound, OperationTimeout, ResponseLost
from deployer.providers import JobRequest, Jobs, JobState, JobStatus, Progress, Registry, Storage
from deployer.providers.retry import PollTimeout, poll_until
from deployer.spec import BatchJob, Spec
from deployer.state import LABEL_NAME, LABEL_STACK, label_value, model_id
from deployer.wire import batch_formats as formats

LABEL_JOB = "deployer-job"  # the logical job name (same as deployer-name; explicit for humans)
LABEL_INPUT = (
    "deployer-input"  # short hash of the staged input: a re-run with other data is another job
)


# --- journal ------------------------------------------------------------------------------


class BatchJobJournal:
    """`.deployer/batch-jobs.json` next to the spec: job name -> the job a run started.

    Local and per spec, unlike deployer.reconcile.journal.Journal (operations in flight,
    kept in the stack's bucket)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_spec(cls, spec: Spec) -> BatchJobJournal:
        base = spec.source.parent if spec.source else Path.cwd()
        return cls(base / ".deployer" / "batch-jobs.json")

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self._load().get(key)

    def record(self, key: str, resource: str, input_hash: str) -> None:
        data = self._load()
        data[key] = {"resource": resource, "input": input_hash, "recorded": time.time()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.path)  # atomic: a kill never leaves half a journal


# --- the steps ------------------------------------------------------------------------------


def pick_job(spec: Spec, name: str | None) -> BatchJob:
    if not spec.batch_jobs:
        raise ConfigError("the spec has no batch_jobs", hint="add a batch_jobs entry to the spec")
    if name is None:
        if len(spec.batch_jobs) > 1:
            names = ", ".join(j.name for j in spec.batch_jobs)
            raise ConfigError(
                f"the spec has several batch jobs ({names})", hint="choose one with --job NAME"
            )
        return spec.batch_jobs[0]
    try:
        return spec.batch_job(name)
    except KeyError:
        names = ", ".join(j.name for j in spec.batch_jobs)
        raise ConfigError(
            f"no batch job {name!r} in the spec", hint=f"use one of: {names}"
        ) from None


def job_labels(spec: Spec, job: BatchJob, input_hash: str) -> dict[str, str]:
    return {
        LABEL_STACK: spec.stack,
        LABEL_NAME: label_value(job.name),
        LABEL_JOB: label_value(job.name),
        LABEL_INPUT: input_hash[:12],
    }


def resolve_version(registry: Registry, spec: Spec, job: BatchJob) -> str:
    found = registry.model_version(model_id(spec.stack, job.model), job.version)
    if found is None:
        raise ConfigError(
            f"model version {job.ref} is not in the registry yet",
            hint="run `deployer apply` first: batch jobs run registered versions",
        )
    return found


def stage(
    storage: Storage,
    spec: Spec,
    job: BatchJob,
    input_override: str | None,
    progress: Progress | None = None,
) -> StagedInput:
    if job.settings.bigquery_source and not input_override:
        return table_input(job.settings.bigquery_source)
    paths = [input_override] if input_override else list(job.input.paths)
    if input_override and not input_override.startswith("gs://"):
        paths = [str(Path(input_override).resolve())]
    declared = None if input_override else job.input.format.value
    fmt = infer_format(paths[0], declared)
    return stage_input(storage, spec.bucket.name, spec.stack, paths, fmt, progress=progress)


def table_input(uri: str) -> StagedInput:
    """A BigQuery input table: nothing to stage; the job reads the table (rows are matched
    in output order, the client never sees them)."""
    import hashlib

    digest = hashlib.sha256(f"bigquery\0{uri}".encode()).hexdigest()
    return StagedInput(uris=(), format="bigquery", content_hash=digest, index=None)


def start_or_attach(
    backend: Jobs,
    spec: Spec,
    job: BatchJob,
    staged: StagedInput | None,
    version: str,
    journal: BatchJobJournal,
    *,
    resume: bool,
) -> tuple[JobStatus, bool]:
    """The job to follow, and whether it already existed (True: re-attached).

    `staged` may be None only with `resume` (the local input is gone): then only the
    journaled job can be followed.
    """
    key = f"{spec.stack}/{job.name}"
    entry = journal.get(key)
    if entry:
        try:
            found = backend.get_job(entry["resource"])
        except NotFound:
            found = None
        if found is not None and (resume or not found.terminal):
            return found, True
    elif resume:
        raise ConfigError(
            f"no journaled run of batch job {job.name!r} to resume",
            hint="run without --resume to start one",
        )
    if staged is None:
        raise ConfigError(
            f"the journaled run of batch job {job.name!r} is gone and the input cannot be staged",
            hint="fix the input path and run again",
        )
    labels = job_labels(spec, job, staged.content_hash)
    running = [j for j in backend.find_jobs(labels) if not j.terminal]
    if running:  # the journal was lost (another machine, a killed run): adopt, never duplicate
        adopted = max(running, key=lambda j: j.create_time)
        journal.record(key, adopted.resource, staged.content_hash)
        return adopted, True
    req = JobRequest(
        display_name=label_value(f"{spec.stack}-{job.name}"),
        model_version=version,
        input_uris=staged.uris,
        input_format=staged.format,
        output_prefix=f"gs://{spec.bucket.name}/{job.output_prefix.strip('/')}",
        machine_type=job.machine_type,
        accelerator_type=job.accelerator.type if job.accelerator else None,
        accelerator_count=job.accelerator.count if job.accelerator else 0,
        starting_replicas=job.starting_replicas,
        max_replicas=job.max_replicas,
        batch_size=job.batch_size,
        labels=tuple(sorted(labels.items())),
        settings=job.settings,
    )
    try:
        created = backend.create_job(req)
    except ResponseLost:
        adopted_list = [j for j in backend.find_jobs(labels) if not j.terminal]
        if not adopted_list:
            raise
        created = max(adopted_list, key=lambda j: j.create_time)
    journal.record(key, created.resource, staged.content_hash)
    return created, False


def wait(
    backend: Jobs,
    resource: str,
    *,
    on_status: Callable[[JobStatus], None] | None = None,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> JobStatus:
    """Poll every `backend.poll_interval` seconds until the job ends; on_status sees every
    snapshot."""
    try:
        return poll_until(
            lambda: backend.get_job(resource),
            lambda status: status.terminal,
            timeout=timeout,
            fixed=backend.poll_interval,
            on_value=on_status,
            sleep=sleep,
        )
    except PollTimeout as exc:
        last = exc.last if isinstance(exc.last, JobStatus) else None
        state = last.state.short if last is not None else "unknown"
        raise OperationTimeout(
            f"batch job {resource} still {state} after {timeout:.0f}s",
            hint="re-run with --resume to keep waiting",
        ) from None


def raise_if_failed(status: JobStatus) -> None:
    if status.state in (JobState.SUCCEEDED, JobState.PARTIALLY_SUCCEEDED):
        return
    what = status.state.short.lower()
    raise BatchJobFailed(
        f"batch job {status.resource} {what}: {status.error or 'no error message'}",
        hint="fix the input or the model, then run batch-predict again",
    )


@dataclass
class Collected:
    output: Path
    merged: Merged  # closed: use its errors and counts, the predictions are in `output`
    score: Score | None = None
    shards: int = 0  # result shard files merged
    notes: list[str] = field(default_factory=list)
    succeeded: int = 0  # rows with a prediction

    @property
    def errors(self) -> list[RowError]:
        return self.merged.errors


def collect(
    storage: Storage,
    status: JobStatus,
    staged: StagedInput | None,
    output: Path,
    *,
    output_format: str,
    labels_file: Path | None = None,
) -> Collected:
    """Download every shard in parallel, merge in input order, write `output`, score if labelled."""
    if not status.output_dir:
        raise BatchJobFailed(f"batch job {status.resource} reports no output directory")
    bucket, _, prefix = status.output_dir.removeprefix("gs://").partition("/")
    objects = storage.list_objects(bucket, prefix.rstrip("/") + "/")
    shards = sorted(n for n in objects if formats.parse_shard_name(n) or csv_shard(n))
    notes: list[str] = []
    index = staged.index if staged is not None else None
    if staged is not None and status.label(LABEL_INPUT) not in (None, staged.content_hash[:12]):
        notes.append("the input changed since this job ran: rows are taken in output order")
        index = None
    known = None
    if labels_file is not None:
        known = load_labels(labels_file)  # before the download: a bad file fails fast
    elif staged is not None and staged.labels is not None and index is not None:
        known = staged.labels
    with tempfile.TemporaryDirectory(prefix="deployer-batch-out-") as tmp:
        items = [(f"gs://{bucket}/{name}", Path(tmp) / name.rsplit("/", 1)[-1]) for name in shards]
        storage.download_files(items)
        results = [p for _, p in items if _is_results(p.name)]
        errors = [p for _, p in items if not _is_results(p.name)]
        merged = merge(results, errors, index, spool=Path(tmp) / "predictions.spool")
        try:
            if merged.unmatched:
                notes.append(f"{merged.unmatched} output rows matched no input row")
            write_output(merged, output, output_format)
            result = Collected(
                output,
                merged,
                shards=sum(_is_results(n.rsplit("/", 1)[-1]) for n in shards),
                notes=notes,
                succeeded=merged.succeeded,
            )
            if known is not None:
                result.score = score(merged.iter_predictions(), known, rows=merged.rows)
        finally:
            merged.close()
    return result


def _is_results(name: str) -> bool:
    """A results shard (JSON Lines `prediction.results-*` or CSV `predictions_*.csv`)."""
    parsed = csv_shard(name)
    return parsed[0] == "predictions" if parsed else formats.RESULTS_STEM in name


def list_jobs(backend: Jobs, spec: Spec) -> list[JobStatus]:
    return sorted(backend.find_jobs({LABEL_STACK: spec.stack}), key=lambda j: j.create_time)


def find_for_cancel(backend: Jobs, spec: Spec, ref: str) -> JobStatus:
    """A job of the stack by logical name (its newest live run), numeric id, or resource name."""
    jobs = list_jobs(backend, spec)
    for j in jobs:
        if ref in (j.resource, j.resource.rsplit("/", 1)[-1]):
            return j
    named = [j for j in jobs if j.label(LABEL_NAME) == label_value(ref)]
    live = [j for j in named if not j.terminal]
    if live or named:
        return max(live or named, key=lambda j: j.create_time)
    raise ConfigError(
        f"no batch job {ref!r} in stack {spec.stack}",
        hint="see `deployer batch-predict SPEC --list`",
    )

"""Batch prediction jobs through the official clients: the provider half of batch-predict.

Owns: `VertexBatchBackend`, which implements `deployer.batch.runner.BatchBackend`
with the GAPIC v1 JobService / ModelService clients (REST) and google-cloud-storage
built by `clients.py` (the same code for the emulator and Vertex AI): resolving a
registry version by alias, creating / getting / listing (label filter) /
cancelling jobs, and parallel streamed shard downloads. Also `list_stack_jobs` and
`delete_job` for teardown.

Must not: decide anything (deployer.batch does), retry mutating calls (a lost
create is adopted by label by the runner), or let a vendor exception escape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from deployer import settings
from deployer.providers import JobRequest, JobStatus
from deployer.providers.errors import translated
from deployer.providers.retry import call_with_retry

if TYPE_CHECKING:
    from deployer.providers import ObjectInfo, Operation, Progress
    from deployer.providers.vertex import VertexProvider

T = TypeVar("T")


class VertexBatchBackend:
    """BatchBackend over a VertexProvider's clients."""

    def __init__(self, provider: VertexProvider) -> None:
        self.provider = provider
        self.clients = provider.clients
        # The SDK polls every 5 s; the emulator answers in microseconds, the cloud in minutes.
        self.poll_interval = 1.0 if provider.target.kind == "local" else 15.0

    def _read(self, what: str, fn: Callable[[], T]) -> T:
        def once() -> T:
            with translated(what, mutating=False):
                return fn()

        return call_with_retry(once, policy=self.provider.policy)

    def _write(self, what: str, fn: Callable[[], T]) -> T:
        with translated(what, mutating=True):
            return fn()

    # -- registry ---------------------------------------------------------------------------

    def model_version(self, model_id: str, alias: str) -> str | None:
        from google.api_core.exceptions import NotFound as GNotFound

        name = f"{self.provider.target.parent}/models/{model_id}@{alias}"

        def get() -> str | None:
            try:
                m = self.clients.models.get_model(name=name)
            except GNotFound:
                return None
            base = m.name.split("@", 1)[0]
            return f"{base}@{m.version_id}"

        return self._read(f"get model {model_id}@{alias}", get)

    # -- jobs ---------------------------------------------------------------------------------

    def create_job(self, req: JobRequest) -> JobStatus:
        # Submodules, not `aiplatform_v1.types`: that package's __init__ imports the whole API
        # (seconds), and clients.py keeps it a lazy shell.
        from google.cloud.aiplatform_v1.types import batch_prediction_job as bpj
        from google.cloud.aiplatform_v1.types import io, machine_resources
        from google.cloud.aiplatform_v1.types import manual_batch_tuning_parameters as tuning

        machine = machine_resources.MachineSpec(machine_type=req.machine_type)
        if req.accelerator_type:
            machine.accelerator_type = req.accelerator_type  # type: ignore[assignment] # proto-plus takes the enum name
            machine.accelerator_count = req.accelerator_count
        job = bpj.BatchPredictionJob(
            display_name=req.display_name,
            model=req.model_version,
            labels=dict(req.labels),
            input_config=bpj.BatchPredictionJob.InputConfig(
                instances_format=req.input_format,
                gcs_source=io.GcsSource(uris=list(req.input_uris)),
            ),
            output_config=bpj.BatchPredictionJob.OutputConfig(
                predictions_format="jsonl",
                gcs_destination=io.GcsDestination(output_uri_prefix=req.output_prefix),
            ),
            dedicated_resources=machine_resources.BatchDedicatedResources(
                machine_spec=machine,
                starting_replica_count=req.starting_replicas,
                max_replica_count=req.max_replicas,
            ),
        )
        if req.batch_size:
            job.manual_batch_tuning_parameters = tuning.ManualBatchTuningParameters(
                batch_size=req.batch_size
            )
        created = self._write(
            "create batch prediction job",
            lambda: self.clients.jobs.create_batch_prediction_job(
                parent=self.provider.target.parent, batch_prediction_job=job
            ),
        )
        return _status(created)

    def get_job(self, resource: str) -> JobStatus:
        return _status(
            self._read(
                f"get batch job {resource}",
                lambda: self.clients.jobs.get_batch_prediction_job(name=resource),
            )
        )

    def find_jobs(self, labels: dict[str, str]) -> list[JobStatus]:
        flt = " AND ".join(f'labels.{k}="{v}"' for k, v in sorted(labels.items()))
        jobs = self._read(
            "list batch prediction jobs",
            lambda: list(
                self.clients.jobs.list_batch_prediction_jobs(
                    request={"parent": self.provider.target.parent, "filter": flt, "page_size": 100}
                )
            ),
        )
        return [_status(j) for j in jobs]

    def cancel_job(self, resource: str) -> None:
        self._write(
            f"cancel batch job {resource}",
            lambda: self.clients.jobs.cancel_batch_prediction_job(name=resource),
        )

    # -- storage --------------------------------------------------------------------------------

    def list_objects(self, bucket: str, prefix: str) -> dict[str, ObjectInfo]:
        return self.provider.list_objects(bucket, prefix)

    def upload_files(
        self, bucket: str, files: Iterable[tuple[str, str]], progress: Progress | None = None
    ) -> None:
        self.provider.upload_files(bucket, files, progress)

    def download_files(self, items: list[tuple[str, Path]]) -> None:
        """Download (gs:// URI, local path) pairs in parallel, each streamed to disk."""
        storage = self.clients.storage

        def one(item: tuple[str, Path]) -> None:
            uri, path = item
            bucket, _, name = uri.removeprefix("gs://").partition("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            self._read(
                f"download {uri}",
                lambda: (
                    storage.bucket(bucket).blob(name).download_to_filename(str(path), retry=None)
                ),
            )

        if not items:
            return
        with ThreadPoolExecutor(
            max_workers=max(1, min(settings.DOWNLOAD_WORKERS.get(), len(items)))
        ) as pool:
            for future in [pool.submit(one, item) for item in items]:
                future.result()


def _status(job: Any) -> JobStatus:
    stats = job.completion_stats
    error = job.error.message if job.error and job.error.code else None
    created = job.create_time.timestamp() if job.create_time else 0.0
    return JobStatus(
        resource=job.name,
        display_name=job.display_name,
        state=job.state.name,
        successful=int(stats.successful_count),
        failed=int(stats.failed_count),
        incomplete=int(stats.incomplete_count),
        error=error,
        output_dir=job.output_info.gcs_output_directory or None,
        labels=tuple(sorted(dict(job.labels).items())),
        create_time=created,
        model=job.model,
    )


# -- for teardown ------------------------------------------------------------------------------


def list_stack_jobs(provider: VertexProvider, stack: str) -> list[JobStatus]:
    """Every batch job labelled with the stack (any state)."""
    from deployer.state import LABEL_STACK

    return VertexBatchBackend(provider).find_jobs({LABEL_STACK: stack})


def delete_job(provider: VertexProvider, resource: str, *, keep_outputs: bool = False) -> Operation:
    """Cancel if running, delete the job and, unless keep_outputs, its output directory."""
    backend = VertexBatchBackend(provider)
    status = backend.get_job(resource)
    if not status.terminal:
        backend.cancel_job(resource)
    op = provider.delete_batch_job(resource)
    if not keep_outputs and status.output_dir:
        bucket, _, prefix = status.output_dir.removeprefix("gs://").partition("/")
        provider.delete_prefix(bucket, prefix.rstrip("/") + "/")
    return op

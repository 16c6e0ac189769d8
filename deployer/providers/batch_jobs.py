"""Batch prediction jobs through the official clients: the `Jobs` part of `VertexProvider`.

Owns: `VertexJobs`, which implements `deployer.providers.Jobs` with the GAPIC v1 JobService
client (REST) built by `clients.py` (the same code for the emulator and Vertex AI):
creating, getting, listing by label, cancelling and deleting jobs, and turning a
BatchPredictionJob message into a `JobStatus`.

Must not: decide anything (deployer.batch and teardown do), retry mutating calls (a lost
create is adopted by label by the runner), or let a vendor exception escape.
"""

from __future__ import annotations

from typing import Any

from deployer.providers import JobRequest, JobState, JobStatus, Operation, vertex_production
from deployer.providers.vertex_base import VertexBase
from deployer.spec import Target
from deployer.state import LABEL_NAME, LABEL_STACK, ObservedBatchJob

# The SDK polls every 5 s; the emulator answers in microseconds, the cloud in minutes.
POLL_INTERVAL_S = {Target.LOCAL: 1.0, Target.VERTEX: 15.0}


class VertexJobs(VertexBase):
    @property
    def poll_interval(self) -> float:
        return POLL_INTERVAL_S[self.target.kind]

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
        vertex_production.batch_job(job, req.settings)
        if req.batch_size:
            job.manual_batch_tuning_parameters = tuning.ManualBatchTuningParameters(
                batch_size=req.batch_size
            )
        created = self._write(
            "create batch prediction job",
            lambda: self.clients.jobs.create_batch_prediction_job(
                parent=self._parent(), batch_prediction_job=job
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

    def _list_jobs(self, flt: str) -> list[Any]:
        return self._read(
            "list batch prediction jobs",
            lambda: list(
                self.clients.jobs.list_batch_prediction_jobs(
                    request={"parent": self._parent(), "filter": flt, "page_size": 100}
                )
            ),
        )

    def find_jobs(self, labels: dict[str, str]) -> list[JobStatus]:
        flt = " AND ".join(f'labels.{k}="{v}"' for k, v in sorted(labels.items()))
        return [_status(j) for j in self._list_jobs(flt)]

    def list_batch_jobs(self, stack: str) -> tuple[ObservedBatchJob, ...]:
        return tuple(
            ObservedBatchJob(
                dict(j.labels).get(LABEL_NAME, ""),
                j.name,
                j.state.name,
                tuple(sorted(dict(j.labels).items())),
            )
            for j in self._list_jobs(f'labels.{LABEL_STACK}="{stack}"')
        )

    def cancel_job(self, resource: str) -> None:
        self._write(
            f"cancel batch job {resource}",
            lambda: self.clients.jobs.cancel_batch_prediction_job(name=resource),
        )

    def delete_batch_job(self, resource: str) -> Operation:
        from google.api_core.exceptions import GoogleAPICallError

        from deployer import errors
        from deployer.providers.errors import map_exception

        jobs = self.clients.jobs

        def delete() -> Any:
            try:
                return jobs.delete_batch_prediction_job(name=resource)
            except GoogleAPICallError as exc:
                # Over REST every 400 is a BadRequest: tell FAILED_PRECONDITION by the body.
                # Vertex deletes only finished jobs: cancel this one; teardown retries.
                if isinstance(map_exception(exc, mutating=True), errors.FailedPrecondition):
                    self._count(1)
                    jobs.cancel_batch_prediction_job(name=resource)
                raise

        op = self._write(f"delete batch job {resource}", delete)
        return self._operation(op)


def _bigquery_output(info: Any) -> str | None:
    """bq://project.dataset.table from outputInfo (the dataset comes as bq://project.dataset)."""
    if not info.bigquery_output_dataset:
        return None
    table = f".{info.bigquery_output_table}" if info.bigquery_output_table else ""
    return f"{info.bigquery_output_dataset}{table}"


def _status(job: Any) -> JobStatus:
    stats = job.completion_stats
    error = job.error.message if job.error and job.error.code else None
    created = job.create_time.timestamp() if job.create_time else 0.0
    return JobStatus(
        resource=job.name,
        display_name=job.display_name,
        state=JobState.parse(job.state.name),
        successful=int(stats.successful_count),
        failed=int(stats.failed_count),
        incomplete=int(stats.incomplete_count),
        error=error,
        output_dir=job.output_info.gcs_output_directory or None,
        bigquery_output=_bigquery_output(job.output_info),
        labels=tuple(sorted(dict(job.labels).items())),
        create_time=created,
        model=job.model,
    )

"""`FakeJobs`: the `Jobs` part of FakeProvider, in memory.

Stores what it is told and records each call (see the package docstring for what it keeps
and what it leaves to the contract suite). Must not: import any SDK.
"""

from __future__ import annotations

from dataclasses import replace

from deployer.providers import JobRequest, JobState, JobStatus, Operation
from deployer.providers.fake.base import FakeBase


class FakeJobs(FakeBase):
    def create_job(self, req: JobRequest) -> JobStatus:
        with self._recorded("create_job", display_name=req.display_name, labels=req.labels):
            n = next(self._ids)
            job = JobStatus(
                f"{self._parent()}/batchPredictionJobs/{n}",
                req.display_name,
                JobState.QUEUED,
                labels=req.labels,
                create_time=float(n),
                model=req.model_version,
            )
            self.jobs[job.resource] = job
            return job

    def get_job(self, resource: str) -> JobStatus:
        with self._recorded("get_job", resource=resource):
            return self._job(resource)

    def find_jobs(self, labels: dict[str, str]) -> list[JobStatus]:
        with self._recorded("find_jobs", labels=labels):
            return [j for j in self.jobs.values() if labels.items() <= dict(j.labels).items()]

    def cancel_job(self, resource: str) -> None:
        with self._recorded("cancel_job", resource=resource):
            self.jobs[resource] = replace(self._job(resource), state=JobState.CANCELLED)

    def delete_batch_job(self, resource: str) -> Operation:
        with self._recorded("delete_batch_job", resource=resource):
            self._job(resource)
            del self.jobs[resource]
            return self._op()

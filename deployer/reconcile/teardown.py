"""Remove everything a stack owns, found by label, in a safe order; then prove it is gone.

Owns: `teardown_stack`: observe by label (whatever the spec says now), undeploy
(zero-traffic first), delete endpoints, models, batch jobs, the stack's objects, and the
bucket if the stack created it (bucket label deployer-created=true); then observe again
and fail loudly if anything is left. `--dry-run` lists what would go and what it costs.

Must not: touch a resource without the stack's label, delete a bucket the stack did not
create, or import google.cloud (it works through a `Provider`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from deployer import errors
from deployer.providers.retry import poll_until
from deployer.reconcile.executor import (
    ApplyOptions,
    ApplyReport,
    Executor,
    Reporter,
    wait_operation,
)
from deployer.reconcile.journal import Journal, StackLock
from deployer.reconcile.plan import Plan, plan_teardown
from deployer.state import ObservedBatchJob, StackState, lock_object, stack_prefixes

if TYPE_CHECKING:
    from deployer.providers import Provider


@dataclass
class TeardownReport:
    stack: str
    bucket: str
    plan: Plan  # undeploys and endpoint/model deletions
    batch_jobs: tuple[ObservedBatchJob, ...]
    objects: dict[str, int] = field(default_factory=dict)  # prefix -> objects (to) delete(d)
    bucket_deleted: bool = False
    dry_run: bool = False
    remaining: list[str] = field(default_factory=list)  # what verification still found

    @property
    def nothing_to_do(self) -> bool:
        return (
            self.plan.is_empty
            and not self.batch_jobs
            and not any(self.objects.values())
            and not self.bucket_deleted
        )


def teardown_stack(
    provider: Provider,
    stack: str,
    bucket: str,
    *,
    keep_bucket: bool = False,
    keep_outputs: bool = False,
    output_prefixes: tuple[str, ...] = (),
    dry_run: bool = False,
    reporter: Reporter | None = None,
    options: ApplyOptions | None = None,
) -> TeardownReport:
    """Tear the stack down. `output_prefixes`: batch output prefixes the spec names."""
    rep = reporter or Reporter()
    opts = options or ApplyOptions()
    observed = provider.observe(stack, bucket)
    jobs = provider.list_batch_jobs(stack)
    plan = plan_teardown(observed)
    prefixes = list(stack_prefixes(stack))
    if not keep_outputs:
        prefixes += [p for p in output_prefixes if p]
    # Outputs kept means the bucket that holds them is kept too.
    delete_bucket = (
        observed.bucket.exists
        and observed.bucket.created_by_stack
        and not keep_bucket
        and not (keep_outputs and any(output_prefixes))
    )
    report = TeardownReport(stack, bucket, plan, jobs, dry_run=dry_run)
    if observed.bucket.exists:
        for prefix in [""] if delete_bucket else prefixes:
            report.objects[prefix] = len(provider.list_objects(bucket, prefix))
    if dry_run:
        report.bucket_deleted = delete_bucket
        return report
    rep.plan_ready(plan, observed)
    ex = Executor(provider, stack, rep, opts, ApplyReport(plan))
    lock = (
        StackLock(provider, bucket, stack, timeout=opts.lock_timeout, policy=opts.policy)
        if observed.bucket.exists
        else None
    )
    if lock is not None:
        lock.acquire()
    try:
        if lock is not None:
            ex.journal = Journal(provider, bucket, stack, policy=opts.policy)
            ex.resume()
            # A resumed operation may have changed what exists: plan from fresh eyes.
            plan = plan_teardown(provider.observe(stack, bucket))
            report.plan = plan
        for action in plan.actions:
            ex.run(action)
        for job in jobs:
            rep.note(f"deleting batch job {job.name or job.resource}")
            _delete_batch_job(provider, job, opts)
        if observed.bucket.exists:
            for prefix in [""] if delete_bucket else prefixes:
                keep = {lock_object(stack)} if lock is not None else set()
                names = [n for n in provider.list_objects(bucket, prefix) if n not in keep]
                for name in names:
                    _delete_object(ex, provider, bucket, name)
                report.objects[prefix] = len(names)
    finally:
        if lock is not None:
            lock.release()
    if delete_bucket:
        try:
            ex.call(lambda: provider.delete_bucket(bucket))
        except errors.NotFound:
            pass
        report.bucket_deleted = True
    report.remaining = _verify(provider, stack, bucket, prefixes, delete_bucket)
    if report.remaining:
        raise errors.DeployerError(
            f"teardown of stack {stack!r} left: " + "; ".join(report.remaining),
            hint="run teardown again; if it persists, remove those by hand",
        )
    return report


def _delete_object(ex: Executor, provider: Provider, bucket: str, name: str) -> None:
    try:
        ex.call(lambda: provider.delete_object(bucket, name))
    except errors.NotFound:
        pass  # our own earlier attempt took effect and lost its response


def _delete_batch_job(provider: Provider, job: ObservedBatchJob, opts: ApplyOptions) -> None:
    # A running job is cancelled first (the provider asks for that): until it stops, the
    # delete is refused (FAILED_PRECONDITION) or throttled, so it is asked again.
    try:
        op = poll_until(
            lambda: provider.delete_batch_job(job.resource),
            lambda _op: True,
            timeout=opts.op_timeout,
            first=0.2,
            max_interval=opts.poll_max_seconds,
            retry_on=(errors.FailedPrecondition, errors.TransientError),
        )
        wait_operation(provider, op, f"batch job {job.name}", opts)
    except errors.NotFound:
        return


def _verify(
    provider: Provider, stack: str, bucket: str, prefixes: list[str], bucket_deleted: bool
) -> list[str]:
    left: list[str] = []
    state: StackState = provider.observe(stack, bucket)
    left += [f"endpoint {e.name}" for e in state.endpoints]
    left += [f"model {m.name}" for m in state.models]
    left += [f"batch job {j.resource}" for j in provider.list_batch_jobs(stack)]
    if bucket_deleted:
        if state.bucket.exists:
            left.append(f"bucket {bucket}")
    elif state.bucket.exists:
        for prefix in prefixes:
            n = len(provider.list_objects(bucket, prefix))
            if n:
                left.append(f"{n} objects under gs://{bucket}/{prefix}")
    return left

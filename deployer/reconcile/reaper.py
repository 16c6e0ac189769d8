"""`deployer reap`: find stacks past their expiry label and tear them down.

Owns: `reap(project, region, ...)`: list everything carrying a deployer-stack label
(one list per kind), group it by stack, take each stack's earliest deployer-expires, and
run `teardown_stack` on the expired ones (or only list them, with their hourly cost, on a
dry run). A stack's bucket is the one labelled with it, else the bucket its artifacts
live in (gs://BUCKET/artifacts/<stack>/...).

Must not: touch anything without deployer's labels, or a stack without an expiry label
(no ttl means "keep"). It builds the real provider only when none is given (the CLI and
scheduled CI call it with a target; tests pass a fake).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from deployer import errors
from deployer.reconcile.executor import ApplyOptions, Reporter
from deployer.state import ARTIFACT_PREFIX, LABEL_EXPIRES, LABEL_STACK

if TYPE_CHECKING:
    from deployer.cost import PriceTable
    from deployer.providers import LabelledResource, Provider


@dataclass
class ReapedStack:
    stack: str
    expires_at: int | None  # earliest deployer-expires among its resources
    expired: bool
    bucket: str | None
    resources: list[str] = field(default_factory=list)  # "endpoint projects/.../endpoints/x"
    hourly_usd: float | None = None  # what its deployments cost now (steady state)
    torn_down: bool = False
    error: str | None = None


@dataclass
class ReapReport:
    project: str
    region: str
    dry_run: bool
    now: int
    stacks: list[ReapedStack] = field(default_factory=list)

    @property
    def expired(self) -> list[ReapedStack]:
        return [s for s in self.stacks if s.expired]

    def to_dict(self) -> dict[str, object]:
        return {
            "project": self.project,
            "region": self.region,
            "dry_run": self.dry_run,
            "now": self.now,
            "stacks": [s.__dict__ for s in self.stacks],
        }

    def render(self) -> str:
        from deployer.cost import format_usd

        if not self.stacks:
            return f"No deployer stacks in {self.project}/{self.region}."
        lines = []
        for s in self.stacks:
            if s.expires_at is None:
                lines.append(f"stack {s.stack}: no expiry label (guards.ttl unset): kept")
                continue
            delta = abs(self.now - s.expires_at) // 60
            if not s.expired:
                lines.append(f"stack {s.stack}: expires in {delta} min: kept")
                continue
            verb = (
                "would tear down"
                if self.dry_run
                else "torn down"
                if s.torn_down
                else "NOT torn down"
            )
            lines.append(
                f"stack {s.stack}: expired {delta} min ago, {format_usd(s.hourly_usd)}/h: {verb}"
            )
            if self.dry_run:
                lines += [f"    {r}" for r in s.resources]
            if s.error:
                lines.append(f"    error: {s.error}")
        return "\n".join(lines)


def _bucket_of(stack: str, items: list[LabelledResource]) -> str | None:
    for r in items:
        if r.kind == "bucket":
            return r.name
    for r in items:
        uri = r.artifact_uri
        if uri.startswith("gs://") and f"/{ARTIFACT_PREFIX}/{stack}/" in uri:
            return uri[5:].split("/", 1)[0]
    return None


def _hourly(
    provider: Provider, stack: str, bucket: str | None, region: str, table: PriceTable | None
) -> float | None:
    from deployer.cost import estimate_deployments
    from deployer.spec import Accelerator, Deployment

    state = provider.observe(stack, bucket)
    pairs = []
    for e in state.endpoints:
        for d in e.deployments:
            acc = (
                Accelerator(d.accelerator_type, d.accelerator_count) if d.accelerator_type else None
            )
            pairs.append(
                (
                    e.name,
                    Deployment(
                        d.display_name,
                        d.version_id,
                        0,
                        d.machine_type,
                        d.min_replicas,
                        d.max_replicas,
                        acc,
                    ),
                )
            )
    return estimate_deployments(pairs, region, table).hourly_min if pairs else 0.0


def reap(
    project: str,
    region: str,
    *,
    provider: Provider,
    dry_run: bool = False,
    now: float | None = None,
    reporter: Reporter | None = None,
    options: ApplyOptions | None = None,
    table: PriceTable | None = None,
) -> ReapReport:
    """Tear down every stack in project/region whose expiry label is in the past.

    `provider` is connected to that project/region by the caller (the CLI uses
    `deployer.providers.connect`); the reaper itself never builds clients.
    """
    t = int(now if now is not None else time.time())
    report = ReapReport(project, region, dry_run, t)
    by_stack: dict[str, list[LabelledResource]] = {}
    for r in provider.list_labelled():
        stack = dict(r.labels).get(LABEL_STACK)
        if stack:
            by_stack.setdefault(stack, []).append(r)
    for stack, items in sorted(by_stack.items()):
        stamps = [int(v) for r in items for k, v in r.labels if k == LABEL_EXPIRES and v.isdigit()]
        expires = min(stamps) if stamps else None
        entry = ReapedStack(
            stack,
            expires,
            expires is not None and expires <= t,
            _bucket_of(stack, items),
            [f"{r.kind} {r.name}" for r in items],
        )
        report.stacks.append(entry)
        if not entry.expired:
            continue
        try:
            entry.hourly_usd = _hourly(provider, stack, entry.bucket, region, table)
        except errors.DeployerError as exc:
            entry.error = exc.message
        if dry_run:
            continue
        from deployer.reconcile.teardown import teardown_stack

        try:
            if entry.bucket:
                teardown_stack(provider, stack, entry.bucket, reporter=reporter, options=options)
            else:
                _teardown_bucketless(provider, stack, reporter, options)
            entry.torn_down = True
        except errors.DeployerError as exc:
            entry.error = exc.render()
    return report


def _teardown_bucketless(
    provider: Provider, stack: str, reporter: Reporter | None, options: ApplyOptions | None
) -> None:
    """Endpoints and models only: with no bucket known there is no lock, journal or object."""
    from deployer.reconcile.executor import ApplyReport, Executor
    from deployer.reconcile.plan import plan_teardown

    plan = plan_teardown(provider.observe(stack, None))
    ex = Executor(
        provider, stack, reporter or Reporter(), options or ApplyOptions(), ApplyReport(plan)
    )
    for action in plan.actions:
        ex.run(action)
    for job in provider.list_batch_jobs(stack):
        from deployer.reconcile.teardown import _delete_batch_job

        _delete_batch_job(provider, job, options or ApplyOptions())

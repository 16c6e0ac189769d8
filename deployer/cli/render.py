"""One renderer for plan, apply, status and teardown: text for people, JSON for machines.

Owns: the plan diff (`+ create`, `~ update`, `-/+ replace`, `- delete`, with reasons),
the cost lines (after the change, and the delta against what is deployed now), the JSON
documents `--output json` prints, and `ConsoleReporter` (per-action progress and an
upload progress bar with rich, on stderr so stdout stays machine-readable).

Must not: call any API or decide anything; it only formats what it is given.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from deployer.reconcile.actions import action_to_json
from deployer.reconcile.apply import ApplyReport, Outcome, Reporter
from deployer.reconcile.plan import Action, ActionKind, Plan

if TYPE_CHECKING:
    from deployer.cost import Estimate
    from deployer.reconcile.teardown import TeardownReport
    from deployer.state import StackState

_SYMBOL = {
    ActionKind.CREATE: "+",
    ActionKind.UPDATE: "~",
    ActionKind.REPLACE: "-/+",
    ActionKind.DELETE: "-",
}
_COLOR = {
    ActionKind.CREATE: "green",
    ActionKind.UPDATE: "yellow",
    ActionKind.REPLACE: "magenta",
    ActionKind.DELETE: "red",
}


def _usd(x: float | None) -> str:
    from deployer.cost import format_usd

    return format_usd(x)


def action_line(a: Action, *, markup: bool = False) -> str:
    sym = _SYMBOL[a.kind]
    text = f"{sym:>3} {a.kind.value:<7} {a.address}  ({a.reason})"
    return f"[{_COLOR[a.kind]}]{text}[/]" if markup else text


def cost_lines(after: Estimate | None, now: Estimate | None) -> list[str]:
    if after is None:
        return []
    lines = [
        (
            f"Estimated cost after this change: {_usd(after.hourly_min)}/h "
            f"({_usd(after.monthly_min)}/month) at min replicas, up to "
            f"{_usd(after.hourly_max)}/h ({_usd(after.monthly_max)}/month) at max replicas"
        )
    ]
    if now is not None:
        delta = after.hourly_min - now.hourly_min
        sign = "+" if delta >= 0 else "-"
        lines.append(
            f"Change vs now: {sign}{_usd(abs(delta))}/h ({sign}{_usd(abs(delta) * 730)}/month)"
        )
    for job in after.batch_jobs:
        lines.append(f"Batch job {job.name}: up to {_usd(job.total_max)} per run ({job.note})")
    if after.unknown:
        lines.append("Not priced: " + "; ".join(after.unknown))
    lines.append(f"Prices: {after.table_source} as of {after.table_as_of}")
    return lines


def plan_text(plan: Plan, after: Estimate | None = None, now: Estimate | None = None) -> str:
    if plan.is_empty:
        out = ["No changes. The stack matches the spec."]
    else:
        c = plan.counts()
        out = [
            (
                f"Plan for stack {plan.stack}: {c['create']} to create, {c['update']} to "
                f"update, {c['replace']} to replace, {c['delete']} to delete."
            )
        ]
        out += [action_line(a) for a in plan.actions]
    out += cost_lines(after, now)
    return "\n".join(out)


def action_json(a: Action) -> dict[str, Any]:
    """What people and CI summaries read of an action: the codec's document less the payload
    (a saved plan file carries that, see `deployer.reconcile.saved`)."""
    doc = action_to_json(a)
    return {k: doc[k] for k in ("kind", "resource", "address", "reason")}


def plan_json(
    plan: Plan, after: Estimate | None = None, now: Estimate | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "stack": plan.stack,
        "changes": not plan.is_empty,
        "summary": plan.counts(),
        "actions": [action_json(a) for a in plan.actions],
    }
    if after is not None:
        doc["cost"] = {
            "after": after.to_dict(),
            "now": now.to_dict() if now is not None else None,
            "delta_hourly": round(after.hourly_min - now.hourly_min, 4)
            if now is not None
            else None,
        }
    return doc


def apply_json(
    report: ApplyReport, after: Estimate | None = None, now: Estimate | None = None
) -> dict[str, Any]:
    doc = plan_json(report.plan, after, now)
    doc["applied"] = [
        {**action_json(r.action), "outcome": r.outcome.value, "seconds": round(r.seconds, 3)}
        for r in report.results
    ]
    doc["uploads"] = [u.__dict__ for u in report.uploads]
    doc["resumed_operations"] = report.resumed_operations
    doc["no_changes"] = report.plan.is_empty
    return doc


def teardown_text(r: TeardownReport) -> str:
    head = "Would remove" if r.dry_run else "Removed"
    lines = [f"{head} from stack {r.stack}:"]
    lines += [action_line(a) for a in r.plan.actions]
    lines += [f"  - delete  batch job {j.name or j.resource}  ({j.state})" for j in r.batch_jobs]
    for prefix, n in r.objects.items():
        if n:
            lines.append(f"  - delete  {n} objects under gs://{r.bucket}/{prefix}")
    if r.bucket_deleted:
        lines.append(f"  - delete  bucket {r.bucket}")
    if len(lines) == 1:
        return f"Nothing to remove: no resource carries the label deployer-stack={r.stack}."
    if not r.dry_run:
        lines.append("Verified: nothing labelled with the stack is left.")
    return "\n".join(lines)


def teardown_json(r: TeardownReport) -> dict[str, Any]:
    return {
        "stack": r.stack,
        "dry_run": r.dry_run,
        "actions": [action_json(a) for a in r.plan.actions],
        "batch_jobs": [j.resource for j in r.batch_jobs],
        "objects": r.objects,
        "bucket_deleted": r.bucket_deleted,
        "remaining": r.remaining,
    }


def status_rows(
    state: StackState,
    hourly: dict[tuple[str, str], float | None],
    urls: dict[str, str],
    now: float | None = None,
) -> dict[str, Any]:
    """The status document: versions, endpoints, deployments with cost, predict URLs."""
    t = now if now is not None else time.time()
    models = [
        {
            "name": m.name,
            "resource": m.resource,
            "versions": [
                {
                    "version_id": v.version_id,
                    "aliases": list(v.aliases),
                    "artifact_uri": v.artifact_uri,
                    "content_hash": v.label("deployer-hash"),
                }
                for v in m.versions
            ],
        }
        for m in state.models
    ]
    endpoints = []
    for e in state.endpoints:
        traffic = dict(e.traffic)
        deps = []
        for d in e.deployments:
            rate = hourly.get((e.name, d.id))
            hours = (t - d.deployed_at) / 3600 if d.deployed_at else None
            deps.append(
                {
                    "id": d.id,
                    "model": d.display_name,
                    "version_id": d.version_id,
                    "traffic": traffic.get(d.id, 0),
                    "machine_type": d.machine_type,
                    "accelerator": (
                        f"{d.accelerator_count}x {d.accelerator_type}"
                        if d.accelerator_type
                        else None
                    ),
                    "replicas": {
                        "min": d.min_replicas,
                        "max": d.max_replicas,
                        "available": d.replicas_available,
                    },
                    "hourly_usd": rate,
                    "running_usd": round(rate * hours, 4) if rate is not None and hours else None,
                    "deployed_at": d.deployed_at,
                }
            )
        endpoints.append(
            {
                "name": e.name,
                "resource": e.resource,
                "predict_url": urls[e.name],
                "deployments": deps,
            }
        )
    return {
        "stack": state.stack,
        "bucket": state.bucket.name,
        "bucket_exists": state.bucket.exists,
        "models": models,
        "endpoints": endpoints,
    }


def status_text(doc: dict[str, Any]) -> str:
    lines = [
        (
            f"Stack {doc['stack']}  (bucket gs://{doc['bucket']}"
            f"{'' if doc['bucket_exists'] else ', missing'})"
        )
    ]
    if not doc["models"] and not doc["endpoints"]:
        lines.append("  nothing deployed")
    for m in doc["models"]:
        lines.append(f"  model {m['name']}")
        for v in m["versions"]:
            lines.append(
                f"    version {v['version_id']:<4} aliases {','.join(v['aliases']) or '-':<14}"
                f" {v['artifact_uri']}"
            )
    for e in doc["endpoints"]:
        lines.append(f"  endpoint {e['name']}  {e['predict_url']}")
        for d in e["deployments"]:
            acc = f" + {d['accelerator']}" if d["accelerator"] else ""
            lines.append(
                f"    {d['model']:<16} {d['traffic']:>3}%  {d['machine_type']}{acc}  replicas "
                f"{d['replicas']['min']}-{d['replicas']['max']}{_serving(d['replicas'])}  "
                f"{_usd(d['hourly_usd'])}/h  "
                f"running {_usd(d['running_usd'])}"
            )
    return "\n".join(lines)


def _serving(replicas: dict[str, Any]) -> str:
    """' (N serving)' when the service reported how many replicas run now."""
    available = replicas.get("available")
    return "" if available is None else f" ({available} serving)"


class ConsoleReporter(Reporter):
    """Streams one line per action to stderr, with byte progress bars during uploads.

    Apply uploads several artifacts at once, so one live display holds a bar per upload."""

    def __init__(self, *, quiet: bool = False) -> None:
        import threading

        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet
        self._lock = threading.Lock()
        self._progress: Any = None
        self._tasks: dict[int, Any] = {}  # id(action) -> rich task id

    def action_started(self, action: Action) -> None:
        if not self.quiet:
            self.console.print(action_line(action, markup=True) + " ...")

    def action_finished(self, action: Action, outcome: Outcome, seconds: float) -> None:
        self._finish_bar(action)
        if not self.quiet:
            note = " (already there: adopted)" if outcome is Outcome.ADOPTED else ""
            self.console.print(f"      {action.address}: done in {seconds:.1f}s{note}")

    def upload_started(self, action: Action, files: int, nbytes: int) -> None:
        if self.quiet:
            return
        if not files:
            self.console.print(f"      {action.address}: all files already uploaded, none sent")
            return
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        with self._lock:
            if self._progress is None:
                self._progress = Progress(
                    "      {task.description}",
                    BarColumn(),
                    DownloadColumn(),
                    TransferSpeedColumn(),
                    console=self.console,
                    disable=not sys.stderr.isatty(),
                )
                self._progress.start()
            self._tasks[id(action)] = self._progress.add_task(action.address, total=nbytes)
        self.console.print(f"      {action.address}: {files} file(s), {nbytes:,} bytes to send")

    def upload_progress(self, action: Action, nbytes: int) -> None:
        with self._lock:
            task = self._tasks.get(id(action))
            if task is not None:
                self._progress.advance(task, nbytes)

    def _finish_bar(self, action: Action) -> None:
        with self._lock:
            task = self._tasks.pop(id(action), None)
            if task is not None:
                self._progress.remove_task(task)
            if self._progress is not None and not self._tasks:
                self._progress.stop()
                self._progress = None

    def note(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message)

"""Apply a plan: exactly the plan the user saw, or nothing.

Owns: `make_plan` (observe, hash artifacts, plan; no mutating call), `apply_spec` (plan ->
show and confirm -> execute that plan), `apply_saved` (a plan file written by `deployer plan
--out`: check the spec and artifacts are unchanged and the stack is as observed, BEFORE any
mutating call, then execute it), and `execute_plan`, the part both share: bucket -> lock ->
check the stack is still as the plan observed it -> resume journaled operations -> converge,
re-observing to resolve ids and to adopt what already took effect, while refusing
(`StalePlan`) to run any action the plan does not hold.

Must not: import google.cloud (it receives a `Provider`), decide what to change (that is
`plan`'s job), run an action outside the confirmed plan, or make a mutating call when the
plan is empty or stale.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from deployer import errors
from deployer.reconcile.actions import action_to_json
from deployer.reconcile.executor import (
    ActionResult,
    ApplyOptions,
    ApplyReport,
    Executor,
    Outcome,
    Reporter,
)
from deployer.reconcile.journal import Journal, StackLock
from deployer.reconcile.plan import Action, CreateBucket, Plan, PlanInputs, plan_stack
from deployer.reconcile.saved import (
    Fingerprint,
    SavedPlan,
    bucket_address,
    check_fresh,
    check_sources,
    fingerprint,
    replan_hint,
)
from deployer.reconcile.upload import artifact_hashes
from deployer.spec import Spec
from deployer.state import LABEL_EXPIRES, StackState

if TYPE_CHECKING:
    from deployer.providers import Provider

# Re-exported: the CLI and teardown import the executor's vocabulary from here.
__all__ = [
    "ActionResult",
    "ApplyOptions",
    "ApplyReport",
    "Outcome",
    "Reporter",
    "action_key",
    "apply_saved",
    "apply_spec",
    "execute_plan",
    "expiry_for",
    "make_plan",
]

_REPLAN = "run `deployer apply SPEC` again: it shows the new plan and asks again"


def expiry_for(spec: Spec, now: float | None = None) -> int | None:
    if spec.guards.ttl_seconds is None:
        return None
    return int((now if now is not None else time.time()) + spec.guards.ttl_seconds)


def make_plan(
    spec: Spec,
    provider: Provider,
    *,
    hashes: dict[tuple[str, str], str] | None = None,
) -> tuple[Plan, StackState, PlanInputs]:
    """Observe the stack and plan; no mutating call."""
    inputs = PlanInputs(hashes if hashes is not None else artifact_hashes(spec), expiry_for(spec))
    observed = provider.observe(spec.stack, spec.bucket.name)
    return plan_stack(spec, observed, inputs), observed, inputs


def apply_spec(
    spec: Spec,
    provider: Provider,
    *,
    reporter: Reporter | None = None,
    options: ApplyOptions | None = None,
    confirm: Callable[[Plan], bool] | None = None,
    hashes: dict[tuple[str, str], str] | None = None,
) -> ApplyReport:
    """Make the cloud match `spec` by the plan `confirm` was shown. Zero mutating calls when
    it already does; `StalePlan` if the stack changed while the user was reading the plan."""
    plan, observed, inputs = make_plan(spec, provider, hashes=hashes)
    return _confirm_and_execute(
        spec,
        provider,
        plan,
        observed,
        fingerprint(observed),
        inputs,
        reporter=reporter,
        options=options,
        confirm=confirm,
        stale_hint=_REPLAN,
    )


def apply_saved(
    saved: SavedPlan,
    spec: Spec,
    provider: Provider,
    *,
    plan_file: str,
    reporter: Reporter | None = None,
    options: ApplyOptions | None = None,
    confirm: Callable[[Plan], bool] | None = None,
    hashes: dict[tuple[str, str], str] | None = None,
) -> ApplyReport:
    """Execute the saved plan `saved` (made from `spec`), or refuse with `StalePlan` before
    any mutating call if the spec, an artifact or the stack changed since it was written."""
    hint = replan_hint(saved, plan_file)
    hashes = hashes if hashes is not None else artifact_hashes(spec)
    check_sources(saved, spec, hashes, plan_file=plan_file)  # no API call
    observed = provider.observe(spec.stack, spec.bucket.name)
    check_fresh(saved.fingerprint, observed, hint=hint)
    # The expiry is stamped when applied (a plan may wait a day for review); it is not part
    # of what an action is (see action_key).
    inputs = PlanInputs(hashes, expiry_for(spec))
    # Same spec, same artifacts, same stack: planning again must give the saved actions. If
    # not, the file was edited or written by a deployer that plans differently.
    _require_within(plan_stack(spec, observed, inputs), saved.plan, hint, both_ways=True)
    return _confirm_and_execute(
        spec,
        provider,
        saved.plan,
        observed,
        saved.fingerprint,
        inputs,
        reporter=reporter,
        options=options,
        confirm=confirm,
        stale_hint=hint,
    )


def _confirm_and_execute(
    spec: Spec,
    provider: Provider,
    plan: Plan,
    observed: StackState,
    planned: Fingerprint,
    inputs: PlanInputs,
    *,
    reporter: Reporter | None,
    options: ApplyOptions | None,
    confirm: Callable[[Plan], bool] | None,
    stale_hint: str,
) -> ApplyReport:
    rep = reporter or Reporter()
    report = ApplyReport(plan, observed=observed)
    rep.plan_ready(plan, observed)
    if plan.is_empty:
        return report
    if confirm is not None and not confirm(plan):
        raise errors.Aborted("apply cancelled; nothing was changed")
    execute_plan(
        spec,
        provider,
        plan,
        planned,
        inputs,
        report,
        reporter=rep,
        options=options,
        stale_hint=stale_hint,
    )
    return report


def execute_plan(
    spec: Spec,
    provider: Provider,
    plan: Plan,
    planned: Fingerprint,
    inputs: PlanInputs,
    report: ApplyReport,
    *,
    reporter: Reporter | None = None,
    options: ApplyOptions | None = None,
    stale_hint: str = _REPLAN,
) -> None:
    """Run `plan`, made against a stack whose fingerprint was `planned`.

    Under the stack lock the stack is observed again and must still match `planned`
    (else `StalePlan`, and only the lock was written). Then operations a killed run left in
    flight are resumed, and each round re-plans from what exists and runs what is left: a
    re-plan resolves ids (a version created a moment ago) and drops what already took
    effect (adopted), but any action it holds that `plan` does not is refused.
    """
    rep = reporter or Reporter()
    opts = options or ApplyOptions()
    ex = Executor(provider, spec.stack, rep, opts, report)
    first = [a for a in plan.actions if isinstance(a.payload, CreateBucket)]
    for action in first:
        ex.run(action)  # the lock lives in the bucket, so the bucket comes first
    with StackLock(
        provider, spec.bucket.name, spec.stack, timeout=opts.lock_timeout, policy=opts.policy
    ) as lock:
        if lock.broke_stale:
            rep.note(f"removed a stale lock left by {lock.broke_stale} (no longer running)")
        observed: StackState | None = provider.observe(spec.stack, spec.bucket.name)
        assert observed is not None
        ignore = [bucket_address(spec.bucket.name)] if first else []
        check_fresh(planned, observed, hint=stale_hint, ignore=ignore)
        ex.journal = Journal(provider, spec.bucket.name, spec.stack, policy=opts.policy)
        resumed = report.resumed_operations
        ex.resume()
        if report.resumed_operations != resumed:
            observed = None  # a resumed operation changed what exists: look again
        for round_ in range(1, opts.max_rounds + 1):
            report.rounds = round_
            if observed is None:
                observed = provider.observe(spec.stack, spec.bucket.name)
            current = plan_stack(spec, observed, inputs)
            if current.is_empty:
                return
            _require_within(current, plan, stale_hint)
            ex.run_all(current.actions)
            observed = None
    raise errors.DeployerError(
        f"stack {spec.stack!r} still differs from the spec after {opts.max_rounds} rounds",
        hint="run `deployer plan SPEC` to see what is left, then apply again",
    )


# ------------------------------------------------------------------ plan membership


def action_key(action: Action) -> str:
    """What an action IS, for "is it part of the confirmed plan": its payload as the codec
    writes it, less what apply fills in or stamps at run time: version ids (None until the
    version exists), the local path an artifact is read from (its content hash is kept),
    the deployer-expires label (stamped when applied), and the kind and reason wording."""
    doc = action_to_json(action)
    payload = _runtime_free(doc["payload"], doc["type"])
    return json.dumps([doc["resource"], doc["address"], doc["type"], payload], sort_keys=True)


def _runtime_free(value: Any, kind: str) -> Any:
    if isinstance(value, list):
        return [_runtime_free(v, kind) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        if k == "version_id" and "spec_hash" in value:
            continue
        if k == "source" and kind == "UploadArtifact":
            continue
        if k == "labels":
            v = [pair for pair in v if pair[0] != LABEL_EXPIRES]
        out[k] = _runtime_free(v, kind)
    return out


def _require_within(current: Plan, allowed: Plan, hint: str, *, both_ways: bool = False) -> None:
    keys = {action_key(a) for a in allowed.actions}
    extra = [a for a in current.actions if action_key(a) not in keys]
    missing: Iterable[Action] = ()
    if both_ways:
        now = {action_key(a) for a in current.actions}
        missing = [a for a in allowed.actions if action_key(a) not in now]
    lines = [f"  + {a.kind.value} {a.address} ({a.reason})" for a in extra]
    lines += [f"  - {a.kind.value} {a.address} (planned, no longer needed)" for a in missing]
    if lines:
        raise errors.StalePlan(
            "the stack needs actions the plan does not hold, so it no longer describes what "
            "would run; nothing outside it was applied:\n" + "\n".join(lines),
            hint=hint,
        )

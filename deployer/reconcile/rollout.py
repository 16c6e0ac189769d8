"""Run a rollout: shift an endpoint's traffic to a new version step by step, verified.

Owns `run_rollout`: with the new version deployed at 0%, it records the answers of the
version being replaced (for agreement), then per step sets the split, sends the check
instances through the endpoint (the provider's predict call), hands the samples to
`deployer.reconcile.verify` for a verdict, and shifts on. On failure it restores the
previous split and undeploys the new version (`rollback`), or holds the last verified
split (`hold`), and raises `RolloutFailed` with a report per version. Also owns the report
values (`StepResult`, `RolloutReport`) and their text, and `VerifiedSplit`: the endpoint's
last verified split and the rollout in flight, kept in the stack bucket (the cloud is the
state: a lost laptop loses nothing), so a killed apply's re-run rolls back to it if the
re-verified rollout fails, and `deployer rollback` restores it by hand.

Must not: decide (verify does, from samples), plan, or import google.cloud (it receives a
`Provider`). The predict call and the clock are parameters, so tests script them.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer import errors
from deployer.providers.retry import call_with_retry
from deployer.reconcile.executor import ApplyOptions, Reporter, wait_operation
from deployer.reconcile.journal import Journal
from deployer.reconcile.verify import (
    CheckKind,
    Decision,
    Sample,
    Traffic,
    Verdict,
    VersionStats,
    decide,
    step_split,
    summarize,
)
from deployer.spec import OnFailure, RolloutPolicy
from deployer.spec.rollout import read_check_file
from deployer.state import CONTROL_PREFIX

if TYPE_CHECKING:
    from deployer.providers import Provider

Predict = Callable[[str, bytes], dict[str, Any]]  # (endpoint id, request body) -> response
EXTEND = 10  # a step whose checks saw too little goes on up to this many times its budget


class RolloutOutcome(str, enum.Enum):
    COMPLETED = "completed"  # every step passed; the split is the spec's
    ROLLED_BACK = "rolled back"  # the previous split restored, the new version undeployed
    HELD = "held"  # the last verified split kept, the new version still deployed


@dataclass(frozen=True)
class StepResult:
    percent: int  # the new version's share at this step
    split: Traffic
    decision: Decision
    stats: tuple[VersionStats, ...]  # the new version first
    unattributed_errors: int  # errors (charged to the new version in its stats)
    seconds: float
    first_error: str = ""  # what the first error said, for the report


@dataclass
class RolloutReport:
    endpoint: str  # what a person reads: the endpoint's logical name
    new_id: str
    names: Mapping[str, str]  # deployed model id -> "model@alias"
    old_split: Traffic
    steps: list[StepResult] = field(default_factory=list)
    outcome: RolloutOutcome | None = None
    final_split: Traffic = ()
    planned_steps: int = 0

    def name(self, deployed_id: str) -> str:
        return self.names.get(deployed_id, deployed_id)

    def render(self) -> str:
        lines = [f"rollout of {self.name(self.new_id)} on {self.endpoint}: {self._outcome()}"]
        for i, step in enumerate(self.steps, 1):
            lines.append(
                f"  step {i}/{self.planned_steps} at {step.percent}%: "
                f"{step.decision.verdict.value}"
                + (f" ({'; '.join(step.decision.reasons)})" if step.decision.reasons else "")
            )
            lines.extend("    " + stats_line(self.name(s.deployed_id), s) for s in step.stats)
            if step.first_error:
                lines.append(f"    first error: {step.first_error}")
        lines.append(f"  split now: {split_text(self.final_split, self.name)}")
        return "\n".join(lines)

    def _outcome(self) -> str:
        return self.outcome.value if self.outcome else "in progress"


def split_text(split: Traffic, name: Callable[[str], str]) -> str:
    shares = sorted((name(d), t) for d, t in split if t)
    return ", ".join(f"{n} {t}%" for n, t in shares) or "(none)"


def stats_line(name: str, s: VersionStats) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} ms"

    text = (
        f"{name}: {s.requests} answered, {s.errors} errors, p50 {ms(s.p50_ms)}, p99 {ms(s.p99_ms)}"
    )
    if s.smoke_checked:
        text += f", smoke {s.smoke_checked - s.smoke_failed}/{s.smoke_checked}"
    if s.agreement_percent is not None:
        text += f", agreement {s.agreement_percent:.0f}% ({s.agreed}/{s.agreement_checked})"
    return text


@dataclass(frozen=True)
class CheckCase:
    kind: CheckKind
    index: int  # in its check file
    body: bytes  # the PredictRequest: one instance


def load_cases(policy: RolloutPolicy) -> tuple[list[CheckCase], list[Any]]:
    """The check requests of a policy, and each smoke case's expected prediction."""
    cases: list[CheckCase] = []
    expected: list[Any] = []
    for kind, check in ((CheckKind.SMOKE, policy.smoke), (CheckKind.AGREEMENT, policy.agreement)):
        if check is None:
            continue
        try:
            found = read_check_file(Path(check.file), smoke=kind is CheckKind.SMOKE)
        except (OSError, ValueError) as exc:
            raise errors.ConfigError(
                f"rollout {kind.value} file {check.file}: {exc}",
                hint="fix the file; deployer validate SPEC checks it",
            ) from None
        for i, case in enumerate(found):
            instance = case["instance"] if kind is CheckKind.SMOKE else case
            if kind is CheckKind.SMOKE:
                expected.append(case["expected"])
            body = json.dumps({"instances": [instance]}).encode()
            cases.append(CheckCase(kind, i, body))
    return cases, expected


@dataclass(frozen=True)
class VerifiedSplit:
    split: Traffic  # the endpoint's last verified, settled split
    rolling: str | None = None  # the deployed id of a rollout in flight (or held)


class VerifiedStore:
    """gs://<bucket>/.deployer/<stack>/verified/<endpoint id>.json"""

    def __init__(
        self, provider: Provider, bucket: str, stack: str, endpoint_id: str, options: ApplyOptions
    ) -> None:
        self.provider, self.bucket, self.options = provider, bucket, options
        self.name = f"{CONTROL_PREFIX}/{stack}/verified/{endpoint_id}.json"

    def read(self) -> VerifiedSplit | None:
        found = call_with_retry(
            lambda: self.provider.read_object(self.bucket, self.name), policy=self.options.policy
        )
        if not found:
            return None
        try:
            doc = json.loads(found[0])
            split = tuple((str(d), int(t)) for d, t in doc["split"])
            rolling = doc.get("rolling")
            return VerifiedSplit(split, str(rolling) if rolling else None)
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: as if none was recorded (the observed split is used)

    def write(self, record: VerifiedSplit) -> None:
        data = json.dumps({"split": record.split, "rolling": record.rolling}).encode()
        call_with_retry(
            lambda: self.provider.write_object(self.bucket, self.name, data),
            policy=self.options.policy,
        )


def starting_split(observed: Traffic, record: VerifiedSplit | None, new_id: str) -> Traffic:
    """What a rollout of `new_id` starts from (and rolls back to): the recorded split when a
    rollout of it was in flight (a killed apply left an unverified split), else what serves."""
    if record is not None and record.rolling == new_id:
        return record.split
    return tuple(sorted((d, t) for d, t in observed if t))


class _Traffic:
    """Sends check requests through the endpoint and turns the answers into samples."""

    def __init__(self, endpoint_id: str, predict: Predict, clock: Callable[[], float]) -> None:
        self.endpoint_id, self.predict, self.clock = endpoint_id, predict, clock

    def send(self, case: CheckCase) -> Sample:
        t0 = self.clock()
        try:
            resp = self.predict(self.endpoint_id, case.body)
        except errors.ApiError as exc:
            return Sample(
                case.kind, case.index, None, (self.clock() - t0) * 1000, error=exc.message
            )
        ms = (self.clock() - t0) * 1000
        deployed = resp.get("deployedModelId")
        predictions = resp.get("predictions")
        if not isinstance(deployed, str) or not isinstance(predictions, list) or not predictions:
            return Sample(case.kind, case.index, None, ms, error="an answer without a version")
        return Sample(case.kind, case.index, deployed, ms, prediction=predictions[0])


def run_rollout(
    provider: Provider,
    *,
    endpoint: str,
    endpoint_id: str,
    new_id: str,
    names: Mapping[str, str],
    old_split: Traffic,
    final_split: Traffic,
    policy: RolloutPolicy,
    reporter: Reporter,
    options: ApplyOptions,
    journal: Journal | None = None,
    store: VerifiedStore | None = None,
    current: Traffic | None = None,
    predict: Predict | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RolloutReport:
    """Take `new_id` (deployed at 0%) from `old_split` to `final_split` in verified steps.

    Returns the report of a completed rollout; raises `RolloutFailed` (after restoring or
    holding the split) when a step fails. `current`: the endpoint's split now, when known;
    if it is not `old_split` (a killed run left a step unverified), `old_split` is restored
    before anything is verified again.
    """
    report = RolloutReport(endpoint, new_id, names, old_split, final_split=old_split)
    if store is not None:
        store.write(VerifiedSplit(old_split, rolling=new_id))
    traffic = _Traffic(endpoint_id, predict or provider.predict, clock)
    cases, expected = load_cases(policy)
    has_old = any(t for d, t in old_split if d != new_id)
    if not has_old:
        # Nothing is being replaced: verify the new version alone, at its full share.
        policy = dataclasses.replace(policy, agreement=None, steps=policy.steps[-1:])
        cases = [c for c in cases if c.kind is not CheckKind.AGREEMENT]
    report.planned_steps = len(policy.steps)

    def set_split(split: Traffic) -> None:
        call_with_retry(lambda: provider.set_traffic(endpoint_id, split), policy=options.policy)
        report.final_split = split

    if current is not None and tuple(sorted((d, t) for d, t in current if t)) != old_split:
        reporter.note(
            f"rollout {endpoint}: restoring the verified split "
            f"{split_text(old_split, report.name)} before verifying again"
        )
        set_split(old_split)
    baseline: dict[int, Any] = {}
    if policy.agreement is not None:
        for case in cases:
            if case.kind is CheckKind.AGREEMENT:
                answer = traffic.send(case)
                if answer.deployed_id is not None and answer.deployed_id != new_id:
                    baseline[case.index] = answer.prediction
        reporter.note(
            f"rollout {endpoint}: {len(baseline)} answers of the version being replaced recorded"
        )

    verified = old_split
    for i, percent in enumerate(policy.steps, 1):
        split = final_split if i == len(policy.steps) else step_split(old_split, new_id, percent)
        set_split(split)
        reporter.note(
            f"rollout {endpoint}: step {i}/{len(policy.steps)}: {split_text(split, report.name)}"
        )
        result = _run_step(traffic, cases, policy, new_id, percent, split, expected, baseline)
        report.steps.append(result)
        for s in result.stats:
            reporter.note(f"  {stats_line(report.name(s.deployed_id), s)}")
        if result.decision.verdict is Verdict.PASS:
            reporter.note(f"  step {i} passed")
            verified = split
            continue
        reporter.note(f"  step {i} failed: {'; '.join(result.decision.reasons)}")
        _fail(provider, report, policy, options, journal, store, endpoint_id, verified, set_split)
    report.outcome = RolloutOutcome.COMPLETED
    if store is not None:
        store.write(VerifiedSplit(report.final_split))
    return report


def _run_step(
    traffic: _Traffic,
    cases: list[CheckCase],
    policy: RolloutPolicy,
    new_id: str,
    percent: int,
    split: Traffic,
    expected: list[Any],
    baseline: Mapping[int, Any],
) -> StepResult:
    clock = traffic.clock
    t0 = clock()
    samples: list[Sample] = []

    def budget_spent(factor: int) -> bool:
        if policy.requests is not None:
            return len(samples) >= policy.requests * factor
        return clock() - t0 >= (policy.wait_seconds or 0.0) * factor

    def verdict(exhausted: bool) -> tuple[Decision, dict[str, VersionStats]]:
        stats = summarize(
            samples, new_id=new_id, policy=policy, expected=expected, baseline=baseline
        )
        compare = policy.agreement is None or bool(baseline)
        return decide(policy, stats[new_id], exhausted=exhausted, compare=compare), stats

    factor = 1
    n = 0
    while True:
        samples.append(traffic.send(cases[n % len(cases)]))
        n += 1
        if not budget_spent(factor):
            continue
        decision, stats = verdict(exhausted=factor >= EXTEND)
        if decision.verdict is not Verdict.MORE:
            break
        factor += 1
    ordered = [stats[new_id], *(s for d, s in sorted(stats.items()) if d != new_id)]
    failed = [s.error for s in samples if s.deployed_id is None]
    return StepResult(
        percent, split, decision, tuple(ordered), len(failed), clock() - t0, next(iter(failed), "")
    )


def _fail(
    provider: Provider,
    report: RolloutReport,
    policy: RolloutPolicy,
    options: ApplyOptions,
    journal: Journal | None,
    store: VerifiedStore | None,
    endpoint_id: str,
    verified: Traffic,
    set_split: Callable[[Traffic], None],
) -> None:
    new = report.name(report.new_id)
    if policy.on_failure is OnFailure.HOLD:
        set_split(verified)
        report.outcome = RolloutOutcome.HELD
        hint = (
            f"{new} stays deployed at the last verified split; fix it and apply again, or "
            f"run deployer rollback SPEC --endpoint {report.endpoint}"
        )
    else:
        set_split(report.old_split)
        if dict(report.old_split).get(report.new_id):
            # It had a verified share before this rollout: that share is restored, not removed.
            report.outcome = RolloutOutcome.ROLLED_BACK
            raise errors.RolloutFailed(
                report.render(), hint="the previous split is restored; fix it and apply again"
            )
        op = call_with_retry(
            lambda: provider.undeploy(endpoint_id, report.new_id, report.old_split),
            policy=options.policy,
        )
        wait_operation(
            provider,
            op,
            f"undeploy {new} from {report.endpoint}",
            options,
            journal=journal,
            key=f"undeploy:{endpoint_id}:{report.new_id}",
        )
        report.outcome = RolloutOutcome.ROLLED_BACK
        if store is not None:
            store.write(VerifiedSplit(report.old_split))
        hint = f"the previous split is restored and {new} undeployed; fix it and apply again"
    raise errors.RolloutFailed(report.render(), hint=hint)


def rollback_endpoint(
    provider: Provider, spec_stack: str, bucket: str, endpoint_id: str, options: ApplyOptions
) -> tuple[VerifiedSplit, str | None, dict[str, str]]:
    """Restore an endpoint's last verified split (`deployer rollback`), under the stack lock;
    undeploy the version of a rollout in flight or held when the split gives it nothing.
    Returns the split restored, the deployed id undeployed (None: none), and the names
    ("model@alias") of the endpoint's deployments by id."""
    from deployer.reconcile.journal import StackLock

    with StackLock(provider, bucket, spec_stack, timeout=options.lock_timeout):
        store = VerifiedStore(provider, bucket, spec_stack, endpoint_id, options)
        record = store.read()
        if record is None:
            raise errors.NotFound(
                f"no verified split is recorded for endpoint {endpoint_id}",
                hint="a split is recorded by an apply that runs a rollout (endpoint rollout:)",
            )
        ep = call_with_retry(lambda: provider.get_endpoint(endpoint_id), policy=options.policy)
        names = {d.id: d.display_name or d.id for d in ep.deployments} if ep is not None else {}
        deployed = set(names)
        missing = [d for d, t in record.split if t and d not in deployed]
        if ep is None or missing:
            raise errors.FailedPrecondition(
                f"the verified split of {endpoint_id} names deployments that are gone "
                f"({', '.join(missing) or 'the endpoint'})",
                hint="apply the spec instead: it deploys what the split needs",
            )
        call_with_retry(
            lambda: provider.set_traffic(endpoint_id, record.split), policy=options.policy
        )
        undeployed = None
        if record.rolling in deployed and not dict(record.split).get(record.rolling):
            rolling = record.rolling
            op = call_with_retry(
                lambda: provider.undeploy(endpoint_id, rolling, record.split),
                policy=options.policy,
            )
            wait_operation(provider, op, f"undeploy {rolling}", options)
            undeployed = rolling
        store.write(VerifiedSplit(record.split))
        return record, undeployed, names

"""PURE: the decisions of a rollout, from samples to a verdict.

Owns what a rollout step concludes from the responses it saw: `Sample` (one check request:
which deployed model answered, how fast, what), `VersionStats` (per version: requests,
errors, p50/p99 latency, smoke failures, agreement), `summarize`, `decide` (pass, fail,
or send more), `step_split` (the endpoint's split at a step) and the comparisons of
predictions (`matches` for smoke cases, `agrees` for agreement with the old version).

Errors carry no deployedModelId (Vertex names the deployed model only in a successful
response), so an error is unattributed; `decide` charges every unattributed error to the
new version. That is conservative: the old versions were verified when they rolled out.

Must not: do I/O, read the clock or call a provider (`deployer.reconcile.rollout` does, and
hands its samples here), so every decision is tested with synthetic samples.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployer.spec import RolloutPolicy

Traffic = tuple[tuple[str, int], ...]  # (deployed model id, percent), as in reconcile.actions


class CheckKind(str, enum.Enum):
    SMOKE = "smoke"  # a smoke case: its prediction must match the expected one
    AGREEMENT = "agreement"  # an agreement instance: compared with the old version's answer


@dataclass(frozen=True)
class Sample:
    kind: CheckKind
    case: int  # index of the case in its check file
    deployed_id: str | None  # the deployedModelId that answered; None: an error
    latency_ms: float  # client side, the whole predict call
    prediction: Any = None  # the answer, when there is one
    error: str = ""  # what went wrong, when nothing answered


@dataclass(frozen=True)
class VersionStats:
    deployed_id: str
    requests: int  # answered by this version (an error names no version)
    errors: int  # errors charged to this version
    p50_ms: float | None
    p99_ms: float | None
    smoke_checked: int = 0
    smoke_failed: int = 0
    agreement_checked: int = 0
    agreed: int = 0

    @property
    def error_rate(self) -> float:
        total = self.requests + self.errors
        return self.errors / total if total else 0.0

    @property
    def agreement_percent(self) -> float | None:
        return 100.0 * self.agreed / self.agreement_checked if self.agreement_checked else None


class Verdict(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    MORE = "more"  # too few answers from the new version to tell yet


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...]  # why it failed (or what is still missing)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _numbers(value: Any) -> list[float] | None:
    if isinstance(value, list) and value and all(_is_number(v) for v in value):
        return [float(v) for v in value]
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def matches(prediction: Any, expected: Any, tolerance: float) -> bool:
    """A smoke case: the same structure, numbers within `tolerance`, anything else equal."""
    if _is_number(prediction) and _is_number(expected):
        return abs(float(prediction) - float(expected)) <= tolerance
    if isinstance(prediction, list) and isinstance(expected, list):
        return len(prediction) == len(expected) and all(
            matches(p, e, tolerance) for p, e in zip(prediction, expected, strict=True)
        )
    if isinstance(prediction, dict) and isinstance(expected, dict):
        return prediction.keys() == expected.keys() and all(
            matches(prediction[k], expected[k], tolerance) for k in expected
        )
    return bool(prediction == expected)


def agrees(new: Any, old: Any, tolerance: float) -> bool:
    """Agreement: class scores (a flat list of two or more numbers) agree on the argmax;
    anything else agrees as a smoke case matches."""
    a, b = _numbers(new), _numbers(old)
    if a is not None and b is not None and len(a) == len(b) and len(a) > 1:
        return a.index(max(a)) == b.index(max(b))
    return matches(new, old, tolerance)


def summarize(
    samples: Iterable[Sample],
    *,
    new_id: str,
    policy: RolloutPolicy,
    expected: Sequence[Any] = (),
    baseline: Mapping[int, Any] | None = None,
) -> dict[str, VersionStats]:
    """Per deployed model: what it answered and how well. Unattributed errors go to `new_id`.

    `expected`: each smoke case's expected prediction; `baseline`: each agreement case's
    answer from the version being replaced (cases it did not answer are not compared).
    """
    latencies: dict[str, list[float]] = {new_id: []}
    errors: dict[str, int] = {new_id: 0}
    smoke: dict[str, list[bool]] = {}
    agree: dict[str, list[bool]] = {}
    for s in samples:
        if s.deployed_id is None:
            errors[new_id] += 1
            continue
        latencies.setdefault(s.deployed_id, []).append(s.latency_ms)
        errors.setdefault(s.deployed_id, 0)
        if s.kind is CheckKind.SMOKE and policy.smoke is not None and s.case < len(expected):
            ok = matches(s.prediction, expected[s.case], policy.smoke.tolerance)
            smoke.setdefault(s.deployed_id, []).append(ok)
        elif s.kind is CheckKind.AGREEMENT and policy.agreement is not None and baseline:
            if s.case in baseline:
                ok = agrees(s.prediction, baseline[s.case], policy.agreement.tolerance)
                agree.setdefault(s.deployed_id, []).append(ok)
    out = {}
    for dep, lat in latencies.items():
        out[dep] = VersionStats(
            deployed_id=dep,
            requests=len(lat),
            errors=errors.get(dep, 0),
            p50_ms=percentile(lat, 50),
            p99_ms=percentile(lat, 99),
            smoke_checked=len(smoke.get(dep, [])),
            smoke_failed=smoke.get(dep, []).count(False),
            agreement_checked=len(agree.get(dep, [])),
            agreed=agree.get(dep, []).count(True),
        )
    return out


def decide(
    policy: RolloutPolicy, stats: VersionStats, *, exhausted: bool, compare: bool = True
) -> Decision:
    """The verdict on the new version's `stats` at one step.

    A failed check fails at once, however few the samples. A check that saw nothing asks for
    more, until `exhausted` (the step's budget of requests or time is spent): then it fails,
    because a step is verified or it is not. `compare=False`: the version being replaced gave
    no baseline, so agreement cannot be judged (a failure, never a silent pass).
    """
    failed: list[str] = []
    missing: list[str] = []
    if policy.max_error_rate is not None and stats.errors:
        if stats.error_rate > policy.max_error_rate:
            failed.append(
                f"error rate {stats.error_rate:.1%} ({stats.errors} of "
                f"{stats.requests + stats.errors}) is above {policy.max_error_rate:.1%}"
            )
    if policy.max_p99_ms is not None and stats.p99_ms is not None:
        if stats.p99_ms > policy.max_p99_ms:
            failed.append(f"p99 latency {stats.p99_ms:.0f} ms is above {policy.max_p99_ms:g} ms")
    if policy.smoke is not None:
        if stats.smoke_failed:
            failed.append(
                f"{stats.smoke_failed} of {stats.smoke_checked} smoke cases gave a wrong answer"
            )
        elif not stats.smoke_checked:
            missing.append("no smoke case was answered by the new version")
    if policy.agreement is not None:
        percent = stats.agreement_percent
        if not compare:
            failed.append("the version being replaced answered no agreement instance")
        elif percent is not None and percent < policy.agreement.min_percent:
            failed.append(
                f"agreement {percent:.1f}% ({stats.agreed} of {stats.agreement_checked}) is "
                f"below {policy.agreement.min_percent:g}%"
            )
        elif percent is None:
            missing.append("no agreement instance was answered by the new version")
    if not stats.requests and not failed:
        missing.append("the new version answered no request")
    if failed:
        return Decision(Verdict.FAIL, tuple(failed))
    if missing:
        return Decision(Verdict.FAIL if exhausted else Verdict.MORE, tuple(missing))
    return Decision(Verdict.PASS, ())


def step_split(old: Traffic, new_id: str, percent: int) -> Traffic:
    """The split with `new_id` at `percent`: the old shares scaled to the rest, rounded so
    the split sums to 100 (largest remainder; ties to the larger old share)."""
    rest = 100 - percent
    others = [(d, t) for d, t in old if d != new_id and t]
    total = sum(t for _, t in others)
    if not others or total == 0 or rest == 0:
        return tuple(sorted([(new_id, 100)] if percent else [*others]))
    exact = [(d, t * rest / total, t) for d, t in others]
    shares = {d: math.floor(x) for d, x, _ in exact}
    left = rest - sum(shares.values())
    for d, _, _ in sorted(exact, key=lambda e: (-(e[1] - math.floor(e[1])), -e[2], e[0]))[:left]:
        shares[d] += 1
    split = [(d, s) for d, s in shares.items() if s]
    if percent:
        split.append((new_id, percent))
    return tuple(sorted(split))

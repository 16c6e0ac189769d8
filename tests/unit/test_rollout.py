"""Rollouts: the pure decisions on synthetic samples, and the engine against the fake provider.

The engine's predict call is scripted here (a weighted round-robin over the fake endpoint's
real split, with per-version answers, latency and errors) so every step's verdict is exact;
tests/integration runs the same engine through the emulator's real predict route.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from deployer import errors
from deployer.providers.fake import FakeProvider
from deployer.providers.retry import RetryPolicy
from deployer.reconcile.apply import apply_spec, make_plan
from deployer.reconcile.executor import ApplyOptions, Reporter
from deployer.reconcile.plan import Rollout
from deployer.reconcile.rollout import RolloutOutcome, run_rollout
from deployer.reconcile.verify import (
    CheckKind,
    Sample,
    Verdict,
    agrees,
    decide,
    matches,
    percentile,
    step_split,
    summarize,
)
from deployer.spec import (
    AgreementCheck,
    Bucket,
    Deployment,
    Endpoint,
    Model,
    ModelVersion,
    OnFailure,
    RolloutPolicy,
    SmokeCheck,
    Spec,
    Target,
)

IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest"
FAST = ApplyOptions(
    policy=RetryPolicy(attempts=2, initial_seconds=0.0, max_seconds=0.0), poll_max_seconds=0.01
)
GOOD = [0.1, 0.9]  # class scores: class 1
WRONG = [0.8, 0.2]  # class 0


def policy(**kw: Any) -> RolloutPolicy:
    base = RolloutPolicy(steps=(10, 50, 100), wait_seconds=None, requests=20, max_error_rate=0.05)
    return replace(base, **kw)


# ------------------------------------------------------------------ the pure decisions


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99
    assert percentile([3.0], 99) == 3.0 and percentile([], 50) is None


def test_smoke_matches_within_tolerance_and_agreement_on_the_argmax() -> None:
    assert matches([0.1, 0.9], [0.1005, 0.8995], 0.001)
    assert not matches([0.1, 0.9], [0.2, 0.8], 0.001)
    assert not matches([0.1], [0.1, 0.9], 1.0)
    assert matches({"label": "cat", "p": 0.5}, {"label": "cat", "p": 0.5}, 0.0)
    assert agrees([0.3, 0.7], [0.1, 0.9], 0.0)  # the same class, other scores
    assert not agrees(GOOD, WRONG, 1.0)
    assert agrees(2.0, 2.0000001, 1e-6) and not agrees("a", "b", 1.0)


@pytest.mark.parametrize(
    ("old", "percent", "split"),
    [
        ((("a", 100),), 10, (("a", 90), ("n", 10))),
        ((("a", 90), ("b", 10)), 50, (("a", 45), ("b", 5), ("n", 50))),
        ((("a", 50), ("b", 50)), 33, (("a", 34), ("b", 33), ("n", 33))),
        ((("a", 100),), 100, (("n", 100),)),
        ((), 10, (("n", 100),)),
    ],
)
def test_a_step_scales_the_old_split_to_the_rest(
    old: tuple[tuple[str, int], ...], percent: int, split: tuple[tuple[str, int], ...]
) -> None:
    got = step_split(old, "n", percent)
    assert got == split and sum(t for _, t in got) == 100


def samples(dep: str | None, n: int, *, ms: float = 5.0, kind: CheckKind = CheckKind.SMOKE,
            prediction: Any = GOOD) -> list[Sample]:  # fmt: skip
    return [Sample(kind, i % 2, dep, ms, prediction if dep else None) for i in range(n)]


def verdict(p: RolloutPolicy, got: list[Sample], *, exhausted: bool = False) -> Any:
    stats = summarize(got, new_id="n", policy=p, expected=[GOOD, GOOD], baseline={0: GOOD, 1: GOOD})
    return decide(p, stats["n"], exhausted=exhausted)


def test_a_healthy_new_version_passes() -> None:
    p = policy(smoke=SmokeCheck("f", 0.01), max_p99_ms=50)
    d = verdict(p, samples("n", 10) + samples("old", 90))
    assert d.verdict is Verdict.PASS and d.reasons == ()


def test_unattributed_errors_are_charged_to_the_new_version() -> None:
    got = samples("n", 10) + samples("old", 80) + samples(None, 10)
    stats = summarize(got, new_id="n", policy=policy())
    assert (stats["n"].requests, stats["n"].errors, stats["old"].errors) == (10, 10, 0)
    d = decide(policy(), stats["n"], exhausted=False)
    assert d.verdict is Verdict.FAIL and "error rate 50.0% (10 of 20) is above 5.0%" in d.reasons[0]


def test_slow_wrong_and_disagreeing_versions_fail() -> None:
    slow = verdict(policy(max_p99_ms=100), samples("n", 10, ms=250) + samples("old", 10))
    assert slow.verdict is Verdict.FAIL and "p99 latency 250 ms is above 100 ms" in slow.reasons
    wrong = verdict(policy(smoke=SmokeCheck("f", 0.01)), samples("n", 4, prediction=WRONG))
    assert wrong.verdict is Verdict.FAIL and "4 of 4 smoke cases" in wrong.reasons[0]
    p = policy(agreement=AgreementCheck("f", 90, 0.0))
    half = samples("n", 2, kind=CheckKind.AGREEMENT) + samples(
        "n", 2, kind=CheckKind.AGREEMENT, prediction=WRONG
    )
    disagree = verdict(p, half)
    assert disagree.verdict is Verdict.FAIL
    assert "agreement 50.0% (2 of 4) is below 90%" in disagree.reasons[0]


def test_a_check_that_saw_nothing_asks_for_more_then_fails() -> None:
    p = policy(smoke=SmokeCheck("f", 0.01))
    only_old = samples("old", 20)
    assert verdict(p, only_old).verdict is Verdict.MORE
    final = verdict(p, only_old, exhausted=True)
    assert final.verdict is Verdict.FAIL
    assert "no smoke case was answered by the new version" in final.reasons


def test_agreement_without_a_baseline_fails_instead_of_passing() -> None:
    p = policy(agreement=AgreementCheck("f", 90, 0.0))
    stats = summarize(samples("n", 4, kind=CheckKind.AGREEMENT), new_id="n", policy=p)
    d = decide(p, stats["n"], exhausted=False, compare=False)
    assert d.verdict is Verdict.FAIL and "answered no agreement instance" in d.reasons[0]


# ----------------------------------------------------------- the engine, on the fake


@dataclass
class Behaviour:
    answer: Callable[[Any], Any] = lambda instance: GOOD
    latency_ms: float = 5.0
    failing: bool = False


class ScriptedEndpoint:
    """Routes each request by the fake endpoint's current split (smooth weighted round
    robin, so a 10% share gets exactly every tenth request) to a scripted version."""

    def __init__(self, fake: FakeProvider, behaviours: dict[str, Behaviour]) -> None:
        self.fake, self.behaviours = fake, behaviours
        self.now = 0.0
        self.credit: dict[str, float] = {}
        self.seen: list[dict[str, int]] = []

    def clock(self) -> float:
        return self.now

    def predict(self, endpoint_id: str, body: bytes) -> dict[str, Any]:
        split = {k: v for k, v in self.fake.endpoints[endpoint_id].traffic.items() if v}
        self.seen.append(split)
        for dep, share in split.items():
            self.credit[dep] = self.credit.get(dep, 0.0) + share
        dep = max(split, key=lambda d: (self.credit[d], d))
        self.credit[dep] -= 100
        b = self.behaviours[dep]
        self.now += b.latency_ms / 1000
        if b.failing:
            raise errors.TransientError("503 the model crashed")
        (instance,) = json.loads(body)["instances"]
        return {"predictions": [b.answer(instance)], "deployedModelId": dep}


class Notes(Reporter):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, message: str) -> None:
        self.lines.append(message)


@pytest.fixture
def stack(tmp_path: Path) -> tuple[FakeProvider, str, str, str, Path]:
    """v1 serving 100%, v2 deployed beside it at 0%; and the check files."""
    for name in ("v1", "v2"):
        d = tmp_path / name
        d.mkdir()
        (d / "saved_model.pb").write_bytes(name.encode())
    deps = (
        Deployment("m", "v1", 100, "n1-standard-4", 1, 1),
        Deployment("m", "v2", 0, "n1-standard-4", 1, 1),
    )
    spec = Spec(
        "st",
        "p",
        "us-central1",
        Target.LOCAL,
        Bucket("bkt", "US", True),
        (
            Model(
                "m",
                (
                    ModelVersion("v1", str(tmp_path / "v1"), IMAGE),
                    ModelVersion("v2", str(tmp_path / "v2"), IMAGE),
                ),
                "m",
            ),
        ),
        (Endpoint("ep", deps, "ep"),),
    )
    fake = FakeProvider()
    apply_spec(spec, fake, options=FAST)
    ((endpoint_id, ep),) = fake.endpoints.items()
    v1, v2 = sorted(ep.deployed, key=lambda d: ep.deployed[d].display_name)
    (tmp_path / "smoke.jsonl").write_text(
        "".join(json.dumps({"instance": [i], "expected": GOOD}) + "\n" for i in range(3))
    )
    (tmp_path / "agree.jsonl").write_text("".join(json.dumps([i]) + "\n" for i in range(4)))
    return fake, endpoint_id, v1, v2, tmp_path


def roll(
    stack: tuple[FakeProvider, str, str, str, Path],
    p: RolloutPolicy,
    new: Behaviour,
) -> tuple[ScriptedEndpoint, Notes, Callable[[], Any]]:
    fake, endpoint_id, v1, v2, _ = stack
    scripted = ScriptedEndpoint(fake, {v1: Behaviour(), v2: new})
    notes = Notes()

    def go() -> Any:
        return run_rollout(
            fake,
            endpoint="ep",
            endpoint_id=endpoint_id,
            new_id=v2,
            names={v1: "m@v1", v2: "m@v2"},
            old_split=((v1, 100),),
            final_split=((v2, 100),),
            policy=p,
            reporter=notes,
            options=FAST,
            predict=scripted.predict,
            clock=scripted.clock,
        )

    return scripted, notes, go


def checked(tmp: Path, **kw: Any) -> RolloutPolicy:
    return policy(
        smoke=SmokeCheck(str(tmp / "smoke.jsonl"), 0.01),
        agreement=AgreementCheck(str(tmp / "agree.jsonl"), 90, 0.0),
        max_p99_ms=50,
        **kw,
    )


def test_a_good_version_is_rolled_out_step_by_step_to_the_final_split(
    stack: tuple[FakeProvider, str, str, str, Path],
) -> None:
    fake, endpoint_id, v1, v2, tmp = stack
    _, notes, go = roll(stack, checked(tmp), Behaviour())
    report = go()
    assert report.outcome is RolloutOutcome.COMPLETED
    assert [s.percent for s in report.steps] == [10, 50, 100]
    assert [dict(s.split) for s in report.steps] == [
        {v1: 90, v2: 10},
        {v1: 50, v2: 50},
        {v2: 100},
    ]
    assert fake.endpoints[endpoint_id].traffic == {v2: 100}
    assert all(s.decision.verdict is Verdict.PASS for s in report.steps)
    first = report.steps[0].stats[0]
    assert first.deployed_id == v2 and first.requests >= 2 and first.agreement_percent == 100
    assert any("step 1/3: m@v1 90%, m@v2 10%" in line for line in notes.lines)
    assert v2 in fake.endpoints[endpoint_id].deployed


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (Behaviour(failing=True), "error rate"),
        (Behaviour(latency_ms=400), "p99 latency 400 ms is above 50 ms"),
        (Behaviour(answer=lambda instance: WRONG), "smoke cases gave a wrong answer"),
    ],
    ids=["errors", "slow", "wrong"],
)
def test_a_bad_version_is_rolled_back_at_the_first_step(
    stack: tuple[FakeProvider, str, str, str, Path], bad: Behaviour, reason: str
) -> None:
    fake, endpoint_id, v1, v2, tmp = stack
    scripted, _, go = roll(stack, checked(tmp), bad)
    with pytest.raises(errors.RolloutFailed) as info:
        go()
    assert info.value.exit_code == 10
    text = info.value.message
    assert "rollout of m@v2 on ep: rolled back" in text and reason in text
    assert "step 1/3 at 10%: fail" in text and "m@v1: " in text
    assert "split now: m@v1 100%" in text
    ep = fake.endpoints[endpoint_id]
    assert ep.traffic == {v1: 100} and list(ep.deployed) == [v1]  # nothing left deployed
    assert max(s.get(v2, 0) for s in scripted.seen) == 10  # never past the first step


def test_hold_keeps_the_last_verified_split_and_the_new_version(
    stack: tuple[FakeProvider, str, str, str, Path],
) -> None:
    fake, endpoint_id, v1, v2, tmp = stack
    p = replace(checked(tmp), on_failure=OnFailure.HOLD)
    behaviour = Behaviour()
    scripted, _, go = roll(stack, p, behaviour)
    # healthy at 10%, slow from the second step on
    original = scripted.predict

    def slow_later(endpoint_id: str, body: bytes) -> dict[str, Any]:
        share = fake.endpoints[endpoint_id].traffic.get(v2, 0)
        behaviour.latency_ms = 400 if share >= 50 else 5
        return original(endpoint_id, body)

    scripted.predict = slow_later  # type: ignore[method-assign]
    with pytest.raises(errors.RolloutFailed) as info:
        go()
    assert "held" in info.value.message and "deployer rollback" in (info.value.hint or "")
    ep = fake.endpoints[endpoint_id]
    assert ep.traffic == {v1: 90, v2: 10} and v2 in ep.deployed


def test_a_step_that_saw_too_little_of_the_new_version_goes_on_then_fails(
    stack: tuple[FakeProvider, str, str, str, Path],
) -> None:
    tmp = stack[4]
    # 5 requests at 10%: the new version may answer none; the step sends more before it
    # decides, and a version that never answers is never verified.
    p = replace(checked(tmp), requests=5, steps=(10, 100))
    scripted, _, go = roll(stack, p, Behaviour())
    report = go()
    assert report.outcome is RolloutOutcome.COMPLETED
    assert report.steps[0].stats[0].requests >= 1
    assert len(scripted.seen) > 5 + 4  # baseline (4) + more than one budget at step 1


# ------------------------------------------------------------------ apply runs rollouts


def test_apply_plans_a_rollout_and_rolls_back_a_version_that_is_never_verified(
    stack: tuple[FakeProvider, str, str, str, Path],
) -> None:
    """The fake's predict answers from the biggest share only, so the new version never
    answers a check: the first step cannot be verified, and apply rolls it back."""
    fake, endpoint_id, v1, v2, tmp = stack
    ep = fake.endpoints[endpoint_id]
    fake.undeploy(endpoint_id, v2, ((v1, 100),))
    spec = _spec_with_v2_taking_over(tmp, checked(tmp, requests=3))
    plan = make_plan(spec, fake)[0]
    (rollout,) = [a for a in plan.actions if isinstance(a.payload, Rollout)]
    assert rollout.reason.startswith("rollout 10% -> 50% -> 100% (split m@v1=100 -> m@v2=100)")
    assert [a.resource.value for a in plan.actions] == ["deployment", "traffic", "deployment"]
    with pytest.raises(errors.RolloutFailed) as info:
        apply_spec(spec, fake, options=FAST)
    assert "no smoke case was answered by the new version" in info.value.message
    assert ep.traffic == {v1: 100} and list(ep.deployed) == [v1]
    record = json.loads(fake.objects[("bkt", f".deployer/st/verified/{endpoint_id}.json")].data)
    assert record == {"split": [[v1, 100]], "rolling": None}


def _spec_with_v2_taking_over(tmp: Path, p: RolloutPolicy) -> Spec:
    versions = (
        ModelVersion("v1", str(tmp / "v1"), IMAGE),
        ModelVersion("v2", str(tmp / "v2"), IMAGE),
    )
    dep = Deployment("m", "v2", 100, "n1-standard-4", 1, 1, rollout=p)
    return Spec(
        "st",
        "p",
        "us-central1",
        Target.LOCAL,
        Bucket("bkt", "US", True),
        (Model("m", versions, "m"),),
        (Endpoint("ep", (dep,), "ep"),),
    )


def test_a_killed_rollout_is_re_verified_on_the_next_apply_and_rolled_back_if_it_fails(
    stack: tuple[FakeProvider, str, str, str, Path],
) -> None:
    """A run killed at 10% left v1 90 / v2 10 (unverified) and its record: the next apply
    plans the rollout again, and when it fails restores the split from before, not 90/10."""
    fake, endpoint_id, v1, v2, tmp = stack
    fake.set_traffic(endpoint_id, ((v1, 90), (v2, 10)))
    name = f".deployer/st/verified/{endpoint_id}.json"
    fake.write_object("bkt", name, json.dumps({"split": [[v1, 100]], "rolling": v2}).encode())
    spec = _spec_with_v2_taking_over(tmp, checked(tmp, requests=3))
    (rollout,) = [a for a in make_plan(spec, fake)[0].actions if isinstance(a.payload, Rollout)]
    assert "m@v1=90" in rollout.reason and "m@v2=10" in rollout.reason
    fake.calls.clear()
    with pytest.raises(errors.RolloutFailed):
        apply_spec(spec, fake, options=FAST)
    splits = [args["traffic"] for method, args in fake.calls if method == "set_traffic"]
    assert splits[0] == ((v1, 100),)  # the verified split first, before any check traffic
    ep = fake.endpoints[endpoint_id]
    assert ep.traffic == {v1: 100} and list(ep.deployed) == [v1]


def test_rollback_restores_the_verified_split_and_undeploys_a_held_version(
    stack: tuple[FakeProvider, str, str, str, Path],
) -> None:
    from deployer.reconcile.rollout import rollback_endpoint

    fake, endpoint_id, v1, v2, _ = stack
    fake.set_traffic(endpoint_id, ((v1, 50), (v2, 50)))  # held at 50%
    name = f".deployer/st/verified/{endpoint_id}.json"
    fake.write_object("bkt", name, json.dumps({"split": [[v1, 100]], "rolling": v2}).encode())
    record, undeployed, names = rollback_endpoint(fake, "st", "bkt", endpoint_id, FAST)
    assert record.split == ((v1, 100),) and undeployed == v2
    assert names[v2] == "m@v2"
    ep = fake.endpoints[endpoint_id]
    assert ep.traffic == {v1: 100} and list(ep.deployed) == [v1]
    assert json.loads(fake.objects[("bkt", name)].data) == {"split": [[v1, 100]], "rolling": None}
    # nothing recorded: a clear error, nothing changed
    fake.delete_object("bkt", name)
    with pytest.raises(errors.NotFound, match="no verified split is recorded"):
        rollback_endpoint(fake, "st", "bkt", endpoint_id, FAST)


def test_a_plan_where_two_versions_gain_traffic_under_a_rollout_is_refused(
    stack: tuple[FakeProvider, str, str, str, Path],
) -> None:
    fake, tmp = stack[0], stack[4]
    p = checked(tmp)
    spec = _spec_with_v2_taking_over(tmp, p)
    both = (
        Deployment("m", "v1", 50, "n1-standard-2", 1, 1, rollout=p),  # a new deployment of v1
        Deployment("m", "v2", 50, "n1-standard-4", 1, 1, rollout=p),
    )
    spec = replace(spec, endpoints=(Endpoint("ep", both, "ep"),))
    fake.calls.clear()
    with pytest.raises(errors.ConfigError, match="a rollout verifies one new version at a time"):
        make_plan(spec, fake)
    assert fake.mutating_calls == []


def test_rollback_names_an_unknown_endpoint_without_calling_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from deployer.cli import main

    spec = Path(__file__).parent / "specs" / "valid" / "rollout.yaml"
    with pytest.raises(SystemExit) as exited:
        main(["rollback", str(spec), "--endpoint", "nope"])
    assert exited.value.code == 3
    err = capsys.readouterr().err
    assert "no endpoint named 'nope'" in err and "mnist-endpoint" in err

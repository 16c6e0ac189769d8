"""The `rollout:` policy: an endpoint's defaults, a deployment's overrides, the frozen result."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.errors import SpecError
from deployer.spec import OnFailure, load_spec
from deployer.spec.rollout import parse_duration

SPECS = Path(__file__).parent / "specs"


def test_a_deployment_inherits_the_endpoint_policy_and_stops_at_its_share() -> None:
    spec = load_spec(SPECS / "valid" / "rollout.yaml", environ={})
    old, new = spec.endpoints[0].deployments
    assert old.rollout is not None and new.rollout is not None
    # inherited: steps 10, 50, 100 stop at the deployment's 20%
    assert old.rollout.steps == (10, 20)
    assert (old.rollout.requests, old.rollout.wait_seconds) == (40, None)
    assert old.rollout.max_p99_ms == 250 and old.rollout.on_failure is OnFailure.ROLLBACK
    assert old.rollout.agreement is not None and old.rollout.agreement.min_percent == 95
    assert old.rollout.smoke is not None
    assert Path(old.rollout.smoke.file) == (SPECS / "data" / "smoke.jsonl").resolve()
    # overridden field by field: its wait replaces the endpoint's requests; checks merge
    assert new.rollout.steps == (5, 80)
    assert (new.rollout.wait_seconds, new.rollout.requests) == (2.0, None)
    assert new.rollout.max_p99_ms == 100 and new.rollout.max_error_rate == 0.01
    assert new.rollout.on_failure is OnFailure.HOLD
    assert new.rollout.describe() == "rollout 5% -> 80%"


def test_no_policy_means_no_rollout() -> None:
    spec = load_spec(SPECS / "valid" / "mnist.yaml", environ={})
    assert all(d.rollout is None for e in spec.endpoints for d in e.deployments)


def test_a_deployment_override_without_an_endpoint_policy_must_be_complete(
    tmp_path: Path,
) -> None:
    text = (SPECS / "bad" / "rollout_no_checks.yaml").read_text()
    lines = text.splitlines()
    spec = tmp_path / "spec.yaml"
    body = [ln for ln in lines if "rollout:" not in ln]
    body[-1] = body[-1].rstrip("}") + ", rollout: {steps: [100]}}"
    spec.write_text("\n".join(body).replace("../artifacts", str(SPECS / "artifacts")) + "\n")
    with pytest.raises(SpecError) as info:
        load_spec(spec, environ={})
    fields = [p.field for p in info.value.problems]
    assert fields == [
        "endpoints[0].deployments[0].rollout.wait",
        "endpoints[0].deployments[0].rollout.checks",
    ], info.value.render()


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("30s", 30.0), ("2m", 120.0), ("1.5h", 5400.0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_a_bad_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="30s"):
        parse_duration("soon")


def test_checks_without_instances_to_send_are_refused(tmp_path: Path) -> None:
    text = (SPECS / "bad" / "rollout_steps_decreasing.yaml").read_text()
    text = text.replace("[10, 50, 30, 100]", "[10, 100]").replace("../", f"{SPECS}/")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        text.replace(
            "agreement: {file: " + f"{SPECS}/data/agreement.jsonl, min_percent: 90}}, ", ""
        )
    )
    with pytest.raises(SpecError) as info:
        load_spec(spec, environ={})
    (problem,) = info.value.problems
    assert problem.field == "endpoints[0].rollout.checks"
    assert "no instances to send" in problem.message

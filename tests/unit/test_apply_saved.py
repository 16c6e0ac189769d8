"""Saved and confirmed plans against the FakeProvider: what runs is the plan that was shown,
or nothing; a stale plan is refused before any mutating call, naming what changed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from deployer import errors
from deployer.providers.fake import FakeProvider
from deployer.reconcile import apply as apply_module
from deployer.reconcile.apply import Outcome, action_key, apply_saved, apply_spec, make_plan
from deployer.reconcile.saved import (
    SavedPlan,
    is_saved_plan,
    make_saved_plan,
    read_saved_plan,
    write_saved_plan,
)
from deployer.spec import Spec, load_spec
from deployer.state import LABEL_EXPIRES, endpoint_id, lock_object
from tests.unit.test_apply import FAST, IMAGE, artifact


def write_spec(
    tmp_path: Path, traffic: tuple[int, int] = (100, 0), *, extra: str = "", project: str = ""
) -> Path:
    artifact(tmp_path, "v1")
    if not (tmp_path / "v2").exists():
        artifact(tmp_path, "v2")
    deployments = [f"{{model: mnist@v1, traffic: {traffic[0]}, {MACHINE}}}"]
    if traffic[1]:
        deployments.append(f"{{model: mnist@v2, traffic: {traffic[1]}, {MACHINE}}}")
    path = tmp_path / "stack.yaml"
    path.write_text(
        "\n".join(
            [
                "stack: st",
                f"project: {project or 'test-project'}",
                "region: us-central1",
                "target: local",
                "bucket: {name: bkt, create: true}",
                "models:",
                "  - name: mnist",
                f"    container: {IMAGE}",
                "    versions:",
                "      - {alias: v1, artifact: v1}",
                "      - {alias: v2, artifact: v2}",
                "endpoints:",
                "  - name: ep0",
                "    deployments:",
                *(f"      - {d}" for d in deployments),
                extra,
            ]
        )
        + "\n"
    )
    return path


MACHINE = "machine_type: n1-standard-4, min_replicas: 1, max_replicas: 2"


def save_plan(spec_path: Path, fake: FakeProvider, out: Path, **load: Any) -> SavedPlan:
    spec = load_spec(spec_path, **load)
    plan, observed, inputs = make_plan(spec, fake)
    write_saved_plan(out, make_saved_plan(spec, str(spec_path), plan, observed, inputs))
    return read_saved_plan(out)


def apply_file(out: Path, fake: FakeProvider, **load: Any) -> Any:
    saved = read_saved_plan(out)
    spec = load_spec(saved.spec.path, **load)
    return apply_saved(saved, spec, fake, plan_file=str(out), options=FAST)


def built(tmp_path: Path) -> tuple[FakeProvider, Path]:
    fake = FakeProvider()
    spec_path = write_spec(tmp_path)
    apply_spec(load_spec(spec_path), fake, options=FAST)
    return fake, spec_path


def test_the_saved_plan_file_round_trips_and_is_told_from_a_spec_by_content(
    tmp_path: Path,
) -> None:
    fake = FakeProvider()
    spec_path = write_spec(tmp_path, (90, 10))
    out = tmp_path / "plan.out"
    saved = save_plan(spec_path, fake, out)
    doc = json.loads(out.read_text())
    assert (doc["format"], doc["format_version"]) == ("deployer-plan", 1)
    assert doc["spec"]["path"] == str(spec_path) and len(doc["spec"]["sha256"]) == 64
    assert (doc["target"], doc["project"], doc["stack"], doc["bucket"]) == (
        "local",
        "test-project",
        "st",
        "bkt",
    )
    assert doc["observed"]["resources"] == {"bucket bkt": saved.fingerprint.resources[0][1]}
    assert [a["type"] for a in doc["actions"]][:2] == ["CreateBucket", "UploadArtifact"]
    write_saved_plan(tmp_path / "again.out", saved)
    assert read_saved_plan(tmp_path / "again.out") == saved
    assert is_saved_plan(out) and not is_saved_plan(spec_path)
    as_json = tmp_path / "spec.json"  # YAML is a superset of JSON: a JSON spec is a spec
    as_json.write_text(json.dumps({"stack": "st"}))
    assert not is_saved_plan(as_json)


def test_a_fresh_saved_plan_applies_and_is_stale_once_applied(tmp_path: Path) -> None:
    fake = FakeProvider()
    out = tmp_path / "plan.out"
    saved = save_plan(write_spec(tmp_path, (90, 10)), fake, out)
    assert fake.mutating_calls == []
    report = apply_file(out, fake)
    ep = fake.endpoints[endpoint_id("st", "ep0")]
    assert sorted(ep.traffic.values()) == [10, 90]
    confirmed = {action_key(a) for a in saved.plan.actions}
    assert report.results and all(action_key(r.action) in confirmed for r in report.results)
    assert all(isinstance(r.outcome, Outcome) for r in report.results)

    # Like terraform: a saved plan is applied once. Applying it changed the stack it was
    # made against, so the second apply is refused as stale, before any mutating call.
    fake.calls.clear()
    with pytest.raises(errors.StalePlan) as info:
        apply_file(out, fake)
    assert info.value.exit_code == 9
    assert "bucket bkt: changed" in info.value.message  # created by the first apply
    assert "endpoint ep0: appeared" in info.value.message
    assert "deployer plan" in info.value.render()
    assert fake.mutating_calls == []


def test_a_saved_plan_is_refused_before_any_mutating_call_when_the_stack_changed(
    tmp_path: Path,
) -> None:
    fake, _ = built(tmp_path)
    out = tmp_path / "plan.out"
    save_plan(write_spec(tmp_path, (90, 10)), fake, out)
    # Someone else changes the endpoint after the plan was made.
    other = load_spec(write_spec(tmp_path / "other", (50, 50)))
    apply_spec(other, fake, options=FAST)
    write_spec(tmp_path, (90, 10))  # the spec file as planned
    fake.calls.clear()
    with pytest.raises(errors.StalePlan) as info:
        apply_file(out, fake)
    message = info.value.message
    assert "stack 'st' changed since the plan was made; nothing was applied" in message
    assert "endpoint ep0: changed" in message  # the traffic split
    assert "endpoint ep0 / mnist@v2" in message and ": appeared" in message
    assert fake.mutating_calls == []
    assert [m for m, _ in fake.calls] == [
        "get_bucket",
        "list_models",
        "list_versions",
        "list_endpoints",
    ]


def test_a_changed_spec_file_or_artifact_is_refused_without_any_api_call(tmp_path: Path) -> None:
    fake, _ = built(tmp_path)
    out = tmp_path / "plan.out"
    save_plan(write_spec(tmp_path, (90, 10)), fake, out)
    fake.calls.clear()

    write_spec(tmp_path, (90, 10), extra="# a comment is a change too")
    with pytest.raises(errors.StalePlan, match=r"the spec file .*stack\.yaml changed"):
        apply_file(out, fake)

    write_spec(tmp_path, (90, 10))
    artifact(tmp_path, "v2", b"retrained")
    with pytest.raises(errors.StalePlan, match=r"artifact of mnist@v2: content \w{12} -> \w{12}"):
        apply_file(out, fake)
    assert fake.calls == []


def test_a_spec_that_resolves_differently_here_is_refused(tmp_path: Path) -> None:
    fake = FakeProvider()
    spec_path = write_spec(tmp_path, project="${PROJECT:-test-project}")
    out = tmp_path / "plan.out"
    save_plan(spec_path, fake, out, environ={})
    fake.calls.clear()
    with pytest.raises(errors.StalePlan) as info:
        apply_file(out, fake, environ={"PROJECT": "prod-project"})
    assert "resolves differently here" in info.value.message
    assert "project: the plan is for 'test-project', the spec now gives 'prod-project'" in (
        info.value.message
    )
    assert fake.calls == []


def test_an_empty_saved_plan_says_no_changes_as_often_as_it_is_applied(tmp_path: Path) -> None:
    fake, spec_path = built(tmp_path)
    out = tmp_path / "plan.out"
    saved = save_plan(spec_path, fake, out)
    assert saved.plan.is_empty
    for _ in range(2):
        fake.calls.clear()
        report = apply_file(out, fake)
        assert report.plan.is_empty and not report.changed
        assert fake.mutating_calls == []


def test_an_edited_plan_file_is_refused_before_any_mutating_call(tmp_path: Path) -> None:
    fake, _ = built(tmp_path)
    out = tmp_path / "plan.out"
    save_plan(write_spec(tmp_path, (90, 10)), fake, out)
    doc = json.loads(out.read_text())
    doc["actions"] = [a for a in doc["actions"] if a["type"] != "SetTraffic"]
    out.write_text(json.dumps(doc))
    fake.calls.clear()
    with pytest.raises(errors.StalePlan) as info:
        apply_file(out, fake)
    # the order of the new split follows the deployed models' ids (from the artifacts' bytes)
    assert re.search(
        r"\+ update endpoint ep0 \(split mnist@v1=100 -> "
        r"(mnist@v2=10, mnist@v1=90|mnist@v1=90, mnist@v2=10)\)",
        info.value.message,
    ), info.value.message
    assert fake.mutating_calls == []


def test_a_broken_plan_file_is_a_config_error_naming_the_field(tmp_path: Path) -> None:
    out = tmp_path / "plan.out"
    save_plan(write_spec(tmp_path), FakeProvider(), out)
    doc = json.loads(out.read_text())
    doc["actions"][0]["payload"]["labels"] = "all of them"
    out.write_text(json.dumps(doc))
    with pytest.raises(
        errors.ConfigError, match=r"actions\[0\]\.payload\.labels: expected an array"
    ):
        read_saved_plan(out)
    doc["format_version"] = 2
    out.write_text(json.dumps(doc))
    with pytest.raises(errors.ConfigError, match="reads version 1 only"):
        read_saved_plan(out)


class RacingProvider(FakeProvider):
    """Another actor changes the endpoint just before this run takes the stack lock."""

    def write_object(self, bucket: str, name: str, data: bytes, **kw: Any) -> int:
        if name == lock_object("st") and self.endpoints:
            next(iter(self.endpoints.values())).labels["team"] = "someone-else"
        return super().write_object(bucket, name, data, **kw)


def test_a_change_between_the_check_and_the_lock_is_caught_under_the_lock(
    tmp_path: Path,
) -> None:
    racing = RacingProvider()
    apply_spec(load_spec(write_spec(tmp_path)), racing, options=FAST)
    assert "team" not in next(iter(racing.endpoints.values())).labels  # no endpoint yet at lock
    out = tmp_path / "plan.out"
    save_plan(write_spec(tmp_path, (90, 10)), racing, out)
    racing.calls.clear()
    with pytest.raises(errors.StalePlan, match="endpoint ep0: changed"):
        apply_file(out, racing)
    # Only the lock was written, and released.
    assert racing.mutating_calls == ["write_object", "delete_object"]


def test_interactive_apply_refuses_when_the_stack_changed_while_the_user_read_the_plan(
    tmp_path: Path,
) -> None:
    fake, _ = built(tmp_path)
    changed: Spec = load_spec(write_spec(tmp_path, (90, 10)))
    shown = []

    def confirm(plan: Any) -> bool:
        shown.append(plan)
        # Meanwhile someone else applies another split.
        apply_spec(load_spec(write_spec(tmp_path / "other", (50, 50))), fake, options=FAST)
        fake.calls.clear()
        return True

    with pytest.raises(errors.StalePlan) as info:
        apply_spec(changed, fake, options=FAST, confirm=confirm)
    assert "endpoint ep0: changed" in info.value.message
    assert "apply SPEC` again" in info.value.render()
    assert fake.mutating_calls == ["write_object", "delete_object"]  # the lock only
    ep = fake.endpoints[endpoint_id("st", "ep0")]
    assert sorted(ep.traffic.values()) == [50, 50]  # the other run's split stands


def test_interactive_apply_runs_only_actions_of_the_confirmed_plan(tmp_path: Path) -> None:
    fake, _ = built(tmp_path)
    shown = []
    report = apply_spec(
        load_spec(write_spec(tmp_path, (90, 10))),
        fake,
        options=FAST,
        confirm=lambda plan: shown.append(plan) or True,
    )
    (plan,) = shown
    assert report.plan is plan
    assert [action_key(r.action) for r in report.results] == [action_key(a) for a in plan.actions]


def test_a_saved_plan_stamps_the_expiry_when_applied_not_when_planned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeProvider()
    out = tmp_path / "plan.out"
    spec_path = write_spec(tmp_path, extra="guards: {ttl: 1h}")
    monkeypatch.setattr(apply_module.time, "time", lambda: 1_000_000.0)
    saved = save_plan(spec_path, fake, out)
    planned = next(a for a in saved.plan.actions if a.resource.value == "endpoint")
    assert (LABEL_EXPIRES, str(1_000_000 + 3600)) in planned.payload.labels  # type: ignore[union-attr]
    # Reviewed for a day, then applied: the stack lives an hour from now, not from then.
    monkeypatch.setattr(apply_module.time, "time", lambda: 1_086_400.0)
    apply_file(out, fake)
    ep = fake.endpoints[endpoint_id("st", "ep0")]
    assert ep.labels[LABEL_EXPIRES] == str(1_086_400 + 3600)


def test_the_fingerprint_is_stable_and_moves_with_each_resource_it_covers(tmp_path: Path) -> None:
    from dataclasses import replace

    from deployer.reconcile.saved import fingerprint, fingerprint_changes
    from deployer.state import ObservedBatchJob

    fake, _ = built(tmp_path)
    state = fake.observe("st", "bkt")
    base = fingerprint(state)
    assert fingerprint(fake.observe("st", "bkt")) == base
    # A batch job coming or finishing does not make a pending plan stale: no plan acts on it.
    job = ObservedBatchJob("b", "projects/p/locations/r/batchPredictionJobs/1", "RUNNING")
    assert fingerprint(replace(state, batch_jobs=(job,))) == base

    (model,) = state.models
    (version, *_) = model.versions
    (ep,) = state.endpoints
    (dep,) = ep.deployments
    cases = {
        "bucket bkt: changed": replace(state, bucket=replace(state.bucket, labels=())),
        "model mnist: changed": replace(state, models=(replace(model, description="x"),)),
        f"model mnist version {version.version_id}: changed": replace(
            state,
            models=(replace(model, versions=(replace(version, aliases=()), *model.versions[1:])),),
        ),
        f"model mnist version {version.version_id}: gone": replace(
            state, models=(replace(model, versions=model.versions[1:]),)
        ),
        "endpoint ep0: changed": replace(state, endpoints=(replace(ep, traffic=()),)),
        f"endpoint ep0 / mnist@v1 ({dep.id}): changed": replace(
            state, endpoints=(replace(ep, deployments=(replace(dep, deployed_at=1.0),)),)
        ),
    }
    for change, changed in cases.items():
        assert fingerprint_changes(base, fingerprint(changed)) == [change]

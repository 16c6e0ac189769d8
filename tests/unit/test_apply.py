"""apply against the in-memory FakeProvider: convergence, idempotence, adoption, locking."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from deployer import errors
from deployer.providers.fake import FakeProvider
from deployer.providers.retry import RetryPolicy
from deployer.reconcile.apply import ApplyOptions, apply_spec
from deployer.reconcile.journal import StackLock, force_unlock
from deployer.spec import Bucket, Deployment, Endpoint, Model, ModelVersion, Spec, Target
from tests.support.savedmodel_pb import saved_model_pb

IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest"
FAST = ApplyOptions(
    policy=RetryPolicy(attempts=6, initial_seconds=0.0, max_seconds=0.0),
    poll_max_seconds=0.01,
    adopt_timeout=0.5,
)


def artifact(root: Path, name: str, payload: bytes = b"weights") -> str:
    d = root / name
    (d / "variables").mkdir(parents=True, exist_ok=True)
    # a valid saved_model.pb (the spec parses it), different per name
    (d / "saved_model.pb").write_bytes(saved_model_pb(("serving_default", f"graph-{name}")))
    (d / "variables" / "variables.data-00000-of-00001").write_bytes(payload)
    return str(d)


def make_spec(tmp_path: Path, traffic: tuple[int, int] = (100, 0), n_endpoints: int = 1) -> Spec:
    versions = (
        ModelVersion("v1", artifact(tmp_path, "v1"), IMAGE),
        ModelVersion("v2", artifact(tmp_path, "v2"), IMAGE),
    )
    deps = [Deployment("mnist", "v1", traffic[0], "n1-standard-4", 1, 2)]
    if traffic[1]:
        deps.append(Deployment("mnist", "v2", traffic[1], "n1-standard-4", 1, 1))
    eps = tuple(Endpoint(f"ep{i}", tuple(deps), f"ep{i}") for i in range(n_endpoints))
    return Spec(
        "st",
        "p",
        "us-central1",
        Target.LOCAL,
        Bucket("bkt", "US", True),
        (Model("mnist", versions, "mnist"),),
        eps,
    )


def test_first_apply_builds_the_stack_and_second_apply_makes_no_mutating_call(
    tmp_path: Path,
) -> None:
    fake = FakeProvider()
    spec = make_spec(tmp_path, (90, 10))
    report = apply_spec(spec, fake, options=FAST)
    assert report.changed
    ep = next(iter(fake.endpoints.values()))
    assert sorted(ep.traffic.values()) == [10, 90]
    assert len(fake.models) == 1 and len(next(iter(fake.models.values())).versions) == 2
    assert not any(k[1].endswith("/lock") for k in fake.objects)  # lock released

    fake.calls.clear()
    again = apply_spec(spec, fake, options=FAST)
    assert not again.changed and again.plan.is_empty
    assert fake.mutating_calls == []
    assert len(fake.calls) == 4  # bucket, models, versions of one model, endpoints


def test_model_display_name_and_description_are_reconciled_in_one_model_level_call(
    tmp_path: Path,
) -> None:
    fake = FakeProvider()
    spec = make_spec(tmp_path)
    described = replace(spec, models=(replace(spec.models[0], description="digits v1"),))
    apply_spec(described, fake, options=FAST)
    model = next(iter(fake.models.values()))
    assert (model.display_name, model.description) == ("mnist", "digits v1")  # set at upload

    renamed = replace(
        spec,
        models=(replace(spec.models[0], display_name="MNIST digits", description="digits v2"),),
    )
    fake.calls.clear()
    report = apply_spec(renamed, fake, options=FAST)
    assert [a.reason for a in report.plan.actions] == ["display name and description changed"]
    # Beside the stack lock (written and deleted), one call.
    assert fake.mutating_calls == ["write_object", "update_model", "delete_object"]
    assert (model.display_name, model.description) == ("MNIST digits", "digits v2")
    assert apply_spec(renamed, fake, options=FAST).plan.is_empty


def test_changed_artifact_uploads_only_changed_files_and_adds_one_version(tmp_path: Path) -> None:
    fake = FakeProvider()
    spec = make_spec(tmp_path)
    apply_spec(spec, fake, options=FAST)
    artifact(tmp_path, "v2", b"retrained weights")
    fake.calls.clear()
    report = apply_spec(spec, fake, options=FAST)
    [upload] = report.uploads
    # saved_model.pb is unchanged: copied server-side; only the variables file is sent.
    assert (upload.files_total, upload.files_uploaded, upload.files_copied) == (2, 1, 1)
    assert upload.bytes_uploaded == len(b"retrained weights")
    uploads = [c for c in fake.calls if c[0] == "upload_version"]
    assert len(uploads) == 1 and uploads[0][1]["parent_exists"]
    versions = next(iter(fake.models.values())).versions
    assert len(versions) == 2  # the superseded v2 version was deleted
    assert any("default" in v.aliases and "v2" in v.aliases for v in versions.values())


def test_reupload_to_same_prefix_skips_objects_with_same_checksum(tmp_path: Path) -> None:
    from deployer.reconcile.upload import upload_artifact

    fake = FakeProvider()
    fake.buckets["bkt"] = {}
    src = artifact(tmp_path, "m")
    first = upload_artifact(fake, "bkt", "artifacts/x/", src)
    assert first.files_uploaded == 2
    second = upload_artifact(fake, "bkt", "artifacts/x/", src)
    assert second.files_uploaded == 0 and second.bytes_uploaded == 0
    (Path(src) / "saved_model.pb").write_bytes(b"changed")
    third = upload_artifact(fake, "bkt", "artifacts/x/", src)
    assert third.files_uploaded == 1


def test_traffic_change_shifts_without_undeploying(tmp_path: Path) -> None:
    fake = FakeProvider()
    apply_spec(make_spec(tmp_path, (100, 0)), fake, options=FAST)
    fake.calls.clear()
    apply_spec(make_spec(tmp_path, (90, 10)), fake, options=FAST)
    assert "undeploy" not in fake.mutating_calls
    assert fake.mutating_calls.count("deploy") == 1
    fake.calls.clear()
    apply_spec(make_spec(tmp_path, (50, 50)), fake, options=FAST)
    assert [m for m in fake.mutating_calls if m not in ("write_object", "delete_object")] == [
        "set_traffic"
    ]


@pytest.mark.parametrize(
    "method",
    [
        "create_bucket",
        "upload_version",
        "create_endpoint",
        "deploy",
        "set_traffic",
        "merge_aliases",
        "write_object",
    ],
)
def test_lost_responses_are_adopted_without_duplicates(tmp_path: Path, method: str) -> None:
    fake = FakeProvider()
    fake.drop_next(method, 1)
    apply_spec(make_spec(tmp_path, (90, 10)), fake, options=FAST)
    assert len(fake.models) == 1 and len(next(iter(fake.models.values())).versions) == 2
    assert len(fake.endpoints) == 1
    assert len(next(iter(fake.endpoints.values())).deployed) == 2
    fake.calls.clear()
    assert apply_spec(make_spec(tmp_path, (90, 10)), fake, options=FAST).plan.is_empty


def test_transient_failures_are_retried(tmp_path: Path) -> None:
    fake = FakeProvider()
    for m in ("create_endpoint", "deploy", "upload_files", "upload_version"):
        fake.fail_next(m, 2)
    apply_spec(make_spec(tmp_path), fake, options=FAST)
    assert apply_spec(make_spec(tmp_path), fake, options=FAST).plan.is_empty


def test_permanent_errors_are_not_retried(tmp_path: Path) -> None:
    fake = FakeProvider()
    fake.fail_next("create_endpoint", 1, errors.PermissionDenied("no"))
    with pytest.raises(errors.PermissionDenied):
        apply_spec(make_spec(tmp_path), fake, options=FAST)
    assert [m for m, _ in fake.calls].count("create_endpoint") == 1


def test_a_held_lock_stops_a_second_apply(tmp_path: Path) -> None:
    fake = FakeProvider()
    spec = make_spec(tmp_path)
    apply_spec(spec, fake, options=FAST)
    other = StackLock(fake, "bkt", "st")
    other.acquire()
    changed = make_spec(tmp_path, (90, 10))
    with pytest.raises(errors.LockHeld) as info:
        apply_spec(changed, fake, options=FAST)
    assert "force-unlock" in info.value.render()
    assert force_unlock(fake, "bkt", "st") is not None
    apply_spec(changed, fake, options=FAST)


def test_operation_timeout_is_clear_and_the_next_run_resumes(tmp_path: Path) -> None:
    fake = FakeProvider(op_polls=1000)
    spec = make_spec(tmp_path)
    with pytest.raises(errors.OperationTimeout) as info:
        apply_spec(spec, fake, options=replace(FAST, op_timeout=0.05))
    assert "did not finish within 0.05s" in info.value.message
    assert "re-run apply" in info.value.render()
    journal = [k for k in fake.objects if k[1].endswith("journal.json")]
    assert journal, "the in-flight operation was journaled"
    fake.op_polls = 0
    for state in fake._ops.values():
        state[0] = 1
    report = apply_spec(spec, fake, options=FAST)
    assert report.resumed_operations == 1
    assert len(next(iter(fake.models.values())).versions) == 2
    assert apply_spec(spec, fake, options=FAST).plan.is_empty


def test_declining_confirmation_changes_nothing(tmp_path: Path) -> None:
    fake = FakeProvider()
    with pytest.raises(errors.Aborted):
        apply_spec(make_spec(tmp_path), fake, options=FAST, confirm=lambda plan: False)
    assert fake.mutating_calls == []


def test_independent_endpoints_are_worked_on_in_parallel_in_order_per_endpoint(
    tmp_path: Path,
) -> None:
    fake = FakeProvider()
    spec = make_spec(tmp_path, (90, 10), n_endpoints=4)
    apply_spec(spec, fake, options=FAST)
    for ep in fake.endpoints.values():
        assert sorted(ep.traffic.values()) == [10, 90]
    per_endpoint: dict[str, list[str]] = {}
    for method, args in fake.calls:
        if method in ("deploy", "set_traffic") and "endpoint_id" in args:
            per_endpoint.setdefault(args["endpoint_id"], []).append(method)
    assert all(seq == ["deploy", "deploy", "set_traffic"] for seq in per_endpoint.values())
    assert apply_spec(spec, fake, options=FAST).plan.is_empty
    # And a failure in one endpoint's branch surfaces, after the others finish.
    fake2 = FakeProvider()
    fake2.fail_next("deploy", 1, errors.InvalidArgument("bad machine"))
    with pytest.raises(errors.InvalidArgument):
        apply_spec(spec, fake2, options=FAST)

"""teardown finds everything by label, removes it in a safe order, and proves it (FakeProvider)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from deployer import errors
from deployer.providers.fake import FakeProvider
from deployer.reconcile.apply import apply_spec
from deployer.reconcile.teardown import teardown_stack
from tests.unit.test_apply import FAST, make_spec


def applied(tmp_path: Path, **kw: object) -> tuple[FakeProvider, object]:
    fake = FakeProvider()
    spec = make_spec(tmp_path, (90, 10), n_endpoints=2)
    if kw.get("existing_bucket"):
        fake.buckets["bkt"] = {}
        spec = replace(spec, bucket=replace(spec.bucket, create=False))
    apply_spec(spec, fake, options=FAST)
    fake.objects[("bkt", "someone-else/data.csv")] = fake.objects[next(iter(fake.objects))]
    return fake, spec


def test_teardown_removes_everything_the_stack_created(tmp_path: Path) -> None:
    fake, _ = applied(tmp_path)
    report = teardown_stack(fake, "st", "bkt", options=FAST)
    assert not fake.endpoints and not fake.models and "bkt" not in fake.buckets
    assert report.bucket_deleted and report.remaining == []
    undeploys = [a for m, a in fake.calls if m == "undeploy"]
    # zero-traffic first on each endpoint: the 10% one goes while the 90% one still serves
    firsts = {}
    for a in undeploys:
        firsts.setdefault(a["endpoint_id"], a)
    assert all(a["traffic"] and dict(a["traffic"]) for a in firsts.values())


def test_keep_bucket_removes_only_the_stack_objects(tmp_path: Path) -> None:
    fake, _ = applied(tmp_path)
    teardown_stack(fake, "st", "bkt", keep_bucket=True, options=FAST)
    assert "bkt" in fake.buckets
    assert [name for (_, name) in fake.objects] == ["someone-else/data.csv"]


def test_a_bucket_the_stack_did_not_create_is_kept_with_foreign_objects(tmp_path: Path) -> None:
    fake, _ = applied(tmp_path, existing_bucket=True)
    report = teardown_stack(fake, "st", "bkt", options=FAST)
    assert not report.bucket_deleted and "bkt" in fake.buckets
    assert [name for (_, name) in fake.objects] == ["someone-else/data.csv"]


def test_dry_run_changes_nothing_and_lists_everything(tmp_path: Path) -> None:
    fake, _ = applied(tmp_path)
    fake.calls.clear()
    report = teardown_stack(fake, "st", "bkt", dry_run=True, options=FAST)
    assert fake.mutating_calls == []
    assert len(report.plan.actions) == 2 * 3 + 1  # 2x(2 undeploys + delete endpoint) + model
    assert report.bucket_deleted and report.objects[""] > 0


def test_teardown_survives_lost_responses_and_faults(tmp_path: Path) -> None:
    fake, _ = applied(tmp_path)
    for m in ("undeploy", "delete_endpoint", "delete_model", "delete_object", "delete_bucket"):
        fake.drop_next(m, 1)
        fake.fail_next(m, 1)
    teardown_stack(fake, "st", "bkt", options=FAST)
    assert not fake.endpoints and not fake.models and "bkt" not in fake.buckets


def test_leftovers_fail_verification_loudly(tmp_path: Path) -> None:
    fake, _ = applied(tmp_path)
    real = fake.delete_model
    fake.delete_model = lambda model_id: real.__self__._op()  # type: ignore[method-assign]
    with pytest.raises(errors.DeployerError, match="left: model mnist"):
        teardown_stack(fake, "st", "bkt", options=FAST)


def test_keep_outputs_keeps_the_outputs_and_so_the_bucket(tmp_path: Path) -> None:
    fake, _ = applied(tmp_path)
    fake.objects[("bkt", "predictions/run-1/prediction.results-00000-of-00001")] = fake.objects[
        ("bkt", "someone-else/data.csv")
    ]
    report = teardown_stack(
        fake, "st", "bkt", keep_outputs=True, output_prefixes=("predictions/",), options=FAST
    )
    assert not report.bucket_deleted and "bkt" in fake.buckets
    names = sorted(name for (_, name) in fake.objects)
    assert names == ["predictions/run-1/prediction.results-00000-of-00001", "someone-else/data.csv"]
    teardown_stack(fake, "st", "bkt", output_prefixes=("predictions/",), options=FAST)
    assert "bkt" not in fake.buckets

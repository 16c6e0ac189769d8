"""`reap` tears down stacks past their expiry label, and nothing else (FakeProvider)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from deployer.providers.fake import FakeProvider, _Endpoint
from deployer.reconcile.apply import apply_spec
from deployer.reconcile.reaper import reap
from deployer.spec import Guards
from tests.unit.test_apply import FAST, make_spec


def test_reap_removes_expired_stacks_only(tmp_path: Path) -> None:
    fake = FakeProvider()
    old = replace(make_spec(tmp_path), guards=Guards(ttl_seconds=3600))
    young = replace(
        old,
        stack="young",
        bucket=replace(old.bucket, name="young-bkt"),
        guards=Guards(ttl_seconds=10 * 86400),
    )
    keep = replace(old, stack="keep", bucket=replace(old.bucket, name="keep-bkt"), guards=Guards())
    for spec in (old, young, keep):
        apply_spec(spec, fake, options=FAST)
    fake.endpoints["hand-made"] = _Endpoint("hand-made", "x", "", {})  # no deployer labels
    later = __import__("time").time() + 2 * 3600

    dry = reap("p", "us-central1", dry_run=True, provider=fake, now=later, options=FAST)
    assert [s.stack for s in dry.expired] == ["st"]
    assert dry.expired[0].hourly_usd and dry.expired[0].hourly_usd > 0
    assert dry.expired[0].bucket == "bkt"
    assert len(fake.models) == 3  # a dry run changes nothing
    text = dry.render()
    assert "stack st: expired" in text and "would tear down" in text
    assert "stack keep: no expiry label" in text and "stack young: expires in" in text

    report = reap("p", "us-central1", provider=fake, now=later, options=FAST)
    assert [s.stack for s in report.stacks if s.torn_down] == ["st"]
    assert "bkt" not in fake.buckets and {"young-bkt", "keep-bkt"} <= set(fake.buckets)
    stacks = {e.labels.get("deployer-stack") for e in fake.endpoints.values()}
    assert stacks == {"young", "keep", None}
    assert "hand-made" in fake.endpoints

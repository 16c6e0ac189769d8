"""The emulator's autoscaling decision (pure), its cool-down step, bounds and CPU sampling."""

from __future__ import annotations

import os
import time

import pytest

from deployer.emulator.vertex import autoscale
from deployer.emulator.vertex.autoscale import desired_replicas, scale_step


def test_load_above_target_asks_for_proportionally_more_replicas() -> None:
    # 1 replica at 150 req/min against a target of 60: ceil(1 * 150 / 60) = 3.
    assert desired_replicas(target=60, observed=150, current=1, min_replicas=1, max_replicas=5) == 3


def test_the_answer_never_leaves_the_bounds() -> None:
    assert (
        desired_replicas(target=60, observed=6000, current=2, min_replicas=1, max_replicas=4) == 4
    )
    assert desired_replicas(target=60, observed=0, current=3, min_replicas=2, max_replicas=4) == 2


def test_idle_goes_to_min_and_load_near_target_keeps_the_count() -> None:
    assert desired_replicas(target=60, observed=0, current=4, min_replicas=1, max_replicas=4) == 1
    # Within 10% of the target nothing moves (no flapping around it).
    assert desired_replicas(target=60, observed=65, current=2, min_replicas=1, max_replicas=4) == 2
    assert desired_replicas(target=60, observed=55, current=2, min_replicas=1, max_replicas=4) == 2
    # Half the target on 4 replicas: 2 would carry it.
    assert desired_replicas(target=60, observed=30, current=4, min_replicas=1, max_replicas=4) == 2


def test_total_load_decides_whatever_the_current_count() -> None:
    # 240 req/min in all: 4 replicas at a 60 req/min target, from 1 or from 2 replicas.
    assert desired_replicas(target=60, observed=240, current=1, min_replicas=1, max_replicas=8) == 4
    assert desired_replicas(target=60, observed=120, current=2, min_replicas=1, max_replicas=8) == 4


def test_scale_up_is_at_once_and_down_waits_for_the_cool_down_window() -> None:
    assert scale_step(1, 3, [3]) == 3
    # Load fell, but 3 were wanted within the window: stay.
    assert scale_step(3, 1, [3, 2, 1]) == 3
    # Only 2 wanted lately: step down to 2; once the window holds only 1s, to 1.
    assert scale_step(3, 1, [2, 1]) == 2
    assert scale_step(3, 1, [1, 1]) == 1


def test_bounds_are_capped_by_the_local_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.cloud import aiplatform_v1 as v1

    dm = v1.DeployedModel(
        dedicated_resources=v1.DedicatedResources(min_replica_count=2, max_replica_count=10)
    )
    pb = type(dm).pb(dm)
    assert autoscale.bounds(pb) == (2, 4)  # the default cap
    monkeypatch.setenv("DEPLOYER_EMULATOR_MAX_REPLICAS", "1")
    assert autoscale.bounds(pb) == (1, 1)
    monkeypatch.setenv("DEPLOYER_EMULATOR_MAX_REPLICAS", "6")
    assert autoscale.bounds(pb) == (2, 6)


def test_metric_targets_default_to_cpu_at_60_percent() -> None:
    from google.cloud import aiplatform_v1 as v1

    plain = v1.DeployedModel(
        dedicated_resources=v1.DedicatedResources(min_replica_count=1, max_replica_count=3)
    )
    assert autoscale.metric_targets(type(plain).pb(plain)) == [(autoscale.CPU, 60)]
    spec = v1.AutoscalingMetricSpec(metric_name=autoscale.REQUEST_COUNT, target=120)
    named = v1.DeployedModel(
        dedicated_resources=v1.DedicatedResources(
            min_replica_count=1, max_replica_count=3, autoscaling_metric_specs=[spec]
        )
    )
    assert autoscale.metric_targets(type(named).pb(named)) == [(autoscale.REQUEST_COUNT, 120)]


def test_cpu_seconds_grow_while_a_process_computes() -> None:
    before = autoscale.cpu_seconds(os.getpid())
    assert before is not None
    end = time.process_time() + 0.3
    while time.process_time() < end:
        sum(i * i for i in range(1000))
    after = autoscale.cpu_seconds(os.getpid())
    assert after is not None and after - before >= 0.2
    assert autoscale.cpu_seconds(2**22 + 12345) is None  # no such process


def test_the_meter_counts_per_deployed_model_and_resets_on_take() -> None:
    meter = autoscale.Meter()
    for _ in range(3):
        meter.hit("ep", "a")
    meter.hit("ep", "b")
    assert meter.take() == {("ep", "a"): 3, ("ep", "b"): 1}
    assert meter.take() == {}

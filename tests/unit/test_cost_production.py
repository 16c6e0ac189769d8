"""Cost of the production settings (issue 16): Spot prices from the table, and autoscaling
ceilings (max_replicas) in the maximum estimate. Figures come from the packaged table, so a
price refresh changes both sides alike."""

from __future__ import annotations

from dataclasses import replace

import pytest

from deployer.cost import (
    PriceTable,
    _table_from_json,
    check_budget,
    estimate_spec,
    packaged_price_table,
)
from deployer.errors import BudgetExceeded
from deployer.spec.production_model import (
    AutoscalingMetric,
    AutoscalingMetricSpec,
    DeployedModelSettings,
)
from tests.unit.test_cost import dep, n1_4, spec_with, t4

SPOT = DeployedModelSettings(spot=True)
AUTOSCALED = DeployedModelSettings(
    autoscaling_metric_specs=(AutoscalingMetricSpec(AutoscalingMetric.CPU_UTILIZATION.value, 60),)
)


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return packaged_price_table()


def test_the_packaged_table_quotes_spot_as_the_smallest_documented_discount(
    table: PriceTable,
) -> None:
    assert table.spot_multiplier == 0.4  # 60% off: an upper bound of what Spot costs


def test_a_spot_deployment_costs_the_spot_price_of_machine_and_gpus(table: PriceTable) -> None:
    mult = table.spot_multiplier or 0.0
    est = estimate_spec(
        spec_with(
            replace(dep(lo=2, hi=4), settings=SPOT),
            replace(dep(gpu="NVIDIA_TESLA_T4", traffic=0, version="v2"), settings=SPOT),
        ),
        table,
    )
    cpu, gpu = est.items
    assert cpu.hourly_min == pytest.approx(2 * n1_4(table) * mult)
    assert cpu.hourly_max == pytest.approx(4 * n1_4(table) * mult)
    assert gpu.hourly_min == pytest.approx((n1_4(table) + t4(table)) * mult)
    assert cpu.note == gpu.note == "Spot"


def test_overrides_narrow_spot_per_family_and_accelerator(table: PriceTable) -> None:
    custom = replace(table, spot_overrides={"n1-standard": 0.3, "NVIDIA_TESLA_T4": 0.2})
    unit = custom.spot_hourly("n1-standard-4", "us-central1", "NVIDIA_TESLA_T4", 2)
    assert unit == pytest.approx(n1_4(table) * 0.3 + 2 * t4(table) * 0.2)


def test_without_a_spot_figure_the_on_demand_price_stands(table: PriceTable) -> None:
    plain = replace(table, spot_multiplier=None)
    [item] = estimate_spec(spec_with(replace(dep(), settings=SPOT)), plain).items
    assert item.hourly_min == pytest.approx(n1_4(table))
    assert item.note == "Spot (on-demand price)"


def test_a_table_file_without_spot_reads_as_none() -> None:
    data = {"source": "s", "as_of": "2026-01-01", "regions": {"us-central1": 1.0}}
    assert _table_from_json(data, "x.json").spot_multiplier is None


def test_autoscaling_ceiling_is_the_maximum_estimate(table: PriceTable) -> None:
    est = estimate_spec(spec_with(replace(dep(lo=2, hi=6), settings=AUTOSCALED)), table)
    assert est.hourly_min == pytest.approx(2 * n1_4(table))
    assert est.hourly_max == pytest.approx(6 * n1_4(table))


def test_the_budget_guard_names_spot(table: PriceTable) -> None:
    est = estimate_spec(spec_with(replace(dep(lo=8, hi=8), settings=SPOT)), table)
    with pytest.raises(BudgetExceeded, match="8x n1-standard-4 on Spot"):
        check_budget(est, 0.01)

"""Cost estimates, the price table, the budget guard, ttl parsing and money formatting.

Expected figures come from the packaged price table itself (`packaged_price_table()`), never
from numbers copied out of it: a price refresh changes both sides alike, and the tests keep
checking the arithmetic (vCPU and memory rates times the machine's shape, region multipliers,
per-GPU prices, replica counts). Machine shapes (n1-standard-4: 4 vCPU, 15 GB) are Compute
Engine facts, not prices, and are written out.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployer.cost import (
    HOURS_PER_MONTH,
    PriceTable,
    batch_job_upper_bound,
    check_budget,
    estimate_deployments,
    estimate_spec,
    format_usd,
    load_price_table,
    packaged_price_table,
    packaged_table_text,
)
from deployer.errors import BudgetExceeded, ConfigError
from deployer.spec import (
    Accelerator,
    BatchInput,
    BatchJob,
    Bucket,
    Deployment,
    Endpoint,
    InputFormat,
    Model,
    ModelVersion,
    Spec,
    Target,
    load_spec,
)

SPECS = Path(__file__).parent / "specs"


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return packaged_price_table()


def machine_price(
    table: PriceTable, family: str, vcpus: int, gb: float, region: str = "us-central1"
) -> float:
    """What one machine of `family` with `vcpus` and `gb` should cost per hour in `region`."""
    rate = table.families[family]
    return (vcpus * rate.vcpu_hour + gb * rate.gb_hour) * table.regions[region]


def gpu_price(table: PriceTable, accelerator: str, region: str = "us-central1") -> float:
    return table.accelerators[accelerator] * table.regions[region]


def n1_4(table: PriceTable, region: str = "us-central1") -> float:
    """n1-standard-4 (4 vCPU, 15 GB): the machine most tests deploy."""
    return machine_price(table, "n1-standard", 4, 15.0, region)


def t4(table: PriceTable, region: str = "us-central1") -> float:
    return gpu_price(table, "NVIDIA_TESLA_T4", region)


def dep(
    machine: str = "n1-standard-4",
    lo: int = 1,
    hi: int = 1,
    gpu: str | None = None,
    count: int = 1,
    traffic: int = 100,
    version: str = "v1",
) -> Deployment:
    return Deployment(
        model="m",
        version=version,
        traffic=traffic,
        machine_type=machine,
        min_replicas=lo,
        max_replicas=hi,
        accelerator=Accelerator(gpu, count) if gpu else None,
    )


def job(
    machine: str = "n1-standard-4", starting: int = 1, mx: int = 1, gpu: str | None = None
) -> BatchJob:
    return BatchJob(
        name="score",
        model="m",
        version="v1",
        input=BatchInput(paths=("gs://b-in/x.jsonl",), format=InputFormat.JSONL),
        output_prefix="predictions/",
        machine_type=machine,
        starting_replicas=starting,
        max_replicas=mx,
        accelerator=Accelerator(gpu, 1) if gpu else None,
    )


def spec_with(
    *deployments: Deployment, region: str = "us-central1", jobs: tuple[BatchJob, ...] = ()
) -> Spec:
    version = ModelVersion(alias="v1", artifact="gs://b-art/m/1", container_image="img/x:1")
    return Spec(
        stack="s",
        project="p-123456",
        region=region,
        target=Target.LOCAL,
        bucket=Bucket("bkt", "US", True),
        models=(Model(name="m", versions=(version,), display_name="m"),),
        endpoints=(Endpoint(name="ep", deployments=deployments, display_name="ep"),),
        batch_jobs=jobs,
    )


def test_a_machine_costs_its_vcpus_and_memory_at_its_familys_rates(table: PriceTable) -> None:
    assert table.hourly("n1-standard-4", "us-central1") == pytest.approx(n1_4(table))
    assert table.hourly("n1-highmem-8", "us-central1") == pytest.approx(
        machine_price(table, "n1-highmem", 8, 52.0)
    )
    assert table.hourly("e2-standard-4", "us-central1") == pytest.approx(
        machine_price(table, "e2-standard", 4, 16.0)
    )


def test_each_gpu_adds_its_hourly_price(table: PriceTable) -> None:
    base = table.hourly("n1-standard-4", "us-central1")
    assert base is not None
    one = table.hourly("n1-standard-4", "us-central1", "NVIDIA_TESLA_T4", 1)
    four = table.hourly("n1-standard-4", "us-central1", "NVIDIA_TESLA_T4", 4)
    assert one == pytest.approx(base + t4(table))
    assert four == pytest.approx(base + 4 * t4(table))


def test_the_table_records_its_source_and_date(table: PriceTable) -> None:
    raw = json.loads(packaged_table_text())
    assert raw["as_of"] == table.as_of and len(table.as_of) == 10
    assert "Vertex AI" in table.source
    families = {
        "n1-standard",
        "n1-highmem",
        "n1-highcpu",
        "n2-standard",
        "n2-highmem",
        "n2-highcpu",
        "e2-standard",
        "e2-highmem",
        "e2-highcpu",
        "a2-highgpu",
        "g2-standard",
    }
    assert families <= set(table.families)
    gpus = {
        "NVIDIA_TESLA_T4",
        "NVIDIA_L4",
        "NVIDIA_TESLA_V100",
        "NVIDIA_TESLA_P100",
        "NVIDIA_TESLA_P4",
        "NVIDIA_TESLA_A100",
        "NVIDIA_A100_80GB",
        "NVIDIA_H100_80GB",
    }
    assert gpus <= set(table.accelerators)
    assert {
        "us-central1",
        "us-east1",
        "us-west1",
        "europe-west4",
        "europe-west1",
        "asia-east1",
    } <= set(table.regions)


def test_regions_scale_machine_and_gpu_prices_by_their_multiplier(table: PriceTable) -> None:
    for region in ("us-east1", "europe-west4", "asia-east1"):
        assert region in table.regions and table.region_prices.get(region) is None
        assert table.hourly("n1-standard-4", region) == pytest.approx(n1_4(table, region))
        assert table.hourly("n1-standard-4", region, "NVIDIA_TESLA_T4", 2) == pytest.approx(
            n1_4(table, region) + 2 * t4(table, region)
        )


def test_gpu_machine_families_price_their_host_and_their_gpus(table: PriceTable) -> None:
    # g2-standard-8: 8 vCPU, 32 GB, one L4; a2-highgpu-1g: 12 vCPU, 85 GB, one A100.
    assert table.hourly("g2-standard-8", "us-central1", "NVIDIA_L4", 1) == pytest.approx(
        machine_price(table, "g2-standard", 8, 32.0) + gpu_price(table, "NVIDIA_L4")
    )
    assert table.hourly("a2-highgpu-1g", "us-central1", "NVIDIA_TESLA_A100", 1) == pytest.approx(
        machine_price(table, "a2-highgpu", 12, 85.0) + gpu_price(table, "NVIDIA_TESLA_A100")
    )


def test_unknown_region_machine_or_gpu_availability_is_none(table: PriceTable) -> None:
    assert table.hourly("n1-standard-4", "mars-north1") is None
    assert table.hourly("n1-standard-5", "us-central1") is None
    assert (
        table.hourly("a3-highgpu-8g", "us-central1", "NVIDIA_H100_80GB", 8) is None
    )  # no a3 rates
    assert (
        table.hourly("n1-standard-4", "asia-east1", "NVIDIA_TESLA_P4", 1) is None
    )  # not offered there
    assert table.hourly("n1-standard-4", "us-central1", "NVIDIA_TESLA_K80", 1) is None


def test_replica_ranges_give_steady_state_and_ceiling(table: PriceTable) -> None:
    est = estimate_spec(
        spec_with(
            dep(lo=2, hi=5, traffic=90),
            dep(lo=1, hi=2, gpu="NVIDIA_TESLA_T4", traffic=10, version="v2"),
        ),
        table,
    )
    n1, gpu = n1_4(table), t4(table)
    assert est.hourly_min == pytest.approx(2 * n1 + (n1 + gpu))
    assert est.hourly_max == pytest.approx(5 * n1 + 2 * (n1 + gpu))
    assert est.monthly_min == pytest.approx(est.hourly_min * HOURS_PER_MONTH)
    assert est.monthly_max == pytest.approx(est.hourly_max * HOURS_PER_MONTH)
    assert [i.name for i in est.items] == ["ep/m@v1", "ep/m@v2"]
    assert est.items[1].accelerator == "NVIDIA_TESLA_T4" and est.items[1].accelerator_count == 1
    assert est.unknown == ()
    assert est.table_as_of == table.as_of and est.table_source == table.source


def test_accelerator_counts_multiply_the_gpu_price(table: PriceTable) -> None:
    one = estimate_deployments(
        [("ep", dep(gpu="NVIDIA_TESLA_V100", count=1))], "us-central1", table
    )
    eight = estimate_deployments(
        [("ep", dep(machine="n1-standard-32", gpu="NVIDIA_TESLA_V100", count=8))],
        "us-central1",
        table,
    )
    machine_32 = table.machine_hourly("n1-standard-32", "us-central1")
    assert machine_32 is not None
    assert machine_32 == pytest.approx(machine_price(table, "n1-standard", 32, 120.0))
    assert one.hourly_min == pytest.approx(n1_4(table) + gpu_price(table, "NVIDIA_TESLA_V100"))
    assert eight.hourly_min - machine_32 == pytest.approx(8 * (one.hourly_min - n1_4(table)))


def test_unknown_prices_are_listed_and_left_out_of_the_totals(table: PriceTable) -> None:
    est = estimate_spec(
        spec_with(
            dep(traffic=50),
            dep(machine="a3-highgpu-8g", gpu="NVIDIA_H100_80GB", count=8, traffic=50, version="v2"),
        ),
        table,
    )
    assert est.hourly_min == pytest.approx(n1_4(table))
    assert est.unknown == ("a3-highgpu-8g in us-central1 (ep/m@v2)",)
    item = est.items[1]
    assert item.hourly_min is None and item.hourly_max is None and "no price" in item.note
    p4 = estimate_spec(spec_with(dep(gpu="NVIDIA_TESLA_P4"), region="asia-east1"), table)
    assert p4.unknown == ("NVIDIA_TESLA_P4 in asia-east1 (ep/m@v1)",)
    mars = estimate_spec(spec_with(dep(), region="mars-north1"), table)
    assert mars.unknown == ("n1-standard-4 in mars-north1 (ep/m@v1)",) and mars.hourly_min == 0


def test_batch_jobs_are_separate_upper_bounds_not_in_the_steady_state(table: PriceTable) -> None:
    est = estimate_spec(spec_with(dep(), jobs=(job(starting=1, mx=4),)), table)
    assert est.hourly_min == pytest.approx(n1_4(table))  # the job is not in the totals
    (item,) = est.batch_jobs
    assert item.kind == "batch_job" and item.min_replicas == 1 and item.max_replicas == 4
    assert item.hourly_max == pytest.approx(4 * n1_4(table))
    assert item.total_max is not None and "estimate" in item.note and "unknown" in item.note


def test_batch_bound_grows_with_input_size_and_states_its_assumptions(table: PriceTable) -> None:
    small = batch_job_upper_bound(job(mx=2), "us-central1", 10_000, table)
    large = batch_job_upper_bound(job(mx=2), "us-central1", 10_000_000, table)
    assert small.total_max is not None and large.total_max is not None
    assert large.total_max > 100 * small.total_max / 2
    # 10,000 instances at 20/s = 500 s, plus 2 replicas x 10 min startup: 0.139 h + 0.333 h, rounded
    # up.
    assert small.replica_hours_max == pytest.approx(29 / 60)
    assert small.total_max == pytest.approx(n1_4(table) * 29 / 60)
    assert "10,000 instances" in small.note and "upper bound" in small.note
    gpu = batch_job_upper_bound(job(gpu="NVIDIA_TESLA_T4"), "us-central1", 10_000, table)
    assert gpu.total_max is not None and gpu.total_max > small.total_max / 2


def test_batch_job_with_unknown_price(table: PriceTable) -> None:
    item = batch_job_upper_bound(job(), "mars-north1", 100, table)
    assert item.total_max is None and item.hourly_max is None
    est = estimate_spec(spec_with(dep(), region="mars-north1", jobs=(job(),)), table)
    assert "n1-standard-4 in mars-north1 (score)" in est.unknown


def test_budget_guard_passes_under_and_at_the_limit(table: PriceTable) -> None:
    est = estimate_deployments([("ep", dep(lo=2, hi=10))], "us-central1", table)
    check_budget(est, None)
    check_budget(est, 1.0)
    check_budget(est, est.hourly_min)  # equal is within budget


def test_budget_guard_names_the_figure_and_the_biggest_contributors(table: PriceTable) -> None:
    est = estimate_deployments(
        [
            ("small", dep(machine="e2-standard-2")),
            ("gpu", dep(gpu="NVIDIA_TESLA_T4", count=4, lo=2, hi=3)),
            ("cpu", dep(machine="n1-standard-16", lo=3, hi=3)),
        ],
        "us-central1",
        table,
    )
    with pytest.raises(BudgetExceeded) as info:
        check_budget(est, 1.0)
    err = info.value
    assert err.exit_code == 7
    assert f"{format_usd(est.hourly_min)}/h" in err.message and "$1.00/h" in err.message
    assert "guards.max_hourly_usd" in err.message
    # Sorted by contribution, the largest first, with shapes.
    assert (
        err.message.index("gpu/m@v1")
        < err.message.index("cpu/m@v1")
        < err.message.index("small/m@v1")
    )
    assert "2x n1-standard-4 + 4x NVIDIA_TESLA_T4" in err.message
    assert err.hint is not None and "--allow-over-budget" in err.hint


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (0.2191, "$0.22"),
        (160, "$160.00"),
        (1234.5, "$1,234"),
        (0.0049, "$0.0049"),
        (0, "$0.00"),
        (None, "unknown"),
    ],
)
def test_format_usd(x: float | None, text: str) -> None:
    assert format_usd(x) == text


def _write_table(path: Path, as_of: str, t4: float) -> None:
    raw = json.loads(packaged_table_text())
    raw.update(as_of=as_of, source="Cloud Billing Catalog API")
    raw["region_prices"] = {"us-central1": {"accelerators": {"NVIDIA_TESLA_T4": t4}}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(raw))


def test_a_newer_user_cache_wins_and_its_region_prices_override(tmp_path: Path) -> None:
    _write_table(tmp_path / "prices.json", "2099-01-01", 0.5)
    table = load_price_table({"DEPLOYER_HOME": str(tmp_path)})
    assert table.source == "Cloud Billing Catalog API" and table.as_of == "2099-01-01"
    assert table.accelerator_hourly("NVIDIA_TESLA_T4", "us-central1") == 0.5
    # Regions the refresh did not quote keep base x multiplier.
    assert table.accelerator_hourly("NVIDIA_TESLA_T4", "europe-west4") == pytest.approx(
        t4(packaged_price_table(), "europe-west4")
    )


def test_an_older_user_cache_loses_to_the_packaged_table(tmp_path: Path) -> None:
    _write_table(tmp_path / "prices.json", "2000-01-01", 0.5)
    table = load_price_table({"DEPLOYER_HOME": str(tmp_path)})
    packaged = packaged_price_table()
    assert table.as_of == packaged.as_of
    assert table.accelerator_hourly("NVIDIA_TESLA_T4", "us-central1") == t4(packaged) != 0.5


def test_a_corrupt_user_cache_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "prices.json").write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable") as info:
        load_price_table({"DEPLOYER_HOME": str(tmp_path)})
    assert info.value.hint is not None and "prices --refresh" in info.value.hint


def test_the_flagship_spec_costs_its_replicas_times_their_hourly_price(table: PriceTable) -> None:
    spec = load_spec(SPECS / "valid" / "mnist.yaml", environ={})
    est = estimate_spec(spec, table)
    # v1: 1-5 replicas of n1-standard-4; v2: 1-2 of n1-standard-4 with one T4 each.
    v1, v2 = est.deployments
    assert (v1.hourly_min, v1.hourly_max) == pytest.approx((n1_4(table), 5 * n1_4(table)))
    one_t4 = n1_4(table) + t4(table)
    assert (v2.hourly_min, v2.hourly_max) == pytest.approx((one_t4, 2 * one_t4))
    assert est.hourly_min == pytest.approx(2 * n1_4(table) + t4(table))
    assert est.monthly_min == pytest.approx(est.hourly_min * HOURS_PER_MONTH)


def test_budget_message_names_unpriced_items(table: PriceTable) -> None:
    est = estimate_deployments(
        [
            ("cpu", dep(machine="n1-standard-16", lo=3, hi=3)),
            ("h100", dep(machine="a3-highgpu-8g", gpu="NVIDIA_H100_80GB", count=8)),
        ],
        "us-central1",
        table,
    )
    with pytest.raises(
        BudgetExceeded, match=r"not counting unpriced a3-highgpu-8g in us-central1 \(h100/m@v1\)"
    ):
        check_budget(est, 1.0)

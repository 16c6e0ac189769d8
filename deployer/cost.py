"""Cost estimates: the price table, per-deployment and per-batch-job figures, the budget guard.

Owns pricing arithmetic and its inputs: the packaged table
(`deployer/data/prices.json`) and the user cache written by
`deployer prices --refresh` (`$DEPLOYER_HOME/prices.json`). It reads those
files and nothing else: no network, no google.cloud imports (the refresh lives
in `deployer.providers.billing`). Unknown machine/region/accelerator
combinations are reported in `Estimate.unknown`, never priced by guesswork.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from deployer import settings
from deployer.errors import BudgetExceeded, ConfigError
from deployer.spec import BatchJob, Deployment, Spec, catalog

HOURS_PER_MONTH = 730  # Google's billing convention: 365 * 24 / 12

# Batch upper bound assumptions, stated in each batch line item's note.
BATCH_STARTUP_HOURS = 1 / 6  # provisioning and model load per replica: ~10 minutes
BATCH_INSTANCES_PER_REPLICA_SECOND = 20  # deliberately slow, so the figure bounds from above
BATCH_UNKNOWN_SIZE_HOURS = 1.0  # replica-hours assumed per replica when the input size is unknown


@dataclass(frozen=True)
class FamilyRate:
    vcpu_hour: float  # USD per vCPU-hour
    gb_hour: float  # USD per GB-hour of memory


@dataclass(frozen=True)
class RegionPrices:
    """Prices quoted for one region directly (from --refresh); they beat base x multiplier."""

    families: Mapping[str, FamilyRate] = field(default_factory=dict)
    accelerators: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PriceTable:
    source: str  # where the figures come from, shown with every estimate
    as_of: str  # ISO date of the figures
    path: str = ""  # file it was read from
    regions: Mapping[str, float] = field(
        default_factory=dict
    )  # region -> multiplier on base prices
    families: Mapping[str, FamilyRate] = field(default_factory=dict)  # base-region rates
    accelerators: Mapping[str, float] = field(default_factory=dict)  # base-region USD/h per GPU
    accelerator_regions: Mapping[str, tuple[str, ...]] = field(
        default_factory=dict
    )  # where offered
    region_prices: Mapping[str, RegionPrices] = field(default_factory=dict)

    def machine_hourly(self, machine_type: str, region: str) -> float | None:
        """USD per hour for one replica's machine (no accelerators), or None if unknown."""
        shape = catalog.machine_shape(machine_type)
        if shape is None:
            return None
        quoted = self.region_prices.get(region)
        if quoted is not None and shape.family in quoted.families:
            rate, multiplier = quoted.families[shape.family], 1.0
        elif shape.family in self.families and region in self.regions:
            rate, multiplier = self.families[shape.family], self.regions[region]
        else:
            return None
        return (shape.vcpus * rate.vcpu_hour + shape.memory_gb * rate.gb_hour) * multiplier

    def accelerator_hourly(self, accelerator_type: str, region: str) -> float | None:
        """USD per hour for one accelerator in a region, or None if unknown or not offered there."""
        quoted = self.region_prices.get(region)
        if quoted is not None and accelerator_type in quoted.accelerators:
            return quoted.accelerators[accelerator_type]
        if accelerator_type not in self.accelerators or region not in self.regions:
            return None
        offered = self.accelerator_regions.get(accelerator_type)
        if offered is not None and region not in offered:
            return None
        return self.accelerators[accelerator_type] * self.regions[region]

    def hourly(
        self,
        machine_type: str,
        region: str,
        accelerator_type: str | None = None,
        accelerator_count: int = 0,
    ) -> float | None:
        """USD per hour for one replica: machine plus its accelerators; None if any part is
        unknown."""
        machine = self.machine_hourly(machine_type, region)
        if machine is None:
            return None
        if accelerator_type is None or accelerator_count <= 0:
            return machine
        gpu = self.accelerator_hourly(accelerator_type, region)
        return None if gpu is None else machine + gpu * accelerator_count

    def describe(self) -> str:
        return f"{self.source}, {self.as_of}"


def _table_from_json(data: Mapping[str, Any], path: str) -> PriceTable:
    def rates(raw: Mapping[str, Any]) -> dict[str, FamilyRate]:
        return {k: FamilyRate(float(v["vcpu_hour"]), float(v["gb_hour"])) for k, v in raw.items()}

    accelerators = data.get("accelerators", {})
    return PriceTable(
        source=str(data["source"]),
        as_of=str(data["as_of"]),
        path=path,
        regions={k: float(v) for k, v in data.get("regions", {}).items()},
        families=rates(data.get("families", {})),
        accelerators={k: float(v["hour"]) for k, v in accelerators.items()},
        accelerator_regions={
            k: tuple(v["regions"]) for k, v in accelerators.items() if "regions" in v
        },
        region_prices={
            region: RegionPrices(
                families=rates(v.get("families", {})),
                accelerators={k: float(x) for k, x in v.get("accelerators", {}).items()},
            )
            for region, v in data.get("region_prices", {}).items()
        },
    )


def user_cache_path(environ: Mapping[str, str] | None = None) -> Path:
    return settings.HOME.get(environ) / "prices.json"


def packaged_table_text() -> str:
    """The packaged table's JSON text (the refresh starts from it)."""
    return (resources.files("deployer") / "data" / "prices.json").read_text(encoding="utf-8")


def packaged_price_table() -> PriceTable:
    return _table_from_json(json.loads(packaged_table_text()), "deployer/data/prices.json")


def read_price_table(path: Path) -> PriceTable:
    try:
        return _table_from_json(json.loads(path.read_text(encoding="utf-8")), str(path))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"price table {str(path)!r} is unreadable: {exc}",
            hint="delete it, or run `deployer prices --refresh` to rewrite it",
        ) from exc


def load_price_table(environ: Mapping[str, str] | None = None) -> PriceTable:
    """The user cache if present and at least as recent as the packaged table, else the packaged
    one."""
    packaged = packaged_price_table()
    cache = user_cache_path(environ)
    if not cache.is_file():
        return packaged
    cached = read_price_table(cache)
    return cached if cached.as_of >= packaged.as_of else packaged


@dataclass(frozen=True)
class LineItem:
    kind: str  # "deployment" | "batch_job"
    name: str  # "mnist-endpoint/mnist@v1" or the batch job's name
    machine_type: str
    accelerator: str | None
    accelerator_count: int
    min_replicas: int
    max_replicas: int
    hourly_min: float | None  # USD/h at min replicas (None: price unknown)
    hourly_max: float | None  # USD/h at max replicas
    note: str = ""
    total_max: float | None = None  # batch jobs: upper bound of the whole run in USD
    replica_hours_max: float | None = None  # batch jobs: the machine hours behind total_max

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Estimate:
    items: tuple[LineItem, ...]
    hourly_min: float  # steady state: every deployment at min replicas (known prices only)
    hourly_max: float  # ceiling: every deployment at max replicas
    monthly_min: float
    monthly_max: float
    unknown: tuple[str, ...]  # what could not be priced, e.g. "n1-standard-4 in mars-north1 (...)"
    table_source: str
    table_as_of: str

    @property
    def deployments(self) -> tuple[LineItem, ...]:
        return tuple(i for i in self.items if i.kind == "deployment")

    @property
    def batch_jobs(self) -> tuple[LineItem, ...]:
        return tuple(i for i in self.items if i.kind == "batch_job")

    def to_dict(self) -> dict[str, Any]:
        return {
            "hourly_min": round(self.hourly_min, 4),
            "hourly_max": round(self.hourly_max, 4),
            "monthly_min": round(self.monthly_min, 2),
            "monthly_max": round(self.monthly_max, 2),
            "unknown": list(self.unknown),
            "table_source": self.table_source,
            "table_as_of": self.table_as_of,
            "items": [i.to_dict() for i in self.items],
        }


def _unknown_reason(
    table: PriceTable, machine: str, region: str, accel: str | None, owner: str
) -> str:
    if table.machine_hourly(machine, region) is None:
        return f"{machine} in {region} ({owner})"
    return f"{accel} in {region} ({owner})"


def _deployment_item(
    endpoint: str, d: Deployment, region: str, table: PriceTable
) -> tuple[LineItem, str | None]:
    accel, count = (d.accelerator.type, d.accelerator.count) if d.accelerator else (None, 0)
    name = f"{endpoint}/{d.ref}"
    unit = table.hourly(d.machine_type, region, accel, count)
    missing = (
        None if unit is not None else _unknown_reason(table, d.machine_type, region, accel, name)
    )
    item = LineItem(
        kind="deployment",
        name=name,
        machine_type=d.machine_type,
        accelerator=accel,
        accelerator_count=count,
        min_replicas=d.min_replicas,
        max_replicas=d.max_replicas,
        hourly_min=None if unit is None else unit * d.min_replicas,
        hourly_max=None if unit is None else unit * d.max_replicas,
        note="no price in the table" if unit is None else "",
    )
    return item, missing


def _estimate(items: list[LineItem], unknown: list[str], table: PriceTable) -> Estimate:
    steady = [i for i in items if i.kind == "deployment" and i.hourly_min is not None]
    low = sum(i.hourly_min or 0.0 for i in steady)
    high = sum(i.hourly_max or 0.0 for i in steady)
    return Estimate(
        items=tuple(items),
        hourly_min=low,
        hourly_max=high,
        monthly_min=low * HOURS_PER_MONTH,
        monthly_max=high * HOURS_PER_MONTH,
        unknown=tuple(unknown),
        table_source=table.source,
        table_as_of=table.as_of,
    )


def estimate_deployments(
    deployments: Iterable[tuple[str, Deployment]], region: str, table: PriceTable | None = None
) -> Estimate:
    """Hourly and monthly cost of (endpoint name, deployment) pairs, e.g. what is deployed now."""
    table = table or load_price_table()
    items: list[LineItem] = []
    unknown: list[str] = []
    for endpoint, d in deployments:
        item, missing = _deployment_item(endpoint, d, region, table)
        items.append(item)
        if missing:
            unknown.append(missing)
    return _estimate(items, unknown, table)


def estimate_spec(
    spec: Spec,
    table: PriceTable | None = None,
    instance_counts: Mapping[str, int | None] | None = None,
) -> Estimate:
    """The stack's cost: deployments in the totals, batch jobs as separate upper bounds.

    `instance_counts`: job name -> rows in its input, where known (bounds the job's run)."""
    table = table or load_price_table()
    counts = instance_counts or {}
    est = estimate_deployments(
        ((e.name, d) for e in spec.endpoints for d in e.deployments), spec.region, table
    )
    items, unknown = list(est.items), list(est.unknown)
    for job in spec.batch_jobs:
        item = batch_job_upper_bound(job, spec.region, counts.get(job.name), table)
        items.append(item)
        if item.hourly_max is None:
            accel = job.accelerator.type if job.accelerator else None
            unknown.append(_unknown_reason(table, job.machine_type, spec.region, accel, job.name))
    return _estimate(items, unknown, table)


def batch_job_upper_bound(
    job: BatchJob, region: str, instance_count: int | None, table: PriceTable | None = None
) -> LineItem:
    """An upper bound for one run of a batch job: replica-hours from replica count and input size.

    Work is spread over the replicas, so the replica-hours are (instances / assumed
    rate) plus each replica's startup; the bound takes every replica at max.
    """
    table = table or load_price_table()
    accel, count = (job.accelerator.type, job.accelerator.count) if job.accelerator else (None, 0)
    unit = table.hourly(job.machine_type, region, accel, count)
    startup = job.max_replicas * BATCH_STARTUP_HOURS
    if instance_count is None:
        work = job.max_replicas * BATCH_UNKNOWN_SIZE_HOURS
        basis = (
            f"input size unknown: assumes {BATCH_UNKNOWN_SIZE_HOURS:g} h per replica "
            f"plus ~10 min startup"
        )
    else:
        work = instance_count / BATCH_INSTANCES_PER_REPLICA_SECOND / 3600
        basis = (
            f"{instance_count:,} instances at >= {BATCH_INSTANCES_PER_REPLICA_SECOND}/s "
            f"per replica plus ~10 min startup per replica"
        )
    # Round up to the minute: Vertex bills batch nodes per second, but a bound should not
    # undershoot.
    replica_hours = math.ceil((work + startup) * 60) / 60
    total = None if unit is None else unit * replica_hours
    note = (
        f"estimate, upper bound: {replica_hours:.2f} replica-hours ({basis})"
        if unit is not None
        else "no price in the table"
    )
    return LineItem(
        kind="batch_job",
        name=job.name,
        machine_type=job.machine_type,
        accelerator=accel,
        accelerator_count=count,
        min_replicas=job.starting_replicas,
        max_replicas=job.max_replicas,
        hourly_min=None if unit is None else unit * job.starting_replicas,
        hourly_max=None if unit is None else unit * job.max_replicas,
        note=note,
        total_max=total,
        replica_hours_max=replica_hours,
    )


def check_budget(estimate: Estimate, max_hourly_usd: float | None) -> None:
    """Raise BudgetExceeded if the steady-state cost is above the guard (None: no guard).

    Unpriced items (estimate.unknown) cannot be counted; they are named in the
    message, and the renderer lists them with every estimate.
    """
    if max_hourly_usd is None or estimate.hourly_min <= max_hourly_usd:
        return
    biggest = sorted(
        (i for i in estimate.deployments if i.hourly_min),
        key=lambda i: i.hourly_min or 0.0,
        reverse=True,
    )[:3]
    contributors = ", ".join(
        f"{i.name} {format_usd(i.hourly_min)}/h ({_shape(i)})" for i in biggest
    )
    unpriced = f"; not counting unpriced {', '.join(estimate.unknown)}" if estimate.unknown else ""
    raise BudgetExceeded(
        f"estimated steady-state cost {format_usd(estimate.hourly_min)}/h "
        f"({format_usd(estimate.monthly_min)}/month) exceeds the budget of "
        f"{format_usd(max_hourly_usd)}/h (guards.max_hourly_usd); biggest: "
        f"{contributors}{unpriced}",
        hint="lower min_replicas, pick smaller machines or accelerators, raise "
        "guards.max_hourly_usd, or pass --allow-over-budget",
    )


def _shape(item: LineItem) -> str:
    gpu = f" + {item.accelerator_count}x {item.accelerator}" if item.accelerator else ""
    return f"{item.min_replicas}x {item.machine_type}{gpu}"


def format_usd(x: float | None) -> str:
    """$0.22, $160.00, $1,234; sub-cent figures keep 4 decimals; None -> "unknown"."""
    if x is None:
        return "unknown"
    if x != 0 and abs(x) < 0.01:
        return f"${x:.4f}"
    if abs(x) >= 1000:
        return f"${x:,.0f}"
    return f"${x:,.2f}"

"""What Vertex AI prediction offers: machine families, accelerator types, and which fit which.

Owns the static catalog the spec validator checks machine types and accelerators
against, and that the price table names its rows by. Pure data and lookups: no
I/O, no prices (those live in `deployer.cost` and `deployer/data/prices.json`),
no google.cloud imports. Figures follow Vertex AI's "Configure compute
resources for inference" page; when Vertex adds a machine, add it here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# family -> (GB of memory per vCPU, allowed vCPU counts). Shapes are "<family>-<vcpus>".
_SHAPED_FAMILIES: dict[str, tuple[float, tuple[int, ...]]] = {
    "n1-standard": (3.75, (2, 4, 8, 16, 32, 64, 96)),
    "n1-highmem": (6.5, (2, 4, 8, 16, 32, 64, 96)),
    "n1-highcpu": (0.9, (4, 8, 16, 32, 64, 96)),
    "n2-standard": (4.0, (2, 4, 8, 16, 32, 48, 64, 80, 96, 128)),
    "n2-highmem": (8.0, (2, 4, 8, 16, 32, 48, 64, 80, 96, 128)),
    "n2-highcpu": (1.0, (2, 4, 8, 16, 32, 48, 64, 80, 96)),
    "n2d-standard": (4.0, (2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224)),
    "e2-standard": (4.0, (2, 4, 8, 16, 32)),
    "e2-highmem": (8.0, (2, 4, 8, 16)),
    "e2-highcpu": (1.0, (2, 4, 8, 16, 32)),
    "c2-standard": (4.0, (4, 8, 16, 30, 60)),
    "g2-standard": (4.0, (4, 8, 12, 16, 24, 32, 48, 96)),
}

# GPU machine types whose GPUs are part of the machine: name -> (vCPUs, GB, accelerator, count).
_GPU_MACHINES: dict[str, tuple[int, float, str, int]] = {
    "a2-highgpu-1g": (12, 85.0, "NVIDIA_TESLA_A100", 1),
    "a2-highgpu-2g": (24, 170.0, "NVIDIA_TESLA_A100", 2),
    "a2-highgpu-4g": (48, 340.0, "NVIDIA_TESLA_A100", 4),
    "a2-highgpu-8g": (96, 680.0, "NVIDIA_TESLA_A100", 8),
    "a2-megagpu-16g": (96, 1360.0, "NVIDIA_TESLA_A100", 16),
    "a2-ultragpu-1g": (12, 170.0, "NVIDIA_A100_80GB", 1),
    "a2-ultragpu-2g": (24, 340.0, "NVIDIA_A100_80GB", 2),
    "a2-ultragpu-4g": (48, 680.0, "NVIDIA_A100_80GB", 4),
    "a2-ultragpu-8g": (96, 1360.0, "NVIDIA_A100_80GB", 8),
    "a3-highgpu-1g": (26, 234.0, "NVIDIA_H100_80GB", 1),
    "a3-highgpu-2g": (52, 468.0, "NVIDIA_H100_80GB", 2),
    "a3-highgpu-4g": (104, 936.0, "NVIDIA_H100_80GB", 4),
    "a3-highgpu-8g": (208, 1872.0, "NVIDIA_H100_80GB", 8),
}

# g2-standard-N comes with a fixed number of L4 GPUs.
_G2_GPUS: dict[int, int] = {4: 1, 8: 1, 12: 1, 16: 1, 32: 1, 24: 2, 48: 4, 96: 8}

# Accelerators attached to N1 machines: type -> allowed counts per replica.
_N1_ACCELERATORS: dict[str, tuple[int, ...]] = {
    "NVIDIA_TESLA_T4": (1, 2, 4),
    "NVIDIA_TESLA_V100": (1, 2, 4, 8),
    "NVIDIA_TESLA_P100": (1, 2, 4),
    "NVIDIA_TESLA_P4": (1, 2, 4),
}

# Every accelerator type this tool accepts (Vertex's AcceleratorType enum names).
ACCELERATOR_TYPES: tuple[str, ...] = (
    *_N1_ACCELERATORS,
    "NVIDIA_L4",
    "NVIDIA_TESLA_A100",
    "NVIDIA_A100_80GB",
    "NVIDIA_H100_80GB",
)

# Types Vertex has retired, with the replacement to suggest.
RETIRED_ACCELERATORS: dict[str, str] = {
    "NVIDIA_TESLA_K80": "NVIDIA_TESLA_T4 or NVIDIA_L4",
}

MACHINE_FAMILIES: tuple[str, ...] = (
    *_SHAPED_FAMILIES,
    "a2-highgpu",
    "a2-megagpu",
    "a2-ultragpu",
    "a3-highgpu",
)

_SHAPE = re.compile(r"^(?P<family>[a-z0-9]+-[a-z]+)-(?P<vcpus>\d+)$")


@dataclass(frozen=True)
class MachineShape:
    name: str  # e.g. "n1-standard-4"
    family: str  # e.g. "n1-standard"
    vcpus: int
    memory_gb: float
    builtin_gpu: tuple[str, int] | None  # (type, count) for machines that come with GPUs


def machine_shape(machine_type: str) -> MachineShape | None:
    """The shape of a machine type Vertex prediction offers, or None if it is not one."""
    if machine_type in _GPU_MACHINES:
        vcpus, gb, gpu, count = _GPU_MACHINES[machine_type]
        family = machine_type.rsplit("-", 1)[0]
        return MachineShape(machine_type, family, vcpus, gb, (gpu, count))
    m = _SHAPE.match(machine_type)
    if not m or m["family"] not in _SHAPED_FAMILIES:
        return None
    per_cpu, sizes = _SHAPED_FAMILIES[m["family"]]
    vcpus = int(m["vcpus"])
    if vcpus not in sizes:
        return None
    builtin = ("NVIDIA_L4", _G2_GPUS[vcpus]) if m["family"] == "g2-standard" else None
    return MachineShape(machine_type, m["family"], vcpus, per_cpu * vcpus, builtin)


def machine_sizes(family: str) -> tuple[str, ...]:
    """Machine type names of one family, e.g. for "did you mean" lists."""
    if family in _SHAPED_FAMILIES:
        return tuple(f"{family}-{n}" for n in _SHAPED_FAMILIES[family][1])
    return tuple(name for name in _GPU_MACHINES if name.rsplit("-", 1)[0] == family)


def all_machine_types() -> tuple[str, ...]:
    return tuple(name for fam in MACHINE_FAMILIES for name in machine_sizes(fam))


def accelerator_fit(
    machine_type: str, accelerator: str | None, count: int
) -> tuple[str, str] | None:
    """(problem, fix) when this accelerator (or its absence) does not fit the machine, else None."""
    shape = machine_shape(machine_type)
    if shape is None:
        return None  # unknown machine types are reported on their own
    if shape.builtin_gpu is not None:
        gpu, n = shape.builtin_gpu
        declare = f"accelerator: {{type: {gpu}, count: {n}}}"
        if accelerator is None:
            return (
                f"{machine_type} comes with {n} {gpu}, but no accelerator is declared",
                f"add {declare}",
            )
        if accelerator != gpu:
            other = machine_for(accelerator, count)
            return (
                f"{machine_type} comes with {gpu}, not {accelerator}",
                f"use machine_type: {other}" if other else f"use {declare}",
            )
        if count != n:
            other = machine_for(accelerator, count)
            return (
                f"{machine_type} comes with exactly {n} {gpu}, not {count}",
                f"use machine_type: {other}" if other else f"use {declare}",
            )
        return None
    if accelerator is None:
        return None
    if accelerator in _N1_ACCELERATORS:
        allowed = _N1_ACCELERATORS[accelerator]
        if shape.family.split("-")[0] != "n1":
            return (
                f"{accelerator} attaches only to n1-* machine types, not {machine_type}",
                "use machine_type: n1-standard-4 (or another n1-* type)",
            )
        if count not in allowed:
            return (
                f"{accelerator} comes in counts of {', '.join(map(str, allowed))} per replica, not "
                f"{count}",
                f"use count: "
                f"{max(c for c in allowed if c <= count) if count > allowed[0] else allowed[0]}",
            )
        return None
    needs = {
        "NVIDIA_L4": "g2-standard-*",
        "NVIDIA_TESLA_A100": "a2-highgpu-* or a2-megagpu-16g",
        "NVIDIA_A100_80GB": "a2-ultragpu-*",
        "NVIDIA_H100_80GB": "a3-highgpu-*",
    }.get(accelerator)
    if needs:
        other = machine_for(accelerator, count)
        return (
            f"{accelerator} runs only on {needs} machine types, not {machine_type}",
            f"use machine_type: {other}" if other else f"use a {needs} machine type",
        )
    return None


def machine_for(accelerator: str, count: int) -> str | None:
    """A machine type that fits this accelerator and count, for fix suggestions."""
    if accelerator in _N1_ACCELERATORS:
        return "n1-standard-4"
    for name, (_, _, gpu, n) in _GPU_MACHINES.items():
        if gpu == accelerator and n == count:
            return name
    if accelerator == "NVIDIA_L4":
        for vcpus, n in _G2_GPUS.items():
            if n == count:
                return f"g2-standard-{vcpus}"
    return None

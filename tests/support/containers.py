"""Container runtime for the custom-container tests: find it, build the example image.

A test that needs containers calls `example_image()`: it skips when no runtime works here,
except under CI (CI=true), where a missing runtime is a failure, so container tests can never
silently stop running.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_IMAGE = "localhost/deployer-custom-example:1"


def runtime_or_skip() -> str:
    from deployer.emulator.vertex import containers

    try:
        return containers.find_runtime()
    except containers.ContainerRuntimeMissing as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the container tests: {exc}")
        pytest.skip(str(exc))


def example_image() -> str:
    """Build (or reuse, by content hash) the examples/custom-container image; its name."""
    runtime = runtime_or_skip()
    build = subprocess.run(
        ["bash", str(ROOT / "examples" / "custom-container" / "build.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "DEPLOYER_CONTAINER_RUNTIME": Path(runtime).name},
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return EXAMPLE_IMAGE


def containers_labelled(owner: str) -> list[str]:
    """Names of containers (running or not) carrying this emulator owner's label."""
    from deployer.emulator.vertex import containers

    out = subprocess.run(
        [
            containers.find_runtime(),
            "ps",
            "-a",
            "--filter",
            f"label={containers.LABEL}={owner}",
            "--format",
            "{{.Names}}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.split()

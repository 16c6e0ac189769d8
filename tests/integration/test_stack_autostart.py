"""target: local with no DEPLOYER_EMULATOR starts (or finds) the `deployer local up` instance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stacks import StackFiles


@pytest.mark.timeout(240)
def test_plan_starts_the_local_emulator_on_demand(tmp_path: Path) -> None:
    files = StackFiles(
        tmp_path / "stack", stack="autostart", bucket="test-project-autostart", endpoints=()
    )
    spec = str(files.write())
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEPLOYER_EMULATOR", "STORAGE_EMULATOR_HOST")
    }
    env["DEPLOYER_HOME"] = str(tmp_path / "home")  # a private instance, stopped below
    deployer = [sys.executable, "-m", "deployer"]
    try:
        first = subprocess.run(
            [*deployer, "plan", spec, "--detailed-exitcode"],
            env=env,
            capture_output=True,
            text=True,
            timeout=200,
            check=False,
        )
        assert first.returncode == 2, first.stderr[-2000:]
        assert "create  bucket test-project-autostart" in first.stdout
        # The second run finds the running instance instead of starting another.
        second = subprocess.run(
            [*deployer, "plan", spec, "--detailed-exitcode"],
            env=env,
            capture_output=True,
            text=True,
            timeout=200,
            check=False,
        )
        assert second.returncode == 2, second.stderr[-2000:]
    finally:
        subprocess.run(
            [*deployer, "local", "down"], env=env, capture_output=True, timeout=60, check=False
        )
    status = subprocess.run(
        [*deployer, "local", "status", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert '"running": true' not in status.stdout

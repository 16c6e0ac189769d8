"""The stack commands refuse, guard and explain before any API call, and exit with our codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.emulator import EmulatorProcess
from tests.support.stacks import StackFiles, run_cli


def _calls_after(emulator: EmulatorProcess, offset: int) -> list[dict]:  # type: ignore[type-arg]
    return emulator.read_request_log()[offset:]


@pytest.fixture
def files(tmp_path: Path) -> StackFiles:
    return StackFiles(tmp_path, stack="clierr", bucket="test-project-clierr", endpoints=())


@pytest.mark.timeout(120)
def test_apply_without_yes_and_without_a_terminal_refuses(
    shared_emulator: EmulatorProcess, files: StackFiles
) -> None:
    spec = str(files.write())
    before = len(shared_emulator.read_request_log())
    result = run_cli(["apply", spec], shared_emulator.url, expect=3)
    assert "--yes" in result.deployer_error.render()
    assert _calls_after(shared_emulator, before) == []


@pytest.mark.timeout(120)
def test_budget_guard_refuses_before_any_api_call(
    shared_emulator: EmulatorProcess, tmp_path: Path
) -> None:
    files = StackFiles(tmp_path, stack="pricey", bucket="test-project-pricey")
    spec = str(files.write())
    before = len(shared_emulator.read_request_log())
    result = run_cli(
        ["apply", spec, "--yes", "--max-hourly-usd", "0.01"], shared_emulator.url, expect=7
    )
    assert "exceeds the budget" in result.deployer_error.message
    assert _calls_after(shared_emulator, before) == []


@pytest.mark.timeout(180)
def test_plan_json_shows_cost_and_detailed_exit_codes(
    shared_emulator: EmulatorProcess, tmp_path: Path
) -> None:
    files = StackFiles(tmp_path, stack="planjson", bucket="test-project-planjson")
    spec = str(files.write())
    result = run_cli(
        ["plan", spec, "--output", "json", "--detailed-exitcode"], shared_emulator.url, expect=2
    )
    doc = json.loads(result.stdout)
    assert doc["summary"]["create"] >= 5
    assert [a["resource"] for a in doc["actions"]][:3] == ["bucket", "artifact", "artifact"]
    assert doc["cost"]["after"]["hourly_min"] > 0
    assert doc["cost"]["delta_hourly"] == doc["cost"]["after"]["hourly_min"]


@pytest.mark.timeout(180)
def test_errors_render_without_traceback_and_with_exit_codes(
    shared_emulator: EmulatorProcess, tmp_path: Path
) -> None:
    files = StackFiles(tmp_path, stack="render", bucket="test-project-render", endpoints=())
    spec = files.write()
    bad = tmp_path / "bad.yaml"
    bad.write_text(spec.read_text().replace("project: test-project", "project: P"))
    env = {**os.environ, "DEPLOYER_EMULATOR": shared_emulator.url}
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", "plan", str(bad), "--detailed-exitcode"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "bad.yaml:2" in proc.stderr
    instances = tmp_path / "x.json"
    instances.write_text("{not json")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deployer",
            "predict",
            str(spec),
            "--endpoint",
            "nope",
            "--instances",
            str(instances),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 3 and "no endpoint 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.timeout(120)
def test_force_unlock_releases_a_held_lock(
    shared_emulator: EmulatorProcess, files: StackFiles
) -> None:
    spec = str(files.write())
    run_cli(["apply", spec, "--yes"], shared_emulator.url)
    from tests.integration.conftest import make_storage_client

    bucket = make_storage_client(shared_emulator.url).bucket(files.bucket)
    bucket.blob(".deployer/clierr/lock").upload_from_string(
        json.dumps({"holder": "ci@elsewhere pid 1", "host": "elsewhere", "pid": 1, "since": 0}),
        if_generation_match=0,
    )
    files.versions["v3"] = 3
    files.write()
    held = run_cli(["apply", spec, "--yes"], shared_emulator.url, expect=6)
    assert "ci@elsewhere" in held.deployer_error.message
    out = run_cli(["force-unlock", spec], shared_emulator.url)
    assert "ci@elsewhere" in out.stdout
    run_cli(["apply", spec, "--yes"], shared_emulator.url)
    run_cli(["teardown", spec, "--yes"], shared_emulator.url)

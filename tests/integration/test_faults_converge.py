"""Failure is normal: apply then teardown converge under injected faults and dropped responses,
and an apply killed with SIGKILL during a long operation is finished by the next one.

The emulator fails 30% of calls with 503/429 before any effect and drops 5% of mutating
responses after the effect; every seed must end with exactly one of each resource after
apply, and nothing labelled with the stack after teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration._vertex import PARENT, gapic_clients
from tests.support.emulator import EmulatorProcess
from tests.support.stacks import StackFiles, run_cli

SEEDS = list(range(20))
QUICK_SEEDS = {0, 1, 2}  # run by default; the rest are marked slow


@pytest.fixture(scope="module")
def faulty_emulator(module_emulator: EmulatorProcess) -> EmulatorProcess:
    return module_emulator


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built once: every seed deploys the same two small SavedModels.
    root = tmp_path_factory.mktemp("fault-models")
    StackFiles(root, endpoints=()).write()
    return root


def _faults(emulator: EmulatorProcess, seed: int | None, on: bool) -> None:
    emulator.admin(
        {"inject_faults": 0.3 if on else 0.0, "drop_responses": 0.05 if on else 0.0, "seed": seed}
    )


def _stack_resources(url: str, stack: str) -> tuple[list, list]:  # type: ignore[type-arg]
    clients = gapic_clients(url)
    flt = f'labels.deployer-stack="{stack}"'
    models = list(clients.model.list_models(request={"parent": PARENT, "filter": flt}))
    versions = [
        v for m in models for v in clients.model.list_model_versions(request={"name": m.name})
    ]
    endpoints = list(clients.endpoint.list_endpoints(request={"parent": PARENT, "filter": flt}))
    return versions, endpoints


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "seed", [pytest.param(s, marks=() if s in QUICK_SEEDS else pytest.mark.slow) for s in SEEDS]
)
def test_apply_then_teardown_converge_under_faults(
    faulty_emulator: EmulatorProcess, model_dir: Path, seed: int
) -> None:
    stack = f"faults{seed}"
    files = StackFiles(model_dir, stack=stack, bucket=f"test-project-{stack}")
    spec = str(files.write())
    _faults(faulty_emulator, seed, on=True)
    try:
        run_cli(["apply", spec, "--yes"], faulty_emulator.url)
    finally:
        _faults(faulty_emulator, None, on=False)
    versions, endpoints = _stack_resources(faulty_emulator.url, stack)
    assert len(versions) == 2, f"seed {seed}: duplicate or missing versions {versions}"
    assert len(endpoints) == 1, f"seed {seed}: endpoints {endpoints}"
    assert len(endpoints[0].deployed_models) == 1
    assert dict(endpoints[0].traffic_split) == {endpoints[0].deployed_models[0].id: 100}
    # Converged means the next plan is empty.
    run_cli(["plan", spec, "--detailed-exitcode"], faulty_emulator.url, expect=0)

    _faults(faulty_emulator, seed + 1000, on=True)
    try:
        run_cli(["teardown", spec, "--yes"], faulty_emulator.url)
    finally:
        _faults(faulty_emulator, None, on=False)
    versions, endpoints = _stack_resources(faulty_emulator.url, stack)
    assert versions == [] and endpoints == [], f"seed {seed}: left behind"
    from tests.integration.conftest import make_storage_client

    buckets = [b.name for b in make_storage_client(faulty_emulator.url).list_buckets()]
    assert files.bucket not in buckets


@pytest.mark.timeout(400)
@pytest.mark.parametrize(
    "kill_during", ["upload", pytest.param("deployModel", marks=pytest.mark.slow)]
)
def test_sigkill_during_a_long_operation_then_rerun_converges(
    tmp_path: Path, kill_during: str
) -> None:
    with EmulatorProcess(extra_args=["--op-delay", "6"]) as emu:
        files = StackFiles(tmp_path, stack="killed", bucket="test-project-killed")
        spec = str(files.write())
        env = {**os.environ, "DEPLOYER_EMULATOR": emu.url, "DEPLOYER_RETRY_SCALE": "0.02"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "deployer", "apply", spec, "--yes"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            # Kill it while that long-running operation is pending (--op-delay 6).
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and proc.poll() is None:
                if any(e["api"] == kill_during for e in emu.mutating_calls()):
                    time.sleep(1.0)  # inside the op delay: the journal has the op name
                    break
                time.sleep(0.1)
            assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        before = sum(e["api"] == kill_during for e in emu.mutating_calls())
        result = run_cli(["apply", spec, "--yes"], emu.url)
        assert "stale lock" in result.stderr
        assert "resuming" in result.stderr
        versions, endpoints = _stack_resources(emu.url, "killed")
        assert len(versions) == 2, versions
        assert len(endpoints) == 1 and len(endpoints[0].deployed_models) == 1
        calls = [e for e in emu.mutating_calls() if e["api"] == kill_during]
        assert before == 1  # killed during the first one...
        assert len(calls) == (2 if kill_during == "upload" else 1)  # ...which was not redone
        run_cli(["plan", spec, "--detailed-exitcode"], emu.url, expect=0)
        run_cli(["teardown", spec, "--yes"], emu.url)

"""A batch job outlives the CLI that started it: kill, re-run, re-attach, one job; list and cancel.

The CLI runs as a real subprocess so it can be killed with SIGKILL mid-wait (no
cleanup code runs); the emulator keeps the job QUEUED for a few seconds
(--op-delay through the admin route) so the kill lands while it is live.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.integration.test_batch_predict import _spec
from tests.support.stacks import run_cli

PARENT = "projects/test-project/locations/us-central1"


def _jobs(url: str) -> list[object]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1 as v1

    client = v1.JobServiceClient(
        transport="rest", credentials=AnonymousCredentials(), client_options={"api_endpoint": url}
    )
    return list(client.list_batch_prediction_jobs(parent=PARENT))


def _write_input(tmp_path: Path, n: int = 300) -> None:
    x = np.random.default_rng(3).integers(0, 256, size=(n, 28, 28))
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(i.tolist()) + "\n" for i in x))


@pytest.mark.timeout(300)
def test_killed_cli_rerun_reattaches_to_the_same_job_and_completes(
    emulator, tmp_path: Path
) -> None:
    _write_input(tmp_path, n=3000)
    # batch_size 1: 3,000 model calls, so the job is still running when the CLI is killed.
    files = _spec(tmp_path, input_line="{path: in.jsonl, format: jsonl}", batch_size=1)
    spec = str(files.spec_path)
    run_cli(["apply", spec, "--yes"], emulator.url)
    journal = tmp_path / ".deployer" / "batch-jobs.json"
    env = {**os.environ, "DEPLOYER_EMULATOR": emulator.url}
    cli = subprocess.Popen(
        [sys.executable, "-m", "deployer", "batch-predict", spec],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not (jobs := _jobs(emulator.url)) or jobs[0].completion_stats.successful_count == 0:
            assert cli.poll() is None, cli.communicate()
            assert time.monotonic() < deadline, "the job never started predicting"
            time.sleep(0.2)
        assert journal.exists()
        os.kill(cli.pid, signal.SIGKILL)  # mid-run: no cleanup code runs
    finally:
        cli.kill()
        cli.wait(10)
    [job] = _jobs(emulator.url)
    assert job.state.name == "JOB_STATE_RUNNING"
    assert 0 < job.completion_stats.successful_count < 3000

    result = run_cli(
        ["batch-predict", spec, "--json", "--output", str(tmp_path / "out.jsonl")], emulator.url
    )

    assert f"Re-attached to batch job {job.name}" in result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["job"] == job.name
    assert [j.name for j in _jobs(emulator.url)] == [job.name]  # one job, never two
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 3000


@pytest.mark.timeout(300)
def test_no_wait_then_list_then_cancel_by_name(emulator, tmp_path: Path) -> None:
    _write_input(tmp_path, n=50)
    files = _spec(tmp_path, input_line="{path: in.jsonl, format: jsonl}")
    spec = str(files.spec_path)
    run_cli(["apply", spec, "--yes"], emulator.url)
    emulator.admin({"op_delay": 30})

    started = json.loads(
        run_cli(["batch-predict", spec, "--no-wait", "--json"], emulator.url).stdout
    )
    again = json.loads(run_cli(["batch-predict", spec, "--no-wait", "--json"], emulator.url).stdout)
    listed = json.loads(run_cli(["batch-predict", spec, "--list", "--json"], emulator.url).stdout)
    run_cli(["batch-predict", spec, "--cancel", "score"], emulator.url)

    assert started["attached"] is False and again == {**started, "attached": True}
    assert [(j["job"], j["name"]) for j in listed] == [(started["job"], "score")]
    deadline = time.monotonic() + 30
    while (state := _jobs(emulator.url)[0].state.name) != "JOB_STATE_CANCELLED":
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    # Resuming a cancelled job reports it with the batch-job exit code.
    result = run_cli(["batch-predict", spec, "--resume"], emulator.url, expect=8)
    assert "cancelled" in result.deployer_error.message


@pytest.mark.timeout(300)
def test_ctrl_c_without_a_terminal_leaves_the_job_running_and_says_how_to_resume(
    emulator, tmp_path: Path
) -> None:
    _write_input(tmp_path, n=50)
    files = _spec(tmp_path, input_line="{path: in.jsonl, format: jsonl}")
    spec = str(files.spec_path)
    run_cli(["apply", spec, "--yes"], emulator.url)
    emulator.admin({"op_delay": 30})
    journal = tmp_path / ".deployer" / "batch-jobs.json"
    env = {**os.environ, "DEPLOYER_EMULATOR": emulator.url}
    cli = subprocess.Popen(
        [sys.executable, "-m", "deployer", "batch-predict", spec],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not journal.exists():
            assert cli.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.5)  # into the wait loop
        cli.send_signal(signal.SIGINT)
        _, err = cli.communicate(timeout=30)
    finally:
        cli.kill()
    [job] = _jobs(emulator.url)
    assert cli.returncode == 130
    assert f"The batch job {job.name} keeps running" in err
    assert f"deployer batch-predict {spec} --job score --resume" in err
    assert "Traceback" not in err
    assert job.state.name in ("JOB_STATE_QUEUED", "JOB_STATE_RUNNING")

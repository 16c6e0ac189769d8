"""Extract the `deployer` commands the GitHub Actions workflows run, and run those steps locally.

Owns: reading `.github/workflows/*.yml`, finding every `run:` step that invokes `deployer`,
and giving back the step's shell script, its merged `env` (workflow, job, step) and the
`deployer ...` command lines in it. `resolve_env` turns the `${{ ... }}` expressions in that
env into concrete values (matrix entries, input defaults, caller-supplied overrides for `vars`),
so tests run the very scripts the workflows run, against the local emulator.
Must not: evaluate arbitrary GitHub expressions (an unknown one is an error, so a test never
runs with a silently wrong value) or run anything itself unless asked (`run_step`).

CLI: `python scripts/workflow_commands.py` prints `workflow/job/step: command` lines.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
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


def deployer_steps(workflows: Path = WORKFLOWS) -> list[Step]:
    """Every step, in file and job order, whose `run:` invokes deployer."""
    steps: list[Step] = []
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
            job_env = {**wf_env, **_str_env(job.get("env"))}
            for i, step in enumerate(job.get("steps") or []):
                script = step.get("run")
                if not isinstance(script, str):
                    continue
                commands = deployer_commands(script)
                if not commands:
                    continue
                steps.append(
                    Step(
                        workflow=path.name,
                        job=str(job_id),
                        name=str(step.get("name") or step.get("id") or f"step {i}"),
                        condition=str(job.get("if", "")),
                        script=script,
                        env={**job_env, **_str_env(step.get("env"))},
                        matrix=matrix,
                        inputs=inputs,
                        commands=commands,
                    )
                )
    return steps


def resolve_env(step: Step, overrides: Mapping[str, str]) -> dict[str, str]:
    """The step's env with expressions evaluated; `overrides` wins over the workflow's values.

    Understood: `matrix.X`, `inputs.X` (their defaults), and any expression in a value that
    `overrides` replaces. Anything else raises, naming the step and the expression.
    """
    resolved: dict[str, str] = {}
    for key, raw in step.env.items():
        if key in overrides:
            resolved[key] = overrides[key]
            continue

        def evaluate(m: re.Match[str], key: str = key) -> str:
            expr = m.group(1)
            scope, _, name = expr.partition(".")
            if scope == "matrix" and name in step.matrix:
                return step.matrix[name]
            if scope == "inputs" and name in step.inputs:
                return step.inputs[name]
            raise ValueError(
                f"{step.label}: cannot evaluate ${{{{ {expr} }}}} in env {key}; "
                "pass a value for it in overrides"
            )

        resolved[key] = _EXPR.sub(evaluate, raw)
    for key, value in overrides.items():
        resolved.setdefault(key, value)
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


def main() -> int:
    for step in deployer_steps():
        for command in step.commands:
            print(f"{step.label}: {command}")
            shlex.split(command)  # must be valid shell words
    return 0


if __name__ == "__main__":
    sys.exit(main())

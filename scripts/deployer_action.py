"""The steps of the reusable GitHub Action (`action.yml` at the repository root), as a script.

Owns what the action does between "deployer is installed" and "the job goes on":
- `target`: which target the step will talk to (`local` or `vertex`), read from the saved plan
  (apply PLAN_FILE) or from `deployer validate SPEC --output json` (the spec after ${VAR}
  interpolation), so that action.yml authenticates through Workload Identity Federation only
  for the cloud;
- `run`: the deployer command for the `command` input (`plan`: `deployer plan SPEC --out
  PLAN_FILE --detailed-exitcode --output json`; `apply`: `deployer apply PLAN_FILE --yes`, or
  SPEC when no plan file is given; `teardown`: `deployer teardown SPEC --yes`), its JSON output
  under $RUNNER_TEMP, a Markdown report appended to $GITHUB_STEP_SUMMARY (plan_summary.py),
  and the step outputs `exit-code`, `has-changes`, `plan-file`, `result-file` in $GITHUB_OUTPUT.
  A plan's exit 2 (changes pending) is a success; any other non-zero exit fails the step with
  deployer's own exit code (9: the saved plan is stale, nothing was changed).

Inputs come as environment variables INPUT_<NAME> (upper case, `-` as `_`), which action.yml
sets from `${{ inputs.<name> }}`: values reach the script through env only, never through
expressions inside a script (script injection). Extra arguments are split as shell words and
passed as arguments, never evaluated by a shell.
Must not: call any API itself, or decide anything deployer decides (the plan, staleness).

Usage: `python scripts/deployer_action.py target|run` (CI), or with the same env, locally.
"""

from __future__ import annotations

import collections
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import plan_summary  # a sibling script, importable after the line above

COMMANDS = ("plan", "apply", "teardown")
# deployer's exit codes that are a successful step, per command (plan --detailed-exitcode:
# 0 no changes, 2 changes pending).
OK_CODES = {"plan": (0, 2), "apply": (0,), "teardown": (0,)}
TITLES = {"plan": "Plan", "apply": "Apply", "teardown": "Teardown"}
STDERR_LINES = 40  # how much of deployer's stderr a failed step's summary shows


class InputError(ValueError):
    """The action's inputs do not make a command (an ::error:: and exit 2)."""


@dataclass(frozen=True)
class Inputs:
    command: str  # plan | apply | teardown
    spec: str  # the spec path ("" when apply is given only a plan file)
    plan_file: str  # plan: where to save it; apply: the saved plan to execute
    args: tuple[str, ...]  # extra arguments, appended to the deployer command

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, runner_temp: str) -> Inputs:
        command = env.get("INPUT_COMMAND", "").strip() or "plan"
        if command not in COMMANDS:
            raise InputError(f"input command: {command!r} is not one of {', '.join(COMMANDS)}")
        spec = env.get("INPUT_SPEC", "").strip()
        plan_file = env.get("INPUT_PLAN_FILE", "").strip()
        try:
            args = tuple(shlex.split(env.get("INPUT_ARGS", "")))
        except ValueError as exc:
            raise InputError(f"input args: not shell words ({exc})") from None
        if command in ("plan", "teardown") and not spec:
            raise InputError(f"input spec: {command} needs the stack's spec file")
        if command == "apply" and not (spec or plan_file):
            raise InputError("apply needs plan-file (a saved plan) or spec")
        if command == "plan" and not plan_file:
            plan_file = str(Path(runner_temp) / f"{Path(spec).stem}.plan")
        if command == "teardown":
            plan_file = ""
        return cls(command, spec, plan_file, args)

    @property
    def stack_hint(self) -> str:
        """A name for titles before deployer says the stack: the spec's or plan's file stem."""
        return Path(self.spec or self.plan_file).stem


def command_line(inputs: Inputs) -> list[str]:
    """The deployer arguments (after `deployer`) the action runs for `inputs`."""
    if inputs.command == "plan":
        head = ["plan", inputs.spec, "--out", inputs.plan_file, "--detailed-exitcode"]
    elif inputs.command == "apply":
        head = ["apply", inputs.plan_file or inputs.spec, "--yes"]
    else:
        head = ["teardown", inputs.spec, "--yes"]
    return [*head, "--output", "json", *inputs.args]


def has_changes(command: str, code: int, doc: Any) -> bool:
    """plan: changes pending; apply: actions executed; teardown: anything removed."""
    if command == "plan":
        return code == 2
    if not isinstance(doc, dict):
        return False
    if command == "apply":
        return bool(doc.get("applied"))
    objects = doc.get("objects")  # {prefix: objects removed}
    removed = any(objects.values()) if isinstance(objects, dict) else bool(objects)
    return bool(doc.get("actions") or doc.get("batch_jobs") or removed or doc.get("bucket_deleted"))


def summary(inputs: Inputs, code: int, stdout: str, stderr_tail: list[str]) -> str:
    """The Markdown report for $GITHUB_STEP_SUMMARY."""
    doc = _json_or_none(stdout)
    stack = doc.get("stack") if isinstance(doc, dict) else None
    title = f"{TITLES[inputs.command]}: {stack or inputs.stack_hint}"
    text = plan_summary.summarize(
        stdout, title=title, exit_code=code, detailed=inputs.command == "plan"
    )
    if code in OK_CODES[inputs.command]:
        if inputs.command == "plan" and Path(inputs.plan_file).is_file():
            text += (
                f"\nSaved plan: `{inputs.plan_file}`. `deployer apply` of that file executes "
                "exactly this plan, or refuses (exit 9) if the stack changed first.\n"
            )
    elif stderr_tail:
        text += "\n```\n" + "\n".join(stderr_tail)[-5000:] + "\n```\n"
    return text


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return None


def _deployer() -> list[str]:
    """The deployer of the interpreter running this script (the one action.yml installed)."""
    return [sys.executable, "-m", "deployer"]


def target(env: Mapping[str, str]) -> str:
    """`local` or `vertex` for the step's command; `unknown` when the spec does not load
    (the run step then reports deployer's own error)."""
    inputs = Inputs.from_env(env, runner_temp=env.get("RUNNER_TEMP", tempfile.gettempdir()))
    if inputs.command == "apply" and inputs.plan_file:
        doc = _json_or_none(_read(inputs.plan_file))
        found = doc.get("target") if isinstance(doc, dict) else None
        return str(found) if found in ("local", "vertex") else "unknown"
    proc = subprocess.run(
        [*_deployer(), "validate", inputs.spec, "--skip-artifacts", "--output", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    doc = _json_or_none(proc.stdout)
    found = doc.get("target") if isinstance(doc, dict) else None
    return str(found) if found in ("local", "vertex") else "unknown"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def run(env: Mapping[str, str]) -> int:
    """Run the command; write the summary and outputs; return the step's exit code."""
    temp = Path(env.get("RUNNER_TEMP") or tempfile.mkdtemp(prefix="deployer-action-"))
    inputs = Inputs.from_env(env, runner_temp=str(temp))
    result_file = temp / f"deployer-{inputs.command}-{inputs.stack_hint}.json"
    argv = [*_deployer(), *command_line(inputs)]
    print("deployer " + shlex.join(argv[3:]), file=sys.stderr, flush=True)
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
    with result_file.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        for line in proc.stderr:  # progress as it happens, and the end of it for the summary
            sys.stderr.write(line)
            tail.append(line.rstrip("\n"))
        code = proc.wait()
    stdout = _read(str(result_file))
    doc = _json_or_none(stdout)
    _append(env.get("GITHUB_STEP_SUMMARY"), summary(inputs, code, stdout, list(tail)))
    outputs = {
        "exit-code": str(code),
        "has-changes": "true" if has_changes(inputs.command, code, doc) else "false",
        "plan-file": inputs.plan_file if Path(inputs.plan_file or ".").is_file() else "",
        "result-file": str(result_file),
    }
    _append(env.get("GITHUB_OUTPUT"), "".join(f"{k}={v}\n" for k, v in outputs.items()))
    if code in OK_CODES[inputs.command]:
        return 0
    print(f"::error title=deployer {inputs.command}::deployer exited {code}", flush=True)
    return code


def _append(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    env = os.environ if env is None else env
    if args not in (["target"], ["run"]):
        print("usage: python scripts/deployer_action.py target|run", file=sys.stderr)
        return 2
    try:
        if args == ["target"]:
            found = target(env)
            _append(env.get("GITHUB_OUTPUT"), f"target={found}\n")
            print(f"target: {found}", file=sys.stderr)
            return 0
        return run(env)
    except InputError as exc:
        print(f"::error title=deployer action::{exc}", flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())

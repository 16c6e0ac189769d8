"""Saved plans end to end on the emulator, through the CLI and the official clients.

`deployer plan SPEC --out FILE` then `deployer apply FILE`: a fresh plan applies, once; a
plan whose stack changed since is refused with exit 9 before any mutating request (read
from the emulator's request log); a plan with no changes is a no-op however often applied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulator import EmulatorProcess
from tests.support.stacks import StackFiles, run_cli

MUTATING_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _since(emulator: EmulatorProcess, offset: int) -> list[dict[str, Any]]:
    return emulator.read_request_log()[offset:]


def _model_only(tmp_path: Path, stack: str) -> StackFiles:
    """A stack of one model version and no endpoint: no replica to start, quick to apply."""
    return StackFiles(
        tmp_path, stack=stack, bucket=f"test-project-{stack}", versions={"v1": 1}, endpoints=()
    )


def _writes(calls: list[dict[str, Any]]) -> list[str]:
    return [
        f"{c['method']} {c['path']}"
        for c in calls
        if c["method"] in MUTATING_METHODS or c.get("mutating")
    ]


@pytest.mark.timeout(300)
def test_apply_of_a_stale_saved_plan_is_refused_with_no_mutating_call(
    shared_emulator: EmulatorProcess, tmp_path: Path
) -> None:
    files = _model_only(tmp_path, "staleplan")
    spec = str(files.write())
    run_cli(["apply", spec, "--yes"], shared_emulator.url)

    files.versions = {"v1": 1, "v2": 2}
    files.write()
    plan_file = str(tmp_path / "staleplan.plan")
    planned = run_cli(["plan", spec, "--out", plan_file], shared_emulator.url)
    assert f"deployer apply {plan_file}" in planned.stdout
    # Someone applies meanwhile (the same spec, from another checkout): the stack changes.
    run_cli(["apply", spec, "--yes"], shared_emulator.url)

    before = len(shared_emulator.read_request_log())
    result = run_cli(["apply", plan_file, "--yes"], shared_emulator.url, expect=9)
    message = result.deployer_error.message
    assert "stack 'staleplan' changed since the plan was made; nothing was applied" in message
    assert "model mnist version 2: appeared" in message
    assert "model mnist version 1: changed" in message  # the default alias moved to 2
    assert f"deployer plan {spec} --out {plan_file}" in result.deployer_error.render()
    calls = _since(shared_emulator, before)
    assert calls, "apply observed the stack before refusing"
    assert _writes(calls) == []


@pytest.mark.timeout(300)
def test_a_saved_plan_applies_once_and_an_empty_one_is_a_no_op(
    shared_emulator: EmulatorProcess, tmp_path: Path
) -> None:
    files = _model_only(tmp_path, "savedplan")
    spec = str(files.write())
    plan_file = str(tmp_path / "first.plan")
    doc = json.loads(
        run_cli(["plan", spec, "--out", plan_file, "-o", "json"], shared_emulator.url).stdout
    )
    assert doc["plan_file"] == plan_file and len(doc["fingerprint"]) == 64
    saved = json.loads(Path(plan_file).read_text())
    assert [a["type"] for a in saved["actions"]] == [
        "CreateBucket",
        "UploadArtifact",
        "CreateVersion",
    ]

    before = len(shared_emulator.read_request_log())
    applied = json.loads(
        run_cli(["apply", plan_file, "--yes", "-o", "json"], shared_emulator.url).stdout
    )
    assert [a["address"] for a in applied["applied"]] == [a["address"] for a in saved["actions"]]
    assert _writes(_since(shared_emulator, before))

    # Applied once: the stack it was made against is gone, so the file is stale now.
    before = len(shared_emulator.read_request_log())
    again = run_cli(["apply", plan_file, "--yes"], shared_emulator.url, expect=9)
    assert "bucket test-project-savedplan: changed" in again.deployer_error.message
    assert _writes(_since(shared_emulator, before)) == []

    empty_file = str(tmp_path / "empty.plan")
    run_cli(["plan", spec, "--out", empty_file], shared_emulator.url)
    for _ in range(2):
        before = len(shared_emulator.read_request_log())
        out = run_cli(["apply", empty_file, "--yes"], shared_emulator.url)
        assert "No changes." in out.stdout
        assert _writes(_since(shared_emulator, before)) == []


@pytest.mark.timeout(300)
def test_a_saved_plan_whose_spec_changed_is_refused_before_any_request(
    shared_emulator: EmulatorProcess, tmp_path: Path
) -> None:
    files = _model_only(tmp_path, "specchanged")
    spec = str(files.write())
    plan_file = str(tmp_path / "p.plan")
    run_cli(["plan", spec, "--out", plan_file], shared_emulator.url)
    files.extra = "guards: {ttl: 2h}\n"
    files.write()
    before = len(shared_emulator.read_request_log())
    result = run_cli(["apply", plan_file, "--yes"], shared_emulator.url, expect=9)
    assert f"the spec file {spec} changed" in result.deployer_error.message
    assert _since(shared_emulator, before) == []

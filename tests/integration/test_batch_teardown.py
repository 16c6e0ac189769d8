"""Teardown and batch jobs: the stack's jobs go, their outputs go unless kept, a running
job is cancelled first (Vertex deletes only finished jobs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_batch_predict import _spec
from tests.integration.test_batch_resume import _jobs
from tests.support.stacks import run_cli

pytestmark = pytest.mark.timeout(300)


def _outputs(storage_client, bucket: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.name for b in storage_client.list_blobs(bucket, prefix="predictions/")]


def test_teardown_deletes_batch_jobs_and_outputs_unless_kept(
    emulator, storage_client, tmp_path: Path
) -> None:
    (tmp_path / "in.jsonl").write_text(
        "".join(json.dumps([[i % 7] * 28] * 28) + "\n" for i in range(20))
    )
    files = _spec(tmp_path, input_line="{path: in.jsonl, format: jsonl}")
    spec = str(files.spec_path)
    run_cli(["apply", spec, "--yes"], emulator.url)
    run_cli(["batch-predict", spec], emulator.url)
    assert len(_jobs(emulator.url)) == 1 and _outputs(storage_client, files.bucket)

    run_cli(["teardown", spec, "--yes", "--keep-bucket", "--keep-outputs"], emulator.url)
    assert _jobs(emulator.url) == []
    kept = _outputs(storage_client, files.bucket)
    assert any("prediction.results-" in n for n in kept)

    run_cli(["apply", spec, "--yes"], emulator.url)
    run_cli(["batch-predict", spec], emulator.url)
    run_cli(["teardown", spec, "--yes", "--keep-bucket"], emulator.url)
    assert _jobs(emulator.url) == []
    assert _outputs(storage_client, files.bucket) == []


def test_teardown_cancels_a_running_job_before_deleting_it(emulator, tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(json.dumps([[1] * 28] * 28) + "\n")
    files = _spec(tmp_path, input_line="{path: in.jsonl, format: jsonl}")
    spec = str(files.spec_path)
    run_cli(["apply", spec, "--yes"], emulator.url)
    emulator.admin({"op_delay": 20})  # the job stays QUEUED
    run_cli(["batch-predict", spec, "--no-wait"], emulator.url)
    emulator.admin({"op_delay": 0})

    run_cli(["teardown", spec, "--yes"], emulator.url)

    assert _jobs(emulator.url) == []
    apis = [e["api"] for e in emulator.read_request_log()]
    assert "cancelBatchPredictionJob" in apis  # not merely waited out

"""deployer's own teardown against operations named as Vertex names them: a batch job's delete
operation lives under the location (projects/*/locations/*/operations/*), so deployer polls it
through a documented binding while operations stay pending (--op-delay). Before issue 14 the
emulator named it under the job, the GAPIC client could not poll it, and teardown died with a
ValueError traceback at "deleting batch job"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_batch_predict import _spec
from tests.integration.test_batch_resume import _jobs
from tests.support.emulator import EmulatorProcess
from tests.support.stacks import run_cli

pytestmark = pytest.mark.timeout(300)


def test_teardown_polls_a_pending_batch_job_delete_to_the_end(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    (tmp_path / "in.jsonl").write_text(json.dumps([[1] * 28] * 28) + "\n")
    files = _spec(tmp_path, input_line="{path: in.jsonl, format: jsonl}")
    spec = str(files.spec_path)
    run_cli(["apply", spec, "--yes"], emulator.url)
    run_cli(["batch-predict", spec], emulator.url)
    assert len(_jobs(emulator.url)) == 1
    emulator.admin({"op_delay": 1.5})  # every operation, the job's delete too, stays pending
    run_cli(["teardown", spec, "--yes"], emulator.url)
    assert _jobs(emulator.url) == []
    deletes = [e for e in emulator.read_request_log() if e["api"] == "deleteBatchPredictionJob"]
    assert [e["status"] for e in deletes] == [200]

"""A batch input whose format comes from its name validates and runs end to end.

The spec and staging share one input-format vocabulary (`wire.batch_formats.infer_format`):
a `.npz` without `format:` passes `deployer validate` and `deployer batch-predict` stages it
as JSON Lines, against the real emulator and its replicas.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.stacks import StackFiles, run_cli


@pytest.mark.timeout(300)
def test_an_npz_input_without_a_format_validates_and_scores(emulator, tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    x = rng.random((40, 28, 28), dtype=np.float32)
    np.savez(tmp_path / "digits.npz", x=x, y=np.arange(40) % 10)
    files = StackFiles(
        tmp_path, stack="npz", bucket="test-project-npz", versions={"v1": 1}, endpoints=()
    )
    files.extra = (
        "batch_jobs:\n"
        "  - name: score\n"
        "    model: mnist@v1\n"
        "    input: {path: digits.npz}\n"
        "    machine_type: n1-standard-4\n"
    )
    files.write()
    spec = str(files.spec_path)
    validated = run_cli(["validate", spec, "--output", "json"], emulator.url)
    assert json.loads(validated.stdout)["batch_jobs"] == ["score"]
    run_cli(["apply", spec, "--yes"], emulator.url)
    out = tmp_path / "preds.jsonl"

    result = run_cli(["batch-predict", spec, "--output", str(out), "--json"], emulator.url)

    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["state"] == "JOB_STATE_SUCCEEDED"
    from tests.support.savedmodels import reference_predict

    ref = reference_predict(files.artifact("v1"), {"flatten_input": x})
    ref = np.asarray(ref["output_0"] if isinstance(ref, dict) else ref)
    got = np.array([json.loads(line) for line in out.read_text().splitlines()])
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)

"""batch-predict end to end: the CLI against the real emulator process and its replicas.

Every test registers a tiny real SavedModel with `deployer apply`, then runs
`deployer batch-predict` and checks what a user would: predictions equal the
model's own in-process outputs row for row (so input order is kept), failed
rows are reported with their line numbers, a bad input fails the job with its
error and a non-zero exit, and a second run re-attaches instead of duplicating.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.stacks import StackFiles, run_cli


def _spec(tmp_path: Path, *, input_line: str, extra: str = "", batch_size: int = 50) -> StackFiles:
    files = StackFiles(
        tmp_path, stack="bat", bucket="test-project-bat", versions={"v1": 1}, endpoints=()
    )
    files.extra = (
        "batch_jobs:\n"
        "  - name: score\n"
        "    model: mnist@v1\n"
        f"    input: {input_line}\n"
        "    output: {prefix: predictions/}\n"
        "    machine_type: n1-standard-4\n"
        "    replicas: {starting: 2, max: 2}\n"
        f"    batch_size: {batch_size}\n" + extra
    )
    files.write()
    return files


def _reference(model_dir: Path, x: np.ndarray) -> np.ndarray:
    from tests.support.savedmodels import reference_predict

    out = reference_predict(model_dir, {"flatten_input": x.astype(np.float32)})
    return np.asarray(out["output_0"] if isinstance(out, dict) else out)


@pytest.mark.timeout(300)
def test_jsonl_batch_keeps_input_order_reports_bad_rows_and_scores_labels(
    emulator, tmp_path: Path
) -> None:
    rng = np.random.default_rng(7)
    x = rng.random((1200, 28, 28), dtype=np.float32)
    data = tmp_path / "in.jsonl"
    bad_rows = {17, 640}  # a wrong shape: the model refuses these rows, the rest goes through
    with open(data, "w") as fh:
        for i, img in enumerate(x):
            inst = img[:5].tolist() if i in bad_rows else img.tolist()
            fh.write(json.dumps({"flatten_input": inst, "label": int(i % 10)}) + "\n")
    files = _spec(tmp_path, input_line="{path: in.jsonl, format: jsonl}")
    spec = str(files.spec_path)
    run_cli(["apply", spec, "--yes"], emulator.url)
    out = tmp_path / "preds.jsonl"

    result = run_cli(["batch-predict", spec, "--output", str(out), "--json"], emulator.url)

    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["state"] == "JOB_STATE_SUCCEEDED"
    lines = out.read_text().splitlines()
    assert len(lines) == len(x)
    got = [json.loads(line) for line in lines]
    assert [i for i, p in enumerate(got) if p is None] == sorted(bad_rows)
    ref = _reference(files.artifact("v1"), x)
    good = [i for i in range(len(x)) if i not in bad_rows]
    np.testing.assert_allclose(np.array([got[i] for i in good]), ref[good], rtol=1e-5, atol=1e-6)
    # Errors carry their input line numbers (1-based lines of in.jsonl).
    assert [(e["row"], e["line"]) for e in summary["errors"]] == [
        (r, r + 1) for r in sorted(bad_rows)
    ]
    assert all(e["source"].endswith("in.jsonl") for e in summary["errors"])
    # The `label` field was kept local (not sent) and scored against the argmax.
    expected = np.mean([np.argmax(ref[i]) == i % 10 for i in good])
    assert summary["accuracy"] == pytest.approx(expected)
    assert sum(map(sum, summary["confusion_matrix"]["matrix"])) == len(good)
    # The confusion matrix is drawn beside the results, where the summary says.
    picture = tmp_path / "preds.confusion.png"
    assert summary["confusion_png"] == str(picture)
    assert f"Confusion matrix picture: {picture}" in result.stderr
    from PIL import Image

    with Image.open(picture) as img:
        assert img.format == "PNG"


@pytest.mark.timeout(300)
def test_missing_input_fails_the_job_with_its_error_and_exit_8(emulator, tmp_path: Path) -> None:
    files = _spec(
        tmp_path, input_line="{path: 'gs://test-project-bat/nowhere/in.jsonl', format: jsonl}"
    )
    spec = str(files.spec_path)
    run_cli(["apply", spec, "--yes"], emulator.url)

    result = run_cli(["batch-predict", spec], emulator.url, expect=8)

    err = result.deployer_error
    assert type(err).__name__ == "BatchJobFailed"
    assert (
        "failed" in err.message
        and "gs://test-project-bat/nowhere/in.jsonl does not exist" in err.message
    )


@pytest.mark.timeout(300)
def test_malformed_gcs_input_fails_the_job_naming_file_and_line(
    emulator, storage_client, tmp_path: Path
) -> None:
    files = _spec(
        tmp_path, input_line="{path: 'gs://test-project-bat/in/bad.jsonl', format: jsonl}"
    )
    spec = str(files.spec_path)
    run_cli(["apply", spec, "--yes"], emulator.url)
    storage_client.bucket("test-project-bat").blob("in/bad.jsonl").upload_from_string(
        b"[1, 2]\n{oops\n"
    )

    result = run_cli(["batch-predict", spec], emulator.url, expect=8)

    assert "gs://test-project-bat/in/bad.jsonl, line 2" in result.deployer_error.message


@pytest.mark.timeout(120)
def test_batch_predict_before_apply_says_to_run_apply(emulator, tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text("[1]\n")
    files = _spec(tmp_path, input_line="{path: in.jsonl, format: jsonl}")

    result = run_cli(["batch-predict", str(files.spec_path)], emulator.url, expect=3)

    assert "deployer apply" in (result.deployer_error.hint or "")

"""`deployer predict` on the emulator: the compact encoding each signature allows, requests
split under Vertex's 1.5 MB limit, predictions equal to the model called in-process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.emulator import EmulatorProcess
from tests.support.savedmodels import make_mnist_like_model, reference_predict
from tests.support.stacks import StackFiles, run_cli

LIMIT = 1_572_864


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("raw", "count", "form"),
    [
        (True, 700, "image_bytes: base64 of raw float bytes"),
        (False, 300, "flatten_input: JSON numbers at float32 precision"),
    ],
)
def test_predict_encodes_for_the_signature_and_splits_under_the_limit(
    shared_emulator: EmulatorProcess, tmp_path: Path, raw: bool, count: int, form: str
) -> None:
    stack = "enc-raw" if raw else "enc-json"
    files = StackFiles(
        tmp_path,
        stack=stack,
        bucket=f"test-project-{stack}",
        versions={"v1": 1},
        raw_bytes_input=raw,
    )
    spec = str(files.write())
    x = np.random.default_rng(5).random((count, 28, 28), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    early = run_cli(
        ["predict", spec, "--endpoint", "ep", "--instances", str(tmp_path / "x.npy")],
        shared_emulator.url,
        expect=4,
    )
    assert "endpoint 'ep' of stack" in early.deployer_error.message
    assert "deployer apply" in (early.deployer_error.hint or "")
    run_cli(["apply", spec, "--yes"], shared_emulator.url)
    try:
        before = len(shared_emulator.read_request_log())
        out = run_cli(
            [
                "predict",
                spec,
                "--endpoint",
                "ep",
                "--instances",
                str(tmp_path / "x.npy"),
                "--output",
                "json",
            ],
            shared_emulator.url,
        )
        got = np.asarray(json.loads(out.stdout)["predictions"])
        twin = make_mnist_like_model(
            tmp_path / "twin", hidden=(8,), seed=1
        )  # same weights, float input
        want = reference_predict(twin, {"flatten_input": x})["output_0"]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        calls = [e for e in shared_emulator.read_request_log()[before:] if e["api"] == "predict"]
        assert len(calls) >= 2 and all(e["status"] == 200 for e in calls)
        assert all(e["request_bytes"] <= LIMIT for e in calls)
        sent = sum(e["request_bytes"] for e in calls)
        # Random floats: raw bytes in base64 are 4/3 x 4 B; shortest float32 JSON ~11 B.
        assert sent < count * 784 * (5.5 if raw else 12)
        assert form in out.stderr and f"in {len(calls)} request(s)" in out.stderr
        assert f"request {len(calls)}/{len(calls)}" in out.stderr

        neither = run_cli(["predict", spec, "--endpoint", "ep"], shared_emulator.url, expect=3)
        assert "--instances FILE or with --file PATH" in neither.deployer_error.message

        # --file: each file's bytes are one instance, for a string input only.
        for i in range(2):
            (tmp_path / f"img{i}.raw").write_bytes(x[i].tobytes())
        args = [
            "predict",
            spec,
            "--endpoint",
            "ep",
            "--file",
            str(tmp_path / "img0.raw"),
            "--file",
            str(tmp_path / "img1.raw"),
            "--output",
            "json",
        ]
        before = len(shared_emulator.read_request_log())
        if raw:
            got = np.asarray(json.loads(run_cli(args, shared_emulator.url).stdout)["predictions"])
            np.testing.assert_allclose(got, want[:2], rtol=1e-5, atol=1e-6)
        else:
            refused = run_cli(args, shared_emulator.url, expect=3)
            assert "'flatten_input' DT_FLOAT" in refused.deployer_error.message
            assert shared_emulator.read_request_log()[before:] == []  # refused before any call

        # --as-is sends the instances untouched: numbers cannot feed the string input.
        as_is = run_cli(
            [
                "predict",
                spec,
                "--endpoint",
                "ep",
                "--instances",
                str(tmp_path / "x.npy"),
                "--as-is",
            ],
            shared_emulator.url,
            expect=0 if not raw else 4,
        )
        if raw:
            assert "image_bytes" in as_is.deployer_error.message
    finally:
        run_cli(["teardown", spec, "--yes"], shared_emulator.url)

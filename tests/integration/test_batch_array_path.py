"""The batch fast path end to end: the TF replica's `:predictArrays` route, and emulated batch
jobs whose JSON Lines of numbers go to it as arrays (outputs as the JSON path writes them,
malformed rows still failing the job with file and line, and models the route cannot serve
still scored row by row through JSON)."""

from __future__ import annotations

import io
import json
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from deployer.emulator.vertex import batch_arrays
from tests.integration.test_batch_emulator import BUCKET, _job, _model, _outputs, _wait, env
from tests.integration.test_serve_support import ServerProcess, http, replica_args
from tests.support.savedmodels import make_mnist_like_model, reference_predict

__all__ = ["env"]  # the fixture, shared with test_batch_emulator
pytestmark = pytest.mark.timeout(300)


def _post_npy(url: str, values: np.ndarray) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=batch_arrays.npy_body(values), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_the_replica_scores_an_npy_batch_as_its_json_predict_does(tmp_path: Path) -> None:
    model_dir = make_mnist_like_model(tmp_path / "model", input_shape=(28, 28))
    server = ServerProcess(replica_args(model_dir, "mnist", 0), tmp_path / "replica.log")
    try:
        base = f"http://127.0.0.1:{server.bound_port('REST')}/v1/models/mnist"
        server.wait_ready(base.replace("/v1/models/mnist", "/healthz"))
        x = np.random.default_rng(0).integers(0, 256, (37, 28, 28))

        status, body = _post_npy(f"{base}:predictArrays", x)
        assert status == 200, body[:500]
        with np.load(io.BytesIO(body), allow_pickle=False) as npz:
            outputs = {k: npz[k] for k in npz.files}
        _, answer = http("POST", f"{base}:predict", {"instances": x.tolist()})
        rows = batch_arrays.prediction_rows(outputs, 37)
        assert rows == [orjson.dumps(p) for p in answer["predictions"]]  # the same text
        ref = reference_predict(model_dir, {"flatten_input": x.astype(np.float32)})["output_0"]
        np.testing.assert_allclose(outputs["output_0"], ref, rtol=1e-5, atol=1e-6)

        status, body = _post_npy(f"{base}/versions/1:predictArrays", x[:2])
        assert status == 200
        bad = urllib.request.Request(f"{base}:predictArrays", data=b'{"instances":[]}')
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=30)
        assert err.value.code == 400
        assert "one .npy array" in json.loads(err.value.read())["error"]
        status, body = _post_npy(f"{base}:predictArrays", np.zeros((2, 27, 28), np.uint8))
        assert status == 400 and b"expects shape" in body
    finally:
        server.terminate()


def test_a_job_scores_jsonl_arrays_in_order_and_a_malformed_row_fails_it(
    env: dict[str, Any],
) -> None:
    model, model_dir = _model(env, "make_mnist_like_model", input_shape=(4, 3), hidden=(5,))
    x = np.random.default_rng(2).integers(-50, 256, (2_100, 4, 3))
    lines = [json.dumps(row) for row in x.tolist()]  # ", " separators, as json.dumps writes
    lines.insert(1000, "")  # blank lines are skipped, as Vertex does
    b = env["storage"].bucket(BUCKET)
    b.blob("in/ok.jsonl").upload_from_string("\n".join(lines) + "\n")
    b.blob("in/bad.jsonl").upload_from_string("\n".join(lines[:1500]) + "\n[1, 2,]\n")

    job = _wait(env, _job(env, model, [f"gs://{BUCKET}/in/ok.jsonl"], "jsonl", batch_size=0).name)
    bad = _wait(env, _job(env, model, [f"gs://{BUCKET}/in/bad.jsonl"], "jsonl", batch_size=0).name)

    assert job.state.name == "JOB_STATE_SUCCEEDED", job.error
    got = _outputs(env, job, "prediction.results")
    assert [r["instance"] for r in got] == x.tolist()  # input order, the instance echoed
    ref = reference_predict(model_dir, {"flatten_input": x.astype(np.float32)})["output_0"]
    np.testing.assert_allclose([r["prediction"] for r in got], ref, rtol=1e-5, atol=1e-6)
    assert job.completion_stats.successful_count == 2_100
    assert bad.state.name == "JOB_STATE_FAILED"
    assert f"Malformed jsonl input gs://{BUCKET}/in/bad.jsonl, line 1501" in bad.error.message
    assert _outputs(env, bad, "prediction.") == []  # nothing is published


def test_a_model_the_array_route_cannot_serve_is_scored_through_json(
    env: dict[str, Any],
) -> None:
    model, _ = _model(env, "make_bytes_model")  # a string input: numbers do not fit it
    env["storage"].bucket(BUCKET).blob("in/n.jsonl").upload_from_string("[1, 2]\n" * 5)

    job = _wait(env, _job(env, model, [f"gs://{BUCKET}/in/n.jsonl"], "jsonl").name)

    assert job.state.name == "JOB_STATE_FAILED"
    assert job.completion_stats.failed_count == 5  # every row answered, each with its error
    errors = _outputs(env, job, "prediction.errors_stats")
    assert [e["instance"] for e in errors] == [[1, 2]] * 5
    assert all("expects strings" in e["error"]["message"] for e in errors)

"""The replica entry point contract the emulator relies on (`python -m
deployer.serving.replica`)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.integration.test_serve_support import ServerProcess, http, replica_args
from tests.support.savedmodels import make_mnist_like_model, reference_predict


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mnist_like_model(tmp_path_factory.mktemp("replica") / "model", input_shape=(784,))


@pytest.mark.timeout(180)
def test_replica_reports_loading_then_serves_predictions_and_drains_on_sigterm(
    mnist_dir: Path, tmp_path: Path
) -> None:
    server = ServerProcess(
        replica_args(
            mnist_dir, "mnist", 0, "--batch-timeout-micros", "20000", "--max-batch-size", "32"
        ),
        tmp_path / "replica.log",
    )
    try:
        base = f"http://127.0.0.1:{server.bound_port('REST')}"
        # REST is up before TensorFlow is imported: first LOADING (health 503), then AVAILABLE.
        seen: list[str] = []
        health_while_loading: set[int] = set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "AVAILABLE" not in seen:
            try:
                status, body = http("GET", f"{base}/v1/models/mnist", timeout=2)
            except OSError:
                time.sleep(0.05)
                continue
            state = body["model_version_status"][0]["state"]
            if not seen or seen[-1] != state:
                seen.append(state)
            if state == "LOADING":
                health_while_loading.add(http("GET", f"{base}/healthz")[0])
            time.sleep(0.05)
        assert seen == ["LOADING", "AVAILABLE"], server.log[-2000:]
        assert health_while_loading == {503}
        assert http("GET", f"{base}/healthz")[0] == 200
        status, body = http("GET", f"{base}/v1/models/mnist")
        assert body == {
            "model_version_status": [
                {
                    "version": "1",
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        }

        x = np.random.default_rng(1).random((4, 784), dtype=np.float32)
        want = reference_predict(mnist_dir, {"flatten_input": x})["output_0"]
        for path in ("/v1/models/mnist:predict", "/v1/models/mnist/versions/1:predict"):
            status, body = http(
                "POST", base + path, {"signature_name": "serving_default", "instances": x.tolist()}
            )
            assert status == 200
            np.testing.assert_allclose(body["predictions"], want, rtol=1e-5, atol=1e-7)
        status, body = http("POST", f"{base}/v1/models/mnist:predict", {"inputs": x.tolist()})
        np.testing.assert_allclose(body["outputs"], want, rtol=1e-5, atol=1e-7)

        status, body = http("POST", f"{base}/v1/models/mnist:predict", {"instances": [[0.0] * 783]})
        assert status == 400
        assert "'flatten_input'" in body["error"] and "[-1, 784]" in body["error"]
        assert "DT_FLOAT" in body["error"] and "[783]" in body["error"]
        assert (
            http("POST", f"{base}/v1/models/mnist/versions/2:predict", {"instances": x.tolist()})[0]
            == 404
        )
        assert http("POST", f"{base}/v1/models/other:predict", {"instances": x.tolist()})[0] == 404

        # Slow requests in flight when SIGTERM arrives still complete; then exit 0.
        big = json.dumps(
            {"instances": np.random.default_rng(2).random((1500, 784)).round(4).tolist()}
        )
        with ThreadPoolExecutor(3) as pool:
            futures = [
                pool.submit(http, "POST", f"{base}/v1/models/mnist:predict", big.encode(), 60)
                for _ in range(3)
            ]
            time.sleep(0.3)
            server.proc.send_signal(15)
            results = [f.result() for f in futures]
        assert [r[0] for r in results] == [200, 200, 200], (
            results[-1][1] if results[-1][0] != 200 else ""
        )
        assert all(len(r[1]["predictions"]) == 1500 for r in results)
        assert server.proc.wait(60) == 0, server.log[-2000:]
        assert "draining" in server.log
    finally:
        server.terminate()


@pytest.mark.timeout(120)
def test_replica_that_cannot_load_exits_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"definitely not a SavedModel")
    server = ServerProcess(replica_args(broken, "bad", 0), tmp_path / "bad.log")
    try:
        code = server.proc.wait(90)
    finally:
        server.terminate()
    assert code == 1
    assert "error: model bad failed to load" in server.log


@pytest.mark.timeout(30)
def test_replica_rejects_a_directory_that_is_not_a_savedmodel(tmp_path: Path) -> None:
    server = ServerProcess(replica_args(tmp_path, "none", 0), tmp_path / "none.log")
    try:
        code = server.proc.wait(25)
    finally:
        server.terminate()
    assert code == 1
    assert "is not a SavedModel directory" in server.log

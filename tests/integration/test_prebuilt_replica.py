"""The pre-built framework replica (`python -m deployer.serving.prebuilt`): Vertex's
custom-container contract (AIP_* variables, health and predict routes) over the real library."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import joblib
import numpy as np
import pytest
import xgboost as xgb

from tests.integration.test_serve_support import ServerProcess, http
from tests.support.frameworks import rows, train_all


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return train_all(tmp_path_factory.mktemp("frameworks"))


def _start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    if env:
        os.environ.update(env)
    try:
        return ServerProcess(["-m", "deployer.serving.prebuilt", *args], tmp_path / "replica.log")
    finally:
        for key in env or {}:
            os.environ.pop(key, None)


@pytest.mark.timeout(120)
def test_sklearn_replica_is_unhealthy_until_loaded_then_predicts_as_the_library(
    examples: tuple[Path, Path], tmp_path: Path
) -> None:
    models, data = examples
    server = _start(
        tmp_path,
        "--framework",
        "sklearn",
        "--port",
        "0",
        env={
            "AIP_STORAGE_URI": str(models / "sklearn_iris"),
            "AIP_HEALTH_ROUTE": "/v1/endpoints/1/deployedModels/2",
            "AIP_PREDICT_ROUTE": "/v1/endpoints/1/deployedModels/2:predict",
        },
    )
    try:
        base = f"http://127.0.0.1:{server.bound_port('HTTP')}"
        server.wait_ready(base + "/v1/endpoints/1/deployedModels/2")
        instances = rows(data, "iris")
        status, body = http(
            "POST", base + "/v1/endpoints/1/deployedModels/2:predict", {"instances": instances}
        )
        model = joblib.load(models / "sklearn_iris" / "model.joblib")
        assert status == 200
        assert body == {"predictions": model.predict(np.asarray(instances)).tolist()}

        status, body = http(
            "POST", base + "/v1/endpoints/1/deployedModels/2:predict", {"instances": [[1.0]]}
        )
        assert status == 400
        assert body["error"].startswith(
            "Prediction failed: Exception during sklearn prediction: "
        ), body
        for bad, why in [(b"{", "JSON deserialization failed"), (b"[]", '"instances" list')]:
            status, body = http("POST", base + "/v1/endpoints/1/deployedModels/2:predict", bad)
            assert status == 400 and why in body["error"]
        assert http("GET", base + "/predict")[0] == 404
    finally:
        assert server.terminate() == 0, server.log[-2000:]
    assert "model ready" in server.log


@pytest.mark.timeout(120)
def test_xgboost_replica_predicts_as_the_booster(
    examples: tuple[Path, Path], tmp_path: Path
) -> None:
    models, data = examples
    server = _start(
        tmp_path,
        "--framework",
        "xgboost",
        "--artifact",
        str(models / "xgboost_cancer"),
        "--port",
        "0",
    )
    try:
        base = f"http://127.0.0.1:{server.bound_port('HTTP')}"
        server.wait_ready(base + "/health")
        instances = rows(data, "cancer")
        status, body = http("POST", base + "/predict", {"instances": instances})
        booster = xgb.Booster(model_file=str(models / "xgboost_cancer" / "model.bst"))
        assert status == 200
        assert body["predictions"] == booster.predict(xgb.DMatrix(np.asarray(instances))).tolist()
    finally:
        server.proc.send_signal(signal.SIGINT)
        assert server.terminate() == 0, server.log[-2000:]


@pytest.mark.timeout(120)
def test_a_directory_the_image_cannot_load_exits_1_naming_the_files(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "saved_model.pb").write_bytes(b"")
    server = _start(
        tmp_path, "--framework", "xgboost", "--artifact", str(tmp_path / "model"), "--port", "0"
    )
    deadline = time.monotonic() + 60
    while server.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.terminate() == 1
    assert "['model.bst', 'model.joblib', 'model.pkl']" in server.log
    assert "Traceback" not in server.log

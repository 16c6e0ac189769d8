"""`deployer serve` as a local TF Serving: REST and gRPC against in-process results, warmup,
malformed requests, batching under concurrency, and version hot swap under load."""

from __future__ import annotations

import base64
import os
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tests.integration.test_serve_support import ServerProcess, serve_args
from tests.support.savedmodels import (
    make_bytes_model,
    make_mnist_like_model,
    make_two_input_model,
    reference_predict,
)


@dataclass
class Served:
    name: str
    base: Path
    rest: str  # http://127.0.0.1:PORT
    grpc_target: str  # 127.0.0.1:PORT
    process: ServerProcess

    def url(self, suffix: str = "") -> str:
        return f"{self.rest}/v1/models/{self.name}{suffix}"

    def stub(self) -> prediction_service_pb2_grpc.PredictionServiceStub:
        return prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(self.grpc_target)
        )


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    root = tmp_path_factory.mktemp("serve")
    make_mnist_like_model(root / "mnist" / "0001", seed=1, warmup_requests=5)
    make_mnist_like_model(root / "swap" / "0001", seed=1)
    make_two_input_model(root / "two" / "0001")
    make_bytes_model(root / "bytes" / "0001")
    # Wide batch window so concurrent requests observably merge.
    params = root / "batching.txt"
    params.write_text(
        "max_batch_size { value: 16 }\nbatch_timeout_micros { value: 20000 }\n"
        "num_batch_threads { value: 1 }\n"
    )
    started: dict[str, Served] = {}
    processes: list[ServerProcess] = []
    try:
        for name in ("mnist", "swap", "two", "bytes"):
            extra = ["--batching-parameters", str(params)] if name == "mnist" else []
            processes.append(
                ServerProcess(serve_args(root / name, name, 0, 0, *extra), root / f"{name}.log")
            )
        for name, proc in zip(("mnist", "swap", "two", "bytes"), processes, strict=True):
            started[name] = Served(
                name,
                root / name,
                f"http://127.0.0.1:{proc.bound_port('REST')}",
                f"127.0.0.1:{proc.bound_port('gRPC', timeout=150)}",
                proc,
            )
        for s in started.values():
            s.process.wait_ready(f"{s.rest}/healthz", timeout=150)
        yield started
    finally:
        for proc in processes:
            proc.terminate()


def _grpc_predict(
    served: Served, inputs: dict[str, object], version: int | None = None
) -> dict[str, np.ndarray]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = served.name
    request.model_spec.signature_name = "serving_default"
    if version is not None:
        request.model_spec.version.value = version
    for k, v in inputs.items():
        request.inputs[k].CopyFrom(tf.make_tensor_proto(v))
    response = served.stub().Predict(request, timeout=10.0)
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


@pytest.mark.timeout(300)
def test_rest_and_grpc_match_in_process_for_the_mnist_model(servers: dict[str, Served]) -> None:
    s = servers["mnist"]
    x = np.random.default_rng(3).random((3, 28, 28), dtype=np.float32)
    want = reference_predict(s.base / "0001", {"flatten_input": x})["output_0"]
    # The seed book's REST client, unchanged.
    import json

    response = requests.post(
        s.url(":predict"),
        data=json.dumps({"signature_name": "serving_default", "instances": x.tolist()}),
        timeout=10,
    )
    assert response.status_code == 200
    np.testing.assert_allclose(response.json()["predictions"], want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(_grpc_predict(s, {"flatten_input": x})["output_0"], want, rtol=1e-6)
    np.testing.assert_allclose(
        _grpc_predict(s, {"flatten_input": x}, version=1)["output_0"], want, rtol=1e-6
    )


@pytest.mark.timeout(300)
def test_two_named_inputs_over_rest_and_grpc(servers: dict[str, Served]) -> None:
    s = servers["two"]
    a = np.array([[1, 2, 3], [0.5, 0, -1]], np.float32)
    b = np.array([[4, 5], [1, 0]], np.float32)
    want = reference_predict(s.base / "0001", {"a": a, "b": b})
    rows = requests.post(
        s.url(":predict"),
        json={"instances": [{"a": a[i].tolist(), "b": b[i].tolist()} for i in range(2)]},
        timeout=10,
    ).json()["predictions"]
    assert [r["label"] for r in rows] == want["label"].tolist()
    np.testing.assert_allclose([r["sum"] for r in rows], want["sum"], rtol=1e-5)
    cols = requests.post(
        s.url(":predict"), json={"inputs": {"a": a.tolist(), "b": b.tolist()}}, timeout=10
    ).json()["outputs"]
    np.testing.assert_allclose(cols["sum"], want["sum"], rtol=1e-5)
    got = _grpc_predict(s, {"a": a, "b": b})
    assert got["label"].tolist() == want["label"].tolist()


@pytest.mark.timeout(300)
def test_string_input_takes_b64_over_rest_and_bytes_over_grpc(servers: dict[str, Served]) -> None:
    s = servers["bytes"]
    raw = [b"\x89PNG\r\n\x1a\n\x00\xff", b"plain text"]
    want = reference_predict(s.base / "0001", {"image_bytes": raw})
    rows = requests.post(
        s.url(":predict"),
        json={"instances": [{"b64": base64.b64encode(r).decode()} for r in raw]},
        timeout=10,
    ).json()["predictions"]
    assert [r["length"] for r in rows] == [len(r) for r in raw]
    assert [r["bucket"] for r in rows] == want["bucket"].tolist()
    assert [base64.b64decode(r["echo_bytes"]["b64"]) for r in rows] == raw
    got = _grpc_predict(s, {"image_bytes": np.array(raw, dtype=object)})
    assert got["bucket"].tolist() == want["bucket"].tolist()
    assert got["echo_bytes"].tolist() == raw


@pytest.mark.timeout(300)
def test_status_and_metadata_over_rest_and_grpc(servers: dict[str, Served]) -> None:
    s = servers["mnist"]
    status = requests.get(s.url(), timeout=10).json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    assert requests.get(s.url("/versions/1"), timeout=10).status_code == 200
    assert requests.get(s.url("/versions/7"), timeout=10).status_code == 404
    meta = requests.get(s.url("/metadata"), timeout=10).json()
    assert meta["model_spec"] == {"name": "mnist", "signature_name": "", "version": "1"}
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["flatten_input"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in sig["inputs"]["flatten_input"]["tensor_shape"]["dim"]] == [
        "-1",
        "28",
        "28",
    ]

    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "mnist"
    request.metadata_field.append("signature_def")
    response = s.stub().GetModelMetadata(request, timeout=10.0)
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(sig_map)
    assert "serving_default" in sig_map.signature_def
    model_status = model_service_pb2_grpc.ModelServiceStub(
        grpc.insecure_channel(s.grpc_target)
    ).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "mnist"}), timeout=10
    )
    assert [v.version for v in model_status.model_version_status] == [1]
    assert (
        model_status.model_version_status[0].state
        == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    )


@pytest.mark.timeout(300)
def test_warmup_file_is_replayed_before_ready(servers: dict[str, Served]) -> None:
    s = servers["mnist"]
    warm = requests.get(s.url("/stats"), timeout=10).json()["versions"]["1"]["warmup"]
    assert warm["source"] == "file" and warm["requests"] == 5 and warm["error"] is None
    assert "warmup: file, 5 request(s)" in s.process.log
    other = requests.get(servers["two"].url("/stats"), timeout=10).json()["versions"]["1"]["warmup"]
    assert other["source"] == "synthetic"


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (b"{not json", ["JSON Parse error"]),
        (
            {"instances": [[[0.0] * 28] * 27]},
            ["'flatten_input'", "[-1, 28, 28]", "DT_FLOAT", "[27, 28]"],
        ),
        ({"instances": [["a"] * 28] * 28}, ["'flatten_input'", "DT_FLOAT", "received"]),
        ({"instances": [{"b64": "AAAA"}]}, ["'flatten_input'", "DT_STRING"]),
        ({"instances": [[0.0] * 784], "signature_name": "nope"}, ["signature 'nope' not found"]),
        ({"rows": []}, ['"instances"', '"inputs"']),
    ],
)
def test_malformed_requests_get_400_with_a_useful_message(
    servers: dict[str, Served], body: object, fragments: list[str]
) -> None:
    s = servers["mnist"]
    data = body if isinstance(body, bytes) else None
    response = requests.post(s.url(":predict"), data=data, json=None if data else body, timeout=10)
    assert response.status_code == 400
    for fragment in fragments:
        assert fragment in response.json()["error"]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.inputs["flatten_input"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 5), np.float32)))
    with pytest.raises(grpc.RpcError) as err:
        s.stub().Predict(request, timeout=10.0)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "[-1, 28, 28]" in err.value.details()


@pytest.mark.timeout(300)
def test_batching_merges_concurrent_requests_without_mixing_results(
    servers: dict[str, Served],
) -> None:
    s = servers["mnist"]
    before = requests.get(s.url("/stats"), timeout=10).json()["versions"]["1"]["batching"][
        "serving_default"
    ]
    rng = np.random.default_rng(9)
    xs = [rng.random((1 + i % 2, 28, 28), dtype=np.float32) for i in range(24)]
    want = reference_predict(s.base / "0001", {"flatten_input": np.concatenate(xs)})["output_0"]
    offsets = np.cumsum([0] + [len(x) for x in xs])
    session = threading.local()

    def call(i: int) -> np.ndarray:
        if not hasattr(session, "s"):
            session.s = requests.Session()
        if i % 3 == 2:  # gRPC callers share the same batches as REST callers
            return _grpc_predict(s, {"flatten_input": xs[i]})["output_0"]
        r = session.s.post(s.url(":predict"), json={"instances": xs[i].tolist()}, timeout=30)
        assert r.status_code == 200, r.text
        return np.array(r.json()["predictions"])

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(call, range(24)))
    for i, got in enumerate(results):
        np.testing.assert_allclose(
            got,
            want[offsets[i] : offsets[i + 1]],
            rtol=1e-5,
            atol=1e-7,
            err_msg=f"request {i} got another request's predictions",
        )
    after = requests.get(s.url("/stats"), timeout=10).json()["versions"]["1"]["batching"][
        "serving_default"
    ]
    assert after["requests"] - before["requests"] == 24
    assert after["rows"] - before["rows"] == int(offsets[-1])
    assert after["max_batch_size_seen"] > 1
    assert after["batches"] - before["batches"] < 24  # merged, not one call per request


@pytest.mark.timeout(300)
def test_new_version_is_hot_swapped_with_no_failed_request(
    servers: dict[str, Served], tmp_path: Path
) -> None:
    s = servers["swap"]
    x = np.random.default_rng(5).random((1, 28, 28), dtype=np.float32)
    v2_dir = make_mnist_like_model(tmp_path / "v2", seed=2)
    want = {
        1: reference_predict(s.base / "0001", {"flatten_input": x})["output_0"],
        2: reference_predict(v2_dir, {"flatten_input": x})["output_0"],
    }
    failures: list[str] = []
    answered: dict[int, list[int]] = {i: [] for i in range(4)}  # client -> versions, in order
    stop = threading.Event()

    def client_loop(idx: int, use_grpc: bool) -> None:
        session = requests.Session()
        while not stop.is_set():
            try:
                if use_grpc:
                    got = _grpc_predict(s, {"flatten_input": x})["output_0"]
                else:
                    r = session.post(s.url(":predict"), json={"instances": x.tolist()}, timeout=10)
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text}")
                        continue
                    got = np.array(r.json()["predictions"])
            except Exception as exc:
                failures.append(repr(exc))
                continue
            matches = [v for v, w in want.items() if np.allclose(got, w, rtol=1e-5, atol=1e-7)]
            if len(matches) != 1:
                failures.append("prediction matches neither version")
            else:
                answered[idx].append(matches[0])

    clients = [threading.Thread(target=client_loop, args=(i, i % 2 == 1)) for i in range(4)]
    for c in clients:
        c.start()
    try:
        deadline = time.monotonic() + 30
        while not all(answered.values()) and time.monotonic() < deadline:
            time.sleep(0.05)  # every client is answered by version 1 before the swap
        staging = s.base / ".staging-0002"
        shutil.copytree(v2_dir, staging)
        os.rename(staging, s.base / "0002")  # atomic publish, as TF Serving advises
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = {
                v["version"]: v["state"]
                for v in requests.get(s.url(), timeout=10).json()["model_version_status"]
            }
            if states == {"2": "AVAILABLE", "1": "END"}:
                break
            time.sleep(0.1)
        time.sleep(1.0)  # keep the clients running on the new version for a moment
    finally:
        stop.set()
        for c in clients:
            c.join(30)
    assert failures == []
    assert states == {"2": "AVAILABLE", "1": "END"}
    for versions in answered.values():
        assert versions[0] == 1 and versions[-1] == 2
        # Once a client saw the new version, the old one never answers it again.
        first_v2 = versions.index(2)
        assert set(versions[first_v2:]) == {2}

"""deployer.predict.payload: request encodings per signature, splitting under the online limit,
merging."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from deployer.errors import ConfigError
from deployer.predict.payload import (
    MAX_REQUEST_BYTES,
    encode_instances,
    merge_responses,
    request_bodies,
)
from deployer.wire.savedmodel import Signature, TensorSpec


def _sig(*inputs: TensorSpec, raw: frozenset[str] = frozenset()) -> Signature:
    return Signature("serving_default", inputs, (TensorSpec("out", "DT_FLOAT", (-1, 10)),), raw)


FLOAT = _sig(TensorSpec("flatten_input", "DT_FLOAT", (-1, 28, 28)))
RAW = _sig(TensorSpec("image_bytes", "DT_STRING", (-1,)), raw=frozenset({"DT_FLOAT"}))
PNG = _sig(TensorSpec("image_bytes", "DT_STRING", (-1,)))


def _body_instances(instances: list[object]) -> list[object]:
    ((_, body),) = request_bodies(instances)
    return list(json.loads(body)["instances"])


def test_float_inputs_keep_every_float32_bit_in_fewer_bytes() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((3, 28, 28), dtype=np.float32)
    x[0, :5, :5] = 0.0
    x[1, 0, 0] = 255.0
    x[2, 0, 0] = np.float32(1e-30)
    encoded = encode_instances(x.tolist(), FLOAT)
    assert encoded.forms == {"flatten_input": "JSON numbers at float32 precision"}
    back = np.asarray(_body_instances(encoded.instances), dtype=np.float32)
    np.testing.assert_array_equal(back, x)  # bit-exact after the server's float32 parse
    plain = json.dumps({"instances": x.tolist()}).encode()
    ((_, body),) = request_bodies(encoded.instances)
    assert len(body) < 0.6 * len(plain)
    assert b"255," in body and b"0,0,0" in body  # integral values carry no ".0"


def test_named_instances_and_values_of_other_types_are_left_alone() -> None:
    sig = _sig(
        TensorSpec("a", "DT_FLOAT", (-1, 2)),
        TensorSpec("ids", "DT_INT64", (-1, 2)),
        TensorSpec("d", "DT_DOUBLE", (-1,)),
    )
    inst = [{"a": [0.1, 2.0], "ids": [3, 4], "d": 0.1, "extra": [1.5]}]
    encoded = encode_instances(inst, sig)
    assert encoded.instances == [{"a": [0.1, 2], "ids": [3, 4], "d": 0.1, "extra": [1.5]}]
    assert list(encoded.forms) == ["a"]
    ragged = [[[0.5, 1.0], [2.0]]]
    assert encode_instances(ragged, FLOAT).instances == ragged
    assert encode_instances([{"flatten_input": [[1.0]]}], FLOAT).instances == [
        {"flatten_input": [[1]]}
    ]


def test_numbers_for_a_decode_raw_string_input_go_as_base64_of_raw_bytes() -> None:
    x = np.random.default_rng(1).random((2, 28, 28), dtype=np.float32)
    encoded = encode_instances(
        [x[0].tolist(), {"image_bytes": x[1].tolist()}, {"b64": "AAAA"}], RAW
    )
    first, second, third = encoded.instances
    assert (
        np.frombuffer(base64.b64decode(first["b64"]), "<f4").reshape(28, 28).tolist()
        == x[0].tolist()
    )
    assert (
        np.frombuffer(base64.b64decode(second["image_bytes"]["b64"]), "<f4").tolist()
        == x[1].ravel().tolist()
    )
    assert third == {"b64": "AAAA"}
    assert "base64 of raw float bytes" in encoded.forms["image_bytes"]
    ((_, body),) = request_bodies(encoded.instances[:1])
    assert len(body) < 4 * 784 * 1.4  # ~5.3 B per float, not ~20 as JSON


def test_numbers_for_a_string_input_the_model_decodes_itself_are_refused() -> None:
    assert encode_instances([{"b64": "iVBORw0K"}, "text"], PNG).instances == [
        {"b64": "iVBORw0K"},
        "text",
    ]
    with pytest.raises(ConfigError) as info:
        encode_instances([{"b64": "iVBORw0K"}, [[0.0, 1.0]]], PNG)
    assert "instance 1: input 'image_bytes' is a string tensor" in info.value.message
    assert '{"b64"' in (info.value.hint or "")
    two_types = _sig(TensorSpec("x", "DT_STRING", (-1,)), raw=frozenset({"DT_FLOAT", "DT_UINT8"}))
    with pytest.raises(ConfigError, match="several types"):
        encode_instances([[1.0]], two_types)


def test_bodies_stay_under_the_limit_keep_order_and_refuse_an_oversized_instance() -> None:
    instances = [[i] * 50 for i in range(200)]
    bodies = request_bodies(instances, limit=1000)
    assert len(bodies) > 1
    assert all(len(b) <= 1000 for _, b in bodies)
    seen = [inst for _, b in bodies for inst in json.loads(b)["instances"]]
    assert seen == instances
    starts = [first for first, _ in bodies]
    assert starts[0] == 0 and starts == sorted(starts)
    assert len(json.loads(bodies[0][1])["instances"]) == starts[1]
    assert len(request_bodies(instances)) == 1 and MAX_REQUEST_BYTES == 1_572_864
    with pytest.raises(ConfigError, match=r"instance 1 alone is .* over the") as info:
        request_bodies([[1], list(range(1000))], limit=1000)
    assert "batch-predict" in (info.value.hint or "")


def test_merge_keeps_prediction_order_and_reports_each_deployed_model() -> None:
    one = {"predictions": [1, 2], "deployedModelId": "7", "model": "m"}
    assert merge_responses([one]) == one
    merged = merge_responses(
        [
            one,
            {"predictions": [3], "deployedModelId": "8"},
            {"predictions": [4], "deployedModelId": "7"},
        ]
    )
    assert merged["predictions"] == [1, 2, 3, 4]
    assert merged["deployedModelId"] == "7,8" and merged["model"] == "m"

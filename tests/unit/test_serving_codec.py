"""The TF Serving JSON codec: request forms, b64, dtype/shape checks and their messages."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from deployer.serving.codec import (
    RequestError,
    SignatureInfo,
    TensorInfo,
    check_arrays,
    decode_json,
    encode_json,
)

F32 = np.dtype(np.float32)
IMG = TensorInfo("flatten_input", F32, "DT_FLOAT", (None, 2, 2))
ONE = SignatureInfo("serving_default", {"flatten_input": IMG}, {"output_0": IMG})
TWO = SignatureInfo(
    "serving_default",
    {
        "a": TensorInfo("a", F32, "DT_FLOAT", (None, 3)),
        "b": TensorInfo("b", np.dtype(np.int32), "DT_INT32", (None,)),
    },
    {},
)
STR = SignatureInfo(
    "serving_default",
    {"image_bytes": TensorInfo("image_bytes", np.dtype(object), "DT_STRING", (None,))},
    {},
)


def test_row_format_single_input_stacks_instances() -> None:
    arrays, row = decode_json({"instances": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]}, ONE)
    assert row is True
    assert arrays["flatten_input"].dtype == np.float32
    assert arrays["flatten_input"].shape == (2, 2, 2)


def test_row_format_named_inputs_become_columns() -> None:
    arrays, _ = decode_json(
        {"instances": [{"a": [1, 2, 3], "b": 4}, {"a": [5, 6, 7], "b": 8}]}, TWO
    )
    assert arrays["a"].shape == (2, 3)
    assert arrays["b"].tolist() == [4, 8]
    assert arrays["b"].dtype == np.int32


def test_columnar_format_keeps_full_tensors() -> None:
    arrays, row = decode_json({"inputs": {"a": [[1, 2, 3]], "b": [1]}}, TWO)
    assert row is False
    assert arrays["a"].shape == (1, 3)


def test_b64_objects_decode_to_bytes_for_string_inputs() -> None:
    payload = b"\x89PNG\x00\xff"
    arrays, _ = decode_json(
        {"instances": [{"b64": base64.b64encode(payload).decode()}, "plain"]}, STR
    )
    assert arrays["image_bytes"].tolist() == [payload, b"plain"]


def test_wrong_instance_shape_names_input_expected_shape_dtype_and_received() -> None:
    with pytest.raises(RequestError) as err:
        decode_json({"instances": [[1, 2, 3]]}, ONE)
    message = str(err.value)
    assert "'flatten_input'" in message
    assert "[-1, 2, 2]" in message and "DT_FLOAT" in message
    assert "received instances of shape [3]" in message


def test_strings_where_floats_are_expected_are_rejected_with_the_dtype() -> None:
    with pytest.raises(RequestError, match=r"'flatten_input' expects .*DT_FLOAT.*received"):
        decode_json({"instances": [[["a", "b"], ["c", "d"]]]}, ONE)


def test_floats_are_not_silently_truncated_into_int_inputs() -> None:
    with pytest.raises(RequestError, match=r"'b' expects .*DT_INT32; received floats"):
        decode_json({"instances": [{"a": [1, 2, 3], "b": 0.5}]}, TWO)


def test_ragged_instances_are_reported_as_ragged() -> None:
    with pytest.raises(RequestError, match="ragged"):
        decode_json({"instances": [[[1, 2], [3]]]}, ONE)


@pytest.mark.parametrize(
    ("sig", "body", "fragment"),
    [
        (ONE, [1, 2], "JSON object"),
        (ONE, {}, 'exactly one of "instances"'),
        (ONE, {"instances": []}, "non-empty list"),
        (ONE, {"instances": [1], "inputs": [1]}, "exactly one"),
        (TWO, {"instances": [{"a": [1, 2, 3]}]}, "missing input 'b'"),
        (TWO, {"instances": [{"a": [1, 2, 3], "b": 1, "c": 2}]}, "unknown input(s) ['c']"),
        (TWO, {"instances": [[1, 2, 3]]}, "must be an object keyed by input name"),
        (TWO, {"inputs": {"a": [[1, 2, 3]]}}, "do not match signature"),
        (ONE, {"instances": [{"b64": "AAAA"}]}, "only string (DT_STRING) inputs accept"),
    ],
)
def test_malformed_bodies_get_specific_messages(
    sig: SignatureInfo, body: object, fragment: str
) -> None:
    with pytest.raises(RequestError) as err:
        decode_json(body, sig)
    assert fragment in str(err.value)


def test_invalid_base64_is_a_request_error() -> None:
    with pytest.raises(RequestError, match="invalid base64"):
        decode_json({"instances": [{"b64": "not base64!"}]}, STR)


def test_check_arrays_casts_safely_and_rejects_unsafe_dtypes() -> None:
    out = check_arrays(ONE, {"flatten_input": np.zeros((1, 2, 2), np.float64)})
    assert out["flatten_input"].dtype == np.float32
    with pytest.raises(RequestError, match="received dtype <U"):
        check_arrays(ONE, {"flatten_input": np.array([[["x", "y"], ["z", "w"]]])})
    with pytest.raises(RequestError, match="do not match"):
        check_arrays(ONE, {"other": np.zeros((1, 2, 2))})


def test_encode_row_format_single_and_multiple_outputs() -> None:
    single = encode_json({"y": np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)}, row_format=True)
    assert single == {"predictions": [[1.0, 2.0], [3.0, 4.0]]}
    multi = encode_json({"y": np.array([1, 2]), "z": np.array([[0.5], [1.5]])}, row_format=True)
    assert multi == {"predictions": [{"y": 1, "z": [0.5]}, {"y": 2, "z": [1.5]}]}


def test_encode_columnar_format_and_bytes_outputs() -> None:
    outputs = {
        "echo_bytes": np.array([b"\xff\x00"], dtype=object),
        "name": np.array([b"ok"], dtype=object),
    }
    body = encode_json(outputs, row_format=False)
    # TF Serving answers outputs named *_bytes as base64 objects, other strings as text.
    assert body == {"outputs": {"echo_bytes": [{"b64": "/wA="}], "name": ["ok"]}}

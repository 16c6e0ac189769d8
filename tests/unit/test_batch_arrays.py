"""The batch fast path's bulk decoder: JSON Lines of number arrays read into one array.

It must give exactly what parsing each line as JSON gives, never decode a line that is not
valid JSON (the line is echoed as is into the outputs), and hand anything it does not take
back to the JSON path (None) instead of guessing.
"""

from __future__ import annotations

import io
import json

import numpy as np
import orjson
import pytest

from deployer.emulator.vertex import batch_arrays
from deployer.emulator.vertex.batch_arrays import decode_block, iter_blocks, npy_body


def _reference(lines: list[bytes]) -> np.ndarray:
    return np.asarray([json.loads(line) for line in lines])


@pytest.mark.parametrize("dumps", [json.dumps, lambda v: orjson.dumps(v).decode()])
def test_integers_and_floats_decode_exactly_as_json(dumps: object) -> None:
    rng = np.random.default_rng(0)
    ints = rng.integers(-(10**12), 10**12, (200, 2, 3))
    ints[:, 0, 0] = 0  # "0" and "-0"-free zeros next to big values
    floats = rng.normal(size=(200, 4)) * 10.0 ** rng.integers(-9, 9, (200, 4))
    for values in (ints, (rng.random((300, 28, 28)) * 255).astype(int), floats):
        lines = [dumps(row).encode() for row in values.tolist()]  # type: ignore[operator]
        got = decode_block(lines)
        assert got is not None
        assert got.dtype.kind in ("f" if values.dtype.kind == "f" else "iu")
        assert got.shape == values.shape
        np.testing.assert_array_equal(got, _reference(lines))


@pytest.mark.parametrize(
    "line",
    [
        b"[+1,2]",
        b"[.5,2]",
        b"[01,2]",
        b"[-01,2]",
        b"[1.,2]",
        b"[1e,2]",
        b"[1e+-5,2]",
        b"[1-2,3]",
        b"[--1,2]",
        b"[-,12]",
        b"[1.2.3,4]",
        b"[1e5.5,2]",
        b"[0x1,2]",
        b"[1,]",
        b"[,1]",
        b"[1,2]5",
        b"[1,2],",
        b"[1,-]",
    ],
)
def test_a_line_that_is_not_json_is_never_decoded(line: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(line)
    assert decode_block([b"[3,4]", line]) is None
    assert decode_block([b"[3.5,4]", line]) is None


@pytest.mark.parametrize(
    "lines",
    [
        [b"[1,2]", b"[1,2,3]"],  # another shape
        [b"[[1,2],[3,4]]", b"[1[,2],[3,4]]"],  # same skeleton, numbers out of place
        [b"[[1,2],[3,4]]", b"[[5[1,2],[3,]]"],
        [b"[1,2]", b"[1 ,2]"],  # spacing the bulk path does not read
        [b"[NaN,1]"],
        [b"[true,1]"],
        [b'["a",1]'],
        [b'{"x":[1,2]}'],
        [b"[[1],2]"],
        [b"[]"],
        [b"[12345678901234567890,1]"],  # past int64
    ],
)
def test_what_the_bulk_path_does_not_read_goes_back_to_the_json_path(
    lines: list[bytes],
) -> None:
    assert decode_block(lines) is None


def test_json_dumps_spacing_and_signs_are_read() -> None:
    lines = [b"[[1, -2], [3, 4]]", b"[[-0, 20], [-5, 0]]", b"[[1E+5, -2.5e-3], [1e05, 7]]"]
    got = decode_block(lines)
    assert got is not None
    np.testing.assert_array_equal(got, _reference(lines))


def test_blocks_keep_line_numbers_across_reads_and_skip_blank_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch_arrays, "_READ", 7)  # lines straddle every read
    text = b"[1,2]\n\n  [3,4]  \n[5,6]\r\n\n[7,8]"
    blocks = list(iter_blocks(io.BytesIO(text), "gs://b/x.jsonl", 2))
    assert [b.lines for b in blocks] == [[b"[1,2]", b"[3,4]"], [b"[5,6]", b"[7,8]"]]
    assert [b.numbers for b in blocks] == [[1, 3], [4, 6]]
    assert {b.source for b in blocks} == {"gs://b/x.jsonl"}


def test_instances_travel_in_the_narrowest_exact_dtype() -> None:
    for values, dtype in (
        (np.array([[0, 255]]), np.uint8),
        (np.array([[-3, 100]]), np.int8),
        (np.array([[70_000, -1]]), np.int32),
        (np.array([[2**40]]), np.int64),
        (np.array([[0.5, 1e300]]), np.float64),
    ):
        back = np.load(io.BytesIO(npy_body(values)), allow_pickle=False)
        assert back.dtype == dtype
        np.testing.assert_array_equal(back, values)


def test_prediction_rows_are_the_text_the_json_path_writes() -> None:
    rng = np.random.default_rng(1)
    probs = rng.random((64, 10)).astype(np.float32)
    probs[0, :3] = [np.nan, 1e-8, 1e30]
    rows = batch_arrays.prediction_rows({"output_0": probs}, 64)
    assert rows == [orjson.dumps(r) for r in probs.tolist()]
    named = batch_arrays.prediction_rows(
        {"scores": probs[:2], "label": np.array([3, 4], dtype=np.int64)}, 2
    )
    assert named is not None and json.loads(named[1])["label"] == 4
    assert batch_arrays.prediction_rows({"total": np.float32(1.0) + np.zeros(())}, 1) is None


def test_a_float_after_many_integer_rows_reads_the_block_as_floats() -> None:
    lines = [b"[1, 2]"] * 300 + [b"[0.5, -3]"]
    got = decode_block(lines)
    assert got is not None and got.dtype == np.float64
    np.testing.assert_array_equal(got, _reference(lines))


def test_slices_of_different_integer_ranges_meet_in_an_exact_dtype() -> None:
    lines = [b"[1, 200]"] * 300 + [b"[-1, 2]", b"[70000, 0]"]  # uint8, then int32 rows
    got = decode_block(lines)
    assert got is not None and got.dtype.kind == "i"
    np.testing.assert_array_equal(got, _reference(lines))

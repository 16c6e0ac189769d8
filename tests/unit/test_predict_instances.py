"""`deployer.predict.instances.read_instances`: every instance-file form, and every way one can be
wrong as a ConfigError naming the file and the line (issue 15: no UnicodeDecodeError or
RecursionError, a bad JSON Lines row reported at its own line)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from deployer.errors import ConfigError
from deployer.predict.instances import read_instances
from deployer.wire.jsonlimits import MAX_DEPTH

DEEP = "[" * 100_000 + "]" * 100_000


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def refused(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        read_instances(path)
    error = info.value
    assert str(path) in error.message and error.hint
    assert error.exit_code == 3
    return error


# --- the forms it reads ------------------------------------------------------------------


def test_a_json_list_is_the_instances(tmp_path: Path) -> None:
    path = write(tmp_path, "x.json", json.dumps([[1, 2], {"a": 3}, "s"]))
    assert read_instances(path) == [[1, 2], {"a": 3}, "s"]


def test_a_pretty_printed_list_over_several_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "x.json", json.dumps([[1.5, 2], [3, 4]], indent=2))
    assert read_instances(str(path)) == [[1.5, 2], [3, 4]]


def test_an_object_with_instances(tmp_path: Path) -> None:
    path = write(tmp_path, "x.json", json.dumps({"instances": [[0.0] * 3], "parameters": {}}))
    assert read_instances(path) == [[0.0, 0.0, 0.0]]


def test_json_lines_one_instance_a_line_blank_lines_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", '{"a": 1}\n\n[2, 3]\r\n"four"\n')
    assert read_instances(path) == [{"a": 1}, [2, 3], "four"]


def test_a_jsonl_name_is_read_as_json_lines_even_with_one_object(tmp_path: Path) -> None:
    path = write(tmp_path, "one.jsonl", '{"instances": [1]}\n')
    assert read_instances(path) == [{"instances": [1]}]
    # The same text under a .json name is the {"instances": [...]} form.
    assert read_instances(write(tmp_path, "one.json", '{"instances": [1]}\n')) == [1]


def test_a_utf8_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    assert read_instances(write(tmp_path, "bom.json", b"\xef\xbb\xbf[[1]]")) == [[1]]


def test_an_npy_array_is_one_instance_per_row(tmp_path: Path) -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    np.save(tmp_path / "x.npy", x)
    assert read_instances(tmp_path / "x.npy") == x.tolist()


def test_nesting_up_to_the_bound_is_read(tmp_path: Path) -> None:
    deep_ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert read_instances(write(tmp_path, "ok.json", deep_ok)) == json.loads(deep_ok)


# --- what it refuses, and how it says so ---------------------------------------------------


def test_random_bytes_are_not_utf8_text(tmp_path: Path) -> None:
    data = random.Random(15).randbytes(4096)
    error = refused(write(tmp_path, "random.bin", data))
    assert "not UTF-8 text" in error.message
    assert "--file" in (error.hint or "")


def test_a_non_utf8_byte_is_reported_at_its_line_and_position(tmp_path: Path) -> None:
    error = refused(
        write(tmp_path, "latin1.json", '[["a"],\n["b"],\n["\xe9t\xe9"]]'.encode("latin-1"))
    )
    assert "latin1.json: line 3: not UTF-8 text (byte 0xe9 at position 17)" in error.message


def test_json_nested_100000_deep_is_refused_without_recursing(tmp_path: Path) -> None:
    error = refused(write(tmp_path, "deep.json", DEEP))
    assert "line 1: JSON nested deeper than 100 levels" in error.message
    assert "flatten" in (error.hint or "")
    wrapped = '{"instances": ' + DEEP + "}"
    assert "nested deeper" in refused(write(tmp_path, "deep2.json", wrapped)).message


def test_a_deep_json_lines_row_is_refused_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "deep.jsonl", "[1]\n[2]\n" + DEEP + "\n[4]\n")
    assert "deep.jsonl: line 3: JSON nested deeper" in refused(path).message
    # Without the .jsonl name the same file is found to be JSON Lines, same line.
    path = write(tmp_path, "deep.txt", "[1]\n[2]\n" + DEEP + "\n[4]\n")
    assert "deep.txt: line 3: JSON nested deeper" in refused(path).message


def test_a_bad_json_lines_row_2_is_reported_as_line_2(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", '{"a": 1}\n{"a": 2,}\n{"a": 3}\n')
    error = refused(path)
    assert "x.txt: line 2: not valid JSON" in error.message
    assert "column 9" in error.message
    assert "one JSON value per line" in (error.hint or "")
    # Blank lines still count.
    path = write(tmp_path, "y.jsonl", "[1]\n\n\n[2\n")
    assert "y.jsonl: line 4: not valid JSON" in refused(path).message


def test_a_broken_pretty_printed_document_is_reported_at_the_documents_line(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "x.json", "[\n  [1, 2],\n  [3, 4],\n  [5 6]\n]\n")
    error = refused(path)
    assert "x.json: line 4: not valid JSON (Expecting ',' delimiter at column 6)" in (error.message)


def test_a_first_line_error_is_line_1(tmp_path: Path) -> None:
    assert "line 1: not valid JSON" in refused(write(tmp_path, "x.json", "{nope\n[1]\n")).message


def test_a_lone_surrogate_is_refused(tmp_path: Path) -> None:
    error = refused(write(tmp_path, "s.json", '["\\ud800"]'))
    assert "lone surrogate" in error.message
    assert "\\ud800" in (error.hint or "")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"instances": 5}', '"instances" is a JSON number, not a list'),
        ('{"inputs": [1]}', "a JSON object, not a list or an object with"),
        ("42", "a JSON number, not a list"),
        ("null", "a JSON null, not a list"),
    ],
)
def test_the_wrong_shape_is_named(tmp_path: Path, text: str, said: str) -> None:
    assert said in refused(write(tmp_path, "x.json", text)).message


@pytest.mark.parametrize("text", ["", "\n\n  \n", "[]", '{"instances": []}'])
def test_no_instances_is_an_error(tmp_path: Path, text: str) -> None:
    assert "no instances" in refused(write(tmp_path, "x.json", text)).message


def test_an_unreadable_npy_is_refused(tmp_path: Path) -> None:
    assert "not a readable .npy" in refused(write(tmp_path, "x.npy", b"not numpy")).message
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "not a readable .npy" in refused(tmp_path / "o.npy").message
    np.save(tmp_path / "s.npy", np.float32(1.0))
    assert "a scalar" in refused(tmp_path / "s.npy").message


def test_a_directory_is_not_readable(tmp_path: Path) -> None:
    (tmp_path / "d.json").mkdir()
    assert "cannot read" in refused(tmp_path / "d.json").message

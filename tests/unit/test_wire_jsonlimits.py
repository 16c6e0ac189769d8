"""`deployer.wire.jsonlimits` as the client side uses it: the refusal kinds, text input, and
JSON Lines rows of batch inputs bounded like request bodies (a deep row is a FormatError at its
line, not a RecursionError). The depth scan itself: test_emulator_jsonlimits.py."""

from __future__ import annotations

import pytest

from deployer.emulator import jsonlimits as emulator_jsonlimits
from deployer.wire import batch_formats, jsonlimits

DEEP = "[" * 100_000 + "]" * 100_000


def test_the_emulator_uses_the_one_implementation() -> None:
    assert emulator_jsonlimits.loads is jsonlimits.loads
    assert emulator_jsonlimits.check_depth is jsonlimits.check_depth
    assert emulator_jsonlimits.JsonRejected is jsonlimits.JsonRejected


def test_refusals_say_which_kind() -> None:
    with pytest.raises(jsonlimits.JsonTooDeep):
        jsonlimits.loads(DEEP)
    with pytest.raises(jsonlimits.LoneSurrogate):
        jsonlimits.loads('["\\ud800"]')
    assert issubclass(jsonlimits.JsonTooDeep, jsonlimits.JsonRejected)
    assert issubclass(jsonlimits.LoneSurrogate, ValueError)


def test_text_with_paired_or_no_surrogates_passes() -> None:
    assert jsonlimits.loads('["\\ud83d\\ude00", "plain"]') == ["\U0001f600", "plain"]
    assert jsonlimits.loads('["\U0001f600"]') == ["\U0001f600"]
    with pytest.raises(jsonlimits.LoneSurrogate):
        jsonlimits.loads('["\udc00"]')  # a surrogate already in the str


def test_a_deep_json_lines_row_is_a_format_error_at_its_line() -> None:
    rows = ["[1]", "", DEEP, "[4]"]
    with pytest.raises(batch_formats.FormatError) as info:
        list(batch_formats.iter_jsonl(rows))
    assert info.value.where == "line 3"
    assert "nested deeper than 100 levels" in info.value.reason
    assert isinstance(info.value.__cause__, jsonlimits.JsonTooDeep)


def test_a_bad_json_lines_row_keeps_its_message() -> None:
    with pytest.raises(batch_formats.FormatError, match=r"line 2: not valid JSON"):
        list(batch_formats.iter_jsonl(["[1]", "[2,"]))
    assert list(batch_formats.iter_jsonl([b"[1]", b"", b'{"a": 2}'])) == [(1, [1]), (3, {"a": 2})]

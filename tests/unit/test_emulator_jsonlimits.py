"""`deployer.emulator.jsonlimits`: JSON depth is bounded before parsing; lone surrogates refused."""

from __future__ import annotations

import json

import pytest

from deployer.emulator.jsonlimits import MAX_DEPTH, JsonRejected, check_depth, loads


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_depth_up_to_the_bound_parses_and_one_more_is_refused() -> None:
    assert loads(nested(MAX_DEPTH)) is not None
    with pytest.raises(JsonRejected, match="deeper than 100 levels"):
        loads(nested(MAX_DEPTH + 1))
    mixed = b'{"a":' * 50 + b"[" * 50 + b"1" + b"]" * 50 + b"}" * 50
    assert loads(mixed) is not None
    with pytest.raises(JsonRejected):
        loads(b'{"a":' * 51 + b"[" * 50 + b"1" + b"]" * 50 + b"}" * 51)


def test_a_100000_deep_body_is_refused_without_recursing() -> None:
    for body in (nested(100_000), b'{"a":' * 100_000 + b"1" + b"}" * 100_000, b"[" * 100_000):
        with pytest.raises(JsonRejected):
            loads(body)


def test_brackets_inside_strings_do_not_count() -> None:
    body = json.dumps(["[" * 500, {"k": "{" * 500 + '\\"[[[['}]).encode()
    assert loads(body) == ["[" * 500, {"k": "{" * 500 + '\\"[[[['}]
    check_depth('["' + "[" * 300 + '"]')


def test_wide_shallow_bodies_pass() -> None:
    body = b"[" + b"[1,2]," * 10_000 + b"[1]]"
    assert len(loads(body)) == 10_001


def test_utf16_bodies_are_scanned_as_text() -> None:
    with pytest.raises(JsonRejected):
        check_depth(nested(1000).decode().encode("utf-16"))
    check_depth(nested(50).decode().encode("utf-16"))


def test_unbalanced_input_is_left_to_the_parser() -> None:
    with pytest.raises(ValueError) as info:
        loads(b"[1]" + b"]" * 200)
    assert not isinstance(info.value, JsonRejected)


@pytest.mark.parametrize(
    "body",
    [
        b'"\\ud800"',
        b'{"name": "a\\udfffb"}',
        b'[{"k": ["\\uDBFF"]}]',
        '"\ud800"'.encode("utf-8", "surrogatepass"),
    ],
)
def test_lone_surrogates_are_refused(body: bytes) -> None:
    with pytest.raises(JsonRejected, match="lone surrogate"):
        loads(body)


def test_surrogate_pairs_are_text() -> None:
    assert loads(b'"\\ud83d\\ude00"') == "\U0001f600"
    assert loads('"\U0001f600"') == "\U0001f600"

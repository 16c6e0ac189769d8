"""matchGlob as GCS reads it, matched in time linear in the name whatever the pattern."""

from __future__ import annotations

import time

import pytest

from deployer.emulator.http import ServiceError
from deployer.emulator.objectquery import glob_matcher


@pytest.mark.parametrize(
    ("glob", "name", "matches"),
    [
        ("**.json", "a.json", True),
        ("**.json", "d/e/c.json", True),
        ("*.json", "d/b.json", False),
        ("d/**/*.txt", "d/e/f/c.txt", True),
        ("d/**/*.txt", "d/c.txt", True),
        ("{a.txt,d/b.json}", "d/b.json", True),
        ("{a.txt,d/b.json}", "a.json", False),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[ab]x", "bx", True),
        ("[!ab]x", "bx", False),
        ("x/{y,z{1,2}}", "x/z2", True),
    ],
)
def test_glob_syntax(glob: str, name: str, matches: bool) -> None:
    assert glob_matcher(glob)(name) is matches


def test_a_pathological_glob_is_matched_in_linear_time() -> None:
    started = time.perf_counter()
    assert glob_matcher("**a" * 12 + "**b")("a" * 1024) is False
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("glob", ["{a,b", "a}", "[ab", "x" * 2000, "{a,b}" * 9])
def test_a_malformed_or_oversized_glob_is_a_400(glob: str) -> None:
    with pytest.raises(ServiceError) as err:
        glob_matcher(glob)
    assert err.value.http_status == 400

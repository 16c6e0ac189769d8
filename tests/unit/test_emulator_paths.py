"""`deployer.emulator.paths.contained`: names become paths only when they stay under the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deployer.emulator.http import ServiceError
from deployer.emulator.paths import contained


@pytest.mark.parametrize(
    "name",
    ["saved_model.pb", "variables/variables.index", "a b/ü.txt", "..x", "x..", ".hidden", "a..b"],
)
def test_plain_relative_names_map_under_the_root(tmp_path: Path, name: str) -> None:
    assert contained(tmp_path, name, what="object") == tmp_path / name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../victim.txt", "'..' segment"),
        ("a/../../victim.txt", "'..' segment"),
        ("a/..", "'..' segment"),
        ("./a", "'.' segment"),
        ("/etc/passwd", "absolute path"),
        ("a//b", "empty path segment"),
        ("a/", "empty path segment"),
        ("", "empty"),
        ("a\0b", "NUL"),
        ("a\\..\\b", "backslash"),
        ("C:x", "drive letter"),
        ("\ud800", "lone surrogate"),
        ("x" * 256, "longer than 255 bytes"),
    ],
)
def test_unsafe_names_are_refused_with_a_400_naming_them(
    tmp_path: Path, name: str, reason: str
) -> None:
    with pytest.raises(ServiceError) as info:
        contained(tmp_path, name, what=f"Object gs://b/{name}")
    assert info.value.http_status == 400
    assert info.value.status == "INVALID_ARGUMENT"
    assert reason in info.value.message
    assert "cannot be used as a local file path" in info.value.message


def test_non_strings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="not a string"):
        contained(tmp_path, 5, what="object")  # type: ignore[arg-type]


def test_a_symlink_under_the_root_pointing_out_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(tmp_path, root / "link")
    with pytest.raises(ServiceError, match="outside its directory"):
        contained(root, "link/victim.txt", what="object")
    assert contained(root, "other/file", what="object") == root / "other" / "file"

"""`deployer serve` argument checks (before any TensorFlow import) and the CPU split helper."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from deployer.cli import cli
from deployer.errors import ConfigError
from deployer.serving.runtime import threads_for_share


def _invoke(*args: str) -> BaseException | None:
    return CliRunner().invoke(cli, ["serve", *args]).exception


def test_missing_base_dir_is_a_config_error(tmp_path: Path) -> None:
    exc = _invoke(str(tmp_path / "nope"), "--model-name", "m")
    assert isinstance(exc, ConfigError) and "is not a directory" in exc.message


def test_a_savedmodel_given_instead_of_a_base_dir_says_how_to_fix_it(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"")
    exc = _invoke(str(tmp_path), "--model-name", "m")
    assert isinstance(exc, ConfigError)
    assert exc.hint is not None and "0001" in exc.hint


def test_bad_batching_parameters_file_is_a_config_error(tmp_path: Path) -> None:
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: lots }")
    exc = _invoke(str(tmp_path), "--model-name", "m", "--batching-parameters", str(params))
    assert isinstance(exc, ConfigError) and "must be an integer" in exc.message
    exc = _invoke(
        str(tmp_path),
        "--model-name",
        "m",
        "--no-enable-batching",
        "--batching-parameters",
        str(params),
    )
    assert isinstance(exc, ConfigError) and "needs batching on" in exc.message


def test_serve_module_does_not_import_tensorflow() -> None:
    code = (
        "import sys, deployer.cli.serve, deployer.serving.replica; "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("share", "cpus", "want"),
    [(1, 8, (8, 2)), (4, 8, (2, 2)), (8, 8, (1, 1)), (16, 8, (1, 1)), (3, 16, (5, 2))],
)
def test_cpu_share_splits_thread_pools(share: int, cpus: int, want: tuple[int, int]) -> None:
    assert threads_for_share(share, cpus) == want

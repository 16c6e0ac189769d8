"""`deployer predict --instances FILE` on hostile files (issue 15), through the real entry point
under click's CliRunner: a ConfigError naming the file and line, exit 3, no traceback, and no
connection to the emulator (a listening loopback socket that must see no connection)."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from deployer.cli import main

SPEC = Path(__file__).parent / "specs" / "valid" / "mnist.yaml"
ROOT = Path(__file__).resolve().parents[2]
DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """Where DEPLOYER_EMULATOR points: any API call would connect here."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.setblocking(False)
        yield sock


def url(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def assert_no_connection(sock: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        sock.accept()


def run_predict(instances: Path, sock: socket.socket) -> tuple[int, str]:
    """`deployer predict SPEC --endpoint mnist-endpoint --instances FILE`: exit code, output."""
    argv = [
        "predict",
        str(SPEC),
        "--endpoint",
        "mnist-endpoint",
        "--instances",
        str(instances),
    ]
    return run_cli(argv, sock)


def run_cli(argv: list[str], sock: socket.socket) -> tuple[int, str]:
    """`deployer ARGV` in-process with DEPLOYER_EMULATOR at `sock`: exit code, output."""
    runner = CliRunner()
    with runner.isolation(env={"DEPLOYER_EMULATOR": url(sock)}) as (out, err, _):
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        return code, out.getvalue().decode() + err.getvalue().decode()


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (random.Random(7).randbytes(2048), "line "),
        (DEEP, "line 1: JSON nested deeper than 100 levels"),
        (b'{"instances": ' + DEEP + b"}", "line 1: JSON nested deeper than 100 levels"),
        (b"[1]\n[2]\n" + DEEP + b"\n", "line 3: JSON nested deeper than 100 levels"),
        (b'{"a": 1}\n{"a": 2,}\n', "line 2: not valid JSON"),
        (b"", "no instances"),
    ],
    ids=["random-bytes", "deep", "deep-in-instances", "deep-jsonl-row-3", "bad-row-2", "empty"],
)
def test_a_hostile_instances_file_is_a_clear_error_and_no_call(
    tmp_path: Path, listener: socket.socket, data: bytes, said: str
) -> None:
    path = tmp_path / "instances.txt"
    path.write_bytes(data)
    code, output = run_predict(path, listener)
    assert code == 3, output
    assert "Traceback" not in output
    assert output.startswith(f"error: {path}: ")
    assert said in output
    assert "fix:" in output
    assert_no_connection(listener)


def test_random_bytes_say_not_utf8(tmp_path: Path, listener: socket.socket) -> None:
    path = tmp_path / "noise.json"
    path.write_bytes(b"\xff" + random.Random(8).randbytes(1024))
    code, output = run_predict(path, listener)
    assert code == 3 and f"{path}: line 1: not UTF-8 text (byte 0xff at position 0)" in output
    assert_no_connection(listener)


def test_deep_json_in_a_real_process_has_no_traceback(
    tmp_path: Path, listener: socket.socket
) -> None:
    """The RecursionError depends on the interpreter's real stack: check a real process too."""
    path = tmp_path / "deep.json"
    path.write_bytes(DEEP)
    argv = ["predict", str(SPEC), "--endpoint", "mnist-endpoint", "--instances", str(path)]
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "DEPLOYER_EMULATOR": url(listener)},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "JSON nested deeper than 100 levels" in proc.stderr
    assert_no_connection(listener)

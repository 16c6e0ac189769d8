"""Helpers for the serving integration tests: start a server process, wait for it, stop it.

No tests here (the name only places it among the serving tests it supports). Processes are
always stopped (SIGTERM, then SIGKILL) and their stderr is kept in a file for assertions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.emulator import reported_port

ROOT = Path(__file__).resolve().parents[2]


def http(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    """One request with urllib: (status, parsed JSON body)."""
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


class ServerProcess:
    """A `deployer serve` or replica subprocess with its stderr captured to `log_path`."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def bound_port(self, api: str, timeout: float = 120.0) -> int:
        """The port the server reports for `api` ("REST" or "gRPC") once it has bound it.

        Servers are started with port 0 and the kernel picks the port, so two servers (or
        a server's REST and gRPC front ends) can never be handed the same one.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            port = reported_port(self.log, f"{api} API")
            if port is not None:
                return port
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.proc.returncode}:\n{self.log[-3000:]}"
                )
            time.sleep(0.05)
        raise AssertionError(
            f"server did not report its {api} port after {timeout}s:\n{self.log[-3000:]}"
        )

    def wait_ready(self, url: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.proc.returncode}:\n{self.log[-3000:]}"
                )
            try:
                status, _ = http("GET", url, timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready after {timeout}s:\n{self.log[-3000:]}")

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def serve_args(base: Path, name: str, rest: int, grpc: int, *extra: str) -> list[str]:
    return [
        "-m",
        "deployer",
        "serve",
        str(base),
        "--model-name",
        name,
        "--rest-port",
        str(rest),
        "--grpc-port",
        str(grpc),
        "--poll-interval",
        "0.2",
        *extra,
    ]


def replica_args(model_dir: Path, name: str, port: int, *extra: str) -> list[str]:
    return [
        "-m",
        "deployer.serving.replica",
        "--saved-model",
        str(model_dir),
        "--model-name",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra,
    ]

"""Test helper: the local emulator as a real subprocess on a free port with a temp data dir.

Owns `EmulatorProcess` (start, wait for health, read the request log, admin
faults, restart, kill -9, stop; always cleans up its process),
`emulator_env(url)` (the environment variables clients need), and the session's
collection of request logs for the wire contract test: after
`collect_request_logs(dir)` every emulator records bodies too, and what its
request log held is kept under `dir` before the log is cleared or deleted;
`session_request_log()` reads it all back (and the logs of emulators still running). Tests drive the
emulator only over HTTP, through the official clients.

Must not: import the emulator in-process (tests exercise the real process), or
leave a process running after `stop()`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import weakref
from pathlib import Path
from typing import Any, Self

# Where request logs are kept for the session's wire contract test (None: not collected).
_ARCHIVE_DIR: Path | None = None
_LIVE: weakref.WeakSet[EmulatorProcess] = weakref.WeakSet()


def collect_request_logs(directory: Path | None) -> None:
    """Keep every emulator's request log (with bodies) under `directory` from now on."""
    global _ARCHIVE_DIR
    _ARCHIVE_DIR = directory
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)


def session_request_log() -> list[dict[str, Any]]:
    """Every request-log entry kept this session, then those of emulators still running."""
    entries: list[dict[str, Any]] = []
    if _ARCHIVE_DIR is not None:
        for path in sorted(_ARCHIVE_DIR.glob("*.jsonl")):
            entries += _read_lines(path.read_bytes())
    for proc in list(_LIVE):
        entries += proc._unarchived()
    return entries


def _read_lines(data: bytes) -> list[dict[str, Any]]:
    # A line cut short by a kill -9 of its writer is skipped, not fatal.
    out = []
    for line in data.decode(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reported_port(log: str, api: str = "") -> int | None:
    """The port of the first "[API ]listening on [http://]HOST:PORT" line of a server's log.

    Servers in the tests bind port 0 and say which port they got, so no other process can
    take a port between our choosing it and the server binding it."""
    match = re.search(rf"{api}\s*listening on (?:http://)?[^\s:]+:(\d+)", log)
    return int(match.group(1)) if match else None


def emulator_env(url: str) -> dict[str, str]:
    """Environment variables that point clients (and deployer) at the emulator at `url`."""
    return {"STORAGE_EMULATOR_HOST": url, "DEPLOYER_EMULATOR": url}


class EmulatorError(RuntimeError):
    """The emulator process failed to start or answer."""


class EmulatorProcess:
    """A running `python -m deployer.emulator run` subprocess; use as a context manager."""

    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        start_timeout: float = 60.0,
        port: int | None = None,
        wire_contract: bool = True,
    ) -> None:
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="deployer-emu-")
        self.data_dir = Path(data_dir) if data_dir else Path(self._tmp.name) / "data"  # type: ignore[union-attr]
        # Beside the data dir, named after it: two emulators in one folder never share them.
        self.request_log_path = self.data_dir.parent / f"{self.data_dir.name}.requests.jsonl"
        self.stderr_path = self.data_dir.parent / f"{self.data_dir.name}.stderr.log"
        self.extra_args = list(extra_args or [])
        self.env = env
        self.start_timeout = start_timeout
        # None until the first start: the emulator binds port 0 and reports what it got, so
        # no other process can take a port between our choosing it and the server binding it.
        self._port = port
        self._log_offset = 0  # where this start's output begins in stderr_path
        # Whether the session's wire contract test sees this emulator's traffic (False for
        # tests that send malformed requests on purpose).
        self.wire_contract = wire_contract
        self._archived = 0  # bytes of the request log already kept for the session
        self._archive_name = f"{uuid.uuid4().hex}.jsonl"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmulatorError("the emulator has not been started yet")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # ---- lifecycle ----------------------------------------------------------------

    def start(self) -> EmulatorProcess:
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "deployer",
            "local",
            "run",
            "--port",
            str(self._port or 0),
            "--data-dir",
            str(self.data_dir),
            "--request-log",
            str(self.request_log_path),
            *(["--request-log-bodies"] if self._collected() else []),
            *self.extra_args,
        ]
        if self._collected():
            _LIVE.add(self)
        env = {**os.environ, **(self.env or {})}
        env.pop("STORAGE_EMULATOR_HOST", None)
        stderr = open(self.stderr_path, "ab")
        self._log_offset = stderr.tell()
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, env=env
            )
        finally:
            stderr.close()
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EmulatorError(
                    f"emulator exited with {self.proc.returncode} while "
                    f"starting:\n{self.stderr_tail()}"
                )
            if self._port is None:
                self._port = self._reported_port()
            if self._port is not None:
                try:
                    if self.health().get("status") == "ok":
                        return
                except (OSError, ValueError):
                    pass
            time.sleep(0.05)
        self.kill9()
        raise EmulatorError(
            f"emulator not healthy after {self.start_timeout} s:\n{self.stderr_tail()}"
        )

    def _reported_port(self) -> int | None:
        """The port from the server's "listening on http://HOST:PORT" log line of this start."""
        try:
            with open(self.stderr_path, "rb") as fh:
                fh.seek(self._log_offset)
                text = fh.read().decode(errors="replace")
        except OSError:
            return None
        return reported_port(text)

    def stderr_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (clean stop, shutdown hooks run), then SIGKILL after `timeout`."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            code = self.proc.returncode
            self.proc = None
        return code

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def restart(self, *, kill: bool = False) -> EmulatorProcess:
        """Stop (cleanly, or with kill -9) and start again on the same port and data dir."""
        if kill:
            self.kill9()
        else:
            self.stop()
        return self.start()

    def cleanup(self) -> None:
        self.stop()
        self._archive()
        _LIVE.discard(self)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # ---- HTTP helpers -------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"{}")

    def health(self) -> dict[str, Any]:
        return dict(self._call("GET", "/_emulator/health"))

    def misbehave(self, **settings: Any) -> dict[str, Any]:
        """Make one deployed model misbehave (endpoint, deployed_model_id, error_rate,
        latency_ms, wrong_outputs; see deployer.emulator.misbehave); the current settings."""
        return dict(self._call("POST", "/_emulator/misbehave", settings))

    def admin(self, faults: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST fault settings (e.g. {"script": [{"method": "deployModel", "count": 2,
        "http_status": 503}]})
        and return the current ones; GET them with no argument."""
        if faults is None:
            return dict(self._call("GET", "/_emulator/faults"))
        return dict(self._call("POST", "/_emulator/faults", faults))

    # ---- request log --------------------------------------------------------------

    def read_request_log(self) -> list[dict[str, Any]]:
        if not self.request_log_path.exists():
            return []
        lines = self.request_log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def mutating_calls(self) -> list[dict[str, Any]]:
        return [e for e in self.read_request_log() if e.get("mutating")]

    def clear_request_log(self) -> None:
        """Forget earlier calls (the server appends; truncating keeps its handle valid)."""
        if self.request_log_path.exists():
            self._archive()
            with open(self.request_log_path, "r+b") as fh:
                fh.truncate(0)
            self._archived = 0

    def _new_log_bytes(self) -> bytes:
        try:
            with open(self.request_log_path, "rb") as fh:
                fh.seek(self._archived)
                data = fh.read()
        except OSError:
            return b""
        return data[: data.rfind(b"\n") + 1]  # whole lines only

    def _unarchived(self) -> list[dict[str, Any]]:
        return _read_lines(self._new_log_bytes())

    def _collected(self) -> bool:
        return _ARCHIVE_DIR is not None and self.wire_contract

    def _archive(self) -> None:
        """Keep the request log's new lines for the session's wire contract test."""
        if _ARCHIVE_DIR is None or not self.wire_contract:
            return
        data = self._new_log_bytes()
        if data:
            with open(_ARCHIVE_DIR / self._archive_name, "ab") as out:
                out.write(data)
            self._archived += len(data)

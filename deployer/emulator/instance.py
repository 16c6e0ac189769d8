"""The background emulator instance behind `deployer local up / down / status`.

Owns the state file `$DEPLOYER_HOME/local/instance.json` ({"url", "host",
"port", "pid", "data_dir", "log"}), starting a detached
`python -m deployer local run ...` with its log in a file, waiting for its
health route, and stopping it (SIGTERM, then SIGKILL). `up` is idempotent and
serialised by a file lock, so concurrent callers (CLI, reconciler) share one
instance.

Must not: be imported by the deployer core (it runs `python -m deployer local
up --output json` instead), or import TensorFlow / deployer.serving.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deployer import settings
from deployer.errors import ConfigError, DeployerError

DEFAULT_PORT = 8765
_PORT_SEARCH = 50  # ports tried after the default when it is taken


def local_dir() -> Path:
    return settings.HOME.get() / "local"


def state_path() -> Path:
    return local_dir() / "instance.json"


@dataclass(frozen=True)
class Instance:
    """A running background emulator, as recorded in the state file."""

    url: str  # http://127.0.0.1:PORT: Vertex api_endpoint and STORAGE_EMULATOR_HOST
    host: str  # address it is bound to
    port: int
    pid: int
    data_dir: str
    log: str  # path of its log file

    def to_json(self, *, already_running: bool | None = None) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        out["storage_emulator_host"] = self.url
        out["api_endpoint"] = self.url
        if already_running is not None:
            out["already_running"] = already_running
        return out


def health(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """The emulator's health document, or None if nothing healthy answers at `url`."""
    try:
        with urllib.request.urlopen(f"{url}/_emulator/health", timeout=timeout) as resp:
            doc = json.loads(resp.read())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("status") == "ok" else None


def _pid_is_emulator(pid: int) -> bool:
    """True if `pid` is alive and is an emulator (never signal a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): trust the state file
    return b"deployer" in cmdline and b"local" in cmdline


def read_state() -> Instance | None:
    try:
        data = json.loads(state_path().read_text())
        return Instance(**{k: data[k] for k in ("url", "host", "port", "pid", "data_dir", "log")})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_state(inst: Instance) -> None:
    path = state_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(inst), indent=2) + "\n")
    os.replace(tmp, path)


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    local_dir().mkdir(parents=True, exist_ok=True)
    with open(local_dir() / "instance.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(host: str, preferred: int = DEFAULT_PORT) -> int:
    """`preferred` if free, else the next free port after it."""
    for port in range(preferred, preferred + _PORT_SEARCH):
        if _port_free(host, port):
            return port
    raise ConfigError(
        f"No free port in {preferred}-{preferred + _PORT_SEARCH - 1} on {host}",
        hint="pass --port with a free port",
    )


def running() -> Instance | None:
    """The recorded instance if its process is alive and healthy, else None."""
    inst = read_state()
    if inst is None or not _pid_is_emulator(inst.pid):
        return None
    doc = health(inst.url)
    if doc is None or int(doc.get("pid", inst.pid)) != inst.pid:
        return None
    return inst


def up(
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    data_dir: Path | None = None,
    extra_args: list[str] | None = None,
    token: str | None = None,
    wait_s: float = 60.0,
) -> tuple[Instance, bool]:
    """Start the background instance unless one is already healthy; returns (instance,
    already_running)."""
    with _lock():
        current = running()
        if current is not None:
            return current, True
        stale = read_state()
        if stale is not None and _pid_is_emulator(stale.pid):
            # Alive but unhealthy (wedged): replace it rather than run two on one data dir.
            _stop_pid(stale.pid, timeout=5.0)
        chosen_port = port if port is not None else pick_port(host)
        data = Path(data_dir) if data_dir else local_dir() / "data"
        data.mkdir(parents=True, exist_ok=True)
        log_path = local_dir() / "emulator.log"
        cmd = [
            sys.executable,
            "-m",
            "deployer",
            "local",
            "run",
            "--host",
            host,
            "--port",
            str(chosen_port),
            "--data-dir",
            str(data),
            *(extra_args or []),
        ]
        with open(log_path, "ab") as log_file:
            log_offset = log_file.tell()
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                # The auth token (if any) in the environment: argv is visible to all users.
                env={**os.environ, settings.EMULATOR_TOKEN.name: token} if token else None,
            )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                raise DeployerError(
                    f"The local emulator exited with status {code} while "
                    f"starting.\n{_tail(log_path)}",
                    hint=f"see {log_path}",
                )
            # The server prints the URL it really listens on (port 0 = any free port).
            url = _reported_url(log_path, log_offset)
            doc = health(url, timeout=0.5) if url else None
            if url and doc is not None and int(doc.get("pid", proc.pid)) == proc.pid:
                inst = Instance(
                    url=url,
                    host=host,
                    port=int(url.rsplit(":", 1)[1]),
                    pid=proc.pid,
                    data_dir=str(data),
                    log=str(log_path),
                )
                _write_state(inst)
                return inst, False
            time.sleep(0.1)
        _stop_pid(proc.pid, timeout=5.0)
        raise DeployerError(
            f"The local emulator did not become healthy within {wait_s:.0f} s.\n{_tail(log_path)}",
            hint=f"see {log_path}",
        )


def _reported_url(log_path: Path, offset: int) -> str | None:
    try:
        with open(log_path, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError:
        return None
    match = re.search(r"listening on (http://\S+:\d+)", text)
    return match.group(1) if match else None


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop_pid(pid: int, *, timeout: float) -> bool:
    """SIGTERM, wait, SIGKILL; True if the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _alive(pid: int) -> bool:
    # Reap it if it is our child (the `up` that started it may be this process).
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is as good as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def down(*, timeout: float = 15.0) -> Instance | None:
    """Stop the background instance; returns what was stopped, None if nothing was recorded."""
    with _lock():
        inst = read_state()
        if inst is None:
            return None
        if _pid_is_emulator(inst.pid):
            _stop_pid(inst.pid, timeout=timeout)
        state_path().unlink(missing_ok=True)
        return inst

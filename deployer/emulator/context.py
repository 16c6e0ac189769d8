"""The emulator's shared state handed to every API surface (GCS, Vertex AI, batch).

Owns `EmulatorContext`: where data lives, the address the server listens on,
the object store, the fault controller, and the shutdown hooks run (in reverse
order of registration) when the server stops cleanly, e.g. to stop replica
processes; and `project_number`, the stable number each project id has here (Vertex
returns resource names with the project number, Cloud Storage reports it as a bucket's
`projectNumber`).

Must not: import TensorFlow / deployer.serving, or do I/O at import time.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deployer.emulator.access import AccessPolicy
from deployer.emulator.faults import FaultController
from deployer.emulator.objects import ObjectStore

log = logging.getLogger("deployer.emulator")


@functools.lru_cache(maxsize=256)  # on every Vertex request by project id, predict included
def project_number(project: str) -> str:
    """The project number of a project id or number, stable across runs and machines.

    A number (all digits) is its own number. An id gets twelve digits, the first not
    zero, like Google's: 100000000000 + the SHA-256 of the id, read as a big-endian
    integer, modulo 900000000000. Clients that assume names carry the project id
    fail here as they would on Google Cloud.
    """
    if project.isdigit():
        return project
    digest = int.from_bytes(hashlib.sha256(project.encode()).digest(), "big")
    return str(100_000_000_000 + digest % 900_000_000_000)


@dataclass
class EmulatorContext:
    """Everything an API surface needs from the running emulator."""

    data_dir: Path  # root of all persistent state (SQLite databases, object bytes, replicas' files)
    host: str  # address the server is bound to ("127.0.0.1" unless told otherwise)
    port: int  # port the server is bound to (the real one once bound, even if 0 was asked)
    objects: ObjectStore  # GCS buckets and objects
    faults: (
        FaultController  # fault injection settings; .op_delay is read by long-running operations
    )
    pid: int = field(default_factory=os.getpid)  # the emulator's process id (health route)
    started_at: float = field(default_factory=time.time)  # epoch seconds the context was made
    # Host/Origin/token rules (None only for contexts built without a server, in unit tests).
    access: AccessPolicy | None = None
    # API surfaces registered on the router ("gcs", "vertex", ...), shown by the health route.
    apis: list[str] = field(default_factory=list)
    _hooks: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _hooks_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def base_url(self) -> str:
        """URL clients use: http://127.0.0.1:PORT (loopback even when bound to 0.0.0.0)."""
        host = self.host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def reader_url(self) -> str:
        """STORAGE_EMULATOR_HOST for serving containers: read-only Cloud Storage when the
        emulator has a token (deployer.emulator.access), else `base_url`."""
        return self.base_url if self.access is None else self.access.reader_url(self.base_url)

    def on_shutdown(self, fn: Callable[[], None]) -> None:
        """Register a hook run at clean stop; hooks run in reverse order of registration."""
        with self._hooks_lock:
            self._hooks.append(fn)

    def run_shutdown_hooks(self) -> None:
        """Run every hook once (later registrations first); a failing hook does not stop the
        rest."""
        with self._hooks_lock:
            if self._stopped:
                return
            self._stopped = True
            hooks = list(reversed(self._hooks))
            self._hooks.clear()
        for fn in hooks:
            try:
                fn()
            except Exception:  # shutdown must go on; the failure is logged
                log.exception("shutdown hook %r failed", fn)

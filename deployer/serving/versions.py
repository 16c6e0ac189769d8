"""Model versions: which SavedModel versions are loaded, serving, or going away.

Owns: version sources (one fixed directory served as version 1, or a TF Serving base dir of
numbered subdirs polled for new versions), the load / warm / swap / unload life cycle with TF
Serving's two policies (availability-preserving: the old version answers until the new one is
warm; resource-preserving: unload first), per-request leases so an unloading version drains its
in-flight requests, and the TF Serving version states. Must not: speak HTTP or gRPC, or decode
requests (see `server` and `codec`).
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from deployer.serving.batching import Batcher, BatchingParameters
from deployer.serving.codec import SignatureInfo
from deployer.serving.runtime import ServedModel, WarmupReport, load, run_warmup

log = logging.getLogger("deployer.serving")


class State(str, enum.Enum):
    """TF Serving's ModelVersionStatus.State names, as the REST API prints them."""

    START = "START"
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    UNLOADING = "UNLOADING"
    END = "END"


class Policy(str, enum.Enum):
    AVAILABILITY = "availability"  # load and warm the new version, then unload the old one
    RESOURCE = "resource"  # unload the old version first (never two in memory)


class NotServable(LookupError):
    """No AVAILABLE version matches the request (HTTP 404 / gRPC NOT_FOUND)."""


class VersionSource(Protocol):
    def versions(self) -> dict[int, Path]: ...

    @property
    def dynamic(self) -> bool: ...


@dataclass(frozen=True)
class FixedSource:
    """One SavedModel directory served as version 1 (the emulator's replicas)."""

    path: Path
    dynamic: bool = False

    def versions(self) -> dict[int, Path]:
        return {1: self.path}


@dataclass(frozen=True)
class BaseDirSource:
    """A TF Serving model base dir: numeric subdirs (`1`, `0002`) holding a saved_model.pb."""

    base: Path
    dynamic: bool = True

    def versions(self) -> dict[int, Path]:
        found: dict[int, Path] = {}
        try:
            entries = list(self.base.iterdir())
        except OSError:
            return found
        for d in entries:
            if d.name.isdigit() and (d / "saved_model.pb").is_file():
                found[int(d.name)] = d
        return found


def _tree_stamp(path: Path) -> float:
    """Latest mtime under a version dir: a failed load is retried only when files change."""
    latest = 0.0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                latest = max(latest, os.stat(os.path.join(root, f)).st_mtime)
            except OSError:
                pass
    return latest


@dataclass
class VersionSlot:
    """One model version known to the manager, in any state."""

    version: int
    path: Path
    state: State = State.START
    error: str = ""  # why loading failed; reported as error_code UNKNOWN
    model: ServedModel | None = None
    batchers: dict[str, Batcher] = field(default_factory=dict)
    leases: int = 0  # requests currently using this version
    requests: int = 0
    stamp: float = 0.0
    load_seconds: float = 0.0
    warmup: WarmupReport | None = None  # kept after unload, for stats

    def status(self) -> dict[str, Any]:
        return {
            "version": str(self.version),
            "state": self.state.value,
            "status": {
                "error_code": "UNKNOWN" if self.error else "OK",
                "error_message": self.error,
            },
        }


class ModelManager:
    """Keeps the newest version of one model AVAILABLE; see the module docstring."""

    def __init__(
        self,
        name: str,
        source: VersionSource,
        *,
        batching: BatchingParameters | None,
        policy: Policy = Policy.AVAILABILITY,
        poll_interval: float = 1.0,
        loader: Callable[[Path], ServedModel] | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.batching = batching
        self.policy = policy
        self.poll_interval = poll_interval
        self._loader = loader or (lambda p: load(p, warmup=False))
        self._slots: dict[int, VersionSlot] = {}
        if not source.dynamic:
            # A fixed directory is known up front: report it LOADING from the first request on.
            for v, p in source.versions().items():
                self._slots[v] = VersionSlot(version=v, path=p, state=State.LOADING)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned_empty = False

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Load in the background (the servers answer LOADING meanwhile), then keep polling."""
        self._thread = threading.Thread(target=self._run, name=f"versions-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile()
            except Exception:  # a poll must never kill the server
                log.exception("version poll of %s failed", self.name)
            if not self.source.dynamic:
                return
            self._stop.wait(self.poll_interval)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling, drain in-flight requests of every version, unload everything."""
        self._stop.set()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with self._lock:
            slots = [s for s in self._slots.values() if s.state == State.AVAILABLE]
        for slot in slots:
            self._unload(slot, timeout)

    @property
    def ready(self) -> bool:
        with self._lock:
            return any(s.state == State.AVAILABLE for s in self._slots.values())

    @property
    def failed(self) -> str | None:
        """The load error when nothing is AVAILABLE and the newest known version failed."""
        with self._lock:
            if any(s.state == State.AVAILABLE for s in self._slots.values()) or not self._slots:
                return None
            newest = self._slots[max(self._slots)]
            return newest.error or None

    # --- reconciling disk and memory -------------------------------------------------------

    def reconcile(self) -> None:
        on_disk = self.source.versions()
        if not on_disk:
            if not self._warned_empty:
                log.warning("no SavedModel versions found for model %s yet; waiting", self.name)
                self._warned_empty = True
            return
        target = max(on_disk)
        with self._lock:
            slot = self._slots.get(target)
            if slot is not None and slot.state == State.AVAILABLE:
                stale = [
                    s
                    for s in self._slots.values()
                    if s.state == State.AVAILABLE and s.version != target
                ]
            elif (
                slot is not None
                and slot.state == State.END
                and slot.error
                and slot.stamp == _tree_stamp(slot.path)
            ):
                return  # failed before and unchanged since: do not retry in a loop
            elif slot is not None and slot.state in (State.START, State.LOADING):
                stale = None  # pre-registered, not loaded yet
            else:
                slot = VersionSlot(version=target, path=on_disk[target])
                self._slots[target] = slot
                stale = None
        if stale is not None:
            for old in stale:
                self._unload(old)
            return
        if self.policy == Policy.RESOURCE:
            with self._lock:
                olds = [
                    s for s in self._slots.values() if s.state == State.AVAILABLE and s is not slot
                ]
            for old in olds:
                self._unload(old)
        if self._load(slot):
            with self._lock:
                olds = [
                    s for s in self._slots.values() if s.state == State.AVAILABLE and s is not slot
                ]
            for old in olds:
                self._unload(old)

    def _load(self, slot: VersionSlot) -> bool:
        slot.state = State.LOADING
        slot.stamp = _tree_stamp(slot.path)
        log.info("loading model %s version %d from %s", self.name, slot.version, slot.path)
        start = time.perf_counter()
        try:
            model = self._loader(slot.path)
            slot.model = model
            if self.batching is not None:
                for sig in model.signatures.values():
                    if sig.batchable and all(o.batchable for o in sig.outputs.values()):
                        slot.batchers[sig.name] = Batcher(
                            _bound_run(model, sig),
                            self.batching,
                            name=f"batch-{self.name}-v{slot.version}-{sig.name}",
                        )
            model.warmup = slot.warmup = run_warmup(model, model.run)
        except Exception as exc:
            slot.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            slot.state = State.END
            slot.model = None
            for b in slot.batchers.values():
                b.close()
            slot.batchers.clear()
            log.error("model %s version %d failed to load: %s", self.name, slot.version, slot.error)
            return False
        slot.load_seconds = time.perf_counter() - start
        w = model.warmup
        log.info(
            "model %s version %d AVAILABLE (loaded in %.2fs; warmup: %s, %d request(s))",
            self.name,
            slot.version,
            slot.load_seconds,
            w.source,
            w.requests,
        )
        with self._lock:
            slot.state = State.AVAILABLE
        return True

    def _unload(self, slot: VersionSlot, timeout: float = 30.0) -> None:
        with self._lock:
            if slot.state != State.AVAILABLE:
                return
            slot.state = State.UNLOADING
        deadline = time.monotonic() + timeout
        while slot.leases and time.monotonic() < deadline:
            time.sleep(0.005)
        for b in slot.batchers.values():
            b.close()
        with self._lock:
            slot.state = State.END
            slot.model = None  # the last reference: TF frees the graph and variables
        log.info("model %s version %d unloaded", self.name, slot.version)

    # --- serving ---------------------------------------------------------------------------

    @contextmanager
    def lease(self, version: int | None) -> Iterator[VersionSlot]:
        """The requested (or newest AVAILABLE) version, protected from unloading meanwhile."""
        with self._lock:
            if version is None:
                live = [s for s in self._slots.values() if s.state == State.AVAILABLE]
                slot = max(live, key=lambda s: s.version) if live else None
                what = f"Latest({self.name})"
            else:
                slot = self._slots.get(version)
                if slot is not None and slot.state != State.AVAILABLE:
                    slot = None
                what = f"Specific({self.name}, {version})"
            if slot is None:
                raise NotServable(f"Servable not found for request: {what}")
            slot.leases += 1
            slot.requests += 1
        try:
            yield slot
        finally:
            with self._lock:
                slot.leases -= 1

    def statuses(self, version: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            slots = sorted(self._slots.values(), key=lambda s: -s.version)
            if version is not None:
                slots = [s for s in slots if s.version == version]
            return [s.status() for s in slots]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            slots = sorted(self._slots.values(), key=lambda s: -s.version)
        out: dict[str, Any] = {"model": self.name, "batching": None, "versions": {}}
        if self.batching is not None:
            out["batching"] = dict(vars(self.batching))
        for s in slots:
            w = s.warmup
            out["versions"][str(s.version)] = {
                "state": s.state.value,
                "requests": s.requests,
                "in_flight": s.leases,
                "load_seconds": round(s.load_seconds, 3),
                "warmup": vars(w) if w else None,
                "batching": {k: b.stats() for k, b in s.batchers.items()},
            }
        return out


def _bound_run(model: ServedModel, sig: SignatureInfo) -> Callable[[dict[str, Any]], Any]:
    def run(arrays: dict[str, Any]) -> Any:
        return model.run(arrays, sig.name)

    return run

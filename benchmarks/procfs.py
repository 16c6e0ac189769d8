"""Process measurements read from /proc: resident memory of a process tree, CPU seconds, maps.

Owns `process_tree`, `rss_bytes` / `tree_rss_bytes`, `PeakRss` (samples a tree's RSS in a
thread), `process_cpu_seconds` and `modules_loaded` (is a shared object such as TensorFlow's
mapped into a process). Linux only, like the machines the benchmarks run on.

Must not: start or stop processes (callers own them), or import anything heavy.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                kids += [int(x) for x in (task / "children").read_text().split()]
    return kids


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants, from /proc/<pid>/task/*/children."""
    seen: list[int] = []
    stack = [pid]
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.append(p)
        stack += _children(p)
    return seen


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (0 if it is gone)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def tree_rss_bytes(pid: int) -> int:
    """RSS of a process and its descendants (shared pages counted once per process)."""
    return sum(rss_bytes(p) for p in process_tree(pid))


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 if it is gone)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def modules_loaded(pid: int, needle: str) -> bool:
    """True if any mapped file of `pid` contains `needle` (e.g. 'libtensorflow')."""
    with contextlib.suppress(OSError):
        return needle in Path(f"/proc/{pid}/maps").read_text()
    return False


class PeakRss:
    """Samples a process tree's RSS in a thread; `.peak` is the highest total seen."""

    def __init__(self, pid: int, *, interval: float = 0.05, children: bool = True) -> None:
        self.pid = pid
        self.interval = interval
        self.children = children  # False: the process alone (e.g. a control plane without replicas)
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = tree_rss_bytes(self.pid) if self.children else rss_bytes(self.pid)
            self.peak = max(self.peak, rss)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

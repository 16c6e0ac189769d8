"""Pytest plugin: the test run, and every Python process it starts, may only talk to loopback.

Loaded for every run through `addopts = -p tests.support.netguard`. At configure time it
installs `loopback_guard` (tests/support/netguard_site/) in the pytest process and prepends
that folder to `PYTHONPATH` in `os.environ`, so every interpreter a test launches (the
emulator, its replicas, `deployer` and `python -m ...` subprocesses) imports the folder's
`sitecustomize` and guards itself before running any project code. A refused connect or lookup
raises `NetworkGuardError` at once (nothing hangs, no packet leaves) and writes a line naming
the host to stderr and to a shared log; the test during which a line appeared, in this process
or any other, fails at teardown even if the code under test swallowed the exception
(google-auth's metadata probe and retry loops do that). Lines that appear outside a test fail
the session.

Must not: let a test pass that tried to leave loopback, or drop a refusal on the floor.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.netguard_site import loopback_guard
from tests.support.netguard_site.loopback_guard import NetworkGuardError

__all__ = ["SITE_DIR", "NetworkGuardError", "expected_refusals"]

SITE_DIR = Path(loopback_guard.__file__).resolve().parent  # holds sitecustomize.py


class _RefusalLog:
    """Reads the lines guarded processes append to the shared log, each line once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self.unexpected: list[str] = []  # refusals no test asked for, not yet reported

    def read_new(self) -> list[str]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits
        self._offset += len(complete)
        return complete.decode(errors="replace").splitlines()

    def collect(self) -> None:
        self.unexpected += self.read_new()


_log: _RefusalLog | None = None
_log_dir: str | None = None


def _active_log() -> _RefusalLog:
    if _log is None:
        raise RuntimeError("the netguard plugin is not configured (-p tests.support.netguard)")
    return _log


@contextmanager
def expected_refusals() -> Iterator[list[str]]:
    """Mark the refusals made inside the block (by any process) as deliberate.

    Yields a list that holds, after the block, the refusal lines written meanwhile; the caller
    asserts on them. They do not fail the test."""
    log = _active_log()
    log.collect()  # earlier refusals stay unexpected
    seen: list[str] = []
    try:
        yield seen
    finally:
        seen += log.read_new()


def pytest_configure(config: pytest.Config) -> None:
    global _log, _log_dir
    loopback_guard.install()
    _log_dir = tempfile.mkdtemp(prefix="deployer-netguard-")
    _log = _RefusalLog(Path(_log_dir) / "refusals.log")
    os.environ[loopback_guard.LOG_ENV] = str(_log.path)
    path = os.environ.get("PYTHONPATH", "")
    if str(SITE_DIR) not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SITE_DIR), path) if p)
    # google-auth would otherwise probe the GCE metadata server for credentials.
    os.environ.setdefault("NO_GCE_CHECK", "True")
    os.environ.setdefault("GCE_METADATA_HOST", "127.0.0.1:9")
    os.environ.setdefault("GCE_METADATA_IP", "127.0.0.1:9")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _log is None:
        return
    _log.collect()
    if _log.unexpected:
        lines = "\n".join(_log.unexpected)
        print(f"\n{loopback_guard.PREFIX} refusals outside any test:\n{lines}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    if _log_dir is not None:
        shutil.rmtree(_log_dir, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_network_beyond_loopback() -> Iterator[None]:
    log = _active_log()
    log.collect()
    # Refusals made between tests (by a process that outlived its test) fail this one too,
    # labelled so: reported late beats not reported.
    before, log.unexpected = log.unexpected, []
    yield
    log.collect()
    during, log.unexpected = log.unexpected, []
    if before or during:
        report = [f"during this test: {line}" for line in during]
        report += [f"before this test began: {line}" for line in before]
        pytest.fail("a process tried to leave loopback:\n" + "\n".join(report), pytrace=False)

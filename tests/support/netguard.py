"""Pytest plugin: the test run may only talk to loopback.

Loaded for every run through `addopts = -p tests.support.netguard`. Any attempt
to resolve or connect to a non-loopback host raises `NetworkGuardError` at once
(so nothing hangs waiting on a network that is not there) and is recorded; the
test that made it fails at teardown even if the code under test swallowed the
exception (google-auth's metadata probe and retry loops do that). Subprocesses
started by tests inherit `DEPLOYER_NETGUARD=1`, which `sitecustomize`-free code
can check; the emulator and replicas only ever bind and dial loopback.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
_attempts: list[str] = []
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class NetworkGuardError(ConnectionRefusedError):
    """A test tried to reach a host other than loopback."""


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    host = host.strip("[]").split("%")[0]
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse(what: str) -> None:
    _attempts.append(what)
    raise NetworkGuardError(f"network guard: tests may only reach loopback, refused {what}")


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        _refuse(f"connect to {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        _refuse(f"connect_ex to {address!r}")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _is_loopback(host):
        _refuse(f"name lookup of {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo
    os.environ["DEPLOYER_NETGUARD"] = "1"
    # google-auth would otherwise probe the GCE metadata server for credentials.
    os.environ.setdefault("NO_GCE_CHECK", "True")
    os.environ.setdefault("GCE_METADATA_HOST", "127.0.0.1:9")
    os.environ.setdefault("GCE_METADATA_IP", "127.0.0.1:9")


@pytest.fixture(autouse=True)
def _no_network_beyond_loopback() -> Iterator[None]:
    before = len(_attempts)
    yield
    new = _attempts[before:]
    if new:
        pytest.fail("code under test tried to leave loopback: " + "; ".join(new), pytrace=False)

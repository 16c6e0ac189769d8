"""The loopback-only network guard, for the pytest process and every Python process it starts.

Owns: `install()`, which wraps the socket module so that connecting to, sending to, or
resolving anything but loopback (127.0.0.0/8, ::1, `localhost`; unix sockets are never
touched) raises `NetworkGuardError` at once, before the real call: no packet leaves and nothing
waits on a network that is not there. Each refusal is loud twice over: the exception, and one
line on stderr naming the host and the process. When `$DEPLOYER_TESTS_NETGUARD_LOG` names a
file, the line is also appended there, so the pytest plugin (tests/support/netguard.py) can
fail the test even when the code under test, or a subprocess, swallowed the exception
(google-auth's metadata probe and retry loops do that).

Must not: import anything outside the standard library (it runs from `sitecustomize` at the
start of every interpreter the tests launch, before any project code), or ever wait.

Reach: Python's `socket` module. Native code that opens its own sockets (grpc's C core,
TensorFlow) is not seen; the tests only point those at loopback.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import Any

LOG_ENV = "DEPLOYER_TESTS_NETGUARD_LOG"  # file every guarded process appends refusals to
PREFIX = "network guard:"  # first words of every refusal line and message

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_INET = (socket.AF_INET, socket.AF_INET6)

# The originals, captured once; the guard calls them only for loopback.
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_sendto = socket.socket.sendto
_real_getaddrinfo = socket.getaddrinfo
_real_gethostbyname = socket.gethostbyname
_real_gethostbyname_ex = socket.gethostbyname_ex
_real_gethostbyaddr = socket.gethostbyaddr


class NetworkGuardError(ConnectionRefusedError):
    """A test process tried to reach, or look up, a host other than loopback."""


def is_loopback(host: Any) -> bool:
    """True for loopback names and addresses; "" (INADDR_ANY, which dials this host) too."""
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    host = host.strip().strip("[]").split("%")[0].lower()
    if host == "" or host in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _is_address(host: Any) -> bool:
    """A literal IP address: resolving it is no lookup, so only connecting to it is refused."""
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    try:
        ipaddress.ip_address(str(host).strip("[]").split("%")[0])
    except ValueError:
        return False
    return True


def _process() -> str:
    argv = " ".join(getattr(sys, "argv", None) or ["?"])
    return f"pid {os.getpid()}: {argv[:120]}"


def refuse(what: str) -> NetworkGuardError:
    """Report a refused `what` (stderr and the shared log) and return the error to raise."""
    line = f"{PREFIX} refused {what}; tests may only reach loopback ({_process()})"
    try:
        if sys.stderr is not None:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
    except (OSError, ValueError):  # a closed or detached stderr must not hide the refusal
        pass
    log = os.environ.get(LOG_ENV)
    if log:
        try:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line.replace("\n", " ") + "\n").encode(errors="replace"))
            finally:
                os.close(fd)
        except OSError:
            pass  # the run that made the log has ended; stderr still has the line
    return NetworkGuardError(f"{PREFIX} refused {what}: tests may only reach loopback")


def _where(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return repr(address)


def _check_destination(sock: socket.socket, address: Any, verb: str) -> None:
    if sock.family in _INET and isinstance(address, tuple) and not is_loopback(address[0]):
        raise refuse(f"{verb} {_where(address)}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_destination(self, address, "connect to")
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_destination(self, address, "connect to")
    return _real_connect_ex(self, address)


def _guarded_sendto(self: socket.socket, data: Any, *args: Any) -> int:
    # sendto(data, address) or sendto(data, flags, address): the address comes last.
    if args:
        _check_destination(self, args[-1], "send to")
    return _real_sendto(self, data, *args)


def _check_lookup(host: Any) -> None:
    if host is not None and not is_loopback(host) and not _is_address(host):
        raise refuse(f"name lookup of {host!r}")


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    _check_lookup(host)
    return _real_getaddrinfo(host, *args, **kwargs)


def _guarded_gethostbyname(host: Any) -> str:
    _check_lookup(host)
    return _real_gethostbyname(host)


def _guarded_gethostbyname_ex(host: Any) -> Any:
    _check_lookup(host)
    return _real_gethostbyname_ex(host)


def _guarded_gethostbyaddr(host: Any) -> Any:
    # A reverse lookup of any non-loopback address asks DNS, literal or not.
    if not is_loopback(host):
        raise refuse(f"address lookup of {host!r}")
    return _real_gethostbyaddr(host)


def installed() -> bool:
    return getattr(socket.socket.connect, "__name__", "") == _guarded_connect.__name__


def install() -> None:
    """Guard this process's socket module (idempotent, also across copies of this module)."""
    if installed():
        return
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]
    socket.socket.sendto = _guarded_sendto  # type: ignore[assignment]
    socket.getaddrinfo = _guarded_getaddrinfo
    socket.gethostbyname = _guarded_gethostbyname
    socket.gethostbyname_ex = _guarded_gethostbyname_ex
    socket.gethostbyaddr = _guarded_gethostbyaddr

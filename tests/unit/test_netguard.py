"""The network guard itself: loopback passes, anything else is refused loudly."""

from __future__ import annotations

import socket

import pytest

from tests.support import netguard


def test_loopback_connections_are_allowed() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=2)
    client.close()
    server.close()


def test_a_public_address_is_refused_at_once() -> None:
    before = len(netguard._attempts)
    with pytest.raises(netguard.NetworkGuardError):
        socket.create_connection(("192.0.2.1", 443), timeout=2)
    # Forget this deliberate attempt so the autouse check does not fail this test.
    del netguard._attempts[before:]


def test_a_public_name_lookup_is_refused() -> None:
    before = len(netguard._attempts)
    with pytest.raises(netguard.NetworkGuardError):
        socket.getaddrinfo("example.com", 443)
    del netguard._attempts[before:]

"""The network guard: loopback works, anything else is refused before the real call, loudly, in
the pytest process and in every Python process a test starts (and a swallowed refusal still
fails the test)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import netguard
from tests.support.netguard_site import loopback_guard

REPO = Path(__file__).resolve().parents[2]
TEST_NET = "192.0.2.1"  # TEST-NET-1 (RFC 5737): documentation only, never routed
REFUSED_CONNECT = f"network guard: refused connect to {TEST_NET}:443"


@pytest.fixture
def real_connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every address the guard handed on to the real `socket.connect`."""
    seen: list[Any] = []
    real = loopback_guard._real_connect

    def recording(sock: socket.socket, address: Any) -> None:
        seen.append(address)
        real(sock, address)

    monkeypatch.setattr(loopback_guard, "_real_connect", recording)
    return seen


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """A loopback TCP server that answers each connection with what it received, upper-cased."""
    import threading

    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed: the test is over
                return
            with conn:
                conn.sendall(conn.recv(64).upper())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        server.close()
        thread.join(5)


def _python(code: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter with the test run's environment, as tests' children."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        **kwargs,
    )


def test_the_guard_is_installed_in_this_process_and_on_the_path_children_inherit() -> None:
    assert loopback_guard.installed()
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0] == str(netguard.SITE_DIR)
    assert (netguard.SITE_DIR / "sitecustomize.py").is_file()


def test_loopback_tcp_by_address_and_by_name_carries_data(
    echo_server: tuple[str, int], real_connects: list[Any]
) -> None:
    host, port = echo_server
    for name in (host, "localhost"):
        with socket.create_connection((name, port), timeout=5) as client:
            client.sendall(b"ping")
            assert client.recv(64) == b"PING"
    # The guard let the real connect run (localhost may try ::1 first, where none listens).
    assert len(real_connects) >= 2 and {a[1] for a in real_connects} == {port}


def test_unix_sockets_are_left_alone(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(path)
        server.listen(1)
        client.connect(path)
        conn, _ = server.accept()
        with conn:
            client.sendall(b"x")
            assert conn.recv(1) == b"x"


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("LOCALHOST", True),
        (b"localhost", True),
        (TEST_NET, False),
        ("10.0.0.1", False),
        ("::ffff:192.0.2.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
        (None, False),
    ],
)
def test_what_counts_as_loopback(host: Any, allowed: bool) -> None:
    assert loopback_guard.is_loopback(host) is allowed


def test_a_public_address_is_refused_before_the_real_connect(real_connects: list[Any]) -> None:
    with netguard.expected_refusals() as refusals:
        with pytest.raises(netguard.NetworkGuardError, match=f"refused connect to {TEST_NET}:443"):
            socket.create_connection((TEST_NET, 443), timeout=5)
        with socket.socket() as raw:
            with pytest.raises(netguard.NetworkGuardError):
                raw.connect_ex((TEST_NET, 80))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            with pytest.raises(netguard.NetworkGuardError, match="refused send to"):
                udp.sendto(b"x", (TEST_NET, 53))
    assert real_connects == []  # refused before anything could leave the machine
    assert len(refusals) == 3 and REFUSED_CONNECT in refusals[0]
    assert f"pid {os.getpid()}" in refusals[0]


def test_public_name_lookups_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Any] = []
    monkeypatch.setattr(loopback_guard, "_real_getaddrinfo", lambda *a, **k: asked.append(a))
    with netguard.expected_refusals() as refusals:
        with pytest.raises(netguard.NetworkGuardError, match=r"name lookup of 'example\.com'"):
            socket.getaddrinfo("example.com", 443)
        with pytest.raises(netguard.NetworkGuardError):
            socket.gethostbyname("example.com")
        with pytest.raises(netguard.NetworkGuardError, match="address lookup"):
            socket.gethostbyaddr(TEST_NET)
    assert asked == [] and len(refusals) == 3
    # A literal address is no lookup: only connecting to it is refused.
    socket.getaddrinfo(TEST_NET, 443)
    assert asked == [(TEST_NET, 443)]


def test_a_child_python_process_is_guarded_and_fails_loudly(
    echo_server: tuple[str, int],
) -> None:
    with netguard.expected_refusals() as refusals:
        child = _python(
            f"""
            import socket
            socket.create_connection(("{TEST_NET}", 443), timeout=30)
            """
        )
    assert child.returncode == 1
    assert "NetworkGuardError" in child.stderr and REFUSED_CONNECT in child.stderr
    assert len(refusals) == 1 and REFUSED_CONNECT in refusals[0]
    assert f"pid {os.getpid()}" not in refusals[0]  # the child's own line

    host, port = echo_server  # loopback still works in the child
    ok = _python(
        f"""
        import socket
        with socket.create_connection(("{host}", {port}), timeout=5) as c:
            c.sendall(b"child")
            print(c.recv(64).decode())
        """
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "CHILD"


def test_a_deployer_cli_subprocess_pointed_off_loopback_fails_loudly(tmp_path: Path) -> None:
    spec = tmp_path / "guard.yaml"
    spec.write_text(
        textwrap.dedent(
            """\
            stack: guard
            project: guard-project
            region: us-central1
            target: local
            bucket: {name: guard-project-b, create: true}
            models:
              - name: m
                container: us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest
                versions:
                  - {alias: v1, artifact: gs://guard-project-b/m/1}
            """
        )
    )
    env = {
        **os.environ,
        "DEPLOYER_EMULATOR": f"http://{TEST_NET}:9",
        "DEPLOYER_RETRY_SCALE": "0.01",
    }
    with netguard.expected_refusals() as refusals:
        result = subprocess.run(
            [sys.executable, "-m", "deployer", "status", str(spec)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
        )
    assert result.returncode != 0
    assert f"network guard: refused connect to {TEST_NET}:9" in result.stderr
    assert refusals and all(f"refused connect to {TEST_NET}:9" in r for r in refusals)


def test_a_refusal_swallowed_in_a_grandchild_still_fails_the_test(tmp_path: Path) -> None:
    """An inner pytest run (with this plugin) whose test starts a process that catches the
    guard's error and exits 0: the inner test must fail anyway."""
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            f"""
            import subprocess, sys

            CHILD = '''
            import socket
            try:
                socket.create_connection(("{TEST_NET}", 443), timeout=30)
            except OSError:
                pass  # swallowed, as retry loops and metadata probes do
            '''

            def test_swallows() -> None:
                subprocess.run([sys.executable, "-c", CHILD], check=True, timeout=60)
            """
        )
    )
    # The inner run points its processes at its own refusal log, so ours stays clean.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ["PYTHONPATH"]])}
    inner = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.support.netguard",
            "-p",
            "no:cacheprovider",
            "-q",
            str(tmp_path / "test_inner.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert inner.returncode == 1, inner.stdout + inner.stderr
    assert "a process tried to leave loopback" in inner.stdout
    assert f"during this test: {REFUSED_CONNECT}" in inner.stdout

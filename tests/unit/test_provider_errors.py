"""No client-side exception escapes the provider's error mapping, and a wrong emulator URL
says which variable to fix (issues 14 and 15)."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployer import errors
from deployer.providers.clients import resolve_target
from deployer.providers.errors import translated
from deployer.providers.retry import RetryPolicy

SPEC = Path(__file__).parent / "specs" / "valid" / "mnist.yaml"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def plain_http_url() -> Iterator[str]:
    """A plain-HTTP server on loopback (as the emulator is), stopped after the test."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _deployer(*args: str, emulator: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DEPLOYER_EMULATOR": emulator,
        "DEPLOYER_RETRY_SCALE": "0.01",
        "PYTHONPATH": str(REPO),
    }
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_an_https_emulator_url_for_the_plain_http_emulator_names_the_variable(
    plain_http_url: str,
) -> None:
    url = plain_http_url.replace("http://", "https://")
    run = _deployer("status", str(SPEC), emulator=url)
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr
    assert "TLS handshake failed" in run.stderr
    assert f"DEPLOYER_EMULATOR is {url}" in run.stderr and "http:// URL" in run.stderr


def test_an_unreachable_emulator_url_says_which_variable_and_how_to_start_one() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    run = _deployer("status", str(SPEC), emulator=url)
    assert run.returncode == 4, run.stderr
    assert "Traceback" not in run.stderr and "cannot connect" in run.stderr
    assert f"fix: DEPLOYER_EMULATOR is {url}" in run.stderr
    assert "`deployer local up`" in run.stderr


def test_an_operation_name_the_client_cannot_route_becomes_a_deployer_error() -> None:
    from deployer.providers.vertex import VertexProvider

    # The GAPIC REST transport raises ValueError before sending anything (no server needed):
    # e.g. an operation named under a batch job, which no documented binding matches.
    target = resolve_target("local", "p", "us-central1", emulator="http://127.0.0.1:9")
    provider = VertexProvider(target, policy=RetryPolicy(attempts=1))
    name = "projects/p/locations/us-central1/batchPredictionJobs/1/operations/2"
    with pytest.raises(errors.PermanentError) as info:
        provider.get_operation(name)
    assert isinstance(info.value.__cause__, ValueError)
    message = info.value.message
    assert message.startswith(f"get operation {name}: the Google client library refused")
    assert len(message) < 600  # the gist, not the client's list of every URL binding


def test_an_exception_raised_by_our_own_code_is_not_disguised() -> None:
    with pytest.raises(KeyError), translated("a call", mutating=False):
        {}["missing"]  # a bug of ours, not the client's: it must surface as itself

"""Request-body bounds per route (issue 15, Build item 3): predict and rawPredict at Vertex's
1.5 MB, Cloud Storage JSON small, every buffered route bounded and refused on the declared
length before a byte of the body is read; media uploads stream and stay large.

Raw HTTP on loopback: the official clients never send such bodies.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests

from deployer.emulator.http import CONTROL_MAX_BODY, METADATA_MAX_BODY, PREDICT_MAX_BODY
from tests.support.emulator import EmulatorProcess

pytestmark = [pytest.mark.timeout(180), pytest.mark.wire_contract_exempt]

ENDPOINT = "/v1/projects/p/locations/us-central1/endpoints/123"


@pytest.fixture(scope="module")
def emu(module_emulator: EmulatorProcess) -> EmulatorProcess:
    return module_emulator


def headers_only(emu: EmulatorProcess, path: str, length: int) -> bytes:
    """Send a request line and headers declaring `length` body bytes, and no body: a server
    that waits for the body before answering fails the socket timeout."""
    with socket.create_connection(("127.0.0.1", emu.port), timeout=20) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{emu.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n".encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply


def test_a_declared_oversized_json_body_is_refused_before_it_is_read(emu: EmulatorProcess) -> None:
    reply = headers_only(emu, "/storage/v1/b?project=p", 250_000_000)
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:300]
    assert b'"status":"PAYLOAD_TOO_LARGE"' in reply and b'"code":413' in reply
    upload = "/v1/projects/p/locations/us-central1/models:upload"
    reply = headers_only(emu, upload, CONTROL_MAX_BODY + 1)
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:300]


@pytest.mark.parametrize("verb", [":predict", ":rawPredict"])
def test_predict_over_vertex_limit_is_refused_before_it_is_read(
    emu: EmulatorProcess, verb: str
) -> None:
    reply = headers_only(emu, ENDPOINT + verb, PREDICT_MAX_BODY + 1)
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:300]
    assert b"Request payload size exceeds the limit: 1572864 bytes." in reply


def chunks(total: int) -> Iterator[bytes]:
    yield b'{"name": "big", "labels": {"x": "'
    for _ in range(total // 65536):
        yield b"x" * 65536
    yield b'"}}'


def test_a_chunked_json_body_is_cut_off_at_the_bound(emu: EmulatorProcess) -> None:
    resp = requests.post(
        f"{emu.url}/storage/v1/b?project=p",
        data=chunks(METADATA_MAX_BODY + 65536),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert resp.status_code == 413, resp.text[:300]
    assert resp.json()["error"]["status"] == "PAYLOAD_TOO_LARGE"
    assert requests.get(f"{emu.url}/storage/v1/b/big", timeout=10).status_code == 404


def test_resumable_upload_metadata_is_bounded_though_the_route_streams(
    emu: EmulatorProcess,
) -> None:
    requests.post(f"{emu.url}/storage/v1/b?project=p", json={"name": "lim"}, timeout=10)
    resp = requests.post(
        f"{emu.url}/upload/storage/v1/b/lim/o?uploadType=resumable",
        data=chunks(METADATA_MAX_BODY + 65536),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert resp.status_code == 413, resp.text[:300]


def test_media_and_multipart_uploads_stay_large(emu: EmulatorProcess) -> None:
    requests.post(f"{emu.url}/storage/v1/b?project=p", json={"name": "large"}, timeout=10)
    media = b"m" * (20 << 20)  # above every JSON bound: streamed to disk
    resp = requests.post(
        f"{emu.url}/upload/storage/v1/b/large/o?uploadType=media&name=media",
        data=media,
        timeout=120,
    )
    assert resp.status_code == 200 and resp.json()["size"] == str(len(media))
    boundary = "bnd"
    part = b"p" * (9 << 20)  # what the Python client still sends as multipart (<= 8 MiB) and more
    body = (
        f'--{boundary}\r\nContent-Type: application/json\r\n\r\n{{"name": "multi"}}\r\n'
        f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
        + part
        + f"\r\n--{boundary}--\r\n".encode()
    )
    resp = requests.post(
        f"{emu.url}/upload/storage/v1/b/large/o?uploadType=multipart",
        data=body,
        headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
        timeout=120,
    )
    assert resp.status_code == 200 and resp.json()["size"] == str(len(part)), resp.text[:300]

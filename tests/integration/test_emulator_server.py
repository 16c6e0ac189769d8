"""The emulator's server: request log, fault injection, dropped responses, admin route, robustness,
lifecycle."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from google.api_core import exceptions as gexc
from google.cloud.storage import Client as StorageClient

from tests.integration.conftest import make_storage_client
from tests.support.emulator import EmulatorProcess, free_port

pytestmark = pytest.mark.timeout(120)


def test_health_route_reports_ok(emulator: EmulatorProcess) -> None:
    doc = emulator.health()
    assert doc["status"] == "ok" and doc["data_dir"] == str(emulator.data_dir)
    assert "gcs" in doc["apis"]


def test_request_log_has_one_line_per_api_call_and_skips_admin(
    emulator: EmulatorProcess, storage_client: StorageClient
) -> None:
    bucket = storage_client.create_bucket("logged")
    bucket.blob("o").upload_from_string(b"x")
    bucket.blob("o").download_as_bytes()
    emulator.admin()
    emulator.health()
    entries = emulator.read_request_log()
    assert [e["api"] for e in entries] == [
        "storage.buckets.insert",
        "storage.objects.insert",
        "storage.objects.get",
    ]
    assert [e["mutating"] for e in entries] == [True, True, False]
    assert (
        entries[2]["path"] == "/download/storage/v1/b/logged/o/o" and entries[2]["method"] == "GET"
    )
    for e in entries:
        assert e["status"] == 200 and e["duration_ms"] >= 0 and e["time"].endswith("Z")
    assert len(emulator.mutating_calls()) == 2


def test_injected_faults_fail_before_any_effect_and_clients_retry(
    emulator: EmulatorProcess, storage_client: StorageClient
) -> None:
    bucket = storage_client.create_bucket("flaky")
    bucket.blob("o").upload_from_string(b"data")
    emulator.clear_request_log()
    emulator.admin({"inject_faults": 0.3, "seed": 11})
    for i in range(6):
        # Create-only uploads are retried by the client; each takes effect exactly once.
        bucket.blob(f"n{i}").upload_from_string(b"v", if_generation_match=0)
        assert bucket.blob("o").download_as_bytes() == b"data"
    entries = emulator.read_request_log()
    faulted = [e for e in entries if e.get("fault") == "injected"]
    assert faulted and {e["status"] for e in faulted} <= {429, 503}
    assert {e["status"] for e in entries} <= {
        200,
        429,
        503,
    }  # no 412: an injected fault never took effect
    emulator.admin({"inject_faults": 0})
    assert sorted(b.name for b in storage_client.list_blobs("flaky")) == sorted(
        ["o"] + [f"n{i}" for i in range(6)]
    )
    assert emulator.admin()["injected"] == len(faulted)


def test_inject_faults_flag_is_seeded_and_reproducible(tmp_path: Path) -> None:
    def statuses() -> list[int]:
        with EmulatorProcess(
            data_dir=tmp_path / f"d{len(list(tmp_path.iterdir()))}",
            extra_args=["--inject-faults", "0.5", "--seed", "42"],
        ) as emu:
            session = requests.Session()
            return [session.get(f"{emu.url}/storage/v1/b").status_code for _ in range(20)]

    first, second = statuses(), statuses()
    assert first == second
    assert set(first) >= {200} and set(first) & {429, 503}


def test_dropped_response_after_effect_then_client_retry_meets_precondition(
    emulator: EmulatorProcess, storage_client: StorageClient
) -> None:
    bucket = storage_client.create_bucket("drops")
    emulator.admin({"script": [{"method": "storage.objects.insert", "count": 1, "drop": True}]})
    # The first attempt is written, its response lost; the client's retry then finds it exists.
    with pytest.raises(gexc.PreconditionFailed):
        bucket.blob("lock").upload_from_string(b"mine", if_generation_match=0)
    assert bucket.blob("lock").download_as_bytes() == b"mine"
    inserts = [e for e in emulator.read_request_log() if e["api"] == "storage.objects.insert"]
    assert [e.get("fault") for e in inserts] == ["dropped", None]


def test_drop_responses_flag_drops_only_mutating_calls(tmp_path: Path) -> None:
    with EmulatorProcess(data_dir=tmp_path / "d", extra_args=["--drop-responses", "1.0"]) as emu:
        with pytest.raises(requests.ConnectionError):
            requests.post(f"{emu.url}/storage/v1/b", json={"name": "made-anyway"}, timeout=10)
        got = requests.get(f"{emu.url}/storage/v1/b/made-anyway", timeout=10)
        assert got.status_code == 200 and got.json()["name"] == "made-anyway"


def test_scripted_faults_fail_the_next_n_calls_of_one_method(
    emulator: EmulatorProcess, storage_client: StorageClient
) -> None:
    storage_client.create_bucket("scripted")
    settings = emulator.admin(
        {
            "script": [{"method": "storage.buckets.get", "count": 2, "http_status": 503}],
            "op_delay": 1.5,
        }
    )
    assert settings["op_delay"] == 1.5 and settings["script"][0]["count"] == 2
    assert storage_client.get_bucket("scripted").name == "scripted"  # retried through two 503s
    gets = [e["status"] for e in emulator.read_request_log() if e["api"] == "storage.buckets.get"]
    assert gets == [503, 503, 200]
    assert emulator.admin()["script"] == []
    emulator.admin({"script": [{"method": "storage.objects.list", "count": 1, "http_status": 429}]})
    resp = requests.get(f"{emulator.url}/storage/v1/b/scripted/o", timeout=10)
    assert resp.status_code == 429 and resp.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_bad_admin_input_is_a_400(emulator: EmulatorProcess) -> None:
    for body in ({"inject_faults": 2}, {"script": "x"}, {"script": [{"count": 1}]}):
        resp = requests.post(f"{emulator.url}/_emulator/faults", json=body, timeout=10)
        assert resp.status_code == 400, body


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("POST", "/storage/v1/b", b"{not json", {"Content-Type": "application/json"}, 400),
        ("POST", "/storage/v1/b", b"[]", {}, 400),
        ("GET", "/no/such/api", b"", {}, 404),
        ("DELETE", "/storage/v1/b", b"", {}, 405),
        ("GET", "/storage/v1/b/nobucket/o?pageToken=%%%", b"", {}, 404),
        (
            "POST",
            "/upload/storage/v1/b/bad-req/o?uploadType=multipart",
            b"junk",
            {"Content-Type": "text/plain"},
            400,
        ),
        ("POST", "/upload/storage/v1/b/bad-req/o?uploadType=bogus", b"", {}, 400),
        ("POST", "/upload/storage/v1/b/bad-req/o?uploadType=media", b"x", {}, 400),
        (
            "PUT",
            "/upload/storage/v1/b/bad-req/o?uploadType=resumable&upload_id=nope",
            b"x",
            {},
            404,
        ),
        ("GET", "/storage/v1/b/bad-req/o?maxResults=abc", b"", {}, 400),
        ("GET", "/storage/v1/b/bad-req/o?pageToken=garbage", b"", {}, 400),
        ("GET", "/download/storage/v1/b/bad-req/o/obj?alt=media", b"", {"Range": "bytes=z-"}, 416),
        ("GET", "/storage/v1/b/bad-req/o/obj?ifGenerationMatch=xyz", b"", {}, 400),
    ],
)
def test_bad_requests_get_4xx_with_google_error_body(
    shared_emulator: EmulatorProcess,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    requests.post(f"{shared_emulator.url}/storage/v1/b", json={"name": "bad-req"}, timeout=10)
    requests.post(
        f"{shared_emulator.url}/upload/storage/v1/b/bad-req/o?uploadType=media&name=obj",
        data=b"abc",
        timeout=10,
    )
    resp = requests.request(
        method, shared_emulator.url + path, data=body, headers=headers, timeout=10
    )
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == status and error["message"] and error["errors"]
    assert shared_emulator.health()["status"] == "ok"


def test_malformed_http_never_kills_the_server(emulator: EmulatorProcess) -> None:
    garbage = [
        b"NONSENSE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /storage/v1/b HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b'POST /storage/v1/b HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"na',  # body cut short
        b"POST /storage/v1/b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
        b"\x00\xff\xfe" * 100,
    ]
    for payload in garbage:
        with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := sock.recv(65536):  # the server closes after a protocol error
                reply += chunk
            status_line, _, rest = reply.partition(b"\r\n")
            assert re.fullmatch(rb"HTTP/1\.[01] 4\d\d .*", status_line), (payload[:30], reply[:200])
            assert b'"error"' in rest
    assert emulator.health()["status"] == "ok"
    assert emulator.proc is not None and emulator.proc.poll() is None


def test_chunked_request_body_and_keep_alive(emulator: EmulatorProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    conn.request(
        "POST",
        "/storage/v1/b",
        body=iter([b'{"name":', b'"chunky"}']),
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["name"] == "chunky"
    sock = conn.sock
    for _ in range(3):  # same connection reused: HTTP/1.1 keep-alive
        conn.request("GET", "/storage/v1/b/chunky")
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
        assert conn.sock is sock
    conn.close()


def test_a_stalled_client_does_not_block_others(emulator: EmulatorProcess) -> None:
    body = json.dumps({"name": "stalled-late"}).encode()
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=30) as stalled:
        # Sends its headers and one byte of the body, then stalls: its handler thread waits.
        stalled.sendall(
            b"POST /storage/v1/b HTTP/1.1\r\nHost: 127.0.0.1:"
            + str(emulator.port).encode()
            + b"\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:1]
        )
        # Another client is served in full while that request is still half-sent...
        # (The timeout only bounds a hang: a blocked server fails the test, it does not stall it.)
        other = requests.post(
            f"{emulator.url}/storage/v1/b", json={"name": "not-blocked"}, timeout=30
        )
        assert other.status_code == 200 and other.json()["name"] == "not-blocked"
        # ...and the stalled one is still waiting, not dropped: it completes afterwards.
        stalled.sendall(body[1:])
        reply = stalled.recv(65536)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    created = requests.get(f"{emulator.url}/storage/v1/b/stalled-late", timeout=30)
    assert created.json()["name"] == "stalled-late"


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    emu = EmulatorProcess(data_dir=tmp_path / "d")
    emu.start()
    try:
        assert emu.stop(timeout=10) == 0
        assert "stopped" in emu.stderr_tail()
    finally:
        emu.cleanup()


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEPLOYER_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "deployer", "local", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _wait_until_gone(pid: int) -> None:
    """Poll `pid` for up to 5 s; os.kill raises ProcessLookupError once it is gone."""
    for _ in range(100):
        os.kill(pid, 0)
        time.sleep(0.05)


@pytest.mark.timeout(180)
def test_local_up_is_idempotent_and_down_stops_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    first = _cli(home, "up", "--port", str(port), "--output", "json")
    try:
        assert first.returncode == 0, first.stderr
        info = json.loads(first.stdout)
        assert info["url"] == info["storage_emulator_host"] == f"http://127.0.0.1:{port}"
        assert info["already_running"] is False
        assert Path(info["data_dir"]) == home / "local" / "data"
        state = json.loads((home / "local" / "instance.json").read_text())
        assert state["pid"] == info["pid"] and state["port"] == port
        client = make_storage_client(info["url"])
        client.create_bucket("via-up")

        second = _cli(home, "up", "--output", "json")
        assert second.returncode == 0 and json.loads(second.stdout)["pid"] == info["pid"]
        assert json.loads(second.stdout)["already_running"] is True
        text = _cli(home, "up")
        assert (
            f"STORAGE_EMULATOR_HOST={info['url']}" in text.stdout
            and f'api_endpoint="{info["url"]}"' in text.stdout
        )

        status = _cli(home, "status", "--output", "json")
        assert status.returncode == 0 and json.loads(status.stdout)["running"] is True
    finally:
        down = _cli(home, "down")
    assert down.returncode == 0 and "Stopped" in down.stdout
    assert not (home / "local" / "instance.json").exists()
    with pytest.raises(ProcessLookupError):
        _wait_until_gone(info["pid"])
    assert _cli(home, "status").returncode == 1
    # Data survives down/up.
    again = _cli(home, "up", "--port", str(port), "--output", "json")
    try:
        assert again.returncode == 0, again.stderr
        assert (
            make_storage_client(json.loads(again.stdout)["url"]).lookup_bucket("via-up") is not None
        )
    finally:
        _cli(home, "down")


def test_port_in_use_is_a_clear_error_not_a_traceback(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deployer",
            "local",
            "run",
            "--port",
            str(emulator.port),
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 3
    assert "Cannot listen on 127.0.0.1" in proc.stderr and "Traceback" not in proc.stderr

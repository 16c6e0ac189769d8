"""Who may drive the emulator (issue 15, Build item 2): web pages of other origins and rebound
DNS names are refused before any effect; a bearer token, when configured, is required; the
official clients work unchanged on loopback, and with the token when one is set.

All traffic is loopback: a forged Host or Origin is only a header.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core import exceptions as gexc

from tests.integration.conftest import make_storage_client
from tests.support.emulator import EmulatorProcess

# Forged headers and refused requests on purpose: left out of the wire contract.
pytestmark = [pytest.mark.timeout(180), pytest.mark.wire_contract_exempt]

TOKEN = "test-token-0123456789abcdef"


def assert_google_error(resp: requests.Response, status: int, mentions: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    error = resp.json()["error"]
    assert error["code"] == status and mentions in error["message"], error
    assert error["status"] == "PERMISSION_DENIED" and error["errors"][0]["reason"] == "forbidden"
    assert error["errors"][0]["message"] == error["message"]
    assert "access-control-allow-origin" not in {k.lower() for k in resp.headers}


def bucket_exists(url: str, name: str, **headers: str) -> bool:
    resp = requests.get(f"{url}/storage/v1/b/{name}", headers=headers, timeout=10)
    assert resp.status_code in (200, 404), resp.text
    return resp.status_code == 200


@pytest.fixture(scope="module")
def emu(module_emulator: EmulatorProcess) -> EmulatorProcess:
    return module_emulator


@pytest.fixture(scope="module")
def token_emu() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(env={"DEPLOYER_EMULATOR_TOKEN": TOKEN}, wire_contract=False) as proc:
        yield proc


# ---- Host: DNS rebinding ------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "rebind.evil.example:{port}", "127.0.0.1:1"])
def test_a_forged_host_is_refused_with_403_and_no_effect(emu: EmulatorProcess, host: str) -> None:
    name = f"rebound-{abs(hash(host)) % 10_000}"
    resp = requests.post(
        f"{emu.url}/storage/v1/b?project=p",
        json={"name": name},
        headers={"Host": host.format(port=emu.port)},
        timeout=10,
    )
    assert_google_error(resp, 403, "DNS rebinding")
    assert not bucket_exists(emu.url, name)


def test_reads_through_a_rebound_name_are_refused_too(emu: EmulatorProcess) -> None:
    # DNS rebinding is about reading answers: a GET under the attacker's name gets nothing.
    resp = requests.get(
        f"{emu.url}/storage/v1/b?project=p", headers={"Host": f"evil.example:{emu.port}"}
    )
    assert_google_error(resp, 403, "is not an address this emulator serves")


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "[::1]"])
def test_the_loopback_names_with_the_port_are_served(emu: EmulatorProcess, name: str) -> None:
    resp = requests.get(
        f"{emu.url}/storage/v1/b?project=p", headers={"Host": f"{name}:{emu.port}"}, timeout=10
    )
    assert resp.status_code == 200, resp.text


# ---- Origin: web pages of other sites ----------------------------------------------------


def test_a_cross_origin_simple_post_is_refused_and_has_no_effect(emu: EmulatorProcess) -> None:
    # What a page on evil.example can send without a preflight: text/plain, no custom header.
    resp = requests.post(
        f"{emu.url}/storage/v1/b?project=p",
        data=b'{"name": "from-evil-page"}',
        headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
        timeout=10,
    )
    assert_google_error(resp, 403, "another origin")
    assert not bucket_exists(emu.url, "from-evil-page")
    # Nor through Vertex: a model upload from the page leaves no model.
    resp = requests.post(
        f"{emu.url}/v1/projects/p/locations/us-central1/models:upload",
        data=b'{"model": {"displayName": "evil"}}',
        headers={"Origin": "http://evil.example", "Content-Type": "text/plain"},
        timeout=10,
    )
    assert_google_error(resp, 403, "another origin")
    listed = requests.get(f"{emu.url}/v1/projects/p/locations/us-central1/models", timeout=10)
    assert listed.status_code == 200 and not listed.json().get("models")


def test_a_cors_preflight_from_another_origin_is_refused(emu: EmulatorProcess) -> None:
    resp = requests.options(
        f"{emu.url}/storage/v1/b?project=p",
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=10,
    )
    assert_google_error(resp, 403, "another origin")


def test_a_cross_site_load_without_origin_is_refused(emu: EmulatorProcess) -> None:
    # An <img>/<script> tag on another site sends no Origin; fetch metadata says cross-site.
    resp = requests.get(
        f"{emu.url}/storage/v1/b?project=p",
        headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
        timeout=10,
    )
    assert_google_error(resp, 403, "another site")


@pytest.mark.parametrize("origin", ["http://127.0.0.1:{port}", "http://localhost:{port}"])
def test_a_same_origin_post_is_served(emu: EmulatorProcess, origin: str) -> None:
    name = f"same-origin-{'local' if 'localhost' in origin else 'ip'}"
    resp = requests.post(
        f"{emu.url}/storage/v1/b?project=p",
        json={"name": name},
        headers={"Origin": origin.format(port=emu.port), "Sec-Fetch-Site": "same-origin"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert bucket_exists(emu.url, name)


# ---- the official clients on a token-less loopback emulator ---------------------------------


def test_official_clients_work_unchanged_on_loopback(emu: EmulatorProcess) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1 as v1

    storage = make_storage_client(emu.url)
    bucket = storage.create_bucket("official-loopback")
    bucket.blob("m/x.txt").upload_from_string(b"hello")
    assert [b.name for b in storage.list_blobs("official-loopback")] == ["m/x.txt"]
    assert next(iter(storage.list_blobs("official-loopback"))).download_as_bytes() == b"hello"
    models = v1.ModelServiceClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emu.url},
    )
    assert list(models.list_models(parent="projects/p/locations/us-central1")) == []
    # A client with real-looking credentials sends a bearer token: ignored without our token.
    resp = requests.get(
        f"{emu.url}/storage/v1/b/official-loopback",
        headers={"Authorization": "Bearer ya29.some-google-token"},
        timeout=10,
    )
    assert resp.status_code == 200


# ---- the bearer token -------------------------------------------------------------------


def test_with_a_token_requests_without_it_are_refused(token_emu: EmulatorProcess) -> None:
    url = token_emu.url
    assert_google_error(
        requests.get(f"{url}/storage/v1/b?project=p", timeout=10), 403, "requires a bearer token"
    )
    resp = requests.post(
        f"{url}/storage/v1/b?project=p",
        json={"name": "no-token"},
        headers={"Authorization": "Bearer wrong-token-0123456789"},
        timeout=10,
    )
    assert_google_error(resp, 403, "not this emulator's")
    assert not bucket_exists(url, "no-token", Authorization=f"Bearer {TOKEN}")
    # Launchers wait on the health route, which reveals nothing to drive the emulator with.
    assert requests.get(f"{url}/_emulator/health", timeout=10).json()["status"] == "ok"
    assert_google_error(requests.get(f"{url}/_emulator/faults", timeout=10), 403, "bearer")


def test_with_a_token_the_official_clients_carrying_it_work(token_emu: EmulatorProcess) -> None:
    from google.api_core.client_options import ClientOptions
    from google.cloud import aiplatform_v1 as v1
    from google.cloud import storage
    from google.oauth2.credentials import Credentials

    creds = Credentials(token=TOKEN)
    client = storage.Client(
        project="p", credentials=creds, client_options=ClientOptions(api_endpoint=token_emu.url)
    )
    client.create_bucket("with-token").blob("a").upload_from_string(b"1")
    assert [b.download_as_bytes() for b in client.list_blobs("with-token")] == [b"1"]
    models = v1.ModelServiceClient(
        transport="rest", credentials=creds, client_options={"api_endpoint": token_emu.url}
    )
    assert list(models.list_models(parent="projects/p/locations/us-central1")) == []
    # The same clients without the token are refused, as Google refuses a missing credential.
    anonymous = make_storage_client(token_emu.url)
    with pytest.raises(gexc.Forbidden, match="requires a bearer token"):
        anonymous.get_bucket("with-token")
    # Google's query-parameter form works as well (the console's first URL uses it).
    resp = requests.get(
        f"{token_emu.url}/storage/v1/b/with-token", params={"access_token": TOKEN}, timeout=10
    )
    assert resp.status_code == 200


def test_deployer_sends_the_token_from_its_environment(
    token_emu: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployer.providers.clients import make_clients, resolve_target

    monkeypatch.setenv("DEPLOYER_EMULATOR_TOKEN", TOKEN)
    clients = make_clients(resolve_target("local", "p", "us-central1", emulator=token_emu.url))
    clients.storage.create_bucket("from-deployer")
    assert [b.name for b in clients.storage.list_buckets()] == ["from-deployer", "with-token"]
    assert list(clients.models.list_models(parent="projects/p/locations/us-central1")) == []
    resp = clients.http.get(f"{token_emu.url}/storage/v1/b/from-deployer", timeout=10)
    assert resp.status_code == 200


def test_the_cli_against_a_token_emulator_needs_the_token(
    token_emu: EmulatorProcess, tmp_path: Path
) -> None:
    repo = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DEPLOYER_EMULATOR": token_emu.url,
        "DEPLOYER_HOME": str(tmp_path / "home"),
        "DEPLOYER_RETRY_SCALE": "0",
    }
    env.pop("DEPLOYER_EMULATOR_TOKEN", None)
    cmd = [sys.executable, "-m", "deployer", "status", str(repo / "configs" / "mnist.yaml")]
    refused = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr
    assert "bearer token" in refused.stderr, refused.stderr
    assert "fix: set DEPLOYER_EMULATOR_TOKEN" in refused.stderr, refused.stderr
    env["DEPLOYER_EMULATOR_TOKEN"] = TOKEN
    allowed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert allowed.returncode == 0, allowed.stderr


# ---- binding ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "up"])
def test_a_non_loopback_bind_without_a_token_is_refused(tmp_path: Path, command: str) -> None:
    env = {**os.environ, "DEPLOYER_HOME": str(tmp_path)}
    env.pop("DEPLOYER_EMULATOR_TOKEN", None)
    # Refused before binding: nothing listens on 0.0.0.0, even for a moment.
    result = subprocess.run(
        [sys.executable, "-m", "deployer", "local", command, "--host", "0.0.0.0", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "refusing to bind 0.0.0.0 without an auth token" in result.stderr
    assert "--auth-token" in result.stderr
    assert not (tmp_path / "local" / "instance.json").exists()


def test_a_weak_token_is_refused_at_start(tmp_path: Path) -> None:
    env = {**os.environ, "DEPLOYER_HOME": str(tmp_path), "DEPLOYER_EMULATOR_TOKEN": "short"}
    result = subprocess.run(
        [sys.executable, "-m", "deployer", "local", "run", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "at least 16" in result.stderr


# ---- serving containers: the read-only reader URL ----------------------------------------


def test_the_reader_url_reads_storage_and_nothing_else(tmp_path: Path) -> None:
    """What a custom container gets as STORAGE_EMULATOR_HOST when a token is set (in-process:
    the capability is a secret of the run, never printed)."""
    from google.cloud.storage import Client

    from deployer.emulator.server import build_server

    server, ctx = build_server(
        host="127.0.0.1", port=0, auth_token=TOKEN, data_dir=tmp_path, with_vertex=False
    )
    server.start()
    try:
        owner = requests.Session()
        owner.headers["Authorization"] = f"Bearer {TOKEN}"
        base = ctx.base_url
        assert owner.post(f"{base}/storage/v1/b?project=p", json={"name": "art"}).ok
        put = owner.post(
            f"{base}/upload/storage/v1/b/art/o?uploadType=media&name=m/saved_model.pb", data=b"pb"
        )
        assert put.ok, put.text
        reader_url = ctx.reader_url
        assert reader_url != base and TOKEN not in reader_url
        reader: Any = make_storage_client(reader_url)
        blobs = list(reader.list_blobs("art", prefix="m/"))
        assert [b.name for b in blobs] == ["m/saved_model.pb"]
        # The mediaLink the listing returned keeps the reader prefix: the download works.
        assert blobs[0].media_link.startswith(reader_url)
        assert blobs[0].download_as_bytes() == b"pb"
        assert reader.bucket("art").blob("m/saved_model.pb").download_as_bytes() == b"pb"
        # As examples/custom-container/server.py reads it: the variable plus the JSON API path.
        raw = requests.get(f"{reader_url}/storage/v1/b/art/o/m%2Fsaved_model.pb?alt=media")
        assert raw.status_code == 200 and raw.content == b"pb"
        assert isinstance(reader, Client)
        with pytest.raises(gexc.Forbidden):
            reader.bucket("art").blob("written").upload_from_string(b"no")
        refused = requests.get(f"{reader_url}/_emulator/faults", timeout=10)
        assert_google_error(refused, 403, "may only read Cloud Storage")
        assert not owner.get(f"{base}/storage/v1/b/art/o/written").ok
    finally:
        server.stop(1.0)
        ctx.run_shutdown_hooks()

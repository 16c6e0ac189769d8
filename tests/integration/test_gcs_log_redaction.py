"""At --log-level DEBUG the emulator logs each request, but never a credential (issue 15).

Clients send `access_token=` / `key=` query parameters and `Authorization` headers as they
would to Google; the emulator ignores them, and its log and request log show REDACTED.
"""

from __future__ import annotations

import http.client

import pytest
import requests

from tests.support.emulator import EmulatorProcess

pytestmark = pytest.mark.timeout(120)

SECRETS = ("ya29.SECRET-BEARER", "SECRET-ACCESS-TOKEN", "SECRET-API-KEY", "SECRET-ENCODED")


def test_debug_log_and_request_log_redact_credentials() -> None:
    with EmulatorProcess(extra_args=["--log-level", "DEBUG"]) as emu:
        auth = {"Authorization": f"Bearer {SECRETS[0]}"}
        resp = requests.post(
            f"{emu.url}/storage/v1/b?project=p&access_token={SECRETS[1]}&key={SECRETS[2]}",
            json={"name": "logged-bucket"},
            headers=auth,
            timeout=10,
        )
        assert resp.status_code == 200
        # Percent-encoded parameter names are the same parameters (http.client: requests
        # would decode the %5F itself).
        conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
        conn.request(
            "GET", f"/storage/v1/b/logged-bucket/o?access%5Ftoken={SECRETS[3]}", headers=auth
        )
        assert conn.getresponse().status == 200
        conn.close()
        requests.get(f"{emu.url}/storage/v1/b/missing?key={SECRETS[2]}", timeout=10)
        emu.stop()
        log = emu.stderr_path.read_text(errors="replace")
        recorded = emu.request_log_path.read_text()
    # The requests were logged (so this test can see a leak), with their values redacted.
    assert "/storage/v1/b?project=p&access_token=REDACTED&key=REDACTED" in log, log[-2000:]
    assert "access%5Ftoken=REDACTED" in log
    assert "/storage/v1/b/missing?key=REDACTED" in log
    assert "logged-bucket" in recorded
    for secret in SECRETS:
        assert secret not in log
        assert secret not in recorded

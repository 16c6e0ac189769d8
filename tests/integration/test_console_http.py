"""The emulator console over plain HTTP: its listener, its URL, its answers to hostile input.

What the browser tests (test_console_browser.py) cannot see well: the console's own port and
the `local up` / `local run` lines that name it, `--no-console`, the token carried once in
the printed URL, the raw HTML (hostile object names escaped, never markup), the headers of a
download (opaque bytes as an attachment, whatever content type the object claims), and the
access rules on the console's port (a forged Host or a cross-origin form post has no effect).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import make_storage_client
from tests.support.emulator import EmulatorProcess

TOKEN = "console-token-0123456789abcdef"
HOSTILE = '<script>alert("x")</script>&amp;<img src=x onerror=alert(1)>'


def _console(emulator: EmulatorProcess) -> str:
    match = re.search(r"console at (http://127\.0\.0\.1:\d+/_console/)", emulator.stderr_tail(200))
    assert match, emulator.stderr_tail()
    return match.group(1)


def _get(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> Any:
    request = urllib.request.Request(url, headers=headers or {}, data=data)
    try:
        return urllib.request.urlopen(request, timeout=20)
    except urllib.error.HTTPError as exc:
        return exc


def test_console_pages_escape_hostile_names_and_downloads_are_opaque_attachments(
    emulator: EmulatorProcess,
) -> None:
    console = _console(emulator)
    bucket = make_storage_client(emulator.url).create_bucket("console-raw")
    bucket.blob(HOSTILE).upload_from_string(
        b"<html><script>alert(2)</script>", content_type="text/html"
    )

    listing = _get(console + "bucket?bucket=console-raw")
    html = listing.read().decode()
    assert listing.status == 200
    assert "<script>alert" not in html and "<img src=x" not in html
    # The name shows as its own text, every special character escaped once.
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;" in html
    csp = listing.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert listing.headers["X-Content-Type-Options"] == "nosniff"

    from urllib.parse import urlencode

    download = _get(console + "download?" + urlencode({"bucket": "console-raw", "name": HOSTILE}))
    assert download.status == 200
    assert download.read() == b"<html><script>alert(2)</script>"
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.headers["Content-Disposition"].startswith("attachment; filename*=UTF-8''")
    missing = _get(console + "object?bucket=console-raw&name=nope")
    assert missing.status == 404 and "No such object" in missing.read().decode()


def test_the_console_port_keeps_the_emulators_access_rules(emulator: EmulatorProcess) -> None:
    console = _console(emulator)
    port = console.split(":")[2].split("/")[0]
    forged = _get(console + "models", {"Host": f"attacker.example:{port}"})
    assert forged.status == 403
    before = emulator.admin()
    posted = _get(
        console + "faults",
        {"Origin": "http://attacker.example", "Content-Type": "application/x-www-form-urlencoded"},
        b"inject_faults=1&drop_responses=1&op_delay=9&seed=",
    )
    assert posted.status == 403
    assert emulator.admin() == before
    # The same form from the console's own origin takes effect.
    own = _get(
        console + "faults",
        {
            "Origin": console.split("/_console")[0],
            "Content-Type": "application/x-www-form-urlencoded",
        },
        b"inject_faults=0&drop_responses=0&op_delay=0.5&seed=",
    )
    assert own.status == 200 and emulator.admin()["op_delay"] == 0.5
    bad = _get(
        console + "faults",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"inject_faults=2&drop_responses=0&op_delay=0&seed=",
    )
    assert bad.status == 400 and "inject_faults must be in [0, 1]" in bad.read().decode()
    assert emulator.admin()["inject_faults"] == 0.0


def test_no_console_serves_none_and_a_port_option_picks_its_port(tmp_path: Path) -> None:
    with EmulatorProcess(extra_args=["--no-console"]) as emulator:
        assert "console at" not in emulator.stderr_tail(200)
    from tests.support.emulator import free_port

    port = free_port()
    with EmulatorProcess(extra_args=["--console-port", str(port)]) as emulator:
        assert _console(emulator) == f"http://127.0.0.1:{port}/_console/"
        assert _get(f"http://127.0.0.1:{port}/_console/models").status == 200


@pytest.mark.timeout(180)
def test_local_up_prints_the_console_url_carrying_the_token_once(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DEPLOYER_EMULATOR",)}
    env["DEPLOYER_HOME"] = str(tmp_path / "home")  # a private instance, stopped below
    env["DEPLOYER_EMULATOR_TOKEN"] = TOKEN
    deployer = [sys.executable, "-m", "deployer", "local"]
    try:
        up = subprocess.run(
            [*deployer, "up", "--port", "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert up.returncode == 0, up.stderr[-2000:]
        match = re.search(r"Console \(in a browser\): (http://\S+)", up.stdout)
        assert match, up.stdout
        url = match.group(1)
        assert url.endswith(f"/_console/?access_token={TOKEN}")
        state = json.loads((tmp_path / "home" / "local" / "instance.json").read_text())
        assert state["console_url"] == url.split("?")[0] and TOKEN not in json.dumps(state)
        # Without the token: refused. With it: a cookie, and the page again without it.
        assert _get(state["console_url"] + "models").status == 403

        class Keep(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any) -> None:
                return None

        opener = urllib.request.build_opener(Keep)
        try:
            first = opener.open(state["console_url"] + f"models?access_token={TOKEN}", timeout=20)
        except urllib.error.HTTPError as exc:
            first = exc
        assert first.status == 303
        assert first.headers["Location"] == "/_console/models"
        cookie = first.headers["Set-Cookie"]
        assert (
            cookie == f"deployer_emulator_token={TOKEN}; HttpOnly; SameSite=Strict; Path=/_console/"
        )
        again = _get(state["console_url"] + "models", {"Cookie": cookie.split(";")[0]})
        assert again.status == 200
        # A wrong token in the URL sets no cookie.
        wrong = _get(state["console_url"] + "models?access_token=not-the-token-at-all")
        assert wrong.status == 403 and "Set-Cookie" not in wrong.headers
    finally:
        subprocess.run([*deployer, "down"], env=env, capture_output=True, timeout=60, check=False)

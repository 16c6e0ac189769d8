"""The emulator's access rules (deployer.emulator.access): Host, Origin, token, reader scope;
and the one JSON depth bound of its request parsing.

Pure: the policy decides from headers; tests/integration/test_emulator_access.py drives the
real server.
"""

from __future__ import annotations

import pytest

from deployer.emulator.access import (
    READER_PREFIX,
    TOKEN_COOKIE,
    AccessPolicy,
    Denial,
    Grant,
    Scope,
    check_bind,
    reader_may,
)
from deployer.emulator.http import Request, ServiceError
from deployer.emulator.jsonlimits import MAX_DEPTH, request_json
from deployer.errors import ConfigError

TOKEN = "s3cret-token-0123456789"


def check(policy: AccessPolicy, path: str = "/storage/v1/b", method: str = "GET", **headers: str):  # type: ignore[no-untyped-def]
    query: dict[str, list[str]] = {}
    if "?" in path:
        path, _, qs = path.partition("?")
        key, _, value = qs.partition("=")
        query = {key: [value]}
    return policy.check(method, path, {k.replace("_", "-"): v for k, v in headers.items()}, query)


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765", "LOCALHOST:8765"]
)
def test_loopback_bind_accepts_the_loopback_names_with_its_port(host: str) -> None:
    policy = AccessPolicy(bind_host="127.0.0.1", port=8765)
    assert check(policy, host=host) == Grant(Scope.FULL, "/storage/v1/b")


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:8765",  # DNS rebinding: the attacker's name resolving to 127.0.0.1
        "127.0.0.1:8766",  # another port
        "localhost",  # port 80, not ours
        "127.0.0.1.nip.io:8765",
        "localhost.:8765",
        "10.0.0.5:8765",  # an IP literal is fine only on a wildcard bind
        "[::1:8765",
        "127.0.0.1:99999999",
        "",
    ],
)
def test_loopback_bind_refuses_any_other_host_with_403(host: str) -> None:
    verdict = check(AccessPolicy(bind_host="127.0.0.1", port=8765), host=host)
    assert isinstance(verdict, Denial) and verdict.status == 403
    assert verdict.reason == "PERMISSION_DENIED" and "--allow-host" in verdict.message


def test_a_request_without_host_is_refused() -> None:
    assert isinstance(check(AccessPolicy(bind_host="127.0.0.1", port=1)), Denial)


def test_extra_names_match_any_served_port_or_exactly_their_own() -> None:
    policy = AccessPolicy(
        bind_host="127.0.0.1", port=8765, extra_hosts=("dev.box", "tunnel.example:443")
    )
    assert isinstance(check(policy, host="dev.box:8765"), Grant)
    assert isinstance(check(policy, host="tunnel.example:443"), Grant)
    assert isinstance(check(policy, host="tunnel.example:8765"), Denial)
    assert isinstance(check(policy, host="dev.box:9000"), Denial)


def test_a_second_served_port_is_ours_too() -> None:
    policy = AccessPolicy(bind_host="127.0.0.1", port=8765)
    assert not policy.is_own_origin("http://127.0.0.1:9000")
    policy.serve_port(9000)  # the console's port
    assert policy.is_own_origin("http://127.0.0.1:9000")
    assert policy.is_own_origin("http://localhost:8765")
    assert isinstance(check(policy, host="localhost:9000"), Grant)


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "https://127.0.0.1:8765",
        "http://127.0.0.1:3000",  # a dev server on this machine is another origin
        "http://user@127.0.0.1:8765",
        "",
    ],
)
def test_browser_requests_from_another_origin_are_refused(origin: str) -> None:
    policy = AccessPolicy(bind_host="127.0.0.1", port=8765)
    assert not policy.is_own_origin(origin)
    for method in ("POST", "OPTIONS", "GET"):
        verdict = check(policy, method=method, host="127.0.0.1:8765", origin=origin)
        assert isinstance(verdict, Denial) and verdict.status == 403, (method, origin)


def test_own_origin_and_same_origin_fetch_metadata_pass() -> None:
    policy = AccessPolicy(bind_host="127.0.0.1", port=8765)
    verdict = check(
        policy,
        method="POST",
        host="127.0.0.1:8765",
        origin="http://127.0.0.1:8765",
        sec_fetch_site="same-origin",
    )
    assert isinstance(verdict, Grant)


def test_cross_site_loads_without_origin_are_refused_but_navigation_is_not() -> None:
    policy = AccessPolicy(bind_host="127.0.0.1", port=8765)
    host = "127.0.0.1:8765"
    assert isinstance(check(policy, host=host, sec_fetch_site="cross-site"), Denial)
    assert isinstance(check(policy, host=host, sec_fetch_site="same-site"), Denial)
    assert isinstance(
        check(policy, host=host, sec_fetch_site="cross-site", sec_fetch_mode="navigate"), Grant
    )
    assert isinstance(
        check(
            policy,
            method="POST",
            host=host,
            sec_fetch_site="cross-site",
            sec_fetch_mode="navigate",
        ),
        Denial,
    )  # a cross-site form post is a navigation too
    assert isinstance(check(policy, host=host, sec_fetch_site="none"), Grant)


def test_without_a_token_the_authorization_header_is_ignored() -> None:
    policy = AccessPolicy(bind_host="127.0.0.1", port=8765)
    verdict = check(policy, host="127.0.0.1:8765", authorization="Bearer ya29.anything")
    assert verdict == Grant(Scope.FULL, "/storage/v1/b")


def test_with_a_token_every_request_must_carry_it() -> None:
    policy = AccessPolicy(bind_host="127.0.0.1", port=8765, token=TOKEN)
    host = "127.0.0.1:8765"
    missing = check(policy, host=host)
    assert isinstance(missing, Denial) and missing.status == 403
    assert missing.reason == "PERMISSION_DENIED" and "requires a bearer token" in missing.message
    wrong = check(policy, host=host, authorization=f"Bearer {TOKEN}x")
    assert isinstance(wrong, Denial) and "not this emulator's" in wrong.message
    assert isinstance(check(policy, host=host, authorization=f"Basic {TOKEN}"), Denial)
    assert isinstance(check(policy, host=host, authorization=f"Bearer {TOKEN}"), Grant)
    assert isinstance(check(policy, host=host, authorization=f"bearer  {TOKEN} "), Grant)
    assert isinstance(check(policy, f"/storage/v1/b?access_token={TOKEN}", host=host), Grant)
    assert isinstance(check(policy, host=host, cookie=f"a=b; {TOKEN_COOKIE}={TOKEN}; c=d"), Grant)
    # The health route stays open for launchers; nothing else does.
    assert isinstance(check(policy, "/_emulator/health", host=host), Grant)
    assert isinstance(check(policy, "/_emulator/faults", host=host), Denial)
    assert isinstance(check(policy, "/_emulator/health", method="POST", host=host), Denial)


def test_the_token_does_not_lift_the_host_and_origin_rules() -> None:
    policy = AccessPolicy(bind_host="127.0.0.1", port=8765, token=TOKEN)
    bearer = f"Bearer {TOKEN}"
    assert isinstance(check(policy, host="evil.example:8765", authorization=bearer), Denial)
    verdict = check(
        policy, method="POST", host="127.0.0.1:8765", origin="http://evil.example", cookie=bearer
    )
    assert isinstance(verdict, Denial) and verdict.status == 403


def test_reader_capability_is_read_only_storage_and_per_run() -> None:
    policy = AccessPolicy(bind_host="127.0.0.1", port=8765, token=TOKEN)
    url = policy.reader_url("http://127.0.0.1:8765")
    assert url.startswith("http://127.0.0.1:8765" + READER_PREFIX)
    capability = url.rsplit("/", 1)[1]
    assert TOKEN not in url and len(capability) >= 32
    verdict = check(policy, f"{READER_PREFIX}{capability}/storage/v1/b/x/o", host="127.0.0.1:8765")
    assert verdict == Grant(Scope.READER, "/storage/v1/b/x/o", READER_PREFIX + capability)
    forged = check(policy, f"{READER_PREFIX}{capability}x/storage/v1/b", host="127.0.0.1:8765")
    assert isinstance(forged, Denial) and forged.status == 403
    other_run = AccessPolicy(bind_host="127.0.0.1", port=8765, token=TOKEN)
    assert other_run.reader_url("http://h:1") != policy.reader_url("http://h:1")
    assert reader_may("GET", "storage.objects.get") and reader_may("HEAD", "storage.objects.get")
    assert not reader_may("POST", "storage.objects.insert")
    assert not reader_may("GET", "getModel") and not reader_may("GET", "_emulator.faults.get")
    # Without a token there is no capability: containers get the plain URL.
    plain = AccessPolicy(bind_host="127.0.0.1", port=8765)
    assert plain.reader_url("http://127.0.0.1:8765") == "http://127.0.0.1:8765"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "my-laptop.local"])
def test_binding_a_non_loopback_address_needs_a_token(host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_bind(host, None)
    assert "--auth-token" in (caught.value.hint or "")
    check_bind(host, TOKEN)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_binds_need_no_token(host: str) -> None:
    check_bind(host, None)


@pytest.mark.parametrize("token", ["short", "x" * 15, "has space in it ok", "tab\there-0123456789"])
def test_weak_or_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(ConfigError):
        check_bind("127.0.0.1", token)


def test_a_wildcard_bind_accepts_ip_literals_and_loopback_names_not_other_names() -> None:
    policy = AccessPolicy(bind_host="0.0.0.0", port=8765, token=TOKEN)
    assert policy.host_allowed("192.168.1.20:8765") and policy.host_allowed("localhost:8765")
    assert policy.host_allowed("[fe80::1]:8765")
    assert not policy.host_allowed("evil.example:8765")
    specific = AccessPolicy(bind_host="192.168.1.20", port=8765, token=TOKEN)
    assert specific.host_allowed("192.168.1.20:8765")
    assert not specific.host_allowed("localhost:8765")
    assert not specific.host_allowed("192.168.1.21:8765")


def test_a_malformed_allow_host_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        AccessPolicy(bind_host="127.0.0.1", port=1, extra_hosts=("host:notaport",))


# ---- one JSON depth bound for both ways a handler reads JSON --------------------------


@pytest.mark.parametrize("depth", [MAX_DEPTH, MAX_DEPTH + 1])
def test_request_json_and_request_json_helper_share_one_depth_bound(depth: int) -> None:
    body = b"[" * depth + b"]" * depth
    request = Request.from_target("POST", "/x", {}, body)
    outcomes = []
    for parse in (request.json, lambda: request_json(request)):
        try:
            parse()
            outcomes.append("ok")
        except ServiceError as exc:
            outcomes.append(f"{exc.http_status} {'deeper than' in exc.message}")
    refused = "400 True"
    assert outcomes == (["ok", "ok"] if depth == MAX_DEPTH else [refused, refused])

"""Property: no request to the emulator's GCS JSON API is answered 5xx, or logs a traceback.

Hypothesis draws sequences of GCS requests - bucket and object inserts, lists, gets, media
downloads with Range, patches, deletes, copies, composes, multipart and resumable uploads
with chunks - with random object names (`..`, NUL, backslashes, lone surrogates, 1,100-byte
names), random JSON resources (any types, deep nesting), random query parameters and
random headers, and sends them over raw HTTP to one emulator on loopback.
Every answer must be < 500, and every 4xx must carry Google's error body.

Size: FUZZ_EXAMPLES examples (300 unless DEPLOYER_FUZZ_EXAMPLES says otherwise) of 1-4
requests each (about 14 s); derandomized, so CI runs the same requests every time
(DEPLOYER_FUZZ_RANDOM=1 explores new ones).
"""

from __future__ import annotations

import http.client
import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.emulator import EmulatorProcess

FUZZ_EXAMPLES = int(os.environ.get("DEPLOYER_FUZZ_EXAMPLES", "300"))
BUCKET = "fuzz-bucket"
BOUNDARY = "fuzzb0undary"

# Malformed requests on purpose: left out of the wire contract (test_wire_contract.py).
pytestmark = [pytest.mark.timeout(900), pytest.mark.wire_contract_exempt]


@dataclass(frozen=True)
class Call:
    """One HTTP request to send."""

    method: str
    target: str  # path and query, percent-encoded
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


def enc(value: Any) -> str:
    """Percent-encode anything as a path segment or query value (lone surrogates as raw
    UTF-8 bytes: what a hostile client can put on the wire)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


any_char = st.characters(exclude_categories=())  # surrogates included
names = st.one_of(
    st.text(any_char, max_size=30),
    st.sampled_from(
        [
            "obj",
            "dir/obj",
            "..",
            ".",
            "a/../../../../victim.txt",
            "/etc/passwd",
            "a//b",
            "a\\..\\b",
            "nul\x00byte",
            "cr\rlf\n",
            "\ud800",
            "x" * 1100,
            "\U0010ffff",
        ]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(any_char, max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
resources = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(names, json_values),
        "contentType": st.one_of(st.sampled_from(["text/plain", "a\r\nb: c"]), json_values),
        "metadata": st.one_of(
            st.dictionaries(st.text(max_size=6), json_values, max_size=3), json_values
        ),
        "md5Hash": json_values,
        "crc32c": json_values,
        "labels": json_values,
        "location": json_values,
        "sourceObjects": st.lists(st.fixed_dictionaries({"name": names}) | json_values, max_size=3),
        "destination": json_values,
    },
)


def json_body(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


bodies = st.one_of(
    resources.map(json_body),
    json_values.map(json_body),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=3000).map(lambda n: b'{"name":' * n + b"1" + b"}" * n),
    st.binary(max_size=64),
)
query_keys = st.sampled_from(
    [
        "maxResults",
        "pageToken",
        "prefix",
        "delimiter",
        "startOffset",
        "endOffset",
        "generation",
        "ifGenerationMatch",
        "ifGenerationNotMatch",
        "ifMetagenerationMatch",
        "ifMetagenerationNotMatch",
        "ifSourceGenerationMatch",
        "includeTrailingDelimiter",
        "alt",
        "name",
        "project",
        "upload_id",
        "uploadType",
    ]
)
query_values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    names,
    st.sampled_from(["-1", "0", "media", "json", "true", "9" * 5000, "eyJhIjogMX0="]),
)
queries = st.dictionaries(query_keys, query_values, max_size=4)
headers = st.dictionaries(
    st.sampled_from(
        ["Range", "Content-Range", "Content-Type", "X-Upload-Content-Type", "If-Match"]
    ),
    st.one_of(
        st.sampled_from(
            [
                "bytes=0-",
                "bytes=-5",
                "bytes=5-1",
                "bytes=0-99999999999999999999999",
                "bytes */*",
                "bytes 0-0/1",
                "bytes 0-3/*",
                "bytes 5-9/2",
                "application/json",
                "multipart/related; boundary=x",
            ]
        ),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
    ),
    max_size=2,
)


def _query(params: dict[str, str], **fixed: str) -> str:
    merged = {**params, **fixed}
    return "?" + "&".join(f"{enc(k)}={enc(v)}" for k, v in merged.items()) if merged else ""


@st.composite
def calls(draw: st.DrawFn) -> Call:
    kind = draw(
        st.sampled_from(
            [
                "bucket.insert",
                "bucket.list",
                "bucket.get",
                "bucket.patch",
                "object.list",
                "object.get",
                "object.media",
                "object.patch",
                "object.delete",
                "object.copy",
                "object.compose",
                "upload.media",
                "upload.multipart",
                "upload.resumable",
            ]
        )
    )
    bucket = enc(draw(st.one_of(st.just(BUCKET), names)))
    obj = enc(draw(names))
    q = draw(queries)
    hdrs = tuple(draw(headers).items())
    body = draw(bodies)
    json_hdr = (("Content-Type", "application/json"),)
    b, o = f"/storage/v1/b/{bucket}", f"/storage/v1/b/{bucket}/o/{obj}"
    if kind == "bucket.insert":
        return Call("POST", "/storage/v1/b" + _query(q, project="p"), body, json_hdr)
    if kind == "bucket.list":
        return Call("GET", "/storage/v1/b" + _query(q, project="p"))
    if kind == "bucket.get":
        return Call("GET", b + _query(q))
    if kind == "bucket.patch":
        return Call(draw(st.sampled_from(["PATCH", "PUT"])), b + _query(q), body, json_hdr)
    if kind == "object.list":
        return Call("GET", f"{b}/o" + _query(q))
    if kind == "object.get":
        return Call(draw(st.sampled_from(["GET", "HEAD"])), o + _query(q), headers=hdrs)
    if kind == "object.media":
        return Call("GET", f"/download{o}" + _query(q, alt="media"), headers=hdrs)
    if kind == "object.patch":
        return Call(draw(st.sampled_from(["PATCH", "PUT"])), o + _query(q), body, json_hdr)
    if kind == "object.delete":
        return Call("DELETE", o + _query(q))
    if kind == "object.copy":
        dst = enc(draw(names))
        verb = draw(st.sampled_from(["copyTo", "rewriteTo"]))
        return Call("POST", f"{o}/{verb}/b/{BUCKET}/o/{dst}" + _query(q), body, json_hdr)
    if kind == "object.compose":
        return Call("POST", f"{o}/compose" + _query(q), body, json_hdr)
    up = f"/upload/storage/v1/b/{bucket}/o"
    if kind == "upload.media":
        return Call("POST", up + _query(q, uploadType="media", name=draw(names)), body, hdrs)
    if kind == "upload.multipart":
        media_type = draw(st.sampled_from(["text/plain", "a\r\nb", ""]))
        payload = (
            f"--{BOUNDARY}\r\nContent-Type: application/json\r\n\r\n".encode()
            + body
            + f"\r\n--{BOUNDARY}\r\nContent-Type: {media_type}\r\n\r\n".encode()
            + draw(st.binary(max_size=32))
            + f"\r\n--{BOUNDARY}--\r\n".encode()
        )
        ctype = draw(
            st.sampled_from(
                [f'multipart/related; boundary="{BOUNDARY}"', "multipart/related", "text/plain"]
            )
        )
        return Call(
            "POST", up + _query(q, uploadType="multipart"), payload, (("Content-Type", ctype),)
        )
    return Call("POST", up + _query(q, uploadType="resumable"), body, json_hdr + hdrs)


def send(port: int, call: Call) -> tuple[int, bytes, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest(call.method, call.target, skip_accept_encoding=True)
        for key, value in call.headers:
            conn.putheader(key, value)
        conn.putheader("Content-Length", str(len(call.body)))
        conn.endheaders(call.body)
        resp = conn.getresponse()
        return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def check(call: Call, status: int, body: bytes) -> None:
    assert status < 500, (call, status, body[:500])
    if status >= 400 and call.method != "HEAD":
        error = json.loads(body)["error"]
        assert error["code"] == status, (call, body[:500])
        assert isinstance(error["status"], str) and isinstance(error["message"], str)


@pytest.fixture(scope="module")
def fuzz_emulator(module_emulator: EmulatorProcess) -> EmulatorProcess:
    for call in (
        Call("POST", "/storage/v1/b?project=p", json_body({"name": BUCKET})),
        Call("POST", f"/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name=obj", b"0123456789"),
        Call("POST", f"/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name=dir%2Fobj", b"x"),
    ):
        assert send(module_emulator.port, call)[0] == 200
    return module_emulator


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("DEPLOYER_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(sequence=st.lists(calls(), min_size=1, max_size=4), chunk=st.binary(max_size=16))
def test_no_gcs_request_is_answered_5xx(
    fuzz_emulator: EmulatorProcess, sequence: list[Call], chunk: bytes
) -> None:
    port = fuzz_emulator.port
    for call in sequence:
        status, body, got = send(port, call)
        check(call, status, body)
        location = got.get("location", "")
        if call.target.startswith("/upload/") and status == 200 and "upload_id=" in location:
            # A resumable session opened: send it a chunk with the same random headers.
            parts = urlsplit(location)
            put = Call("PUT", f"{parts.path}?{parts.query}", chunk, call.headers)
            check(put, *send(port, put)[:2])


def test_the_fuzzed_emulator_logged_no_traceback(fuzz_emulator: EmulatorProcess) -> None:
    # Runs after the property (file order): nothing the fuzzer sent was an internal error.
    assert fuzz_emulator.health()["status"] == "ok"
    log = fuzz_emulator.stderr_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]

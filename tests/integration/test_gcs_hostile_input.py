"""Malformed requests the official clients never send answer 400 with Google's error body, never
500 (issue 15): odd object names in upload metadata, negative maxResults, a list where compose
wants an object, a non-integer fault seed, JSON nested 100,000 deep, oversized numbers.

Raw HTTP (requests) on loopback: the clients cannot be made to send these.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.support.emulator import EmulatorProcess

# Malformed requests on purpose: left out of the wire contract (test_wire_contract.py).
pytestmark = [pytest.mark.timeout(120), pytest.mark.wire_contract_exempt]

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
BOUNDARY = "b0und4ry"


@pytest.fixture(scope="module")
def url(module_emulator: EmulatorProcess) -> str:
    base = module_emulator.url
    requests.post(f"{base}/storage/v1/b?project=p", json={"name": "hostile"}, timeout=10)
    requests.post(
        f"{base}/upload/storage/v1/b/hostile/o?uploadType=media&name=src",
        data=b"x",
        timeout=10,
    )
    return base


def assert_google_400(resp: requests.Response, *, mentions: str = "") -> None:
    assert resp.status_code == 400, (resp.status_code, resp.text[:500])
    error = resp.json()["error"]
    assert error["code"] == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert isinstance(error["message"], str) and error["message"]
    assert error["errors"][0]["reason"] == "invalid"
    assert mentions in error["message"], error["message"]


def multipart(metadata: bytes) -> tuple[bytes, dict[str, str]]:
    body = (
        f"--{BOUNDARY}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode()
        + metadata
        + f"\r\n--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\n".encode()
        + b"data"
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    return body, {"Content-Type": f'multipart/related; boundary="{BOUNDARY}"'}


@pytest.mark.parametrize(
    ("metadata", "mentions"),
    [
        (b'{"name": "\\ud800"}', "surrogate"),
        (b'{"name": "a\\udfffb"}', "surrogate"),
        (b'{"name": 5}', "name must be a string"),
        (b'{"name": ["a", "b"]}', "name must be a string"),
        (b'{"name": {"x": 1}}', "name must be a string"),
        (b'{"name": "ok", "contentType": 7}', "contentType must be a string"),
        (b'{"name": "ok", "contentType": "text/plain\\r\\nX-Evil: 1"}', "Invalid contentType"),
        (b'{"name": "ok", "metadata": {"k": {"nested": 1}}}', "metadata"),
    ],
)
def test_resumable_and_multipart_metadata_with_bad_names_or_fields_is_400(
    url: str, metadata: bytes, mentions: str
) -> None:
    resp = requests.post(
        f"{url}/upload/storage/v1/b/hostile/o?uploadType=resumable",
        data=metadata,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert_google_400(resp, mentions=mentions)
    body, headers = multipart(metadata)
    resp = requests.post(
        f"{url}/upload/storage/v1/b/hostile/o?uploadType=multipart",
        data=body,
        headers=headers,
        timeout=10,
    )
    assert_google_400(resp, mentions=mentions)


def test_negative_max_results_on_bucket_and_object_lists_is_400(url: str) -> None:
    assert_google_400(
        requests.get(f"{url}/storage/v1/b?project=p&maxResults=-1", timeout=10),
        mentions="maxResults",
    )
    assert_google_400(
        requests.get(f"{url}/storage/v1/b/hostile/o?maxResults=-1", timeout=10),
        mentions="maxResults",
    )
    # 0 still means "the default page size", as in GCS.
    listed = requests.get(f"{url}/storage/v1/b/hostile/o?maxResults=0", timeout=10)
    assert listed.status_code == 200 and listed.json()["items"][0]["name"] == "src"


def test_compose_with_destination_metadata_as_a_list_is_400(url: str) -> None:
    for destination in ({"metadata": ["a", "b"]}, ["not", "an", "object"], {"contentType": 1}):
        resp = requests.post(
            f"{url}/storage/v1/b/hostile/o/composed/compose",
            json={"sourceObjects": [{"name": "src"}], "destination": destination},
            timeout=10,
        )
        assert_google_400(resp)
    ok = requests.post(
        f"{url}/storage/v1/b/hostile/o/composed/compose",
        json={"sourceObjects": [{"name": "src"}], "destination": {"metadata": {"k": "v"}}},
        timeout=10,
    )
    assert ok.status_code == 200 and ok.json()["metadata"] == {"k": "v"}


@pytest.mark.parametrize("seed", ["abc", 1.5, [1], {"x": 1}, True])
def test_a_non_integer_fault_seed_is_400(url: str, seed: Any) -> None:
    assert_google_400(
        requests.post(f"{url}/_emulator/faults", json={"seed": seed}, timeout=10),
        mentions="seed must be an integer",
    )


def test_a_non_finite_op_delay_is_400(url: str) -> None:
    resp = requests.post(
        f"{url}/_emulator/faults",
        data=b'{"op_delay": Infinity}',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert_google_400(resp, mentions="op_delay")


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["arrays", "objects"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/storage/v1/b?project=p"),
        ("PATCH", "/storage/v1/b/hostile"),
        ("PATCH", "/storage/v1/b/hostile/o/src"),
        ("POST", "/storage/v1/b/hostile/o/src/copyTo/b/hostile/o/dst"),
        ("POST", "/storage/v1/b/hostile/o/dst/compose"),
        ("POST", "/upload/storage/v1/b/hostile/o?uploadType=resumable"),
        ("POST", "/_emulator/faults"),
    ],
)
def test_json_nested_100000_deep_is_400_on_gcs_routes(
    url: str, method: str, path: str, body: bytes
) -> None:
    resp = requests.request(
        method, url + path, data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert_google_400(resp, mentions="nested deeper than 100 levels")


def test_json_nested_100000_deep_in_multipart_metadata_is_400(url: str) -> None:
    body, headers = multipart(DEEP)
    resp = requests.post(
        f"{url}/upload/storage/v1/b/hostile/o?uploadType=multipart",
        data=body,
        headers=headers,
        timeout=30,
    )
    assert_google_400(resp, mentions="nested deeper than 100 levels")


def test_a_page_token_holding_a_lone_surrogate_is_400(url: str) -> None:
    import base64

    token = base64.urlsafe_b64encode(b'{"a": "\\ud800", "p": false}').decode()
    assert_google_400(
        requests.get(f"{url}/storage/v1/b/hostile/o?pageToken={token}", timeout=10),
        mentions="pageToken",
    )


def test_numbers_too_long_for_int_in_range_headers_are_4xx_not_500(url: str) -> None:
    digits = "9" * 5000
    resp = requests.get(
        f"{url}/download/storage/v1/b/hostile/o/src?alt=media",
        headers={"Range": f"bytes=0-{digits}"},
        timeout=10,
    )
    assert resp.status_code == 416 and resp.json()["error"]["status"] == "OUT_OF_RANGE"
    start = requests.post(
        f"{url}/upload/storage/v1/b/hostile/o?uploadType=resumable&name=big", timeout=10
    )
    resp = requests.put(
        start.headers["Location"],
        data=b"x",
        headers={"Content-Range": f"bytes 0-0/{digits}"},
        timeout=10,
    )
    assert_google_400(resp, mentions="Content-Range")


def test_a_prefix_ending_in_the_last_code_point_lists_without_error(url: str) -> None:
    resp = requests.get(f"{url}/storage/v1/b/hostile/o?prefix=%F4%8F%BF%BF&delimiter=/", timeout=10)
    assert resp.status_code == 200, resp.text
    resp = requests.get(f"{url}/storage/v1/b/hostile/o?prefix=%ED%9F%BF", timeout=10)  # U+D7FF
    assert resp.status_code == 200, resp.text

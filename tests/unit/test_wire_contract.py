"""The wire contract checker fails on a deliberately wrong request and a deliberately wrong
response, and passes the same calls made right (entries as the request log writes them)."""

from __future__ import annotations

from typing import Any

from tests.support import wire_contract

OBJECT = {
    "kind": "storage#object",
    "id": "b/o/1",
    "name": "o",
    "bucket": "b",
    "generation": "1",
    "metageneration": "1",
    "etag": "CAEQAQ==",
    "size": "3",
    "timeCreated": "2026-01-01T00:00:00.000Z",
    "updated": "2026-01-01T00:00:00.000Z",
    "metadata": {"k": "v"},
}


def _entry(method: str, target: str, *, status: int = 200, **bodies: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"method": method, "target": target, "status": status}
    for key, value in bodies.items():
        entry[key] = {"json": value}
    return entry


def test_well_formed_calls_keep_the_contract() -> None:
    entries = [
        _entry("GET", "/storage/v1/b/b/o/o?ifGenerationMatch=1", response_body=OBJECT),
        _entry(
            "POST",
            "/upload/storage/v1/b/b/o?uploadType=resumable&name=o",
            request_body={"name": "o", "contentType": "text/plain", "metadata": {"k": "v"}},
        ),
        _entry("PUT", "/upload/storage/v1/b/b/o?uploadType=resumable&upload_id=abc"),
        _entry("GET", "/download/storage/v1/b/b/o/o?alt=media", response_body={"x": 1}),
        _entry("GET", "/_emulator/anything?x=1"),
        _entry("GET", "/no/such/api", status=404),  # addressed to neither API
        _entry("GET", "/storage/v1/b/b/o?access_token=REDACTED&prettyPrint=false"),
        _entry(
            "POST",
            "/v1/projects/p/locations/l/endpoints/1:rawPredict",
            request_body={"instances": [[1.0]]},  # the model's own input, as the raw body
            response_body={"predictions": [[0.5]]},
        ),
        _entry(
            "GET",
            "/ui/projects/p/locations/l/operations/7?%24alt=json%3Benum-encoding%3Dint",
            response_body={"name": "projects/p/locations/l/operations/7", "done": True},
        ),
    ]
    assert wire_contract.check(entries) == []


def test_an_undocumented_request_fails() -> None:
    assert wire_contract.check([_entry("POST", "/storage/v1/b/b/o/o/frobnicate")])
    assert wire_contract.check([_entry("GET", "/v1beta1/projects/p/locations/l/models")])
    # Answered "no such API": still a problem (a probe would take it for "absent").
    assert wire_contract.check([_entry("POST", "/storage/v1/b/b/o/o/frobnicate", status=404)])
    # Refused as the service refuses it (a test sending a bad request on purpose): left out.
    assert not wire_contract.check(
        [_entry("PUT", "/v1/projects/p/locations/l/models/m", status=405)]
    )
    [problem] = wire_contract.check([_entry("GET", "/storage/v1/b/b/o?colour=red")])
    assert "query parameter 'colour' not documented for storage.objects.list" in problem
    [problem] = wire_contract.check(
        [_entry("PATCH", "/storage/v1/b/b/o/o", request_body={"metadata": {}, "colour": "red"})]
    )
    assert "undocumented field 'colour' of Object" in problem


def test_an_undocumented_or_incomplete_response_fails() -> None:
    [problem] = wire_contract.check(
        [_entry("GET", "/storage/v1/b/b/o/o", response_body={**OBJECT, "colour": "red"})]
    )
    assert "response: undocumented field 'colour' of Object" in problem
    without_etag = {k: v for k, v in OBJECT.items() if k != "etag"}
    [problem] = wire_contract.check(
        [_entry("GET", "/storage/v1/b/b/o", response_body={"items": [without_etag]})]
    )
    assert "response.items[0]: missing output field 'etag' of Object" in problem
    # An error answer is not held to the method's response schema.
    assert not wire_contract.check(
        [_entry("GET", "/storage/v1/b/b/o/o", status=404, response_body={"error": {}})]
    )


def test_an_operation_no_documented_binding_polls_fails() -> None:
    name = "projects/p/locations/l/batchPredictionJobs/1/operations/2"
    [problem] = wire_contract.check(
        [
            _entry(
                "DELETE",
                "/v1/projects/p/locations/l/batchPredictionJobs/1",
                response_body={"name": name, "done": False},
            )
        ]
    )
    assert f"operation {name!r} is not pollable" in problem

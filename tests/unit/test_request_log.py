"""The emulator's request log records the target with its query string, and request and
response bodies only when asked to, with credentials redacted from all of it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from deployer.emulator.faults import MAX_LOGGED_BODY, RequestLog


def _record(log: RequestLog, **kw: object) -> None:
    log.record(
        method="POST",
        path="/storage/v1/b",
        name="storage.buckets.insert",
        status=200,
        started=time.time(),
        mutating=True,
        **kw,  # type: ignore[arg-type]
    )


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_target_keeps_the_query_string_with_credentials_redacted(tmp_path: Path) -> None:
    target = "/storage/v1/b/x/o/a%2Fb?prefix=d%2F&access_token=s3cret&alt=json"  # as sent
    log = RequestLog(tmp_path / "log.jsonl")
    _record(log, target=target, request_body=b'{"name": "b"}', request_type="application/json")
    log.close()
    [entry] = _lines(tmp_path / "log.jsonl")
    assert "s3cret" not in json.dumps(entry)
    assert entry["target"] == "/storage/v1/b/x/o/a%2Fb?prefix=d%2F&access_token=REDACTED&alt=json"
    assert "request_body" not in entry  # bodies only with bodies=True


def test_bodies_are_recorded_redacted_and_capped_when_asked(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.jsonl", bodies=True)
    _record(
        log,
        target="/storage/v1/b",
        request_body=json.dumps({"name": "b", "nested": [{"client_secret": "s3cret"}]}).encode(),
        request_type="application/json",
        response_body=b'{"kind": "storage#bucket", "name": "b"}',
        response_type="application/json; charset=UTF-8",
    )
    _record(log, request_body=b"Authorization: Bearer s3cret", request_type="text/plain")
    _record(log, request_body=b"\xff\x00" * 10, request_type="application/octet-stream")
    _record(log, request_body=b"x" * (MAX_LOGGED_BODY + 1), request_type="text/plain")
    log.close()
    text = (tmp_path / "log.jsonl").read_text()
    assert "s3cret" not in text
    first, second, third, fourth = _lines(tmp_path / "log.jsonl")
    assert first["request_body"] == {
        "json": {"name": "b", "nested": [{"client_secret": "REDACTED"}]}
    }
    assert first["response_body"] == {"json": {"kind": "storage#bucket", "name": "b"}}
    assert second["request_body"] == {"text": "Authorization: REDACTED"}
    assert third["request_body"] == {"omitted": "20 bytes of binary data"}
    assert "omitted" in fourth["request_body"]  # type: ignore[operator]

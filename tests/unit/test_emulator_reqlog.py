"""Request/response logging in place of BigQuery: table file names, sampling, row shape."""

from __future__ import annotations

import json
from pathlib import Path

from deployer.emulator.vertex.reqlog import RequestResponseLog, table_name


def test_table_names_fill_vertex_defaults() -> None:
    assert table_name("bq://acme.logs.requests") == "acme.logs.requests"
    assert table_name("bq://acme.logs") == "acme.logs.request_response_logging"
    assert table_name("bq://acme") == "acme.logging.request_response_logging"


def test_rate_one_logs_every_request_and_rate_zero_none(tmp_path: Path) -> None:
    log = RequestResponseLog(tmp_path)
    for _ in range(5):
        log.record((1.0, "bq://acme.l.t"), "projects/p/locations/r/endpoints/1", "7", b"{}", b"[]")
        log.record((0.0, "bq://acme.l.off"), "e", "7", b"{}", b"[]")
        log.record(None, "e", "7", b"{}", b"[]")
    rows = [json.loads(x) for x in log.path("bq://acme.l.t").read_text().splitlines()]
    assert [r["request_id"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["request_payload"] == ["{}"] and rows[0]["response_payload"] == ["[]"]
    assert not log.path("bq://acme.l.off").exists()


def test_a_rate_between_samples_some(tmp_path: Path) -> None:
    log = RequestResponseLog(tmp_path)
    for _ in range(400):
        log.record((0.25, "bq://acme.l.t"), "e", "7", b"{}", b"[]")
    n = len(log.path("bq://acme.l.t").read_text().splitlines())
    assert 40 < n < 160  # 100 expected; bounds far outside chance (p < 1e-9)

"""`deployer.emulator.redact`: credentials in request lines, URLs, headers and log records."""

from __future__ import annotations

import logging

import pytest

from deployer.emulator.redact import RedactingFilter, redact_headers, redact_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '"GET /storage/v1/b?project=p&access_token=ya29.x&key=AIza HTTP/1.1" 200 -',
            '"GET /storage/v1/b?project=p&access_token=REDACTED&key=REDACTED HTTP/1.1" 200 -',
        ),
        ("/o?KEY=abc;pageToken=t", "/o?KEY=REDACTED;pageToken=t"),
        ("/o?access%5Ftoken=abc#frag", "/o?access%5Ftoken=REDACTED#frag"),
        ("/o?monkey=1&keys=2&key=", "/o?monkey=1&keys=2&key="),
        ("Authorization: Bearer ya29.abc", "Authorization: REDACTED"),
        (
            "{'authorization': 'Bearer ya29.abc', 'host': 'h'}",
            "{'authorization': 'REDACTED', 'host': 'h'}",
        ),
        ("x-goog-api-key=AIza123", "x-goog-api-key=REDACTED"),
        ("nothing to see", "nothing to see"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_redact_headers_keeps_others() -> None:
    assert redact_headers({"Authorization": "Bearer x", "Host": "h"}) == {
        "Authorization": "REDACTED",
        "Host": "h",
    }


def test_filter_rewrites_the_formatted_message() -> None:
    record = logging.LogRecord(
        "deployer.emulator", logging.DEBUG, __file__, 1, "%s %s", ("GET", "/b?access_token=s"), None
    )
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "GET /b?access_token=REDACTED"

"""Credential redaction for everything the emulator logs or records about a request.

Owns `redact_text` (credential query parameters - `access_token`, `key`, ... - and
credential headers written as `Authorization: Bearer ...` get their value replaced by
`REDACTED`, in any text: a request line, a URL, a log message), `redact_headers` (the same
for a header mapping), `redact_json` (credential fields of a JSON body, at any depth),
`RedactingFilter` (a logging filter applying `redact_text` to each record's final message)
and `install_log_redaction` (puts that filter on the emulator's loggers and on the handlers
of the root logger, once).

The emulator accepts and ignores these credentials (clients send them as they would to
Google); a DEBUG log or a request log shared in a bug report must not carry them.

Must not: change what a handler sees (only what is written down), or know any API.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

REDACTED = "REDACTED"

# Query parameters that carry a credential (compared after percent-decoding, case-blind).
SECRET_PARAMS = frozenset(
    {
        "access_token",
        "key",
        "api_key",
        "apikey",
        "token",
        "id_token",
        "client_secret",
        "x-goog-signature",
        "x-goog-credential",
        "signature",
    }
)
# Headers that carry a credential.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-goog-api-key",
        "cookie",
        "x-goog-iam-authorization-token",
    }
)

# name=value in a query string (after ?, & or ;); the value ends where a URL or a log line
# would end it.
_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;#\s\"']+)=(?P<value>[^&;#\s\"']*)")
# "Authorization: Bearer abc", "'authorization': 'Bearer abc'", authorization=Bearer+abc ...
_HEADER = re.compile(
    r"(?P<name>\b(?:" + "|".join(re.escape(h) for h in sorted(SECRET_HEADERS)) + r"))"
    r"(?P<sep>[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\r\n\"',}]*)",
    re.IGNORECASE,
)


def _param(match: re.Match[str]) -> str:
    if unquote(match["name"]).lower() not in SECRET_PARAMS or not match["value"]:
        return match[0]
    return f"{match['lead']}{match['name']}={REDACTED}"


def _header(match: re.Match[str]) -> str:
    if not match["value"].strip():
        return match[0]
    return f"{match['name']}{match['sep']}{REDACTED}"


def redact_text(text: str) -> str:
    """`text` with the values of credential query parameters and headers replaced."""
    if "=" not in text and ":" not in text:
        return text
    return _HEADER.sub(_header, _PARAM.sub(_param, text))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of `headers` with credential headers' values replaced."""
    return {k: (REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


# JSON body fields that carry a credential (compared case-blind), besides SECRET_PARAMS.
SECRET_FIELDS = SECRET_PARAMS | frozenset(
    {"password", "private_key", "private_key_id", "refresh_token", "authorization"}
)


def redact_json(value: Any) -> Any:
    """A copy of a decoded JSON value with the values of credential fields replaced, at any
    depth, and `redact_text` applied to every string (a URL in a field may carry a token)."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if str(k).lower() in SECRET_FIELDS else redact_json(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with `redact_text` (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to report
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_FILTER = RedactingFilter()
# The emulator's loggers, and those of an HTTP server library it may run on (access logs
# hold the request target, query string included).
EMULATOR_LOGGERS = (
    "deployer.emulator",
    "deployer.emulator.vertex",
    "uvicorn.access",
    "uvicorn.error",
    "hypercorn.access",
    "hypercorn.error",
)


def install_log_redaction(loggers: Iterable[str] = EMULATOR_LOGGERS) -> None:
    """Put the redacting filter on `loggers` and on the root logger's handlers (idempotent).

    A logger's filters only see records logged on that very logger, so each named one gets
    it; the root handlers catch the records of any other logger that propagates to them.
    """
    for name in loggers:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


__all__ = [
    "REDACTED",
    "RedactingFilter",
    "install_log_redaction",
    "redact_headers",
    "redact_json",
    "redact_text",
]

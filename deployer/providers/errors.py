"""Translate vendor exceptions into deployer's error tree, at the provider boundary.

Owns: `map_exception` (google.api_core, google.auth, google.resumable_media, requests and
urllib3 transport errors -> `deployer.errors`) and the `translated` context manager that
applies it with `raise ... from exc`. A broken connection on a mutating call becomes
`ResponseLost` (the call may have taken effect: apply adopts); on a read it is just
`TransientError`. A refused connection never reached the server, so it is transient.

A client library's own ValueError/TypeError (raised inside google.*, e.g. for an
operation name no URL binding matches) is a vendor exception too: `PermanentError`.
Exceptions raised by deployer's own code are bugs and pass through unchanged.

Must not: retry (see retry.py), or let any vendor exception escape.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from deployer import errors, settings

_TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}


def _status_of(exc: Any) -> str | None:
    """The canonical status string ("FAILED_PRECONDITION") from a REST error body, if any."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    try:
        body = response.json()
    except Exception:
        return None
    if isinstance(body, list):
        body = next((b for b in body if isinstance(b, dict)), {})
    status = (body.get("error") or {}).get("status") if isinstance(body, dict) else None
    return str(status) if status else None


_URL_PREFIX = re.compile(r"^(?:GET|POST|PUT|PATCH|DELETE|HEAD) \S+: ")


def _from_http(code: int | None, status: str | None, message: str, what: str) -> errors.ApiError:
    # api_core prefixes "POST https://...?$alt=json...: "; the action already says what.
    message = _URL_PREFIX.sub("", message)
    text = f"{what}: {message}" if what else message
    kw: dict[str, Any] = {"status": status or "UNKNOWN", "http_status": code}
    if code in _TRANSIENT_HTTP or status in {
        "UNAVAILABLE",
        "RESOURCE_EXHAUSTED",
        "INTERNAL",
        "DEADLINE_EXCEEDED",
    }:
        return errors.TransientError(text, **kw)
    if code == 404 or status == "NOT_FOUND":
        return errors.NotFound(text, **kw)
    if code == 409 and status in (None, "ALREADY_EXISTS"):
        return errors.AlreadyExists(text, **kw)
    if code == 409 and status == "ABORTED":
        return errors.TransientError(text, **kw)
    if code == 412 or status == "FAILED_PRECONDITION":
        return errors.FailedPrecondition(text, **kw)
    if code in (401, 403) or status in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
        token_var = settings.EMULATOR_TOKEN.name
        if token_var in message:  # the local emulator's own refusal names it
            return errors.PermissionDenied(
                text,
                hint=f"set {token_var} to the token the emulator was started with "
                f"(its --auth-token, or its {token_var})",
                **kw,
            )
        return errors.PermissionDenied(
            text,
            hint="check the credentials (gcloud auth application-default login) and "
            "that the account has roles/aiplatform.user and roles/storage.admin",
            **kw,
        )
    if code == 400 or status == "INVALID_ARGUMENT":
        return errors.InvalidArgument(text, **kw)
    return errors.PermanentError(text, **kw)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it wraps: causes, contexts, urllib3's `reason`, args."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        cur = todo.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        # urllib3 keeps the underlying error in `reason`; ssl.SSLError's `reason` is a string.
        linked = [getattr(cur, "reason", None), cur.__cause__, cur.__context__, *cur.args]
        todo += [e for e in linked if isinstance(e, BaseException)]


def _is_connect_failure(exc: BaseException) -> bool:
    """True if the request never left: connection refused, DNS, connect timeout."""
    names = {
        "NewConnectionError",
        "ConnectTimeout",
        "ConnectionRefusedError",
        "NameResolutionError",
    }
    return any(type(e).__name__ in names for e in _chain(exc))


def _is_tls_failure(exc: BaseException) -> bool:
    """True if the TLS handshake failed (e.g. an https:// URL for a plain-HTTP server)."""
    import ssl

    return any(isinstance(e, ssl.SSLError) for e in _chain(exc))


# Modules whose own exceptions (ValueError, TypeError, KeyError ...) are a client library
# refusing or failing a call, not a bug of ours: they are mapped like any vendor error.
_VENDOR_MODULES = ("google.", "proto.", "requests.", "urllib3.", "grpc.")


def _raised_by_vendor(exc: BaseException) -> bool:
    tb = exc.__traceback__
    module = ""
    while tb is not None:  # the innermost frame is where it was raised
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    return module.startswith(_VENDOR_MODULES)


def _gist(text: str, limit: int = 300) -> str:
    """The first lines of a client library's message (the GAPIC REST transport's ValueError
    goes on to list every URL binding: hundreds of lines)."""
    lines = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(("\t", " ")):
            break
        lines.append(line.strip())
    gist = " ".join(lines) or text.strip()
    return gist if len(gist) <= limit else gist[: limit - 3] + "..."


def map_exception(
    exc: BaseException, *, mutating: bool, what: str = "", connect_hint: str | None = None
) -> BaseException:
    """Our error for a vendor exception; `exc` itself if it is not one we know.

    `connect_hint` (where the service's address came from, and how to fix it) is the fix
    shown when the service cannot be reached at all.
    """
    if isinstance(exc, errors.DeployerError):
        return exc
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.RetryError):
        cause = exc.cause
        return (
            map_exception(cause, mutating=mutating, what=what, connect_hint=connect_hint)
            if cause
            else errors.TransientError(f"{what}: {exc}")
        )
    if isinstance(exc, gexc.GoogleAPICallError):
        code = exc.code if isinstance(exc.code, int) else None
        return _from_http(code, _status_of(exc), exc.message or str(exc), what)

    module = type(exc).__module__ or ""
    if module.startswith(("google.resumable_media", "google.cloud.storage")):
        response = getattr(exc, "response", None)
        code = getattr(response, "status_code", None)
        if code is not None:
            return _from_http(code, _status_of(exc), str(exc), what)
    if module.startswith("google.auth"):
        name = type(exc).__name__
        if name in ("DefaultCredentialsError", "RefreshError"):
            return errors.PermissionDenied(
                f"{what}: no usable Google credentials ({exc})",
                hint="run `gcloud auth application-default login`, or use target: local",
            )
        if name == "TransportError":
            return errors.TransientError(f"{what}: {exc}", hint=connect_hint)

    import requests

    if isinstance(exc, requests.exceptions.RequestException | ConnectionError | TimeoutError):
        if _is_tls_failure(exc):
            # Retrying cannot help: the address or its scheme is wrong.
            return errors.ConfigError(
                f"{what}: the TLS handshake failed; the server at that address does not "
                f"speak https ({exc})",
                hint=connect_hint,
            )
        if _is_connect_failure(exc):
            return errors.TransientError(
                f"{what}: cannot connect ({exc})", status="UNAVAILABLE", hint=connect_hint
            )
        if mutating:
            return errors.ResponseLost(
                f"{what}: connection lost before the response ({exc})", status="UNAVAILABLE"
            )
        return errors.TransientError(f"{what}: connection lost ({exc})", status="UNAVAILABLE")
    import http.client

    if isinstance(exc, http.client.HTTPException):
        if mutating:
            return errors.ResponseLost(f"{what}: connection lost before the response ({exc})")
        return errors.TransientError(f"{what}: {exc}")
    if isinstance(exc, Exception) and _raised_by_vendor(exc):
        # E.g. the GAPIC REST transport's ValueError for a name no URL binding matches.
        return errors.PermanentError(
            f"{what}: the Google client library refused the call: "
            f"{type(exc).__name__}: {_gist(str(exc))}",
            status="CLIENT_ERROR",
        )
    return exc


@contextmanager
def translated(what: str, *, mutating: bool, connect_hint: str | None = None) -> Iterator[None]:
    """Run a block of SDK calls; vendor exceptions leave it as deployer errors."""
    try:
        yield
    except errors.DeployerError:
        raise
    except Exception as exc:
        mapped = map_exception(exc, mutating=mutating, what=what, connect_hint=connect_hint)
        if mapped is exc:
            raise
        raise mapped from exc

"""Translate vendor exceptions into deployer's error tree, at the provider boundary.

Owns: `map_exception` (google.api_core, google.auth, google.resumable_media, requests and
urllib3 transport errors -> `deployer.errors`) and the `translated` context manager that
applies it with `raise ... from exc`. A broken connection on a mutating call becomes
`ResponseLost` (the call may have taken effect: apply adopts); on a read it is just
`TransientError`. A refused connection never reached the server, so it is transient.

Must not: retry (see retry.py), or let any vendor exception escape.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from deployer import errors

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
        return errors.PermissionDenied(
            text,
            hint="check the credentials (gcloud auth application-default login) and "
            "that the account has roles/aiplatform.user and roles/storage.admin",
            **kw,
        )
    if code == 400 or status == "INVALID_ARGUMENT":
        return errors.InvalidArgument(text, **kw)
    return errors.PermanentError(text, **kw)


def _is_connect_failure(exc: BaseException) -> bool:
    """True if the request never left: connection refused, DNS, connect timeout."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        name = type(cur).__name__
        if name in (
            "NewConnectionError",
            "ConnectTimeout",
            "ConnectionRefusedError",
            "NameResolutionError",
        ):
            return True
        for arg in getattr(cur, "args", ()):
            if isinstance(arg, BaseException) and _is_connect_failure(arg):
                return True
        cur = getattr(cur, "reason", None) or cur.__cause__ or cur.__context__
    return False


def map_exception(exc: BaseException, *, mutating: bool, what: str = "") -> BaseException:
    """Our error for a vendor exception; `exc` itself if it is not one we know."""
    if isinstance(exc, errors.DeployerError):
        return exc
    from google.api_core import exceptions as gexc

    if isinstance(exc, gexc.RetryError):
        cause = exc.cause
        return (
            map_exception(cause, mutating=mutating, what=what)
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
            return errors.TransientError(f"{what}: {exc}")

    import requests

    if isinstance(exc, requests.exceptions.RequestException | ConnectionError | TimeoutError):
        if _is_connect_failure(exc):
            return errors.TransientError(f"{what}: cannot connect ({exc})", status="UNAVAILABLE")
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
    return exc


@contextmanager
def translated(what: str, *, mutating: bool) -> Iterator[None]:
    """Run a block of SDK calls; vendor exceptions leave it as deployer errors."""
    try:
        yield
    except errors.DeployerError:
        raise
    except Exception as exc:
        mapped = map_exception(exc, mutating=mutating, what=what)
        if mapped is exc:
            raise
        raise mapped from exc

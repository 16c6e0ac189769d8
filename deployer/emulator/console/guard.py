"""Who may use the console: its own Host only, forms from its own origin only, the token.

Owns the console's checks, run before any view: the `Host` header must name the address the
console is served at (a DNS-rebinding page on another name is refused), a POST must come from
the console's own origin (`Origin`, else `Sec-Fetch-Site`), and when the emulator has a bearer
token the request must carry it: as `Authorization: Bearer`, as the HttpOnly SameSite=Strict
cookie the console sets, or once as `?token=` in the URL that `deployer local up` prints
(answered with the cookie and a redirect to the same page without the token, so the token
does not stay in the address bar or in history).

Must not: render views, or hold the token anywhere but in memory.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlencode

from deployer.emulator.http import Request

COOKIE = "deployer_console"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class Refusal:
    """Why a request is not served: the status and what the page says."""

    status: int
    message: str


@dataclass(frozen=True)
class Admit:
    """Serve it; `set_cookie` and `redirect` when the token came in the URL."""

    set_cookie: str | None = None
    redirect: str | None = None


class Guard:
    """The checks for one console listener (host and port as bound)."""

    def __init__(self, *, host: str, port: int, token: str | None = None) -> None:
        self.token = token or None
        names = {host if ":" not in host else f"[{host}]"}
        if host in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""):
            names.update(_LOOPBACK_NAMES)
        self.hosts = frozenset(f"{name}:{port}" for name in names)
        self.origins = frozenset(f"http://{h}" for h in self.hosts)

    def check(self, request: Request) -> Refusal | Admit:
        host = request.headers.get("host", "")
        if host not in self.hosts:
            return Refusal(403, f"This console does not answer for host {host!r}.")
        if request.method not in ("GET", "HEAD") and not self._same_origin(request):
            return Refusal(403, "Forms are accepted from the console's own pages only.")
        if self.token is None:
            return Admit()
        if self._has_token(request):
            return Admit()
        offered = request.q("token")
        if offered is not None and request.method == "GET" and self._matches(offered):
            rest = {k: v for k, v in request.query.items() if k != "token"}
            target = request.raw_path + ("?" + urlencode(rest, doseq=True) if rest else "")
            cookie = f"{COOKIE}={offered}; HttpOnly; SameSite=Strict; Path=/_console/"
            return Admit(set_cookie=cookie, redirect=target)
        return Refusal(
            401,
            "This console needs the emulator's token: open the console URL that "
            "`deployer local up` printed (it carries the token once).",
        )

    def _same_origin(self, request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is not None:
            return origin in self.origins
        # No Origin: a browser says where the request came from in Sec-Fetch-Site.
        return request.headers.get("sec-fetch-site", "same-origin") == "same-origin"

    def _has_token(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and self._matches(auth[7:].strip()):
            return True
        for part in request.headers.get("cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == COOKIE and self._matches(value):
                return True
        return False

    def _matches(self, offered: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(offered.encode(), self.token.encode())

"""Who may drive the emulator: Host, Origin and bearer-token checks, before any route runs.

Owns `AccessPolicy` and `check_bind`. The threats are a web page in the user's browser and,
when the emulator binds a non-loopback address, other machines; a local process running as
the user is not one (it can read the data dir anyway). So, on every request of every app the
emulator serves (the API port and the console's port, see `serve_port`):

- Host: only an address the emulator serves (DNS rebinding gives an attacker's page our
  answers under the attacker's name). Loopback binds accept `localhost`, `127.0.0.1` and
  `[::1]`; a specific address accepts itself; a wildcard bind (0.0.0.0, ::) accepts any IP
  literal (a rebinding attack needs a name); `--allow-host` adds names (`name` with any port
  we serve, or `name:port` exactly, for tunnels and port forwarding). Refused: 403.
- Origin: a browser request from a page of another origin (a simple cross-origin POST needs
  no CORS preflight), a CORS preflight from one, and a cross-site subresource load
  (`Sec-Fetch-Site`, for the GETs that carry no Origin) are refused: 403. Our own origins are
  `http://` plus an accepted Host (`is_own_origin`, which the console asks too). The emulator
  never sends CORS headers, so no other origin may read an answer either.
- Token: with a token configured (`--auth-token` / DEPLOYER_EMULATOR_TOKEN; required to bind
  a non-loopback address), every request must carry it, compared in constant time, as
  `Authorization: Bearer <token>` (the clients), the `access_token` query parameter (Google's
  own alternative, already redacted from logs; the console's first URL) or the
  `deployer_emulator_token` cookie (set by the console). Refused: 403, not Google's 401: on a
  401 the official clients try to refresh their credentials and fail with "Anonymous
  credentials cannot be refreshed" instead of showing our message. Without a token the
  Authorization header is ignored (the official clients send one even when anonymous).
  `GET /_emulator/health` needs no token, so launchers can wait for a server they started.
- Readers: custom serving containers read their artifacts through STORAGE_EMULATOR_HOST with
  clients that send no token of ours. With a token, they get `reader_url`: the base URL plus
  `/_reader/<capability>`, a random secret made per emulator run that grants read-only Cloud
  Storage calls (`reader_may`) and nothing else. The transport strips the prefix and tells
  the handlers (Request.base_path) so the links they return keep it.

Must not: know any API's routes beyond `reader_may`'s reading of route names, do I/O, or
import the core.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from deployer.errors import ConfigError

TOKEN_COOKIE = "deployer_emulator_token"  # the console's cookie (HttpOnly, SameSite=Strict)
TOKEN_QUERY = "access_token"  # Google APIs' own query-parameter form of a bearer token
READER_PREFIX = "/_reader/"  # + capability + the real path: containers' read-only door
MIN_TOKEN_CHARS = 16  # a short token is guessable over the network; makes one in the hint
_TOKEN_HINT = 'make one with `python -c "import secrets; print(secrets.token_urlsafe(32))"`'
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})
_TOKEN_EXEMPT = frozenset({("GET", "/_emulator/health"), ("HEAD", "/_emulator/health")})


class Scope(str, Enum):
    """What a granted request may do."""

    FULL = "full"  # anything (a token-less loopback emulator, or the token)
    READER = "reader"  # read-only Cloud Storage (the containers' capability)


@dataclass(frozen=True)
class Denial:
    """A refused request: answer `status` with Google's error body."""

    status: int  # 403
    reason: str  # google.rpc status name
    message: str  # says what was refused and how to get in


@dataclass(frozen=True)
class Grant:
    """An admitted request: its scope, and the path to route (a reader prefix removed)."""

    scope: Scope
    raw_path: str  # still percent-encoded, as received minus any reader prefix
    base_path: str = ""  # the prefix removed: links the handlers return must keep it


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback IP literals (bracketed IPv6 too)."""
    name = host.strip().lower().strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _host_name(host: str) -> str:
    """An address as it appears in a Host header (IPv6 bracketed), lower-case."""
    name = host.strip().lower()
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"
    return name


def check_token(token: str | None) -> None:
    """ConfigError unless `token` is None or a usable token."""
    if token is None:
        return
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() or not c.isprintable() for c in token):
        raise ConfigError(
            f"the emulator's auth token must be at least {MIN_TOKEN_CHARS} printable "
            "characters without spaces",
            hint=_TOKEN_HINT,
        )


def check_bind(host: str, token: str | None) -> None:
    """Refuse (ConfigError) to serve a non-loopback address without a token, or a bad token."""
    check_token(token)
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to bind {host} without an auth token: anyone who can reach that "
            "address could drive the emulator (and run models, which are code)",
            hint="pass --auth-token TOKEN (or set DEPLOYER_EMULATOR_TOKEN) and give clients "
            f"the same DEPLOYER_EMULATOR_TOKEN; {_TOKEN_HINT}; or bind 127.0.0.1",
        )


def _split_host(value: str) -> tuple[str, int] | None:
    """("name", port) of a Host header value (port 80 when absent), None if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[: end + 1], value[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else ""
    elif ":" in value:
        name, port_text = value.rsplit(":", 1)
    else:
        name, port_text = value, ""
    if not name:
        return None
    if not port_text:
        return name, 80
    if not port_text.isdigit() or len(port_text) > 5:
        return None
    return name, int(port_text)


def _bearer(value: str) -> str | None:
    scheme, _, credential = value.strip().partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else None


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


def reader_may(method: str, route_name: str) -> bool:
    """True for what the reader capability allows: reading Cloud Storage buckets and objects."""
    return method in ("GET", "HEAD") and route_name.startswith("storage.")


class AccessPolicy:
    """The access rules of one emulator run (its bound address, ports, token, extra names)."""

    def __init__(
        self,
        *,
        bind_host: str,
        port: int,
        token: str | None = None,
        extra_hosts: Iterable[str] = (),
    ) -> None:
        check_bind(bind_host, token)
        bind = _host_name(bind_host)
        self._ports = frozenset({port})
        self._wildcard = bind in _WILDCARDS
        names = set() if self._wildcard else {bind}
        if self._wildcard or is_loopback(bind_host):
            names |= _LOOPBACK_NAMES
        exact: set[tuple[str, int]] = set()
        for entry in extra_hosts:
            parsed = _split_host(entry)
            if parsed is None:
                raise ConfigError(
                    f"--allow-host {entry!r} is not a host name or name:port",
                    hint="e.g. --allow-host my-laptop.local or --allow-host my-laptop.local:9000",
                )
            if ":" in entry.strip().rsplit("]", 1)[-1]:  # a port was given: match it exactly
                exact.add(parsed)
            else:
                names.add(parsed[0])
        self._names = frozenset(names)
        self._exact = frozenset(exact)
        self._token = token.encode() if token else None
        self._reader = secrets.token_urlsafe(32) if token else None

    @property
    def token_required(self) -> bool:
        return self._token is not None

    def serve_port(self, port: int) -> None:
        """Accept Host/Origin values naming `port` too (the console listens on a second one)."""
        self._ports = self._ports | {port}

    def host_allowed(self, host: str | None) -> bool:
        """True if a Host header value names an address and port this emulator serves."""
        if not host:
            return False
        parsed = _split_host(host)
        if parsed is None:
            return False
        if parsed in self._exact:
            return True
        name, port = parsed
        if port not in self._ports:
            return False
        return name in self._names or (self._wildcard and _is_ip_literal(name))

    def is_own_origin(self, origin: str) -> bool:
        """True if `origin` (an Origin header value) is one of the emulator's own pages."""
        scheme, sep, rest = origin.strip().partition("://")
        if not sep or scheme.lower() != "http" or "/" in rest or "@" in rest:
            return False
        return self.host_allowed(rest)

    def reader_url(self, base_url: str) -> str:
        """The STORAGE_EMULATOR_HOST for serving containers: read-only when a token is set."""
        if self._reader is None:
            return base_url
        return f"{base_url.rstrip('/')}{READER_PREFIX}{self._reader}"

    def _token_matches(self, candidate: str | None) -> bool:
        if candidate is None or self._token is None:
            return False
        return hmac.compare_digest(candidate.encode("utf-8", "surrogateescape"), self._token)

    def check(
        self,
        method: str,
        raw_path: str,
        headers: Mapping[str, str],
        query: Mapping[str, list[str]],
    ) -> Grant | Denial:
        """Admit or refuse one request (header names lower-case, `query` parsed)."""
        host = headers.get("host")
        if not self.host_allowed(host):
            return Denial(
                403,
                "PERMISSION_DENIED",
                f"Host {host!r} is not an address this emulator serves (DNS rebinding "
                "guard); use the URL it printed, or start it with --allow-host NAME",
            )
        origin = headers.get("origin")
        if origin is not None and not self.is_own_origin(origin):
            return Denial(
                403,
                "PERMISSION_DENIED",
                f"Requests from web pages of another origin ({origin[:100]!r}) are refused",
            )
        site = headers.get("sec-fetch-site", "").lower()
        navigation = headers.get("sec-fetch-mode", "").lower() == "navigate"
        if site in ("cross-site", "same-site") and not (navigation and method in ("GET", "HEAD")):
            return Denial(
                403, "PERMISSION_DENIED", "Requests from web pages of another site are refused"
            )
        if self._token is None:
            return Grant(Scope.FULL, raw_path)
        if raw_path.startswith(READER_PREFIX):
            capability, _, rest = raw_path[len(READER_PREFIX) :].partition("/")
            if self._reader is not None and hmac.compare_digest(
                capability.encode("utf-8", "surrogateescape"), self._reader.encode()
            ):
                return Grant(Scope.READER, "/" + rest, READER_PREFIX + capability)
            return _unauthenticated("the reader capability in the path is not this emulator's")
        if (method, raw_path) in _TOKEN_EXEMPT:
            return Grant(Scope.FULL, raw_path)
        header = headers.get("authorization")
        candidates = [
            _bearer(header) if header else None,
            next(iter(query.get(TOKEN_QUERY, ())), None),
            _cookie(headers.get("cookie", ""), TOKEN_COOKIE),
        ]
        if any(self._token_matches(c) for c in candidates):
            return Grant(Scope.FULL, raw_path)
        if all(c is None for c in candidates):
            return _unauthenticated("this emulator requires a bearer token")
        return _unauthenticated("the bearer token is not this emulator's")


def _unauthenticated(what: str) -> Denial:
    return Denial(
        403,
        "PERMISSION_DENIED",
        f"Request is missing valid authentication: {what}. Send the emulator's token as a "
        "bearer token in the Authorization header (deployer sends DEPLOYER_EMULATOR_TOKEN).",
    )

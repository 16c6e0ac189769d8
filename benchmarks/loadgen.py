"""A closed-loop HTTP load generator for the serving benchmarks (one instance per request).

Owns: `closed_loop(url, bodies, clients, seconds)`: N client threads, each with its own
keep-alive `http.client` connection, each sending its next request as soon as the previous
answer arrived (what "N concurrent clients" means), recording every latency; and
`serial_latencies` for the 1-client latency figures. Bodies are encoded before the clock starts,
so the client measures the server and the wire, not `json.dumps`.

Must not: use `requests` (its per-call overhead, ~1 ms of client CPU, would be billed to the
server on a 2-core machine), or hide failures: any non-200 answer is counted and reported.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    """What one closed-loop run saw."""

    clients: int
    seconds: float  # measured window (after warmup)
    ok: int = 0  # 200 answers inside the window
    errors: int = 0  # non-200 answers or connection failures
    latencies: list[float] = field(default_factory=list)  # seconds, 200 answers in the window
    first_error: str = ""

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def _connection(url: str) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return conn, path


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, resp.read()


def closed_loop(
    url: str,
    bodies: Sequence[bytes],
    *,
    clients: int,
    seconds: float,
    warmup: float = 0.3,
) -> LoadResult:
    """Run `clients` closed-loop clients for `warmup + seconds`; count only the window."""
    result = LoadResult(clients=clients, seconds=seconds)
    lock = threading.Lock()
    start = time.perf_counter()
    window_start = start + warmup
    window_end = window_start + seconds
    barrier = threading.Barrier(clients)

    def client(idx: int) -> None:
        conn, path = _connection(url)
        lat: list[float] = []
        ok = err = 0
        first_error = ""
        i = idx
        barrier.wait()
        while True:
            t0 = time.perf_counter()
            if t0 >= window_end:
                break
            body = bodies[i % len(bodies)]
            i += clients
            try:
                status, data = _post(conn, path, body)
            except (OSError, http.client.HTTPException) as exc:
                status, data = -1, repr(exc).encode()
                conn.close()
                conn, path = _connection(url)
            t1 = time.perf_counter()
            # Count completions inside the window: slow requests that started before it still
            # count, or a server with latency > window would read as zero.
            if window_start <= t1 <= window_end:
                if status == 200:
                    ok += 1
                    lat.append(t1 - t0)
                else:
                    err += 1
                    first_error = first_error or f"{status}: {data[:200]!r}"
        conn.close()
        with lock:
            result.ok += ok
            result.errors += err
            result.latencies += lat
            result.first_error = result.first_error or first_error

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return result


def serial_latencies(url: str, bodies: Sequence[bytes], *, n: int) -> list[float]:
    """n requests one after another on one keep-alive connection; seconds each (200s only)."""
    conn, path = _connection(url)
    out: list[float] = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            status, data = _post(conn, path, bodies[i % len(bodies)])
            dt = time.perf_counter() - t0
            if status != 200:
                raise RuntimeError(f"{url} answered {status}: {data[:300]!r}")
            out.append(dt)
    finally:
        conn.close()
    return out

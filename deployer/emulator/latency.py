"""Network realism for the emulator: a per-request delay, as a wide-area network would add.

Owns `Latency` (`deployer local run --latency MS [--latency-jitter MS] [--seed N]`): how long
each API request waits before its handler runs. Each request draws its delay uniformly from
[MS - JITTER, MS + JITTER] (never below 0) with a seeded generator, so a run is repeatable. One
delay per request stands for the round trip a client pays per call on a real network (keep-alive
connections, so no handshake per call); bandwidth is not limited. Admin routes
(`/_emulator/...`: health, faults) are not delayed, so launchers and tests wait on nothing.

The delay is awaited on the HTTP server's event loop before a worker thread is taken
(`HttpServer(delay=...)`), so a thousand waiting requests hold no thread.

Must not: sleep on a thread, touch request bodies, or know any API's routes beyond the admin
prefix.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from deployer.httpserve import HttpRequest

ADMIN_PREFIX = "/_emulator/"


@dataclass
class Latency:
    """The added delay per request; draws are repeatable for a given seed."""

    ms: float  # mean delay per request, milliseconds (>= 0)
    jitter_ms: float = 0.0  # each draw is uniform in [ms - jitter_ms, ms + jitter_ms], >= 0
    seed: int | None = None  # None: a different sequence each run
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.ms >= 0 or not self.jitter_ms >= 0:  # also refuses nan
            raise ValueError("latency and jitter must be >= 0 milliseconds")
        self._rng = random.Random(self.seed)

    @property
    def active(self) -> bool:
        return self.ms > 0 or self.jitter_ms > 0

    def draw(self) -> float:
        """The next delay, in seconds."""
        ms = self.ms
        if self.jitter_ms:
            # Called on the server's one event-loop thread only: no lock needed for the rng.
            ms += self._rng.uniform(-self.jitter_ms, self.jitter_ms)
        return max(0.0, ms) / 1000.0

    def delay(self, request: HttpRequest) -> float:
        """Seconds `request` waits before it is handled (the HttpServer `delay` hook)."""
        if request.raw_path.startswith(ADMIN_PREFIX):
            return 0.0
        return self.draw()


__all__ = ["ADMIN_PREFIX", "Latency"]

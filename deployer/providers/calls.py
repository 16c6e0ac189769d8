"""How the provider classes make an API call: counted, translated, reads retried.

Owns `CountedCalls`, the mixin both `GcsStore` and `VertexProvider` use so that the
rule lives in one place. Kept apart from retry.py because it pulls in the vendor
error mapping (and so google.*), which the core's use of `RetryPolicy` must not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from deployer.providers.errors import translated
from deployer.providers.retry import RetryPolicy, call_with_retry

T = TypeVar("T")


class CountedCalls:
    """How every provider class makes an API call: counted, translated, reads retried.

    Reads are retried on `TransientError` under `policy`; writes are not (apply
    decides how to adopt a `ResponseLost`). Subclasses set `policy` and provide
    `_count(n)`, which tallies calls for `Provider.api_calls`. `connect_hint` tells a
    user whose calls cannot reach the service where its address came from.
    """

    policy: RetryPolicy
    _count: Callable[[int], None]
    connect_hint: str | None = None

    def _read(self, what: str, fn: Callable[[], T]) -> T:
        def once() -> T:
            self._count(1)
            with translated(what, mutating=False, connect_hint=self.connect_hint):
                return fn()

        return call_with_retry(once, policy=self.policy)

    def _write(self, what: str, fn: Callable[[], T]) -> T:
        self._count(1)
        with translated(what, mutating=True, connect_hint=self.connect_hint):
            return fn()

"""The one retry policy: exponential backoff with full jitter, bounded, for TransientError only.

Owns: `RetryPolicy` and `call_with_retry`, used by the providers for read calls and by
`apply` for mutating calls (where a `ResponseLost` first asks a probe whether the call
already took effect, so a retried create adopts instead of duplicating).

Must not: retry anything but `deployer.errors.TransientError` (4xx are permanent), or
sleep unboundedly: attempts and total time are both capped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from deployer import settings
from deployer.errors import ResponseLost, TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8  # calls in all, the first included
    total_seconds: float = 120.0  # give up once this much time has passed
    initial_seconds: float = 0.5  # scale of the first backoff (full jitter: uniform 0..scale)
    max_seconds: float = 10.0  # cap of a single wait

    @classmethod
    def from_env(cls) -> RetryPolicy:
        # Tests against a faulty emulator shrink the waits without changing the logic.
        scale = settings.RETRY_SCALE.get()
        base = cls()
        return cls(
            base.attempts,
            base.total_seconds,
            base.initial_seconds * scale,
            base.max_seconds * scale,
        )


DEFAULT_POLICY = RetryPolicy()


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    probe: Callable[[], T | None] | None = None,
    retry_lost: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn`, retrying TransientError with backoff.

    On `ResponseLost` the call may have taken effect: `probe()` is asked first and its
    non-None answer is returned as the adopted result. Without a probe, a lost response
    is retried only if `retry_lost` (the call is idempotent).
    """

    def attempt() -> T:
        try:
            return fn()
        except ResponseLost:
            if probe is not None:
                found = probe()
                if found is not None:
                    return found
            elif not retry_lost:
                raise _NoRetry from None
            raise

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts)
        | tenacity.stop_after_delay(policy.total_seconds),
        wait=tenacity.wait_random_exponential(
            multiplier=policy.initial_seconds, max=policy.max_seconds
        ),
        retry=tenacity.retry_if_exception_type(TransientError),
        reraise=True,
        sleep=sleep,
    )
    try:
        return retrying(attempt)
    except _NoRetry as exc:
        # The ResponseLost as raised (its own __cause__ intact); `from` would overwrite that.
        raise exc.__context__ or exc  # noqa: B904


class _NoRetry(Exception):
    """Internal: stop retrying and re-raise the ResponseLost it carries as context."""


class PollTimeout(Exception):
    """`poll_until` ran out of time; `last` is the last value seen (None if none was)."""

    def __init__(self, last: object) -> None:
        super().__init__("poll timed out")
        self.last = last


def poll_until(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float | None,
    first: float = 0.05,
    max_interval: float = 5.0,
    fixed: float | None = None,
    retry_on: tuple[type[BaseException], ...] = (),
    on_value: Callable[[T], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """The one poll loop: call `fetch` until `done(value)`, waiting between calls.

    Waits start at `first` seconds and double up to `max_interval` (or are `fixed`);
    `timeout` None waits forever. Exceptions in `retry_on` count as "not done yet" (for a
    service that says "not now", e.g. a batch job still cancelling). On timeout raises
    `PollTimeout` carrying the last value (the caller words the error), or re-raises the
    last `retry_on` exception if no value was ever seen.
    """
    wait: tenacity.wait.wait_base = (
        tenacity.wait_fixed(fixed)
        if fixed is not None
        else tenacity.wait_exponential(multiplier=first, min=first, max=max_interval, exp_base=2)
    )
    last: list[T] = []

    def attempt() -> T:
        value = fetch()
        last[:] = [value]
        if on_value is not None:
            on_value(value)
        return value

    retrying = tenacity.Retrying(
        stop=tenacity.stop_never if timeout is None else tenacity.stop_after_delay(timeout),
        wait=wait,
        retry=tenacity.retry_if_exception_type(retry_on)
        | tenacity.retry_if_result(lambda v: not done(v)),
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except tenacity.RetryError:
        raise PollTimeout(last[0] if last else None) from None

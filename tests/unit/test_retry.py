"""The one poll loop, `deployer.providers.retry.poll_until`: waits, values, exceptions, timeout."""

from __future__ import annotations

import itertools

import pytest

from deployer import errors
from deployer.providers.retry import PollTimeout, poll_until


def test_polls_until_done_doubling_the_wait_up_to_the_cap_and_shows_every_value() -> None:
    values = iter(range(10))
    slept: list[float] = []
    seen: list[int] = []
    got = poll_until(
        lambda: next(values),
        lambda v: v == 6,
        timeout=None,
        first=0.5,
        max_interval=3.0,
        on_value=seen.append,
        sleep=slept.append,
    )
    assert got == 6 and seen == [0, 1, 2, 3, 4, 5, 6]
    assert slept == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]  # one wait between each two calls


def test_a_fixed_interval_waits_the_same_each_time() -> None:
    calls = itertools.count()
    slept: list[float] = []
    assert (
        poll_until(
            lambda: next(calls), lambda v: v >= 3, timeout=None, fixed=1.5, sleep=slept.append
        )
        == 3
    )
    assert slept == [1.5, 1.5, 1.5]


def test_exceptions_in_retry_on_count_as_not_done_and_others_escape_at_once() -> None:
    answers: list[object] = [errors.FailedPrecondition("still cancelling"), "gone"]

    def fetch() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    got = poll_until(
        fetch,
        lambda v: v == "gone",
        timeout=None,
        retry_on=(errors.FailedPrecondition,),
        sleep=lambda s: None,
    )
    assert got == "gone"

    def broken() -> object:
        raise errors.PermissionDenied("no")

    with pytest.raises(errors.PermissionDenied):
        poll_until(broken, bool, timeout=None, retry_on=(errors.NotFound,), sleep=lambda s: None)


def test_a_timeout_carries_the_last_value_seen() -> None:
    calls = itertools.count()
    with pytest.raises(PollTimeout) as info:
        poll_until(lambda: next(calls), lambda v: False, timeout=0.05, fixed=0.01)
    assert isinstance(info.value.last, int) and info.value.last >= 1


def test_a_timeout_with_no_value_re_raises_the_last_exception() -> None:
    def fetch() -> object:
        raise errors.FailedPrecondition("not yet")

    with pytest.raises(errors.FailedPrecondition, match="not yet"):
        poll_until(fetch, bool, timeout=0.05, fixed=0.01, retry_on=(errors.FailedPrecondition,))

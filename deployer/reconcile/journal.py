"""The stack's control objects in its bucket: the lock and the operation journal.

Owns: `StackLock` (a create-only object, `if_generation_match=0`, so two applies on one
stack cannot interleave; waits up to a timeout; `force_unlock` for a dead holder) and
`Journal` (names of long-running operations in flight, so a killed apply resumes polling
them instead of re-creating). Both live at gs://<bucket>/.deployer/<stack>/: a lost laptop
or CI runner loses nothing, because the cloud is the state.

Must not: remember anything else. What exists is always observed, never journaled.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from deployer.errors import FailedPrecondition, LockHeld, NotFound, ResponseLost
from deployer.providers.retry import PollTimeout, RetryPolicy, call_with_retry, poll_until
from deployer.state import journal_object, lock_object

if TYPE_CHECKING:
    from deployer.providers import Provider


def _holder() -> str:
    return f"{os.environ.get('USER', 'someone')}@{socket.gethostname()} pid {os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class StackLock:
    """Context manager holding gs://<bucket>/.deployer/<stack>/lock."""

    def __init__(
        self,
        provider: Provider,
        bucket: str,
        stack: str,
        *,
        timeout: float = 0.0,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.provider, self.bucket, self.stack = provider, bucket, stack
        self.timeout = timeout
        self.policy = policy or RetryPolicy.from_env()
        self.sleep = sleep
        self.name = lock_object(stack)
        self.token = uuid.uuid4().hex
        self.generation: int | None = None
        self.broke_stale: str | None = None  # holder of a dead run's lock we removed

    def _payload(self) -> bytes:
        return json.dumps(
            {
                "token": self.token,
                "holder": _holder(),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "since": int(time.time()),
            }
        ).encode()

    def _mine(self) -> int | None:
        found = self.provider.read_object(self.bucket, self.name)
        if found and json.loads(found[0] or b"{}").get("token") == self.token:
            return found[1]
        return None

    def acquire(self) -> None:
        """Take the lock, waiting up to `timeout` seconds for its holder; `LockHeld` after."""
        data = self._payload()

        def attempt() -> bool:
            # Twice at most: once more right after removing a dead run's lock.
            for _ in range(2):
                try:
                    self.generation = call_with_retry(
                        lambda: self.provider.write_object(
                            self.bucket, self.name, data, if_generation_match=0
                        ),
                        policy=self.policy,
                        probe=self._mine,
                    )
                    return True
                except FailedPrecondition:
                    # Precondition failed: someone holds it (or our own lost write did).
                    mine = self._mine()
                    if mine is not None:
                        self.generation = mine
                        return True
                    if not self._break_if_dead():
                        return False
            return False

        try:
            poll_until(
                attempt, bool, timeout=self.timeout, first=0.1, max_interval=2.0, sleep=self.sleep
            )
        except PollTimeout:
            raise LockHeld(
                f"stack {self.stack!r} is locked by "
                f"{describe_lock(self.provider, self.bucket, self.stack)}",
                hint="wait for that run (or pass --lock-timeout SECONDS); if it died, "
                "run `deployer force-unlock SPEC`",
            ) from None

    def _break_if_dead(self) -> bool:
        """A lock left by a dead process on this very machine is stale: remove it.

        Only the same host can tell a pid is gone; other holders need --lock-timeout
        or force-unlock."""
        found = self.provider.read_object(self.bucket, self.name)
        if not found:
            return True  # released meanwhile: try again
        try:
            info = json.loads(found[0])
        except ValueError:
            return False
        if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
            return False
        if info["pid"] == os.getpid() or _pid_alive(info["pid"]):
            return False
        try:
            self.provider.delete_object(self.bucket, self.name, if_generation_match=found[1])
        except (NotFound, FailedPrecondition):
            pass  # someone else broke or re-took it; the next attempt tells
        self.broke_stale = info.get("holder", "a dead process")
        return True

    def release(self) -> None:
        if self.generation is None:
            return
        gen, self.generation = self.generation, None
        try:
            call_with_retry(
                lambda: self.provider.delete_object(
                    self.bucket, self.name, if_generation_match=gen
                ),
                policy=self.policy,
            )
        except (NotFound, FailedPrecondition):
            pass  # force-unlocked meanwhile: nothing of ours to release

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def describe_lock(provider: Provider, bucket: str, stack: str) -> str:
    found = provider.read_object(bucket, lock_object(stack))
    if not found:
        return "nobody (it was just released)"
    try:
        info = json.loads(found[0])
        age = int(time.time()) - int(info.get("since", 0))
        return f"{info.get('holder', '?')} for {age}s"
    except (ValueError, TypeError):
        return "an unreadable lock object"


def force_unlock(provider: Provider, bucket: str, stack: str) -> str | None:
    """Delete the stack lock whoever holds it. Returns who held it, None if unlocked."""
    if provider.read_object(bucket, lock_object(stack)) is None:
        return None
    who = describe_lock(provider, bucket, stack)
    try:
        provider.delete_object(bucket, lock_object(stack))
    except NotFound:
        return None
    return who


class Journal:
    """In-flight operations of one stack: key -> {"op": name, "what": address}."""

    def __init__(
        self, provider: Provider, bucket: str, stack: str, *, policy: RetryPolicy | None = None
    ) -> None:
        self.provider, self.bucket = provider, bucket
        self.name = journal_object(stack)
        self.policy = policy or RetryPolicy.from_env()
        self.entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()  # apply works on several endpoints at once

    def load(self) -> dict[str, dict[str, Any]]:
        found = call_with_retry(
            lambda: self.provider.read_object(self.bucket, self.name), policy=self.policy
        )
        self.entries = json.loads(found[0]) if found and found[0] else {}
        return dict(self.entries)

    def _save(self) -> None:
        data = json.dumps(self.entries, sort_keys=True).encode()
        if not self.entries:
            try:
                call_with_retry(
                    lambda: self.provider.delete_object(self.bucket, self.name), policy=self.policy
                )
            except NotFound:
                pass
            return
        call_with_retry(
            lambda: self.provider.write_object(self.bucket, self.name, data), policy=self.policy
        )

    def record(self, key: str, op_name: str, what: str) -> None:
        with self._lock:
            self.entries[key] = {"op": op_name, "what": what, "since": int(time.time())}
            self._save()

    def forget(self, key: str) -> None:
        with self._lock:
            if self.entries.pop(key, None) is not None:
                self._save()


__all__ = ["Journal", "ResponseLost", "StackLock", "describe_lock", "force_unlock"]

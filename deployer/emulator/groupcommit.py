"""Group commit: concurrent writers share one durable commit instead of paying one each.

Owns `GroupCommit`, a leader-based batcher (as LevelDB's write queue and database group
commit work): a writer queues its item; if no commit is running it leads, taking every item
queued so far (up to `max_batch`) and committing them with one call; writers arriving
meanwhile wait and are answered when the batch holding their item is durable. When a leader
finishes it hands leadership to the first item still queued, so no thread sits idle as a
dedicated committer and a lone writer commits on its own thread with no hand-off at all.

Must not: know what is committed (the caller's `commit` does), sleep or poll to gather a
batch (batches form from the writers that arrive while a commit runs), or let one item's
failure answer another writer: `commit` returns one outcome (a result or an exception) per item.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[T, R]):
    """One writer's item, its outcome, and the lock it waits on (released once: done, or
    promoted to lead)."""

    __slots__ = ("done", "error", "item", "result", "wake")

    def __init__(self, item: T) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.done = False
        # A plain lock as a one-shot signal: cheaper to wait on and release than an Event.
        self.wake = threading.Lock()
        self.wake.acquire()

    def outcome(self) -> R:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set with done, errors raised above


class GroupCommit(Generic[T, R]):
    """Commits items in batches; `submit` returns once its item's batch is committed."""

    def __init__(
        self,
        commit: Callable[[Sequence[T]], Sequence[R | BaseException]],
        *,
        max_batch: int = 256,
    ) -> None:
        """`commit(items)` makes every item durable at once and returns one outcome per item,
        in order: its result, or the exception that writer gets. An exception raised by
        `commit` itself answers every item of the batch."""
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._commit = commit
        self._max = max_batch
        self._mutex = threading.Lock()
        self._queue: deque[_Slot[T, R]] = deque()
        self._leading = False  # a leader is committing (or has been promoted and will)
        self.batches = 0  # commits made (for tests and benchmarks)
        self.items = 0  # items committed

    def submit(self, item: T) -> R:
        """Commit `item` (with whatever else is queued); its result, or raise its error."""
        slot: _Slot[T, R] = _Slot(item)
        with self._mutex:
            self._queue.append(slot)
            lead = not self._leading
            self._leading = True
        if not lead:
            slot.wake.acquire()  # answered by a leader, or promoted to lead
            if slot.done:
                return slot.outcome()
        self._lead()
        return slot.outcome()

    def _lead(self) -> None:
        """Commit one batch from the front of the queue (holding this writer's own item),
        answer its writers, then pass leadership on or give it up."""
        with self._mutex:
            batch = [self._queue.popleft() for _ in range(min(self._max, len(self._queue)))]
        try:
            outcomes: Sequence[R | BaseException] = self._commit([s.item for s in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"commit answered {len(outcomes)} of {len(batch)} items")
        except BaseException as exc:  # every writer of the batch learns it; none hangs
            outcomes = [exc] * len(batch)
        for slot, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                slot.error = outcome
            else:
                slot.result = outcome
        self.batches += 1
        self.items += len(batch)
        with self._mutex:
            if self._queue:
                nxt = self._queue[0]  # stays queued: its own batch will take it first
                nxt.wake.release()
            else:
                self._leading = False
        # Answer after handing on leadership, so the next batch starts while these wake up.
        # batch[0] is the leader's own item (a leader's item is always first in the queue).
        for slot in batch:
            slot.done = True
        for slot in batch[1:]:
            slot.wake.release()


__all__ = ["GroupCommit"]

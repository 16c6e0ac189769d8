"""The dynamic batcher: merging, splitting, padding, isolation of results, and the params file."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from deployer.providers.retry import poll_until
from deployer.serving.batching import (
    Batcher,
    BatcherClosed,
    BatchingParameters,
    QueueFull,
    parse_batching_parameters,
)


class RecordingModel:
    """y = 2x + row id check; records the batch size of every call."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[int] = []
        self.threads: list[int] = []  # thread ident of every call
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = arrays["x"]
        with self.lock:
            self.calls.append(len(x))
            self.threads.append(threading.get_ident())
        if self.delay:
            time.sleep(self.delay)
        return {"y": x * 2.0, "s": x.sum(axis=1)}


def test_concurrent_requests_are_merged_and_each_caller_gets_its_own_rows() -> None:
    model = RecordingModel()
    batcher = Batcher(
        model,
        BatchingParameters(max_batch_size=32, batch_timeout_micros=50_000, num_batch_threads=1),
    )
    try:

        def call(i: int) -> tuple[int, dict[str, np.ndarray]]:
            x = np.full((1 + i % 3, 4), float(i), np.float32)
            return i, batcher.submit({"x": x})

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(call, range(16)))
        for i, out in results:
            assert out["y"].shape == (1 + i % 3, 4)
            assert np.all(out["y"] == 2.0 * i), f"caller {i} got someone else's rows"
        assert max(model.calls) > 1
        stats = batcher.stats()
        assert stats["requests"] == 16
        assert stats["rows"] == sum(1 + i % 3 for i in range(16))
        assert stats["max_batch_size_seen"] > 1
    finally:
        batcher.close()


def test_a_lone_request_is_not_delayed_when_timeout_is_zero() -> None:
    # With no batch window and nothing queued, the caller's own thread runs the model: no
    # hand-off to a batch thread, no wait (checked by thread, not by a clock).
    model = RecordingModel()
    batcher = Batcher(model, BatchingParameters(batch_timeout_micros=0))
    try:
        batcher.submit({"x": np.ones((1, 4), np.float32)})
        assert model.threads == [threading.get_ident()]
    finally:
        batcher.close()


def test_an_idle_batcher_runs_a_lone_request_on_the_callers_thread() -> None:
    threads: list[str] = []

    def model(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        threads.append(threading.current_thread().name)
        return {"y": arrays["x"]}

    batcher = Batcher(model, BatchingParameters(), name="b")
    try:
        batcher.submit({"x": np.ones((1, 1))})
        assert threads == [threading.current_thread().name]
        assert batcher.stats()["batch_sizes"] == {"1": 1}
    finally:
        batcher.close()


def test_a_request_larger_than_the_max_batch_is_split_and_reassembled_in_order() -> None:
    model = RecordingModel()
    batcher = Batcher(model, BatchingParameters(max_batch_size=4, num_batch_threads=2))
    try:
        x = np.arange(10 * 2, dtype=np.float32).reshape(10, 2)
        out = batcher.submit({"x": x})
        np.testing.assert_array_equal(out["y"], x * 2)
        assert sorted(model.calls) == [2, 4, 4]
    finally:
        batcher.close()


def test_batches_are_padded_to_allowed_sizes_and_padding_is_dropped() -> None:
    model = RecordingModel()
    params = BatchingParameters(max_batch_size=8, allowed_batch_sizes=(2, 4, 8))
    batcher = Batcher(model, params)
    try:
        out = batcher.submit({"x": np.ones((3, 2), np.float32)})
        assert out["y"].shape == (3, 2)
        assert model.calls == [4]
    finally:
        batcher.close()


def test_incompatible_shapes_are_never_merged() -> None:
    model = RecordingModel(delay=0.02)
    batcher = Batcher(model, BatchingParameters(batch_timeout_micros=30_000, num_batch_threads=1))
    try:
        with ThreadPoolExecutor(4) as pool:
            futs = [
                pool.submit(batcher.submit, {"x": np.ones((1, 2 + i % 2), np.float32)})
                for i in range(4)
            ]
            shapes = [f.result()["y"].shape for f in futs]
        assert shapes == [(1, 2), (1, 3), (1, 2), (1, 3)]
    finally:
        batcher.close()


def test_model_errors_reach_every_caller_of_the_batch() -> None:
    def broken(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise ValueError("boom")

    batcher = Batcher(broken, BatchingParameters())
    try:
        with pytest.raises(ValueError, match="boom"):
            batcher.submit({"x": np.ones((1, 1))})
    finally:
        batcher.close()


class HeldModel:
    """y = 2x, but every call waits at a gate the test opens; `entered` counts calls begun."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.gate = threading.Event()

    def __call__(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.entered.release()
        self.gate.wait(30)
        return {"y": arrays["x"] * 2.0}

    def wait_entered(self) -> None:
        assert self.entered.acquire(timeout=30), "the model was never called"


def wait_queued_rows(batcher: Batcher, rows: int) -> None:
    poll_until(batcher.stats, lambda s: s["queued_rows"] == rows, timeout=30, fixed=0.005)


def test_a_full_queue_rejects_instead_of_growing() -> None:
    model = HeldModel()
    batcher = Batcher(
        model, BatchingParameters(max_batch_size=2, max_enqueued_batches=1, num_batch_threads=1)
    )
    try:
        with ThreadPoolExecutor(4) as pool:
            running = [pool.submit(batcher.submit, {"x": np.ones((2, 1))})]
            model.wait_entered()  # the 1st runs on its caller's thread (the idle path)
            running.append(pool.submit(batcher.submit, {"x": np.ones((2, 1))}))
            model.wait_entered()  # the 2nd runs on the only batch thread
            running.append(pool.submit(batcher.submit, {"x": np.ones((2, 1))}))
            wait_queued_rows(batcher, 2)  # the 3rd waits in the queue, which is now full
            extra = pool.submit(batcher.submit, {"x": np.ones((1, 1))})
            with pytest.raises(QueueFull, match="2 rows queued, limit 2"):
                extra.result(30)  # refused at once; a queued request would wait for the gate
            model.gate.set()
            assert [f.result(30)["y"].shape for f in running] == [(2, 1)] * 3
    finally:
        model.gate.set()
        batcher.close()


def test_close_drains_queued_work_then_refuses_new_work() -> None:
    model = HeldModel()
    batcher = Batcher(model, BatchingParameters(max_batch_size=1, num_batch_threads=1))
    try:
        with ThreadPoolExecutor(4) as pool:
            futs = [pool.submit(batcher.submit, {"x": np.full((1, 1), 1.0)})]
            model.wait_entered()  # on its caller's thread
            futs.append(pool.submit(batcher.submit, {"x": np.full((1, 1), 2.0)}))
            model.wait_entered()  # on the batch thread
            futs.append(pool.submit(batcher.submit, {"x": np.full((1, 1), 3.0)}))
            wait_queued_rows(batcher, 1)  # the 3rd is queued behind them
            batcher.close(timeout=0)  # stop accepting now, without waiting for the work
            late = pool.submit(batcher.submit, {"x": np.ones((1, 1))})
            with pytest.raises(BatcherClosed):
                late.result(30)  # refused at once; a queued request would wait for the gate
            assert not any(f.done() for f in futs)
            model.gate.set()
            assert [f.result(30)["y"].item() for f in futs] == [2.0, 4.0, 6.0]
        assert batcher.stats()["requests"] == 3 and batcher.stats()["queued_rows"] == 0
    finally:
        model.gate.set()
        batcher.close()


def test_tf_serving_batching_parameters_file_is_parsed() -> None:
    text = """
    # as in TF Serving's docs
    max_batch_size { value: 128 }
    batch_timeout_micros { value: 2000 }
    max_enqueued_batches { value: 100 }
    num_batch_threads { value: 3 }
    allowed_batch_sizes: 32
    allowed_batch_sizes: 128
    pad_variable_length_inputs: true
    """
    params = parse_batching_parameters(text)
    assert params == BatchingParameters(
        max_batch_size=128,
        batch_timeout_micros=2000,
        max_enqueued_batches=100,
        num_batch_threads=3,
        allowed_batch_sizes=(32, 128),
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("max_batch_size { value: big }", "must be an integer"),
        ("max_batch_sise { value: 3 }", "unknown batching parameter 'max_batch_sise'"),
        ("max_batch_size { value: 0 }", "must be >= 1"),
        ("max_batch_size { value: 8 } allowed_batch_sizes: 4", "end with max_batch_size"),
        ("max_batch_size value 3", "cannot parse"),
    ],
)
def test_bad_batching_parameters_are_explained(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_batching_parameters(text)


def test_async_callers_that_arrive_together_join_one_batch_and_get_their_own_rows() -> None:
    # Requests an event loop takes in one round go to the batch thread together: one model
    # call, each awaiting caller woken with its own rows, the loop never blocked on the model.
    import asyncio

    model = RecordingModel()
    batcher = Batcher(model, BatchingParameters(max_batch_size=64, num_batch_threads=1))

    async def main() -> list[dict[str, np.ndarray]]:
        return await asyncio.gather(
            *(batcher.submit_async({"x": np.full((1, 4), float(i), np.float32)}) for i in range(8))
        )

    try:
        results = asyncio.run(main())
        for i, out in enumerate(results):
            assert np.all(out["y"] == 2.0 * i), f"caller {i} got someone else's rows"
        assert model.calls == [8]
        assert threading.get_ident() not in model.threads  # ran on the batch thread
    finally:
        batcher.close()


def test_async_errors_and_splitting_match_the_blocking_path() -> None:
    import asyncio

    def failing(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise ValueError("bad input")

    model = RecordingModel()
    batcher = Batcher(model, BatchingParameters(max_batch_size=4, num_batch_threads=1))
    broken = Batcher(failing, BatchingParameters(num_batch_threads=1))
    try:
        x = np.arange(40, dtype=np.float32).reshape(10, 4)
        out = asyncio.run(batcher.submit_async({"x": x}))
        assert np.array_equal(out["y"], x * 2.0)  # split into 4+4+2 and put back in order
        assert sorted(model.calls) == [2, 4, 4]
        with pytest.raises(ValueError, match="bad input"):
            asyncio.run(broken.submit_async({"x": np.ones((1, 4), np.float32)}))
    finally:
        batcher.close()
        broken.close()


def test_a_lone_async_request_after_an_idle_pause_runs_on_the_loop() -> None:
    # A lone client: no thread hand-off when the model call is short and nothing else runs.
    import asyncio

    model = RecordingModel()
    batcher = Batcher(model, BatchingParameters(num_batch_threads=1))

    async def main() -> None:
        await batcher.submit_async({"x": np.ones((1, 4), np.float32)})  # measures the call
        await asyncio.sleep(0.01)
        await batcher.submit_async({"x": np.ones((1, 4), np.float32)})

    try:
        asyncio.run(main())
        assert model.threads[-1] == threading.get_ident()
    finally:
        batcher.close()

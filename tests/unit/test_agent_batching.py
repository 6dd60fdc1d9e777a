"""The dynamic batcher: batches form under concurrent load, a lone request does not wait, limits shrink."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgekit.agent.batching import Batcher, Job
from edgekit.agent.tasks import RequestError, TensorTask
from edgekit.runtimes.base import IOSpec

pytestmark = pytest.mark.unit


class SlowLinear:
    """Takes ``delay`` seconds per call, like a real model, and records batch sizes."""

    runtime = "numpy"
    precision = "f32"
    inputs = [IOSpec("x", "float32", ("batch", 2))]
    outputs = [IOSpec("y", "float32", ("batch", 2))]

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.sizes: list[int] = []

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = feeds["x"]
        if np.isnan(x).any():
            raise ValueError("NaN input")
        self.sizes.append(x.shape[0])
        time.sleep(self.delay)
        return {"y": x + 1}

    def close(self) -> None: ...


def make(max_batch: int = 8, wait_ms: float = 20, delay: float = 0.01) -> tuple[Batcher, SlowLinear, TensorTask,
                                                                                  list[Job]]:
    runner = SlowLinear(delay)
    task = TensorTask(runner.inputs, runner.outputs)
    done: list[Job] = []
    lock = threading.Lock()

    def on_done(job: Job) -> None:
        with lock:
            done.append(job)

    b = Batcher(runner, on_done, max_batch=max_batch, max_wait_ms=wait_ms, max_queue=64)
    b.start()
    return b, runner, task, done


def job(task: TensorTask, value: float = 0.0) -> Job:
    return Job(task.decode({"inputs": {"x": {"data": [[value, value]]}}}))


def test_concurrent_requests_form_batches() -> None:
    b, runner, task, done = make()
    try:
        def client(i: int) -> None:
            for k in range(5):
                b.submit(job(task, i * 10 + k))
                time.sleep(0.012)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.monotonic() + 5
        while len(done) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        b.stop()
    assert len(done) == 40
    assert max(runner.sizes) > 1 and len(runner.sizes) < 40
    assert max(runner.sizes) <= 8
    for j in done:  # every job got its own row back
        x = j.work.items[0]["x"][0, 0]
        assert j.work.result["outputs"]["y"]["data"] == [[x + 1, x + 1]]


def test_a_lone_request_does_not_wait_for_company() -> None:
    b, runner, task, done = make(wait_ms=500, delay=0.0)
    try:
        start = time.monotonic()
        b.submit(job(task))
        while not done and time.monotonic() - start < 2:
            time.sleep(0.001)
    finally:
        b.stop()
    assert done and time.monotonic() - start < 0.25


def test_shrink_restore_and_queue_bound() -> None:
    b, runner, task, done = make(max_batch=8, delay=0.05)
    try:
        b.shrink()
        b.shrink()
        assert b.limit == 2
        accepted = sum(b.submit(job(task)) for _ in range(100))
        assert 64 <= accepted <= 65  # max_queue requests waiting (+1 the worker may have taken)
        deadline = time.monotonic() + 10
        while len(done) < accepted and time.monotonic() < deadline:
            time.sleep(0.01)
        assert max(runner.sizes) <= 2
        b.restore()
        b.restore()
        b.restore()
        assert b.limit == 8
    finally:
        b.stop()


def test_one_bad_request_does_not_fail_its_batch_mates() -> None:
    b, runner, task, done = make(delay=0.02)
    try:
        b.submit(job(task, 1.0))  # occupies the worker so the rest queue up together
        time.sleep(0.005)
        jobs = [job(task, 2.0), job(task, float("nan")), job(task, 3.0)]
        for j in jobs:
            b.submit(j)
        deadline = time.monotonic() + 5
        while len(done) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        b.stop()
    assert jobs[0].error is None and jobs[2].error is None
    assert isinstance(jobs[1].error, RequestError) and jobs[1].error.code == "internal"


def test_no_inline_run_while_the_batcher_lingers_over_a_taken_batch() -> None:
    """The batcher releases its lock while it lingers to fill a batch it has already taken (the queue then looks
    empty): an inline run must not start then, or two inferences would hold memory at once."""
    b, runner, task, done = make(max_batch=8, wait_ms=400, delay=0.0)
    try:
        with b._cond:  # both queued before the batcher wakes: it lingers for more company
            b.submit(job(task, 1.0))
            b.submit(job(task, 2.0))
        deadline = time.monotonic() + 2
        while b.queue_depth and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.02)
        assert not done, "the batch should still be lingering"
        assert b.run_inline(job(task, 3.0)) is False
        deadline = time.monotonic() + 2
        while len(done) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        b.stop()
    assert len(done) == 2 and runner.sizes == [2]

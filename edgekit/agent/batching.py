"""Dynamic batching on its own thread, so the MQTT network thread mostly only enqueues.

A batch takes the oldest request and every queued request that can share its batch (same task, same shapes),
up to ``limit`` rows. While requests arrive concurrently it lingers up to ``max_wait_ms`` (counted from the
oldest request's arrival) to fill the batch; a lone request on an idle agent runs at once, so batching costs no
latency when there is nothing to batch with. ``limit`` shrinks under memory pressure and grows back after it.

:meth:`Batcher.run_inline` is that lone-request case without the thread hand-off: when the batcher is idle and
nothing is queued, a small request runs on the caller's thread (the MQTT network thread, whose loop then writes
the reply without another hand-off), and the batcher thread waits until it is done. That saves two thread wake-ups
per round trip; anything that arrives meanwhile queues and is batched as usual.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgekit.agent.tasks import RequestError, Work
from edgekit.runtimes.base import Runner

log = logging.getLogger(__name__)

# The most rows a request may carry to be run inline on the caller's thread (keeps that thread's stall short).
INLINE_ROWS = 8
# While a request runs inline the network thread reads nothing, so requests sent meanwhile wait in the socket and
# never count as arrivals. One that is handed over this soon after an inline run ended was such a waiting
# request: clients are concurrent, so it goes to the batcher (which lingers to batch) instead. A sequential
# client's next request needs at least a broker round trip after the reply, well above this.
INLINE_GAP_S = 0.0005


@dataclass
class Job:
    """One request in flight: its decoded work, where the answer goes, and its timings."""

    work: Work
    context: Any = None
    enqueued: float = field(default_factory=time.monotonic)
    queue_ms: float = 0.0
    inference_ms: float = 0.0
    batch_rows: int = 0
    error: RequestError | None = None


class Batcher:
    def __init__(self, runner: Runner, on_done: Callable[[Job], None], max_batch: int, max_wait_ms: float,
                 max_queue: int = 256, budget_mb: Callable[[], float | None] = lambda: None,
                 on_progress: Callable[[], None] = lambda: None,
                 on_batch: Callable[[list[Job]], None] | None = None) -> None:
        self.runner = runner
        self.on_done = on_done
        # When given, a finished batch is answered with one call (one spool transaction for all its results).
        self.on_batch = on_batch
        self.max_batch = max_batch
        self.limit = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.budget_mb = budget_mb
        self.on_progress = on_progress  # systemd's watchdog is fed only while this loop turns
        self._queue: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._running = False
        self._busy = False
        self._concurrent = False
        self._arrivals = 0
        self._inline = False
        self._inline_done = 0.0
        self._thread: threading.Thread | None = None
        self.last_progress = time.monotonic()
        self.batches = 0

    # --- producer side (MQTT intake) ------------------------------------------------------------------------------
    def submit(self, job: Job) -> bool:
        """Queue a job; False when the queue is full (the caller answers ``overloaded``)."""
        with self._cond:
            if len(self._queue) >= self.max_queue:
                return False
            self._queue.append(job)
            self._arrivals += 1
            self._cond.notify()
        return True

    def run_inline(self, job: Job, max_rows: int = INLINE_ROWS) -> bool:
        """Run ``job`` now on this thread if the batcher is idle with nothing queued (and it is small); False means
        it was not run (the caller submits it)."""
        with self._cond:
            if time.monotonic() - self._inline_done < INLINE_GAP_S:
                self._concurrent = True  # it was waiting in the socket while the last one ran: batch from here
                return False
            if (self._concurrent or not self._running or self._busy or self._inline or self._queue
                    or job.work.rows > min(max_rows, self.limit)):
                return False
            self._inline = True
            self._busy = True
            self._arrivals = 0
        try:
            self._run([job])
        finally:
            with self._cond:
                self._inline = False
                self._inline_done = time.monotonic()
                self._busy = False
                self._concurrent = self._arrivals > 0 or bool(self._queue)
                self.last_progress = time.monotonic()
                self.batches += 1
                if self._queue or not self._running:  # else the batcher thread has nothing to wake up for
                    self._cond.notify_all()
            self.on_progress()
        return True

    @property
    def queue_depth(self) -> int:
        """Requests waiting (not rows: one text request may carry many sentences)."""
        return len(self._queue)

    @property
    def busy(self) -> bool:
        return self._busy or bool(self._queue)

    def shrink(self) -> None:
        with self._cond:
            self.limit = max(1, self.limit // 2)

    def restore(self) -> None:
        with self._cond:
            self.limit = min(self.max_batch, self.limit * 2)

    def set_limits(self, max_batch: int | None = None, max_wait_ms: float | None = None) -> None:
        with self._cond:
            if max_batch is not None:
                self.max_batch = self.limit = max_batch
            if max_wait_ms is not None:
                self.max_wait = max_wait_ms / 1000.0

    # --- worker ---------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="edgekit-batcher", daemon=True)
        self._thread.start()

    def stop(self, drain_s: float = 5.0) -> None:
        """Finish what is queued (for at most ``drain_s``), then stop the worker."""
        deadline = time.monotonic() + drain_s
        with self._cond:
            while (self._queue or self._busy) and time.monotonic() < deadline:
                self._cond.wait(0.05)
            self._running = False
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout=max(0.1, deadline - time.monotonic() + 1))

    def _take(self) -> list[Job] | None:
        with self._cond:
            while not self._queue or self._inline:
                if not self._running:
                    return None
                self._cond.wait(0.5)
                self.last_progress = time.monotonic()
                self.on_progress()
            first = self._queue.popleft()
            # Busy from here, not from when the batch is complete: while this thread lingers below (the lock is
            # released in ``wait``) the queue may be empty, and ``run_inline`` must not start a second inference
            # next to this batch; two at once would take twice the memory budget.
            self._busy = True
            batch, rows = [first], first.work.rows
            linger = self._concurrent or bool(self._queue)
            deadline = first.enqueued + self.max_wait
            while rows < self.limit:
                rows = self._take_compatible(batch, rows)
                remaining = deadline - time.monotonic()
                if rows >= self.limit or not linger or remaining <= 0 or not self._running:
                    break
                self._cond.wait(remaining)
            self._arrivals = 0
            return batch

    def _take_compatible(self, batch: list[Job], rows: int) -> int:
        head = batch[0].work
        kept: collections.deque[Job] = collections.deque()
        while self._queue:
            job = self._queue.popleft()
            w = job.work
            if w.task is head.task and w.key == head.key and rows + w.rows <= self.limit:
                batch.append(job)
                rows += w.rows
            else:
                kept.append(job)
        self._queue = kept
        return rows

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            self._run(batch)
            with self._cond:
                self._busy = False
                # Requests that arrived while this batch ran mean clients are concurrent: worth lingering for.
                self._concurrent = self._arrivals > 0 or bool(self._queue)
                self.last_progress = time.monotonic()
                self.batches += 1
                self._cond.notify_all()
            self.on_progress()

    def _run(self, batch: list[Job]) -> None:
        start = time.monotonic()
        rows = sum(j.work.rows for j in batch)
        self._execute(batch)
        if len(batch) > 1 and any(j.error and j.error.code == "internal" for j in batch):
            # One bad request must not fail its batch-mates: run each alone to find it.
            for job in batch:
                job.error = None
                self._execute([job])
            rows = 1
        elapsed = (time.monotonic() - start) * 1000.0
        for job in batch:
            job.queue_ms = (start - job.enqueued) * 1000.0
            job.inference_ms = elapsed
            job.batch_rows = rows if len(batch) > 1 else job.work.rows
        if self.on_batch is not None:
            try:
                self.on_batch(batch)
                return
            except Exception:  # noqa: BLE001 - answer one by one then
                log.exception("answering a batch failed; answering its requests one by one")
        for job in batch:
            try:
                self.on_done(job)
            except Exception:  # noqa: BLE001 - a failed reply must not stop the worker
                log.exception("answering a request failed")

    def _execute(self, batch: list[Job]) -> None:
        task = batch[0].work.task
        try:
            task.run(self.runner, [j.work for j in batch], self.limit, self.budget_mb())
        except RequestError as err:
            for job in batch:
                job.error = err
        except Exception as err:  # noqa: BLE001 - the runtime rejected the inputs; answer, keep serving
            log.warning("inference failed for a batch of %d: %s", len(batch), err)
            for job in batch:
                job.error = RequestError("internal", f"inference failed: {str(err)[:300]}")

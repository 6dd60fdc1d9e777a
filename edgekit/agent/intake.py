"""Requests in, answers out: size check, JSON, schema, task decoding, admission to the batcher, and the reply.

The MQTT network thread only appends the raw message to a queue; this module's thread does the parsing and
tokenising, so a slow or hostile payload never stalls keep-alives. Every problem becomes an error reply that
names it (codes from the result schema) and the agent carries on. Replies go to the MQTT v5 response topic with
the request's correlation data, or to ``reply_to`` with ``id`` (v3.1.1); results are also published on
``results`` unless the request says ``publish_result: false``. Both copies share one ``seq`` and go through the
spool.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgekit.agent import payloads
from edgekit.agent.batching import Batcher, Job
from edgekit.agent.spool import Outgoing, Spool
from edgekit.agent.tasks import RequestError, TensorTask, TextEmbeddingTask
from edgekit.agent.telemetry import Stats

log = logging.getLogger(__name__)

REJECTS = ("overloaded", "too-large")
MAX_PENDING = 1024  # raw messages waiting for the intake thread
INLINE_BYTES = 16 << 10


@dataclass
class ReplyTo:
    request_id: str
    topic: str | None
    correlation: bytes | None
    publish_result: bool
    received: float


class Intake:
    def __init__(self, device_id: str, target: str, batcher: Batcher, spool: Spool, wake: Callable[[], None],
                 stats: Stats, tensor: TensorTask, text: TextEmbeddingTask | None, max_request_bytes: int,
                 overloaded: Callable[[], bool], command: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.device_id = device_id
        self.target = target
        self.batcher = batcher
        self.spool = spool
        self.wake = wake
        self.stats = stats
        self.tensor = tensor
        self.text = text
        self.max_request_bytes = max_request_bytes
        self.overloaded = overloaded
        self.command = command
        self.topics = {payloads.topic(device_id, "infer"): "infer", payloads.topic(device_id, "cmd"): "cmd"}
        self.results_topic = payloads.topic(device_id, "results")
        self._pending: collections.deque[tuple[Any, float]] = collections.deque()
        self._cond = threading.Condition()
        self._running = False
        self._handling = False
        self._thread: threading.Thread | None = None

    # --- network thread -------------------------------------------------------------------------------------------
    def on_message(self, msg: Any) -> None:
        """Small messages are handled right here when nothing is ahead of them (one thread hop less on the
        latency path; parsing and tokenising a few KB takes well under a millisecond); large ones, and anything
        arriving while others wait, go to the intake thread in arrival order. A small request handled here on an
        idle agent is also run here (:meth:`Batcher.run_inline`), so its reply is written by this thread's loop
        without a hand-off to the batcher and back; once clients are concurrent, requests go to the batcher."""
        received = time.monotonic()
        with self._cond:
            inline = len(msg.payload) <= INLINE_BYTES and not self._pending and not self._handling
            if inline:
                self._handling = True
            elif len(self._pending) < MAX_PENDING:
                self._pending.append((msg, received))
                self._cond.notify()
                return
        if inline:
            try:
                self.handle(msg, received, inline=True)
            except Exception:  # noqa: BLE001 - one message must never stop the network thread
                log.exception("handling a message on %s failed", getattr(msg, "topic", "?"))
            finally:
                with self._cond:
                    self._handling = False
                    if self._pending:  # wake the intake thread only when it has work (no wake-up per request)
                        self._cond.notify()
            return
        self._refuse_raw(msg, received, RequestError("overloaded", "the agent's intake queue is full"))

    # --- intake thread --------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="edgekit-intake", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify()
        if self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while (not self._pending or self._handling) and self._running:
                    self._cond.wait(0.5)
                if not self._running:
                    return
                msg, received = self._pending.popleft()
                self._handling = True
            try:
                self.handle(msg, received)
            except Exception:  # noqa: BLE001 - one message must never stop the intake
                log.exception("handling a message on %s failed", getattr(msg, "topic", "?"))
            finally:
                with self._cond:
                    self._handling = False
                    self._cond.notify_all()

    def _address(self, msg: Any, body: dict[str, Any] | None, received: float) -> ReplyTo:
        props = getattr(msg, "properties", None)
        response = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        body = body or {}
        json_reply_to = body.get("reply_to")
        reply_to = response or (json_reply_to if isinstance(json_reply_to, str) else None)
        request_id = body.get("id") if isinstance(body.get("id"), str) else None
        if request_id is None and correlation is not None:
            request_id = bytes(correlation).decode("utf-8", "backslashreplace")
        publish = body.get("publish_result", True) is not False
        return ReplyTo(request_id or "", reply_to, bytes(correlation) if correlation is not None else None,
                       publish, received)

    def _refuse_raw(self, msg: Any, received: float, err: RequestError) -> None:
        self.reply(self._address(msg, None, received), error=err)

    def handle(self, msg: Any, received: float, inline: bool = False) -> None:
        kind = self.topics.get(msg.topic)
        raw = bytes(msg.payload)
        if len(raw) > self.max_request_bytes:
            self._refuse_raw(msg, received, RequestError(
                "too-large", f"payload of {len(raw)} bytes; this agent accepts at most {self.max_request_bytes}"))
            return
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            self._refuse_raw(msg, received, RequestError("bad-request", f"payload is not JSON: {err}"))
            return
        address = self._address(msg, body if isinstance(body, dict) else None, received)
        schema = "infer" if kind == "infer" else "cmd"
        problems = payloads.errors(schema, body)
        if problems:
            self.reply(address, error=RequestError(
                "bad-request", f"request does not match mqtt-{schema}.schema.json: {problems[0]}"))
            return
        if kind == "cmd":
            self._command(address, body)
            return
        try:
            if self.overloaded():
                raise RequestError("overloaded", "the agent is shedding load (memory pressure); retry")
            if "text" in body:
                if self.text is None:
                    names = [s.name for s in self.tensor.inputs]
                    raise RequestError("bad-request", f"this bundle's model takes tensors {names}, not text "
                                       "(the bundle has no tokenizer); send 'inputs'")
                work = self.text.decode(body)
            else:
                work = self.tensor.decode(body)
        except RequestError as err:
            self.reply(address, error=err)
            return
        job = Job(work=work, context=address, enqueued=received)
        if inline and self.batcher.run_inline(job):
            return  # an idle agent answered it on this thread: no hand-off to the batcher and back
        if not self.batcher.submit(job):
            self.reply(address, error=RequestError("overloaded", f"the queue is full ({self.batcher.max_queue} "
                                                   "rows); retry later"))

    def _command(self, address: ReplyTo, body: dict[str, Any]) -> None:
        try:
            data = self.command(body)
        except RequestError as err:
            self.reply(address, error=err, command=True)
            return
        self.reply(address, data=data, command=True)

    # --- batcher thread -------------------------------------------------------------------------------------------
    def answer(self, job: Job) -> None:
        self.answer_batch([job])

    def answer_batch(self, jobs: list[Job]) -> None:
        """The answers of one batch, spooled in one transaction (one commit, not one per request)."""
        makes = []
        for job in jobs:
            self.stats.batch(job.batch_rows)
            address: ReplyTo = job.context
            if job.error is not None:
                make = self._reply_make(address, error=job.error)
            else:
                make = self._reply_make(address, result=job.work.result, job=job)
            if make is not None:
                makes.append(make)
        if makes:
            self.spool.add_many(makes)
            self.wake()

    def reply(self, address: ReplyTo, result: dict[str, Any] | None = None, job: Job | None = None,
              error: RequestError | None = None, data: dict[str, Any] | None = None, command: bool = False) -> None:
        make = self._reply_make(address, result, job, error, data, command)
        if make is not None:
            self.spool.add(make)
            self.wake()

    def _reply_make(self, address: ReplyTo, result: dict[str, Any] | None = None, job: Job | None = None,
                    error: RequestError | None = None, data: dict[str, Any] | None = None,
                    command: bool = False) -> Callable[[int], list[Outgoing]] | None:
        """Count the answer and return what builds its message(s) for a ``seq``; None when nobody will see it."""
        total_ms = (time.monotonic() - address.received) * 1000.0
        if error is not None:
            if error.code in REJECTS:
                self.stats.rejected()
            else:
                self.stats.answered(total_ms, ok=False)
        elif not command:
            self.stats.answered(total_ms, ok=True)
        body: dict[str, Any] = {"id": address.request_id, "status": "error" if error else "ok",
                                "target": self.target}
        if error is not None:
            body["error"] = {"code": error.code, "message": error.message}
        if data is not None:
            body["data"] = data
        if job is not None and result is not None:
            body["batch_size"] = max(job.batch_rows, 1)
            body["latency_ms"] = {"queue": round(job.queue_ms, 3), "inference": round(job.inference_ms, 3),
                                  "total": round(total_ms, 3)}
            body.update(result)

        # Results go to `results` unless the request opted out; an error with no reply address goes there too,
        # so it is seen. Command replies go only to the requester.
        to_results = (address.publish_result or (address.topic is None and error is not None)) and not command
        if not to_results and address.topic is None:
            return None  # nobody asked to see it

        def make(seq: int) -> list[Outgoing]:
            raw = payloads.encode("result", {**payloads.header(self.device_id, seq), **body})
            out = []
            if to_results:
                out.append(Outgoing("result", self.results_topic, raw))
            if address.topic is not None:
                out.append(Outgoing("reply", address.topic, raw, address.correlation))
            return out

        return make

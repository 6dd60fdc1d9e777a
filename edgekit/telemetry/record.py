"""``telemetry record``: status, telemetry and results from the broker into a SQLite recording.

The MQTT network thread only queues messages; the caller's thread parses, de-duplicates and commits them in
batches (a batch is whatever arrived while the previous one was being written, so the rate adapts to the load).
The session is persistent (fixed client id, QoS 1, MQTT v5 session expiry of an hour), so a recorder that restarts
quickly gets the QoS 1 messages the broker kept for it; broker restarts are ridden out by reconnecting.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from edgekit.client.connection import BrokerOptions, MqttSession, stable_client_id
from edgekit.client.topics import SCHEMAS, filters, parse
from edgekit.telemetry.store import Row, TelemetryStore

log = logging.getLogger(__name__)

RECORDED_KINDS = ("status", "telemetry", "results")
MAX_BATCH = 5000
# Messages received but not yet written. When the writer falls this far behind, the network thread waits, so TCP
# pushes back on the broker instead of the recorder's memory growing without bound.
MAX_INBOX = 50_000


@dataclass
class RecordStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    historical: int = 0
    rejected: int = 0
    reconnects: int = 0
    seconds: float = 0.0
    by_kind: Counter[str] = field(default_factory=Counter)
    devices: set[str] = field(default_factory=set)

    def lines(self, path: str) -> list[str]:
        rate = self.received / self.seconds if self.seconds else 0.0
        kinds = " · ".join(f"{k} {self.by_kind[k]:,}" for k in RECORDED_KINDS)
        return [
            f"recorded {self.stored:,} new message(s) from {len(self.devices)} device(s) in {self.seconds:.1f} s "
            f"({rate:,.1f} received/s) to {path}",
            f"  {kinds}",
            f"  {self.duplicates:,} duplicate(s) dropped (retained or replayed), {self.historical:,} historical "
            f"kept, {self.rejected:,} rejected, {self.reconnects} reconnect(s)",
        ]


@functools.cache
def _validator(schema: str) -> Any:
    import jsonschema

    from edgekit.manifest import load_schema

    return jsonschema.Draft202012Validator(load_schema(schema))


def to_row(topic: str, payload: bytes, received: float, validate: bool = False) -> Row | str:
    """The store row for one message, or the reason it is rejected."""
    where = parse(topic)
    if where is None or where[1] not in RECORDED_KINDS:
        return f"topic {topic!r} is not edgekit/v1/<device>/{{{','.join(RECORDED_KINDS)}}}"
    device, kind = where
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        return f"not JSON: {err}"
    if not isinstance(data, dict):
        return "not a JSON object"
    seq = data.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        return f"seq {seq!r} is not a non-negative integer"
    if data.get("device_id") != device:
        return f"device_id {data.get('device_id')!r} does not match the topic's {device!r}"
    if validate and not _validator(SCHEMAS[kind]).is_valid(data):
        from edgekit.manifest import schema_errors

        return f"does not match {SCHEMAS[kind]}: {schema_errors(SCHEMAS[kind], data)[0]}"
    ts = data.get("ts")
    return Row(device, kind, seq, float(ts) if isinstance(ts, int | float) else None, received,
               data.get("historical") is True, topic, payload.decode("utf-8"))


class Recorder:
    """Subscribe and write until ``stop`` is set or ``duration`` runs out; returns the counts."""

    def __init__(self, store: TelemetryStore, options: BrokerOptions, *, device: str = "all",
                 share: str | None = None, validate: bool = False, client_id: str | None = None) -> None:
        self.store = store
        self.validate = validate
        self.subscriptions = filters(RECORDED_KINDS, device, share)
        self.inbox: queue.SimpleQueue[tuple[str, bytes, float]] = queue.SimpleQueue()  # C, cheap per message
        self.session = MqttSession(options, client_id=client_id or stable_client_id("rec", str(store.path.resolve())
                                                                                    + (share or "")),
                                   subscriptions=self.subscriptions, qos=1, persistent=True,
                                   on_message=self._on_message, require_v5=share is not None)
        self.stats = RecordStats()
        self._closing = False

    def _on_message(self, message: Any) -> None:  # network thread: queue only
        while self.inbox.qsize() >= MAX_INBOX and not self._closing:
            time.sleep(0.05)  # the writer is behind: stop reading, so TCP pushes back on the broker
        self.inbox.put((message.topic, message.payload, time.time()))

    def run(self, duration: float | None = None, stop: threading.Event | None = None,
            connect_timeout: float = 10.0) -> RecordStats:
        stop = stop or threading.Event()
        started = time.monotonic()
        self.session.start(connect_timeout)
        session_row = self.store.begin_session(self.session.options.url, self.session.client_id, self.subscriptions)
        log.info("recording %s from %s (MQTT %s) to %s", ", ".join(self.subscriptions), self.session.options.url,
                 self.session.protocol, self.store.path)
        try:
            while not stop.is_set():
                if duration is not None and time.monotonic() - started >= duration:
                    break
                self._drain(wait=0.2)
        finally:
            self._closing = True
            self.session.close()
            while self._drain(wait=0.0):  # whatever arrived before the disconnect
                pass
            st = self.stats
            st.seconds = time.monotonic() - started
            st.reconnects = max(0, self.session.connections - 1)
            self.store.end_session(session_row, received=st.received, stored=st.stored, duplicates=st.duplicates,
                                   rejected=st.rejected, reconnects=st.reconnects)
        return self.stats

    def _drain(self, wait: float) -> int:
        """Write one batch; returns how many messages it held."""
        try:
            batch = [self.inbox.get(timeout=wait) if wait else self.inbox.get_nowait()]
        except queue.Empty:
            return 0
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        self._write(batch)
        return len(batch)

    def _write(self, batch: list[tuple[str, bytes, float]]) -> None:
        rows: list[Row] = []
        for topic, payload, received in batch:
            row = to_row(topic, payload, received, self.validate)
            if isinstance(row, str):
                self.stats.rejected += 1
                self.store.reject(received, topic, row, payload)
                if self.stats.rejected <= 5:
                    log.warning("rejected a message on %s: %s%s", topic, row,
                                " (further rejects are only counted)" if self.stats.rejected == 5 else "")
                continue
            rows.append(row)
        new = self.store.add(rows) if rows else []
        self.store.commit()
        st = self.stats
        st.received += len(batch)
        st.stored += len(new)
        st.duplicates += len(rows) - len(new)
        st.historical += sum(r.historical for r in new)
        st.by_kind.update(r.kind for r in new)
        st.devices.update(r.device_id for r in new)

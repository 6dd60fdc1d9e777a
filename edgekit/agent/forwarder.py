"""Moves spooled messages to the broker in order and deletes each one when the broker acknowledges it.

Rows are handed to paho at most ``INFLIGHT`` at a time, only while connected. paho keeps every handed QoS 1
message until its PUBACK and resends it after a reconnect, so a handed row is never handed twice by this process;
rows still in the spool when the process starts are handed again (consumers de-duplicate by ``seq``). A row
created before the current connection came up is sent with ``historical: true``. After a reconnect the rows paho
is resending are acknowledged before newer rows go out, which keeps ``seq`` order on the wire.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from edgekit.agent.mqtt_client import INFLIGHT, MqttClient
from edgekit.agent.payloads import mark_historical
from edgekit.agent.spool import Spool

log = logging.getLogger(__name__)

RESEND_GRACE_S = 5.0
# PUBACKs are gathered for up to this long (or until ACK_BATCH of them) and deleted in one transaction: fewer
# commits, and the delete runs after a burst of answers rather than between a reply and the next request.
ACK_LINGER_S = 0.05
ACK_BATCH = INFLIGHT // 2


class Forwarder:
    def __init__(self, spool: Spool, client: MqttClient, birth: Callable[[], tuple[str, bytes]]) -> None:
        self.spool = spool
        self.client = client
        self.birth = birth
        self._cond = threading.Condition()
        self._acks: collections.deque[int] = collections.deque()
        self._mid_to_row: dict[int, int] = {}
        self._resending: set[int] = set()
        self._send_lock = threading.Lock()  # one sender at a time: the forwarder thread or a fast-path caller
        self._cursor = 0
        self._connected_at: float | None = None
        self._need_birth = False
        self._running = False
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.replayed = 0

    # --- events (any thread) --------------------------------------------------------------------------------------
    def on_connected(self) -> None:
        with self._cond:
            self._connected_at = time.time()
            self._need_birth = True
            self._cond.notify()

    def on_disconnected(self) -> None:
        with self._cond:
            self._connected_at = None
            self._cond.notify()

    def on_acked(self, mid: int) -> None:
        with self._cond:
            self._acks.append(mid)
            # Wake the forwarder for a burst of acks, or when rows wait for room in the in-flight window; a lone
            # ack is picked up on its next turn (at most 0.5 s later): deleting it sooner gains nothing, and a
            # wake-up per answer costs the latency path a thread switch.
            if len(self._acks) >= ACK_BATCH or self.spool.depth > len(self._mid_to_row):
                self._cond.notify()

    def wake(self) -> None:
        """New rows are in the spool. When nothing is queued ahead, they go out from the calling thread at once
        (a thread hop less per answer); otherwise the forwarder thread sends them in order."""
        with self._cond:
            connected_at = self._connected_at
            idle = not self._need_birth and not self._resending
            if not (idle and connected_at is not None and self._send_lock.acquire(blocking=False)):
                self._cond.notify()
                return
        try:
            if self.client.connected.is_set():
                self._send(connected_at)
        finally:
            self._send_lock.release()

    # --- worker ---------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="edgekit-forwarder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify()
        if self._thread:
            self._thread.join(timeout=5)

    def flush(self, timeout: float) -> bool:
        """Wait until the spool is empty (everything acknowledged) or ``timeout``; True when it emptied."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.spool.depth == 0:
                return True
            self.wake()
            time.sleep(0.02)
        return self.spool.depth == 0

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._running:
                    return
                if not self._acks and not self._ready_to_send():
                    self._cond.wait(0.5)
                deadline = time.monotonic() + ACK_LINGER_S
                while (self._acks and len(self._acks) < ACK_BATCH and self._running
                       and not self._ready_to_send()):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                acks = list(self._acks)
                self._acks.clear()
                connected_at = self._connected_at
                need_birth, self._need_birth = self._need_birth, False
            try:
                self._ack(acks)
                if connected_at is None or not self.client.connected.is_set():
                    time.sleep(0.02)
                    continue
                if need_birth:
                    with self._send_lock:  # handed on an earlier connection: paho resends them
                        self._resending = set(self._mid_to_row)
                    status_topic, payload = self.birth()
                    self.client.publish(status_topic, payload, qos=1, retain=True)
                with self._send_lock:
                    self._resending &= self._mid_to_row.keys()
                    if self._resending and time.time() - connected_at < RESEND_GRACE_S:
                        waiting = True  # paho is resending what was in flight; newer rows wait for it
                    else:
                        waiting = False
                        self._resending = set()
                        self._send(connected_at)
                if waiting:
                    time.sleep(0.02)
            except Exception:  # noqa: BLE001 - keep forwarding whatever one message did
                log.exception("forwarding spooled messages failed; retrying")
                time.sleep(0.5)

    def _ready_to_send(self) -> bool:
        return (self._need_birth or
                (self._connected_at is not None and len(self._mid_to_row) < INFLIGHT and
                 self.spool.depth > len(self._mid_to_row)))

    def _ack(self, mids: list[int]) -> None:
        with self._send_lock:
            rows = [self._mid_to_row.pop(m) for m in mids if m in self._mid_to_row]
        self.spool.delete(rows)

    def _send(self, connected_at: float) -> None:
        room = INFLIGHT - len(self._mid_to_row)
        if room <= 0:
            return
        for row in self.spool.after(self._cursor, room):
            historical = row.created < connected_at
            payload = mark_historical(row.payload) if historical else row.payload
            info = self.client.publish(row.topic, payload, qos=1, correlation=row.correlation)
            if info.rc not in (0, 4):  # MQTT_ERR_SUCCESS, MQTT_ERR_NO_CONN (paho queues it and resends)
                log.warning("paho refused a spooled message (rc %s); retrying later", info.rc)
                return
            self._mid_to_row[info.mid] = row.id
            self._cursor = row.id
            self.sent += 1
            self.replayed += historical

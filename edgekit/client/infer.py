"""Request/response with an agent over ``edgekit/v1/<device_id>/infer``.

MQTT v5: the request carries a response topic and correlation data. MQTT 3.1.1 has neither, so the JSON carries
``reply_to`` and ``id`` instead (see ``mqtt-infer.schema.json``). Either way the reply comes back on this client's
own topic ``edgekit/v1/<device_id>/replies/<client_id>`` and is matched to its request by id.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from edgekit.client.connection import BrokerOptions, MqttSession, short_client_id
from edgekit.client.topics import topic
from edgekit.errors import EdgeKitError, UsageError

log = logging.getLogger(__name__)


class InferTimeout(EdgeKitError):
    """No reply arrived within the timeout."""

    exit_code = 4


class InferErrorReply(EdgeKitError):
    """The agent answered with ``status: error``."""

    exit_code = 1

    def __init__(self, message: str, reply: dict[str, Any]) -> None:
        super().__init__(message)
        self.reply = reply


class _Slot:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.reply: dict[str, Any] | None = None


class InferClient:
    """A connection that sends infer requests to one device and waits for their replies.

    Also listens to the device's retained status, so a timeout can say whether the device is online, offline,
    lost, or unknown to the broker.
    """

    def __init__(self, options: BrokerOptions, device_id: str, *, client_id: str | None = None) -> None:
        if not device_id or any(c in device_id for c in "+#/"):
            raise UsageError(f"device id {device_id!r} must be non-empty and contain none of + # /")
        self.device_id = device_id
        self.client_id = client_id or short_client_id("infer")
        self.reply_topic = topic(device_id, f"replies/{self.client_id}")
        self.status: dict[str, Any] | None = None
        self.last_round_trip_ms: float | None = None
        self._pending: dict[str, _Slot] = {}
        self._lock = threading.Lock()
        self.session = MqttSession(options, client_id=self.client_id, on_message=self._on_message,
                                   subscriptions=[self.reply_topic, topic(device_id, "status")])

    def start(self, timeout: float = 10.0) -> InferClient:
        self.session.start(timeout)
        return self

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> InferClient:
        return self if self.session.connections else self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------------------------------------
    def infer_text(self, texts: Sequence[str], timeout: float = 10.0) -> dict[str, Any]:
        return self.request({"text": list(texts)}, timeout)

    def infer_inputs(self, inputs: dict[str, dict[str, Any]], timeout: float = 10.0) -> dict[str, Any]:
        return self.request({"inputs": inputs}, timeout)

    def request(self, body: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Send one request (``text`` or ``inputs``, plus optional fields) and return the ``ok`` reply.

        Raises ``InferErrorReply`` for an error reply and ``InferTimeout`` when nothing comes back in time.
        """
        from edgekit.manifest import schema_errors

        request_id = uuid.uuid4().hex
        payload: dict[str, Any] = {"v": 1, "id": request_id, **body}
        props = None
        if self.session.protocol == "5":
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = self.reply_topic
            props.CorrelationData = request_id.encode()
            props.MessageExpiryInterval = max(1, math.ceil(timeout))  # a stale request is not worth serving
        else:
            payload["reply_to"] = self.reply_topic
        errors = schema_errors("mqtt-infer", payload)
        if errors:
            raise UsageError(f"the request does not match the mqtt-infer schema: {errors[0]}")
        slot = _Slot()
        with self._lock:
            self._pending[request_id] = slot
        try:
            started = time.monotonic()
            self.session.publish(topic(self.device_id, "infer"), payload, qos=1, properties=props)
            if not slot.event.wait(timeout):
                raise InferTimeout(self._timeout_message(timeout))
        finally:
            with self._lock:
                self._pending.pop(request_id, None)
        reply = slot.reply or {}
        self.last_round_trip_ms = (time.monotonic() - started) * 1000
        problems = schema_errors("mqtt-result", reply)
        if problems:
            log.warning("the reply from %s does not match the mqtt-result schema: %s", self.device_id, problems[0])
        if reply.get("status") == "error":
            err = reply.get("error") or {}
            raise InferErrorReply(f"device {self.device_id!r} answered with an error: "
                                  f"{err.get('code', 'unknown')}: {err.get('message', '(no message)')}", reply)
        return reply

    def _timeout_message(self, timeout: float) -> str:
        head = (f"no reply from device {self.device_id!r} within {timeout:g} s "
                f"(broker {self.session.options.url}, MQTT {self.session.protocol}). ")
        status = self.status
        if status is None:
            return head + (f"The broker holds no status for {self.device_id!r}: no agent with that --device-id has "
                           "connected to it. Start one with 'edgekit agent --device-id "
                           f"{self.device_id} --broker {self.session.options.url} --bundle ...'.")
        state = status.get("state")
        since = time.strftime("%H:%M:%S", time.localtime(status["ts"])) if isinstance(status.get("ts"), int | float) \
            else "an unknown time"
        if state == "lost":
            return head + f"Its last status is 'lost' since {since}: its connection dropped without a clean shutdown."
        if state == "offline":
            return head + f"Its last status is 'offline' since {since}: the agent was stopped."
        return head + (f"It is online (since {since}), so it may be busy or the request too large; "
                       "try a longer --timeout, or 'edgekit telemetry watch' to see its queue and latency.")

    # -- network thread -----------------------------------------------------------------------------------------
    def _on_message(self, message: Any) -> None:
        try:
            data = json.loads(message.payload)
        except (ValueError, UnicodeDecodeError):
            log.warning("ignoring a message on %s that is not JSON", message.topic)
            return
        if not isinstance(data, dict):
            return
        if message.topic.endswith("/status"):
            self.status = data
            return
        correlation = getattr(message.properties, "CorrelationData", None) if message.properties else None
        request_id = correlation.decode("utf-8", "replace") if correlation else str(data.get("id", ""))
        with self._lock:
            slot = self._pending.get(request_id)
        if slot is None:
            log.debug("a reply for request %s that nobody waits for (it timed out?)", request_id)
            return
        slot.reply = data
        slot.event.set()

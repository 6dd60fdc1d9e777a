"""The agent's MQTT connection (paho-mqtt 2.x): v5 by default or v3.1.1, plain or TLS, with a Last Will.

* ``mqtt://`` / ``mqtts://`` URLs; TLS verifies the broker against ``ca_file`` (else the system CAs) and presents
  ``cert_file`` + ``key_file`` when given; username and password (read from ``password_file``).
* Client id ``edgekit-<device_id>``. Subscribes to ``infer`` and ``cmd`` (QoS 1) on every connect.
* The Last Will is a retained ``status`` with state ``lost``; it is re-armed with a new ``bd_seq`` and ``seq``
  after every disconnect. Connection is asynchronous and paho reconnects with exponential backoff, so the agent
  serves local work while the broker is away.
* Callbacks run on paho's network thread and only hand work over (queues, events): nothing here blocks it.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

from edgekit.agent.config import AgentConfig, read_password
from edgekit.agent.payloads import topic

log = logging.getLogger(__name__)

# QoS 1 messages in flight at once (paho's window and the forwarder's).
INFLIGHT = 32


def _paho() -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError as err:
        from edgekit.errors import missing_extra

        raise missing_extra("paho-mqtt", "agent") from err
    return mqtt


class MqttClient:
    def __init__(self, config: AgentConfig, will: Callable[[], bytes], on_message: Callable[[Any], None],
                 on_connected: Callable[[], None], on_disconnected: Callable[[], None],
                 on_acked: Callable[[int], None]) -> None:
        mqtt = _paho()
        from paho.mqtt.enums import CallbackAPIVersion

        assert config.device_id is not None
        self.device_id = config.device_id
        self.v5 = config.mqtt_version == "5"
        self.url = config.broker_url
        self.keepalive = config.keepalive_s
        self._will = will
        self._on_message_cb = on_message
        self._on_connected_cb = on_connected
        self._on_disconnected_cb = on_disconnected
        self._on_acked_cb = on_acked
        self.connected = threading.Event()
        self.stopping = False
        self.refusals = 0
        self.last_refusal: str | None = None
        kwargs: dict[str, Any] = {"protocol": mqtt.MQTTv5} if self.v5 else {"protocol": mqtt.MQTTv311,
                                                                            "clean_session": True}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edgekit-{self.device_id}", **kwargs)
        if self.url.tls:
            ctx = ssl.create_default_context(cafile=config.ca_file)
            if config.cert_file and config.key_file:
                ctx.load_cert_chain(config.cert_file, config.key_file)
            self.client.tls_set_context(ctx)
        if config.username:
            self.client.username_pw_set(config.username, read_password(config))
        self.client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(config.reconnect_max_s)))
        self.client.max_inflight_messages_set(INFLIGHT)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_socket_open = self._on_socket_open
        self._arm_will()

    def _arm_will(self) -> None:
        self.client.will_set(topic(self.device_id, "status"), self._will(), qos=1, retain=True)

    # --- paho callbacks (network thread) --------------------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.refusals += 1
            self.last_refusal = str(reason)
            if self.refusals == 1 or self.refusals % 20 == 0:
                log.error("broker %s:%d refused the connection: %s (%d refusal(s) so far; retrying with backoff)",
                          self.url.host, self.url.port, reason, self.refusals)
            return
        log.info("connected to %s:%d (MQTT %s)", self.url.host, self.url.port, "5" if self.v5 else "3.1.1")
        client.subscribe([(topic(self.device_id, "infer"), 1), (topic(self.device_id, "cmd"), 1)])
        self.connected.set()
        self._on_connected_cb()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was and not self.stopping:
            log.warning("disconnected from the broker (%s); spooling until it is back", reason)
            self._arm_will()
            self._on_disconnected_cb()

    @staticmethod
    def _on_socket_open(client: Any, userdata: Any, sock: Any) -> None:
        # paho leaves Nagle on: a reply written right after a PUBACK waits for the broker's delayed ACK (~40 ms).
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self._on_message_cb(msg)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        self._on_acked_cb(mid)

    # --- used by the agent ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self.client.connect_async(self.url.host, self.url.port, keepalive=self.keepalive)
        self.client.loop_start()

    def publish(self, topic_name: str, payload: bytes, qos: int = 1, retain: bool = False,
                correlation: bytes | None = None) -> Any:
        """paho's MQTTMessageInfo (``.mid``, ``.rc``); QoS>0 messages are kept and resent by paho on reconnect."""
        properties = None
        if self.v5 and correlation is not None:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            properties = Properties(PacketTypes.PUBLISH)
            properties.CorrelationData = correlation
        return self.client.publish(topic_name, payload, qos=qos, retain=retain, properties=properties)

    def stop(self, last_words: tuple[str, bytes] | None = None, timeout: float = 3.0) -> None:
        """Publish ``last_words`` (retained, QoS 1) and wait for its PUBACK, then disconnect cleanly (no Will)."""
        self.stopping = True
        if last_words is not None and self.connected.is_set():
            info = self.publish(last_words[0], last_words[1], qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as err:
                log.warning("could not publish the offline status: %s", err)
        self.client.disconnect()
        self.client.loop_stop()

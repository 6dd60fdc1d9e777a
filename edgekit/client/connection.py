"""Broker URLs, TLS and credentials, and one MQTT session that reconnects and re-subscribes by itself.

MQTT v5 is tried first; with ``mqtt_version="auto"`` a broker that refuses v5 (amqtt, old brokers) is spoken to in
3.1.1 instead. paho-mqtt is imported only when a session starts, so the CLI parser stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edgekit.errors import EdgeKitError, UsageError, missing_extra

log = logging.getLogger(__name__)

MQTT_VERSIONS = ("auto", "5", "3.1.1")
_SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True, "tls": True}
# MQTT v5 session expiry for persistent consumers (record): the broker keeps queueing QoS 1 messages this long.
PERSISTENT_SESSION_EXPIRY_S = 3600


class BrokerUnavailable(EdgeKitError):
    """The broker cannot be reached, refuses the connection, or refuses a subscription."""

    exit_code = 3


@dataclass(frozen=True)
class BrokerOptions:
    """Where the broker is and how to talk to it. ``password`` is read from a file, never from the URL."""

    host: str
    port: int
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password: str | None = None
    mqtt_version: str = "auto"

    @classmethod
    def parse(cls, url: str, **kwargs: Any) -> BrokerOptions:
        """``mqtt://host[:1883]`` or ``mqtts://[user@]host[:8883]``; keyword arguments set the other fields."""
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.scheme not in _SCHEMES:
            raise UsageError(f"broker URL {url!r} has scheme {parts.scheme!r}; use mqtt://host:port or "
                             "mqtts://host:port")
        if parts.password:
            raise UsageError(f"broker URL {url!r} contains a password; put the password in a file readable only "
                             "by you and pass --password-file FILE")
        if not parts.hostname:
            raise UsageError(f"broker URL {url!r} has no host; e.g. mqtt://127.0.0.1:1883")
        tls = _SCHEMES[parts.scheme]
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as err:
            raise UsageError(f"broker URL {url!r} has a bad port: {err}") from err
        opts = cls(host=parts.hostname, port=port, tls=tls, username=parts.username or None)
        opts = replace(opts, **{k: v for k, v in kwargs.items() if v is not None})
        if opts.mqtt_version not in MQTT_VERSIONS:
            raise UsageError(f"MQTT version {opts.mqtt_version!r} is not one of {', '.join(MQTT_VERSIONS)}")
        if (opts.ca_file or opts.cert_file or opts.key_file) and not opts.tls:
            raise UsageError(f"TLS files were given but the broker URL {url!r} is not mqtts://; use mqtts://")
        if bool(opts.cert_file) != bool(opts.key_file):
            raise UsageError("a client certificate needs both --cert-file and --key-file")
        for f in (opts.ca_file, opts.cert_file, opts.key_file):
            if f is not None and not Path(f).is_file():
                raise UsageError(f"TLS file {f} does not exist")
        return opts

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def add_broker_args(parser: argparse.ArgumentParser, required: bool = True, help: str | None = None) -> None:
    """The connection options every MQTT command shares."""
    parser.add_argument("--broker", required=required, metavar="URL",
                        help=help or "mqtt://host:port, or mqtts://host:port for TLS")
    g = parser.add_argument_group("broker connection")
    g.add_argument("--mqtt-version", choices=MQTT_VERSIONS, default="auto",
                   help="protocol version (default auto: v5, or 3.1.1 when the broker refuses v5)")
    g.add_argument("--ca-file", type=Path, help="CA certificate (PEM) that signed the broker's certificate")
    g.add_argument("--cert-file", type=Path, help="client certificate (PEM) for mutual TLS")
    g.add_argument("--key-file", type=Path, help="client private key (PEM) for mutual TLS")
    g.add_argument("--username", help="MQTT user name")
    g.add_argument("--password-file", type=Path, help="file whose first line is the MQTT password")


def broker_options_from_args(args: argparse.Namespace) -> BrokerOptions:
    password = None
    if getattr(args, "password_file", None):
        try:
            password = Path(args.password_file).read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError) as err:
            raise UsageError(f"cannot read a password from {args.password_file}: {err}") from err
    return BrokerOptions.parse(args.broker, ca_file=args.ca_file, cert_file=args.cert_file, key_file=args.key_file,
                               username=args.username, password=password, mqtt_version=args.mqtt_version)


def short_client_id(role: str) -> str:
    """A unique client id; 23 characters or fewer so strict 3.1.1 brokers accept it."""
    import uuid

    return f"ek-{role[:6]}-{uuid.uuid4().hex[:12]}"


def stable_client_id(role: str, key: str) -> str:
    """The same id for the same host and key, so a restarted consumer resumes its persistent session."""
    import hashlib
    import socket

    digest = hashlib.sha256(f"{socket.gethostname()}|{key}".encode()).hexdigest()[:12]
    return f"ek-{role[:6]}-{digest}"


class _Pending:
    """A SUBSCRIBE waiting for its SUBACK."""

    def __init__(self, topics: list[str]) -> None:
        self.topics = topics
        self.event = threading.Event()
        self.error: str | None = None


MessageHandler = Callable[[Any], None]  # receives a paho MQTTMessage


class MqttSession:
    """One broker connection: subscribes after every (re)connect and reconnects by itself until ``close()``.

    ``start()`` raises ``BrokerUnavailable`` when the first connection cannot be made within its timeout;
    after that, outages are logged and ridden out (paho reconnects with a short backoff).
    """

    def __init__(self, options: BrokerOptions, *, client_id: str | None = None, subscriptions: Sequence[str] = (),
                 qos: int = 1, on_message: MessageHandler | None = None, persistent: bool = False,
                 require_v5: bool = False) -> None:
        self.options = options
        self.client_id = client_id or short_client_id("client")
        self.qos = qos
        self.on_message = on_message
        self.persistent = persistent
        self.require_v5 = require_v5
        self._topics: list[str] = list(subscriptions)
        self._client: Any = None
        self.protocol: str | None = None
        self.connected = threading.Event()
        self.connections = 0
        self._lock = threading.Lock()
        self._suback: dict[int, _Pending] = {}
        self._waiting: list[_Pending] = []
        self._connack: tuple[threading.Event, list[Any]] | None = None
        self._closing = False

    # -- life cycle ---------------------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> MqttSession:
        versions = ["5", "3.1.1"] if self.options.mqtt_version == "auto" else [self.options.mqtt_version]
        if self.require_v5:
            if "5" not in versions:
                raise UsageError("this needs MQTT v5 (shared subscriptions); drop --mqtt-version 3.1.1")
            versions = ["5"]
        deadline = time.monotonic() + timeout
        for i, version in enumerate(versions):
            last = i + 1 == len(versions)
            # some 3.1.1-only brokers never answer a v5 CONNECT: give the first try a few seconds, not all of them
            attempt_deadline = deadline if last else min(deadline, time.monotonic() + 4.0)
            try:
                refused = self._connect(version, attempt_deadline)
            except BaseException:
                self._stop_client()  # no network thread outlives a failed start
                raise
            if refused is None:
                return self
            if refused in ("unsupported-protocol", "no-answer") and not last:
                log.info("%s does not accept MQTT v5; using MQTT 3.1.1", self.options.url)
                continue
            if refused == "no-answer":
                hint = ("; shared subscriptions need an MQTT v5 broker such as mosquitto (amqtt speaks only 3.1.1)"
                        if self.require_v5 else "; is it an MQTT broker, and is TLS needed (mqtts://)?")
                raise BrokerUnavailable(f"the broker at {self.options.url} accepted a TCP connection but did not "
                                        f"answer the MQTT {version} CONNECT{hint}")
            if refused == "unsupported-protocol":
                raise BrokerUnavailable(f"the broker at {self.options.url} refuses MQTT v{version}"
                                        + ("; shared subscriptions need an MQTT v5 broker such as mosquitto"
                                           if self.require_v5 else "; try --mqtt-version auto"))
            raise BrokerUnavailable(f"the broker at {self.options.url} refused the connection: {refused}; "
                                    "check --username / --password-file and the broker's access rules")
        raise AssertionError("unreachable")

    def _connect(self, version: str, deadline: float) -> str | None:
        """Connect once in ``version``; None on success, else the broker's refusal. Raises when unreachable."""
        import ssl

        try:
            import paho.mqtt.client as mqtt
            from paho.mqtt.enums import CallbackAPIVersion
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties
        except ImportError as err:
            raise missing_extra("paho-mqtt", "agent") from err

        v5 = version == "5"
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                             clean_session=None if v5 else not self.persistent)
        client.reconnect_delay_set(min_delay=0.25, max_delay=2)  # type: ignore[arg-type]
        if self.options.tls:
            client.tls_set(ca_certs=_str(self.options.ca_file), certfile=_str(self.options.cert_file),
                           keyfile=_str(self.options.key_file))
        if self.options.username:
            client.username_pw_set(self.options.username, self.options.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        props = None
        if v5 and self.persistent:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = PERSISTENT_SESSION_EXPIRY_S
        self._connack = (threading.Event(), [])
        self._client, self.protocol = client, version
        while True:
            try:
                kwargs: dict[str, Any] = {"keepalive": 30}
                if v5:
                    kwargs.update(clean_start=not self.persistent, properties=props)
                client.connect(self.options.host, self.options.port, **kwargs)
                break
            except (OSError, ValueError) as err:  # refused, unreachable, TLS handshake failure, bad host
                if time.monotonic() + 0.3 >= deadline or isinstance(err, (ValueError, ssl.SSLError)):
                    raise BrokerUnavailable(f"cannot connect to the MQTT broker at {self.options.url}: "
                                            f"{_describe(err)}; is it running and reachable?") from err
                time.sleep(0.3)
        client.loop_start()
        event, outcome = self._connack
        if not event.wait(max(0.5, deadline - time.monotonic())):
            self._stop_client()
            return "no-answer"
        reason = outcome[0]
        if reason is None:
            self._wait_subscribed(max(0.5, deadline - time.monotonic()))
            return None
        self._stop_client()
        return reason

    def close(self) -> None:
        self._closing = True
        self._stop_client()

    def _stop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.disconnect()
            finally:
                client.loop_stop()
        self.connected.clear()

    def __enter__(self) -> MqttSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- subscriptions and publishing ---------------------------------------------------------------------------
    def subscribe(self, topic: str, timeout: float = 10.0) -> None:
        """Add a subscription (kept across reconnects) and wait for the broker to grant it."""
        with self._lock:
            self._topics.append(topic)
        if self._client is not None and self.connected.is_set():
            self._send_subscribe([topic])
            self._wait_subscribed(timeout)

    def publish(self, topic: str, payload: dict[str, Any] | bytes | str, *, qos: int = 1, retain: bool = False,
                properties: Any = None) -> Any:
        if self._client is None:
            raise BrokerUnavailable(f"not connected to {self.options.url}")
        data = json.dumps(payload, separators=(",", ":")) if isinstance(payload, dict) else payload
        return self._client.publish(topic, data, qos=qos, retain=retain, properties=properties)

    def _send_subscribe(self, topics: list[str]) -> None:
        if not topics or self._client is None:
            return
        with self._lock:  # the SUBACK may be handled on the network thread before subscribe() returns
            rc, mid = self._client.subscribe([(t, self.qos) for t in topics])
            if rc == 0 and mid is not None:
                pending = _Pending(topics)
                self._suback[mid] = pending
                self._waiting.append(pending)

    def _wait_subscribed(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for pending in waiting:
            if not pending.event.wait(max(0.1, deadline - time.monotonic())):
                raise BrokerUnavailable(f"the broker at {self.options.url} did not confirm the subscription to "
                                        f"{', '.join(pending.topics)} within {timeout:.0f} s")
            if pending.error:
                raise BrokerUnavailable(pending.error)

    # -- paho callbacks (network thread) ------------------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        connack = self._connack
        if reason.is_failure:
            text = "unsupported-protocol" if reason.value in (1, 132) else str(reason)
            log.log(logging.DEBUG if text == "unsupported-protocol" else logging.WARNING,
                    "the broker at %s refused the connection: %s", self.options.url, reason)
            if connack and not connack[0].is_set():
                connack[1].append(text)
                connack[0].set()
            return
        self.connections += 1
        _no_delay(client)
        if self.connections > 1:
            log.info("reconnected to %s", self.options.url)
        self.connected.set()
        with self._lock:
            topics = list(self._topics)
        self._send_subscribe(topics)
        if connack and not connack[0].is_set():
            connack[1].append(None)
            connack[0].set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was and not self._closing:
            log.warning("lost the connection to %s (%s); reconnecting", self.options.url, reason)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: list[Any], props: Any) -> None:
        with self._lock:
            pending = self._suback.pop(mid, None)
        if pending is None:
            return
        refused = [t for t, r in zip(pending.topics, reasons, strict=False) if r.is_failure]
        if refused:
            pending.error = (f"the broker at {self.options.url} refused the subscription to {', '.join(refused)} "
                             f"({reasons[0]}); check its access rules")
            log.error("%s", pending.error)
        pending.event.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if self.on_message is not None:
            try:
                self.on_message(message)
            except Exception:  # a consumer bug must not kill the network thread
                log.exception("message handler failed on %s", message.topic)


def _no_delay(client: Any) -> None:
    """Send small packets at once: with Nagle's algorithm and delayed ACKs a request/response round trip on
    loopback takes ~44 ms instead of ~0.4 ms (the broker needs the same: mosquitto's ``set_tcp_nodelay true``)."""
    import socket

    sock = client.socket()
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass


def _str(p: Path | None) -> str | None:
    return None if p is None else os.fspath(p)


def _describe(err: Exception) -> str:
    import socket

    if isinstance(err, ConnectionRefusedError):
        return "connection refused (nothing listens on that port)"
    if isinstance(err, socket.gaierror):
        return f"unknown host ({err})"
    return str(err) or type(err).__name__

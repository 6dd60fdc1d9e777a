"""The production broker config (firmware_scripts/mosquitto/) on a real mosquitto.

The config file is used as shipped except for what a test machine must change: its /etc/mosquitto/edgekit paths
point into tmp_path, the two listeners bind free loopback ports, persistence and the log go to tmp_path, and, when
the tests run as root, ``user root`` keeps mosquitto able to read the test's root-owned keys. Certificates come
from the shipped make-certs.sh; the password listener's file from mosquitto_passwd.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgekit.broker import free_port, wait_for_port
from edgekit.firmware.scripts import script

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("mosquitto") is None and not os.path.exists("/usr/sbin/mosquitto"),
                                 reason="mosquitto is not installed (apt-get install mosquitto mosquitto-clients)")]
mqtt = pytest.importorskip("paho.mqtt.client")
NOT_AUTHORIZED = 135  # MQTT v5 reason code


def make_certs(pki: Path, *args: str) -> None:
    subprocess.run(["bash", str(script("mosquitto/make-certs.sh")), "--dir", str(pki), *args], check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    d = tmp_path_factory.mktemp("broker")
    pki = d / "edgekit"
    make_certs(pki, "ca")
    make_certs(pki, "broker", "localhost", "--ip", "127.0.0.1")
    for name in ("pi-01", "pi-02", "edgekit-consumer"):
        make_certs(pki, "client", name)
    rogue = d / "rogue"  # a certificate for pi-01 from a CA the broker does not trust
    make_certs(rogue, "ca")
    make_certs(rogue, "client", "pi-01")
    shutil.copyfile(script("mosquitto/acl"), pki / "acl")
    mosquitto_passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    subprocess.run([mosquitto_passwd, "-c", "-b", str(pki / "passwd"), "pi-03", "pw-of-pi-03"], check=True)
    cert_port, pw_port = free_port(), free_port()
    conf = script("mosquitto/edgekit.conf").read_text()
    conf = (conf.replace("/etc/mosquitto/edgekit", str(pki))
            .replace("listener 8883\n", f"listener {cert_port} 127.0.0.1\n")
            .replace("listener 8884\n", f"listener {pw_port} 127.0.0.1\n")
            .replace("persistence_location /var/lib/mosquitto/", f"persistence_location {d}/")
            .replace("log_dest syslog", f"log_dest file {d / 'mosquitto.log'}"))
    if os.geteuid() == 0:
        conf += "user root\n"
    (d / "mosquitto.conf").write_text(conf)
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([exe, "-c", str(d / "mosquitto.conf")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        try:
            wait_for_port("127.0.0.1", cert_port)
            wait_for_port("127.0.0.1", pw_port)
        except TimeoutError:
            log = (d / "mosquitto.log").read_text() if (d / "mosquitto.log").exists() else ""
            proc.kill()
            pytest.fail(f"mosquitto did not start with the production config: {log}")
        yield {"pki": pki, "rogue": rogue, "cert_port": cert_port, "pw_port": pw_port}
    finally:
        proc.terminate()
        proc.wait(10)


class Client:
    """A paho MQTT v5 client over TLS that records CONNACK, PUBACK reason codes and messages."""

    def __init__(self, b: dict[str, Any], name: str | None = None, *, password: str | None = None,
                 pki: Path | None = None) -> None:
        from paho.mqtt.enums import CallbackAPIVersion

        self.connected = threading.Event()
        self.connack: Any = None
        self.acks: dict[int, int] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{name or 'anon'}-{time.monotonic_ns()}",
                             protocol=mqtt.MQTTv5)
        ctx = ssl.create_default_context(cafile=str(b["pki"] / "ca.crt"))
        port = b["pw_port"]
        if name and password is None:
            certs = (pki or b["pki"]) / "clients"
            ctx.load_cert_chain(str(certs / f"{name}.crt"), str(certs / f"{name}.key"))
            port = b["cert_port"]
        elif password is not None:
            self.c.username_pw_set(name, password)
        self.c.tls_set_context(ctx)
        self.c.on_connect = self._on_connect
        # A refused TLS handshake (TLS 1.3 checks the client certificate after connect()) ends in a disconnect.
        self.c.on_disconnect = lambda *a: self.connected.set()
        self.c.on_publish = lambda c, u, mid, rc, p: self.acks.__setitem__(mid, rc.value)
        self.c.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.port = port

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connack = rc
        self.connected.set()

    def connect(self) -> bool:
        """True when the broker accepted the connection."""
        try:
            self.c.connect("127.0.0.1", self.port)
        except (ssl.SSLError, OSError):
            return False
        self.c.loop_start()
        self.connected.wait(3)
        return self.connack is not None and not self.connack.is_failure

    def publish(self, topic: str, payload: bytes = b"{}") -> int:
        info = self.c.publish(topic, payload, qos=1)
        deadline = time.monotonic() + 3
        while info.mid not in self.acks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.c.on_subscribe = lambda *a: done.set()
        self.c.subscribe(topic, qos=1)
        done.wait(3)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def wait_for(predicate: Any, timeout: float = 1.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def consumer(broker: dict[str, Any]) -> Iterator[Client]:
    c = Client(broker, "edgekit-consumer")
    assert c.connect()
    c.subscribe("edgekit/v1/#")
    yield c
    c.close()


def test_anonymous_and_untrusted_clients_are_refused(broker: dict[str, Any]) -> None:
    anon_password_listener = Client(broker)
    assert not anon_password_listener.connect()
    assert anon_password_listener.connack is not None and anon_password_listener.connack.value == NOT_AUTHORIZED
    anon_password_listener.close()
    anon_cert_listener = Client(broker)
    anon_cert_listener.port = broker["cert_port"]
    assert not anon_cert_listener.connect(), "the certificate listener requires a client certificate"
    anon_cert_listener.close()
    rogue = Client(broker, "pi-01", pki=broker["rogue"])
    assert not rogue.connect(), "a certificate from another CA is refused"
    rogue.close()
    wrong_password = Client(broker, "pi-03", password="guess")
    assert not wrong_password.connect()
    wrong_password.close()


@pytest.mark.parametrize("login", ["certificate", "password"])
def test_a_device_publishes_only_under_its_own_topics(broker: dict[str, Any], consumer: Client, login: str) -> None:
    me = "pi-01" if login == "certificate" else "pi-03"
    device = Client(broker, me) if login == "certificate" else Client(broker, me, password="pw-of-pi-03")
    assert device.connect()
    try:
        assert device.publish(f"edgekit/v1/{me}/telemetry", b'{"seq": 1}') == 0
        assert device.publish(f"edgekit/v1/{me}/results/req-7", b'{"seq": 2}') == 0
        assert wait_for(lambda: (f"edgekit/v1/{me}/telemetry", b'{"seq": 1}') in consumer.messages)
        for foreign in ("edgekit/v1/pi-02/telemetry", "edgekit/v1/pi-02/status", "edgekit/v1/other", "elsewhere"):
            assert device.publish(foreign, b'{"forged": true}') == NOT_AUTHORIZED, foreign
        time.sleep(0.3)
        assert not [m for m in consumer.messages if b"forged" in m[1]], "a forged message reached the consumer"
    finally:
        device.close()


def test_a_device_reads_only_its_own_requests(broker: dict[str, Any], consumer: Client) -> None:
    pi1 = Client(broker, "pi-01")
    assert pi1.connect()
    try:
        for topic in ("edgekit/v1/pi-01/infer", "edgekit/v1/pi-01/cmd", "edgekit/v1/pi-02/infer", "edgekit/v1/#"):
            pi1.subscribe(topic)
        assert consumer.publish("edgekit/v1/pi-01/infer", b'{"id": "a"}') == 0
        assert consumer.publish("edgekit/v1/pi-01/cmd", b'{"cmd": "x"}') == 0
        assert consumer.publish("edgekit/v1/pi-02/infer", b'{"id": "b"}') == 0, "consumers send to any device"
        pi2 = Client(broker, "pi-02")
        assert pi2.connect()
        assert pi2.publish("edgekit/v1/pi-02/telemetry", b'{"t": 1}') == 0
        pi2.close()
        assert wait_for(lambda: len(pi1.messages) >= 2)
        time.sleep(0.3)
        # (edgekit/v1/# overlaps the two own subscriptions, so each may arrive twice; what matters is which.)
        assert {t for t, _ in pi1.messages} == {"edgekit/v1/pi-01/cmd", "edgekit/v1/pi-01/infer"}
        assert wait_for(lambda: ("edgekit/v1/pi-02/telemetry", b'{"t": 1}') in consumer.messages), \
            "consumers read every device"
    finally:
        pi1.close()

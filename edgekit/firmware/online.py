"""Prove a provisioned agent is up: wait for ``state: online`` on its retained ``edgekit/v1/<id>/status``,
produced after the restart (the status ``ts`` is compared with the device's own clock at restart time)."""

from __future__ import annotations

import json
import secrets
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import ProvisioningError, missing_extra
from edgekit.firmware.settings import BrokerSettings


@dataclass(frozen=True)
class VerifySettings:
    """The consumer identity used to read the status (a device may not read other topics than its own requests)."""

    broker: BrokerSettings
    timeout_s: float = 120.0


def _client(b: BrokerSettings) -> Any:
    try:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
    except ImportError:
        raise missing_extra("paho-mqtt", "agent") from None
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edgekit-provision-{secrets.token_hex(4)}",
                         protocol=mqtt.MQTTv5)
    if b.tls:
        ctx = ssl.create_default_context(cafile=str(b.ca_file) if b.ca_file else None)
        if b.cert_file and b.key_file:
            ctx.load_cert_chain(str(b.cert_file), str(b.key_file))
        client.tls_set_context(ctx)
    if b.username:
        password = Path(b.password_file).read_text().strip() if b.password_file else None
        client.username_pw_set(b.username, password)
    return client


def wait_online(v: VerifySettings, device_id: str, since: float | None = None) -> dict[str, Any]:
    """The status payload once the device reports online (at or after ``since``, unix seconds)."""
    topic = f"edgekit/v1/{device_id}/status"
    done = threading.Event()
    seen: dict[str, Any] = {}
    client = _client(v.broker)

    def on_connect(c: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if rc.is_failure:
            seen["error"] = f"the broker refused the connection: {rc}"
            done.set()
        else:
            c.subscribe(topic, qos=1)

    def on_message(c: Any, userdata: Any, msg: Any) -> None:
        try:
            status = json.loads(msg.payload)
        except ValueError:
            status = {"state": msg.payload.decode(errors="replace")}
        seen["last"] = status
        if isinstance(status, dict) and status.get("state") == "online" and (
                since is None or float(status.get("ts", 0)) >= since):
            seen["online"] = status
            done.set()

    client.on_connect = on_connect
    client.on_message = on_message
    host, port = v.broker.host_port
    try:
        client.connect(host, port, keepalive=30)
    except (OSError, ssl.SSLError) as err:
        raise ProvisioningError(f"cannot reach the broker {v.broker.url} to check {device_id}: {err}; pass consumer "
                                "credentials (--consumer-cert/--consumer-key) or --no-verify") from err
    client.loop_start()
    try:
        done.wait(v.timeout_s)
    finally:
        client.loop_stop()
        client.disconnect()
    if "error" in seen:
        raise ProvisioningError(f"{seen['error']} while checking {device_id}; pass consumer credentials "
                                "(--consumer-cert/--consumer-key or --consumer-username/--consumer-password-file)")
    if "online" not in seen:
        last = seen.get("last")
        what = "no status message at all"
        if isinstance(last, dict):
            what = f"last status: {last.get('state')}"
            if last.get("state") == "online" and since is not None:
                what += f", but from {since - float(last.get('ts', 0)):.0f} s before the restart"
            if last.get("reason"):
                what += f", reason: {last['reason']}"
        raise ProvisioningError(f"{device_id} did not report online on {v.broker.url} within {v.timeout_s:.0f} s "
                                f"({what}); on the device see: journalctl -u edgekit-agent")
    return dict(seen["online"])

"""The agent's settings: a TOML file (``--config``) with command-line flags on top; unknown keys are rejected.

    device_id = "pi-01"
    broker = "mqtts://broker.lan:8883"
    bundle = "/opt/edgekit/pi4-bundle.tar.gz"
    memory_cap_mb = 256
    username = "pi-01"
    password_file = "/etc/edgekit/mqtt-password"
    ca_file = "/etc/edgekit/ca.pem"

Values left out come from the device profile (memory cap, batch size, wait) or from the defaults below.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from edgekit.errors import AgentConfigError
from edgekit.strictdata import DataError, build

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MqttVersion = Literal["5", "3.1.1"]
DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class AgentConfig:
    device_id: str | None = None
    broker: str | None = None
    bundle: str | None = None
    profile: str | None = None  # a shipped profile name or a .toml path; default: detected
    target: str | None = None  # force one artifact of the bundle
    memory_cap_mb: int | None = None
    max_batch: int | None = None
    max_wait_ms: int | None = None
    threads: int | None = None
    telemetry_interval_s: float = 10.0
    spool_path: str | None = None
    spool_max_mb: int = 64
    max_request_bytes: int = 1 << 20
    max_queue: int = 256
    mqtt_version: MqttVersion = "5"
    keepalive_s: int = 30
    reconnect_max_s: float = 30.0
    username: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    # Refuse to start when the bundle's checksums do not match (only the chosen artifact and its extra files).
    verify: bool = True

    @property
    def broker_url(self) -> BrokerUrl:
        return parse_broker_url(self.broker or "")


@dataclass(frozen=True)
class BrokerUrl:
    tls: bool
    host: str
    port: int


def parse_broker_url(url: str) -> BrokerUrl:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise AgentConfigError(
            f"broker {url!r} is not an MQTT URL; use mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS)"
        )
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as err:
        raise AgentConfigError(f"broker {url!r}: bad port ({err})") from err
    return BrokerUrl(tls=tls, host=parts.hostname, port=port)


def load_config(path: Path | None, overrides: dict[str, Any]) -> AgentConfig:
    """The TOML file at ``path`` (if any) with ``overrides`` (the flags that were given) on top, checked."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise AgentConfigError(f"cannot read agent config {path}: {err.strerror}") from err
        except tomllib.TOMLDecodeError as err:
            raise AgentConfigError(f"{path}: not valid TOML: {err}") from err
    data.update({k: v for k, v in overrides.items() if v is not None})
    origin = str(path) if path else "agent settings"
    try:
        config = build(AgentConfig, data)
    except DataError as err:
        raise AgentConfigError(f"{origin}: {err}") from err
    check_config(config, origin)
    return config


def check_config(c: AgentConfig, origin: str) -> None:
    missing = [flag for flag, value in (("--bundle", c.bundle), ("--device-id", c.device_id), ("--broker", c.broker))
               if not value]
    if missing:
        raise AgentConfigError(f"{origin}: {', '.join(missing)} missing; give them as flags or in --config "
                               "(keys bundle, device_id, broker)")
    assert c.device_id is not None
    if not DEVICE_ID.match(c.device_id):
        raise AgentConfigError(f"{origin}: device_id {c.device_id!r} is not allowed; use letters, digits, '_', "
                               "'.' and '-' (no '/', '+', '#': it is part of the MQTT topic), at most 64 characters")
    c.broker_url  # noqa: B018 - raises on a malformed URL
    positive = {"memory_cap_mb": c.memory_cap_mb, "max_batch": c.max_batch, "threads": c.threads,
                "spool_max_mb": c.spool_max_mb, "max_request_bytes": c.max_request_bytes, "max_queue": c.max_queue,
                "keepalive_s": c.keepalive_s}
    for key, value in positive.items():
        if value is not None and value < 1:
            raise AgentConfigError(f"{origin}: key {key!r}: must be >= 1, got {value}")
    if c.max_wait_ms is not None and c.max_wait_ms < 0:
        raise AgentConfigError(f"{origin}: key 'max_wait_ms': must be >= 0, got {c.max_wait_ms}")
    if c.telemetry_interval_s <= 0 or c.reconnect_max_s <= 0:
        raise AgentConfigError(f"{origin}: telemetry_interval_s and reconnect_max_s must be > 0")
    if (c.cert_file is None) != (c.key_file is None):
        raise AgentConfigError(f"{origin}: a client certificate needs both cert_file and key_file")
    if (c.ca_file or c.cert_file) and not c.broker_url.tls:
        raise AgentConfigError(f"{origin}: ca_file/cert_file are set but broker {c.broker!r} is not mqtts://")
    for key in ("password_file", "ca_file", "cert_file", "key_file"):
        value = getattr(c, key)
        if value and not Path(value).is_file():
            raise AgentConfigError(f"{origin}: key {key!r}: {value} does not exist or is not a file")
    if c.password_file and not c.username:
        raise AgentConfigError(f"{origin}: password_file is set but username is not")


def read_password(c: AgentConfig) -> str | None:
    if not c.password_file:
        return None
    return Path(c.password_file).read_text(encoding="utf-8").rstrip("\r\n")


def default_spool_path(device_id: str) -> Path:
    """``$STATE_DIRECTORY`` (systemd ``StateDirectory=``), else ``$XDG_STATE_HOME`` or ``~/.local/state``."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    base = Path(state) if state else Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local/state")) / "edgekit"
    return base / f"{device_id}.spool.sqlite"


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(AgentConfig)]

"""The agent's ``/etc/edgekit/agent.toml`` and the files that travel with it.

The TOML holds no secret values: ``password_file`` and ``key_file`` name files only root (or systemd's credential
store, see :mod:`edgekit.firmware.layout`) can read. Keys are the ones ``edgekit agent --config`` reads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edgekit.errors import ProvisioningError
from edgekit.firmware.layout import CURRENT_BUNDLE, DeviceLayout
from edgekit.firmware.settings import AgentSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PASSWORD = "mqtt-password"
CLIENT_KEY = "client.key"
CA_CERT = "ca.crt"
CLIENT_CERT = "client.crt"


def secret_files(agent: AgentSettings) -> dict[str, Path]:
    """name -> source file, for /etc/edgekit/secrets (mode 0600)."""
    out = {}
    if agent.broker.password_file is not None:
        out[PASSWORD] = agent.broker.password_file
    if agent.broker.key_file is not None:
        out[CLIENT_KEY] = agent.broker.key_file
    return out


def tls_files(agent: AgentSettings) -> dict[str, Path]:
    """name -> source file, for /etc/edgekit/tls (mode 0644: certificates are public)."""
    out = {}
    if agent.broker.ca_file is not None:
        out[CA_CERT] = agent.broker.ca_file
    if agent.broker.cert_file is not None:
        out[CLIENT_CERT] = agent.broker.cert_file
    return out


def _toml(value: str | int) -> str:
    # A JSON string is a valid TOML basic string (same escapes); integers are written as-is.
    return str(value) if isinstance(value, int) else json.dumps(value, ensure_ascii=False)


def render_agent_toml(agent: AgentSettings, memory_cap_mb: int, layout: DeviceLayout,
                      profile: str | None = None) -> str:
    b = agent.broker
    values: dict[str, str | int] = {
        "device_id": agent.device_id,
        "broker": b.url,
        "bundle": CURRENT_BUNDLE,
        "memory_cap_mb": memory_cap_mb,
    }
    if profile:  # known from flashing or detection, so the agent need not guess again
        values["profile"] = profile
    if b.username is not None:
        values["username"] = b.username
        values["password_file"] = layout.secret_path(PASSWORD)
    if b.ca_file is not None:
        values["ca_file"] = layout.tls_path(CA_CERT)
    if b.cert_file is not None:
        values["cert_file"] = layout.tls_path(CLIENT_CERT)
        values["key_file"] = layout.secret_path(CLIENT_KEY)
    lines = [
        "# edgekit agent configuration, written by `edgekit flash` / `edgekit provision`.",
        "# No secret values here: password_file and key_file name files only root (or systemd's credential",
        "# store) can read. Change the device with `edgekit provision`, not by hand: it rewrites this file.",
        *(f"{key} = {_toml(value)}" for key, value in values.items()),
    ]
    text = "\n".join(lines) + "\n"
    try:
        if tomllib.loads(text) != values:
            raise ProvisioningError("agent.toml did not round-trip; this is a bug in edgekit")
    except tomllib.TOMLDecodeError as err:
        raise ProvisioningError(f"agent.toml is not valid TOML ({err}); this is a bug in edgekit") from err
    return text

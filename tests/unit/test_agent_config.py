"""Agent settings: TOML keys, flags on top, unknown keys and bad values rejected with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.agent.config import load_config, parse_broker_url
from edgekit.errors import AgentConfigError

pytestmark = pytest.mark.unit

BASE = {"bundle": "b", "device_id": "pi-01", "broker": "mqtt://127.0.0.1:1883"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_toml_keys_and_flag_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, 'device_id = "pi-01"\nbroker = "mqtt://10.0.0.1"\nbundle = "/b"\nmemory_cap_mb = 256\n'
                 'max_batch = 4\nmqtt_version = "3.1.1"\ntelemetry_interval_s = 5\n')
    c = load_config(path, {"memory_cap_mb": 300, "max_batch": None})
    assert c.memory_cap_mb == 300  # the flag wins
    assert c.max_batch == 4  # a flag that was not given leaves the file's value
    assert c.mqtt_version == "3.1.1" and c.telemetry_interval_s == 5.0
    assert c.broker_url.port == 1883 and not c.broker_url.tls


def test_unknown_key_is_rejected_with_the_allowed_keys(tmp_path: Path) -> None:
    path = write(tmp_path, 'device_id = "pi-01"\nbroker = "mqtt://h"\nbundle = "/b"\nmemory_cap = 256\n')
    with pytest.raises(AgentConfigError) as err:
        load_config(path, {})
    assert "memory_cap" in str(err.value) and "unknown key" in str(err.value)
    assert "memory_cap_mb" in str(err.value)  # what is allowed


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, 'device_id = "pi-01"\nbroker = "mqtt://h"\nbundle = "/b"\nmax_batch = "eight"\n')
    with pytest.raises(AgentConfigError, match="max_batch.*eight"):
        load_config(path, {})


@pytest.mark.parametrize("override, fragment", [
    ({"device_id": None, "bundle": None}, "--bundle, --device-id missing"),
    ({"device_id": "a/b"}, "device_id 'a/b' is not allowed"),
    ({"broker": "http://h"}, "not an MQTT URL"),
    ({"max_batch": 0}, "'max_batch': must be >= 1"),
    ({"ca_file": "/nonexistent"}, "not mqtts://"),
    ({"broker": "mqtts://h", "ca_file": "/nonexistent/ca.pem"}, "does not exist"),
    ({"cert_file": "/x"}, "both cert_file and key_file"),
    ({"mqtt_version": "4"}, "'4' is not allowed"),
])
def test_bad_settings_are_refused(override: dict, fragment: str) -> None:
    data = {**BASE, **override}
    with pytest.raises(AgentConfigError, match=fragment.replace("(", r"\(")):
        load_config(None, {k: v for k, v in data.items() if v is not None})


def test_broker_urls() -> None:
    assert parse_broker_url("mqtts://broker.lan").port == 8883
    assert parse_broker_url("mqtts://broker.lan").tls
    assert parse_broker_url("mqtt://[::1]:1999").host == "::1"
    with pytest.raises(AgentConfigError):
        parse_broker_url("mqtt://h:notaport")

"""What the device's venv is built from, wheel compatibility, the agent.toml and the payload layout."""

from __future__ import annotations

import dataclasses
import sys
import tarfile
from pathlib import Path

import pytest

from edgekit import __version__
from edgekit.errors import ProvisioningError
from edgekit.firmware.agent_config import render_agent_toml
from edgekit.firmware.layout import DeviceLayout
from edgekit.firmware.payload import PayloadSpec, build_payload, memory_cap, prepare_bundle
from edgekit.firmware.requirements import (
    check_wheelhouse,
    parse_wheel_name,
    requirements_for,
    wheel_fits,
)
from edgekit.firmware.settings import AgentSettings, BrokerSettings
from edgekit.manifest import read_manifest
from edgekit.profiles import load_profile
from tests.integration.firmware_standins import make_bundle, make_wheelhouse

pytestmark = pytest.mark.unit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.mark.parametrize(("name", "fits"), [
    ("numpy-2.1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", True),
    ("psutil-6.0.0-cp36-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", True),
    ("paho_mqtt-2.1.0-py3-none-any.whl", True),
    ("numpy-2.1.0-cp312-cp312-manylinux_2_17_aarch64.whl", False),
    ("numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.whl", False),
    ("numpy-2.1.0-cp311-cp311-musllinux_1_2_aarch64.whl", False),
    ("tokenizers-0.20.0-cp39-abi3-manylinux_2_17_aarch64.whl", True),
])
def test_wheel_fits_python_311_on_aarch64(name: str, fits: bool) -> None:
    assert wheel_fits(parse_wheel_name(name), "3.11", "aarch64") is fits


def test_requirements_pin_edgekit_and_the_validated_runtime(tmp_path: Path) -> None:
    manifest = read_manifest(make_bundle(tmp_path / "b"))
    pi = load_profile("raspberry-pi-4")
    assert requirements_for(pi, manifest).lines == (f"edgekit[agent]=={__version__}",)
    pinned = dataclasses.replace(manifest, producer={"edgekit": __version__, "onnxruntime": "1.22.1"})
    assert requirements_for(pi, pinned).lines == (f"edgekit[agent]=={__version__}", "onnxruntime==1.22.1")
    assert requirements_for(load_profile("intel-nuc"), None).lines == (f"edgekit[agent,openvino]=={__version__}",)
    jetson = requirements_for(load_profile("jetson-orin-nano"), pinned, gpu_wheel="onnxruntime-gpu==1.20.0",
                              extra_index="https://index")
    assert jetson.lines[0] == f"edgekit=={__version__}" and jetson.lines[-1] == "onnxruntime-gpu==1.20.0"
    assert not any(line.startswith("onnxruntime>") or line.startswith("onnxruntime=") for line in jetson.lines), \
        "the CPU onnxruntime would clash with NVIDIA's GPU build"


def test_wheelhouse_checks(tmp_path: Path) -> None:
    reqs = requirements_for(load_profile("raspberry-pi-4"), None)
    good = make_wheelhouse(tmp_path / "good")
    assert [w.name for w in check_wheelhouse(good, reqs, python="3.11")] == [f"edgekit-{__version__}-py3-none-any.whl"]
    old = make_wheelhouse(tmp_path / "old", version="0.0.1")
    with pytest.raises(ProvisioningError, match=f"no edgekit {__version__} wheel.*pip wheel --no-deps"):
        check_wheelhouse(old, reqs, python="3.11")
    wrong = make_wheelhouse(tmp_path / "wrong")
    (wrong / "numpy-2.1.0-cp312-cp312-manylinux_2_17_aarch64.whl").write_bytes(b"")
    with pytest.raises(ProvisioningError, match="cannot install on the device.*--python-version 3.11"):
        check_wheelhouse(wrong, reqs, python="3.11")
    pinned = dataclasses.replace(reqs, lines=(*reqs.lines, "onnxruntime==1.22.1"))
    with pytest.raises(ProvisioningError, match="cannot satisfy .* offline"):
        check_wheelhouse(good, pinned, python="3.11")


def test_memory_cap_bounds() -> None:
    pi = load_profile("raspberry-pi-4")
    assert memory_cap(pi, None) == 512 and memory_cap(pi, 256) == 256
    with pytest.raises(ProvisioningError, match="outside 64..4096 MB"):
        memory_cap(pi, 8192)


def test_the_agent_accepts_the_agent_toml_firmware_writes(tmp_path: Path) -> None:
    """The contract between `edgekit flash`/`provision` and `edgekit agent --config`: every key written is one the
    agent knows (it rejects unknown keys), and the values carry over."""
    from edgekit.agent.config import field_names, load_config

    plain = AgentSettings("pi-01", BrokerSettings("mqtt://b:1883"), tmp_path)
    path = tmp_path / "agent.toml"
    path.write_text(render_agent_toml(plain, 384, DeviceLayout(252), profile="raspberry-pi-4"))
    config = load_config(path, {})
    assert (config.device_id, config.broker, config.memory_cap_mb, config.profile) == (
        "pi-01", "mqtt://b:1883", 384, "raspberry-pi-4")
    # With TLS and a password the files live on the device only; the keys must still be the agent's own.
    full = AgentSettings("pi-01", BrokerSettings("mqtts://b:8883", tmp_path / "ca.crt", tmp_path / "c.crt",
                                                 tmp_path / "c.key", "pi-01", tmp_path / "pw"), tmp_path)
    keys = set(tomllib.loads(render_agent_toml(full, 384, DeviceLayout(252), profile="raspberry-pi-4")))
    assert keys <= set(field_names())


def test_agent_toml_has_the_agents_keys_and_no_secret_values(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    agent = AgentSettings("pi-01", BrokerSettings("mqtts://b:8883", tmp_path / "ca.crt", tmp_path / "c.crt",
                                                  tmp_path / "c.key", "pi-01", secret), tmp_path)
    text = render_agent_toml(agent, 512, DeviceLayout(252))
    assert "hunter2" not in text
    assert tomllib.loads(text) == {
        "device_id": "pi-01", "broker": "mqtts://b:8883", "bundle": "/opt/edgekit/bundles/current",
        "memory_cap_mb": 512, "username": "pi-01",
        "password_file": "/run/credentials/edgekit-agent.service/mqtt-password",
        "ca_file": "/etc/edgekit/tls/ca.crt", "cert_file": "/etc/edgekit/tls/client.crt",
        "key_file": "/run/credentials/edgekit-agent.service/client.key",
    }
    legacy = tomllib.loads(render_agent_toml(agent, 512, DeviceLayout(237)))
    assert legacy["password_file"] == "/etc/edgekit/secrets/mqtt-password"


def test_bundle_is_verified_and_repacked_reproducibly(tmp_path: Path) -> None:
    pi = load_profile("raspberry-pi-4")
    bundle = make_bundle(tmp_path / "b")
    (tmp_path / "w1").mkdir()
    (tmp_path / "w2").mkdir()
    one, two = prepare_bundle(bundle, pi, tmp_path / "w1"), prepare_bundle(bundle, pi, tmp_path / "w2")
    assert one.sha256 == two.sha256 and one.bundle_id == two.bundle_id and one.bundle_id.startswith("minilm-")
    with tarfile.open(one.path) as tf:
        assert sorted(tf.getnames()) == ["manifest.json", "model.onnx"]
    (bundle / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(ProvisioningError, match="fails verification: model.onnx"):
        prepare_bundle(bundle, pi, tmp_path / "w1")
    ov = make_bundle(tmp_path / "ov", runtime="openvino")
    with pytest.raises(ProvisioningError, match="runs 'onnxruntime'"):
        prepare_bundle(ov, pi, tmp_path / "w1")


def test_payload_layout_and_modes(tmp_path: Path) -> None:
    pi = load_profile("raspberry-pi-4")
    key, pw = tmp_path / "c.key", tmp_path / "pw"
    key.write_text("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
    pw.write_text("hunter2\n")
    agent = AgentSettings("pi-01", BrokerSettings("mqtt://b", username="pi-01", password_file=pw),
                          make_bundle(tmp_path / "b"))
    (tmp_path / "w").mkdir()
    bundle = prepare_bundle(agent.bundle, pi, tmp_path / "w")
    spec = PayloadSpec(pi, agent, DeviceLayout(252), requirements_for(pi, None), bundle, 512,
                       firstboot_unit=True)
    payload = build_payload(spec, tmp_path / "payload")
    assert payload.files == sorted([
        "agent.toml", "bundle.tar.gz", "edgekit-agent.service", "edgekit-firstboot.service", "install-agent.sh",
        "payload.env", "requirements.txt", "secrets/mqtt-password"])
    d = payload.dir
    assert (d.stat().st_mode & 0o777) == 0o700
    assert (d / "secrets").stat().st_mode & 0o777 == 0o700
    assert (d / "secrets/mqtt-password").stat().st_mode & 0o777 == 0o600
    assert (d / "agent.toml").stat().st_mode & 0o777 == 0o600
    env = (d / "payload.env").read_text()
    assert "hunter2" not in env and f"BUNDLE_ID={bundle.bundle_id}" in env and "OFFLINE=0" in env

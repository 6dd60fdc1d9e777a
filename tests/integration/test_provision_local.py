"""``edgekit provision --local --root DIR`` through the real command line, installing into a throwaway root.

The root is a stand-in shaped like a Raspberry Pi 4 running Raspberry Pi OS (proc/cpuinfo, the device-tree model,
/etc/passwd, the cgroup controllers, /boot/firmware/cmdline.txt); the wheelhouse holds a stand-in edgekit wheel, so
pip really builds /opt/edgekit/venv offline. With --root nothing is started: the online check runs separately
against a real mosquitto.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgekit.broker import MosquittoBroker
from edgekit.errors import ProvisioningError
from edgekit.firmware.layout import DeviceLayout
from edgekit.firmware.online import VerifySettings, wait_online
from edgekit.firmware.payload import PayloadSpec, build_payload, prepare_bundle
from edgekit.firmware.requirements import requirements_for
from edgekit.firmware.settings import AgentSettings, BrokerSettings
from edgekit.profiles import load_profile
from tests.integration.firmware_standins import make_bundle, make_device_root, make_wheelhouse, pi4_root

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="installs root-owned files into the stand-in root")]
def provision(root: Path, bundle: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgekit", "provision", "--local", "--root", str(root),
                           "--bundle", str(bundle), "--device-id", "pi-07", "--broker", "mqtt://broker.lan:1883",
                           *extra], capture_output=True, text=True)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """mtime and mode of everything edgekit installs (venv internals aside)."""
    paths = [*(root / "etc/edgekit").rglob("*"), root / "etc/systemd/system/edgekit-agent.service",
             root / "opt/edgekit/venv/.edgekit-requirements", root / "opt/edgekit/bundles/current"]
    return {str(p.relative_to(root)): (p.lstat().st_mtime_ns, p.lstat().st_mode) for p in paths}


def test_provision_detects_installs_is_idempotent_and_swaps_bundles(tmp_path: Path) -> None:
    root = pi4_root(tmp_path / "root")
    wheels = make_wheelhouse(tmp_path / "wheels")
    bundle_a = make_bundle(tmp_path / "a", payload=b"model A\n")
    password = tmp_path / "mqtt-password"
    password.write_text("s3cret-pw\n")
    creds = ["--mqtt-username", "pi-07", "--mqtt-password-file", str(password), "--wheels", str(wheels)]

    first = provision(root, bundle_a, *creds)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "profile raspberry-pi-4 (detected: device-tree model 'Raspberry Pi 4 Model B Rev 1.5'" in first.stdout
    assert "s3cret-pw" not in first.stdout + first.stderr
    assert "online check was skipped" in first.stdout
    etc = root / "etc/edgekit"
    config = (etc / "agent.toml").read_text()
    assert 'profile = "raspberry-pi-4"' in config and 'username = "pi-07"' in config and "s3cret-pw" not in config
    assert 'password_file = "/run/credentials/edgekit-agent.service/mqtt-password"' in config
    secret = etc / "secrets/mqtt-password"
    assert secret.read_text() == "s3cret-pw\n" and secret.stat().st_mode & 0o777 == 0o600
    unit = (root / "etc/systemd/system/edgekit-agent.service").read_text()
    assert "LoadCredential=mqtt-password:/etc/edgekit/secrets/mqtt-password" in unit and "MemoryMax=512M" in unit
    assert os.readlink(root / "etc/systemd/system/multi-user.target.wants/edgekit-agent.service") == \
        "/etc/systemd/system/edgekit-agent.service"
    bundles = root / "opt/edgekit/bundles"
    first_id = os.readlink(bundles / "current")
    assert (bundles / "current/model.onnx").read_bytes() == b"model A\n"

    before = snapshot(root)
    again = provision(root, bundle_a, *creds)
    assert again.returncode == 0, again.stderr
    assert "edgekit: result: changed=0" in again.stdout and "already up to date" in again.stdout
    assert "packages: unchanged" in again.stdout and "bundle: unchanged" in again.stdout
    assert snapshot(root) == before, "a re-run rewrites nothing"

    bundle_b = make_bundle(tmp_path / "b", payload=b"model B\n")
    upgrade = provision(root, bundle_b, *creds)
    assert upgrade.returncode == 0, upgrade.stderr
    second_id = os.readlink(bundles / "current")
    assert second_id != first_id and f"bundle: changed {second_id} (was {first_id})" in upgrade.stdout
    assert "packages: unchanged" in upgrade.stdout, "the venv is not rebuilt for a new bundle"
    assert (bundles / "current/model.onnx").read_bytes() == b"model B\n"
    assert (bundles / first_id).is_dir(), "the previous bundle stays for a rollback"
    assert sorted(p.name for p in bundles.iterdir()) == sorted([first_id, second_id, "current"])

    # A third bundle, and the broker password dropped: the oldest bundle and the stale secret go.
    bundle_c = make_bundle(tmp_path / "c", payload=b"model C\n")
    third = provision(root, bundle_c, "--wheels", str(wheels))
    assert third.returncode == 0, third.stderr
    assert not (bundles / first_id).exists() and (bundles / second_id).is_dir()
    assert not secret.exists() and "secrets: changed removed /etc/edgekit/secrets/mqtt-password" in third.stdout
    assert "LoadCredential=mqtt-password" not in (root / "etc/systemd/system/edgekit-agent.service").read_text()


def test_memory_cgroup_is_turned_on_for_the_next_boot(tmp_path: Path) -> None:
    """install-agent.sh's apply step alone (no venv), on a Pi whose kernel still has the memory cgroup off."""
    root = pi4_root(tmp_path / "root", memory_cgroup=False)
    pi = load_profile("raspberry-pi-4")
    agent = AgentSettings("pi-07", BrokerSettings("mqtt://broker.lan:1883"), make_bundle(tmp_path / "b"))
    (tmp_path / "work").mkdir()
    bundle = prepare_bundle(agent.bundle, pi, tmp_path / "work")
    payload = build_payload(PayloadSpec(pi, agent, DeviceLayout(252), requirements_for(pi, None), bundle, 512),
                            tmp_path / "payload")
    cmd = ["bash", str(payload.dir / "install-agent.sh"), "--root", str(root), "--payload", str(payload.dir), "apply"]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "reboot=yes" in first.stdout and "reboot to enforce MemoryMax=" in first.stdout
    cmdline = (root / "boot/firmware/cmdline.txt").read_text()
    assert cmdline == "console=tty1 root=PARTUUID=4e639091-02 rootwait cgroup_enable=memory\n"
    second = subprocess.run(cmd, capture_output=True, text=True)
    assert "changed=0" in second.stdout and "not active yet: reboot" in second.stdout
    assert (root / "boot/firmware/cmdline.txt").read_text() == cmdline, "added once, still one line"


def test_old_systemd_gets_a_static_service_user_that_reads_its_config_by_group(tmp_path: Path) -> None:
    """JetPack 4 (systemd 237) has no LoadCredential=: install-agent.sh creates the edgekit system user (useradd
    --prefix into the stand-in root) and hands it the config and secrets through its group, never to others."""
    root = make_device_root(tmp_path / "root", placeholder_user=False)
    nano = load_profile("jetson-nano")
    password = tmp_path / "pw"
    password.write_text("s3cret\n")
    agent = AgentSettings("nano-1", BrokerSettings("mqtt://broker.lan:1883", username="nano-1", password_file=password),
                          make_bundle(tmp_path / "b"))
    (tmp_path / "work").mkdir()
    bundle = prepare_bundle(agent.bundle, nano, tmp_path / "work")
    spec = PayloadSpec(nano, agent, DeviceLayout(237), requirements_for(nano, None), bundle, 768)
    payload = build_payload(spec, tmp_path / "payload")
    proc = subprocess.run(["bash", str(payload.dir / "install-agent.sh"), "--root", str(root), "--payload",
                           str(payload.dir), "apply"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    entry = next(line for line in (root / "etc/passwd").read_text().splitlines() if line.startswith("edgekit:"))
    assert entry.endswith(":/var/lib/edgekit:/usr/sbin/nologin")
    gid = int(next(line for line in (root / "etc/group").read_text().splitlines()
                   if line.startswith("edgekit:")).split(":")[2])
    etc = root / "etc/edgekit"
    for path, mode in ((etc / "agent.toml", 0o640), (etc / "secrets", 0o750), (etc / "secrets/mqtt-password", 0o640)):
        assert path.stat().st_gid == gid and path.stat().st_mode & 0o777 == mode, path
    assert 'password_file = "/etc/edgekit/secrets/mqtt-password"' in (etc / "agent.toml").read_text()
    assert "User=edgekit" in (root / "etc/systemd/system/edgekit-agent.service").read_text()


def test_online_check_waits_for_a_fresh_online_status(tmp_path: Path) -> None:
    """Against a real mosquitto on a loopback port, with the retained status an agent would publish."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    broker = MosquittoBroker(workdir=tmp_path / "broker")
    broker.workdir.mkdir()
    broker.start()
    try:
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        now = time.time()
        status = {"v": 1, "device_id": "pi-07", "seq": 1, "ts": now - 600, "state": "online"}
        pub.publish("edgekit/v1/pi-07/status", json.dumps(status), qos=1, retain=True).wait_for_publish(5)
        verify = VerifySettings(BrokerSettings(broker.url), timeout_s=1.5)
        with pytest.raises(ProvisioningError, match=r"last status: online, but from 59\d s before the restart"):
            wait_online(verify, "pi-07", since=now - 2)  # the retained one predates the restart
        fresh = json.dumps({**status, "seq": 2, "ts": time.time()})
        threading.Timer(0.5, lambda: pub.publish("edgekit/v1/pi-07/status", fresh, qos=1, retain=True)).start()
        got = wait_online(VerifySettings(BrokerSettings(broker.url), timeout_s=10), "pi-07", since=now - 2)
        assert got["seq"] == 2
        pub.loop_stop()
        pub.disconnect()
    finally:
        broker.close()

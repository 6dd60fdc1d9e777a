"""``edgekit provision HOST`` over a real ssh connection: a private sshd on a free loopback port, key-based login,
the system ssh client, into a throwaway root (``--root``) shaped like a Raspberry Pi 4 (see test_provision_local).

Needs openssh-server (sshd) and its privilege-separation directory /run/sshd; skipped without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgekit.broker import free_port, wait_for_port
from tests.integration.firmware_standins import make_bundle, make_wheelhouse, pi4_root

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not os.path.exists(SSHD), reason="sshd is not installed (apt-get install openssh-server)"),
    pytest.mark.skipif(not os.path.isdir("/run/sshd"), reason="sshd needs /run/sshd (install -d -m 0755 /run/sshd)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a private sshd that logs in as root needs root"),
]


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[dict[str, object]]:
    d = tmp_path / "sshd"
    d.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client_key")], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    port = free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE)
    try:
        wait_for_port("127.0.0.1", port)
        yield {"port": port, "key": d / "client_key", "known_hosts": d / "known_hosts"}
    finally:
        proc.terminate()
        proc.wait(10)


def provision(sshd: dict[str, object], root: Path, bundle: Path, wheels: Path, port: object = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgekit", "provision", "root@127.0.0.1", "--ssh-port", str(port or sshd["port"]),
         "--ssh-identity", str(sshd["key"]), "--ssh-option", "StrictHostKeyChecking=accept-new",
         "--ssh-option", f"UserKnownHostsFile={sshd['known_hosts']}", "--root", str(root), "--bundle", str(bundle),
         "--device-id", "pi-09", "--broker", "mqtt://broker.lan:1883", "--wheels", str(wheels)],
        capture_output=True, text=True, timeout=300)


def test_provision_over_ssh_is_idempotent(sshd: dict[str, object], tmp_path: Path) -> None:
    root = pi4_root(tmp_path / "root")
    wheels = make_wheelhouse(tmp_path / "wheels")
    bundle = make_bundle(tmp_path / "bundle")
    first = provision(sshd, root, bundle, wheels)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "root@127.0.0.1: profile raspberry-pi-4 (detected: device-tree model" in first.stdout
    assert "edgekit: venv: changed" in first.stdout and "restart=skipped" in first.stdout
    assert (root / "opt/edgekit/venv/bin/edgekit").is_file()
    assert (root / "etc/edgekit/agent.toml").stat().st_mode & 0o777 == 0o600
    assert (root / "opt/edgekit/bundles/current/manifest.json").is_file()
    leftovers = [p for p in Path("/tmp").glob("edgekit-provision.*") if p.stat().st_mtime > time.time() - 120]
    assert not leftovers, f"the payload copy on the device is removed: {leftovers}"

    again = provision(sshd, root, bundle, wheels)
    assert again.returncode == 0, again.stderr
    assert "edgekit: result: changed=0" in again.stdout and "already up to date" in again.stdout


def test_unreachable_host_fails_with_a_hint(sshd: dict[str, object], tmp_path: Path) -> None:
    proc = provision(sshd, tmp_path, make_bundle(tmp_path / "bundle"), make_wheelhouse(tmp_path / "w"),
                     port=free_port())
    assert proc.returncode == 1
    assert "ssh root@127.0.0.1 failed" in proc.stderr and "key-based login only" in proc.stderr

"""``edgekit flash jetson`` through the real command line, against stand-ins for what cannot be here.

NVIDIA's BSP cannot be downloaded in CI, so each test builds a stand-in Linux_for_Tegra tree (firmware_standins):
the documented layout (rootfs/ with etc/nv_tegra_release from apply_binaries.sh, the board .conf, the flash XMLs)
and flash.sh, l4t_initrd_flash.sh and l4t_create_default_user.sh replaced by scripts that record their arguments
(the user tool also adds the user to rootfs/ as the real one does). ``lsusb`` is a stand-in on PATH printing what
the USB bus would show. The tests check what was staged into rootfs/ and the exact commands that ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.firmware.scripts import script
from tests.integration.firmware_standins import (
    add_agent_dependencies,
    fake_lsusb,
    make_bundle,
    make_l4t_tree,
    make_wheelhouse,
    tree_modes,
)

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="flashing writes a root-owned rootfs: needs root")]
APX = ("Bus 001 Device 002: ID 1d6b:0002 Linux Foundation 2.0 root hub\n"
       "Bus 003 Device 009: ID 0955:7523 NVIDIA Corp. APX\n")
RUNNING = "Bus 003 Device 010: ID 0955:7020 NVIDIA Corp. L4T (Linux for Tegra) running on Tegra\n"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP4oJFHvuZkqU4l7Jh74HrvvvsbcHHuMnmNhSOTQ6RuD ops@laptop"
HASH = "$6$edgekitsalt$" + "h" * 86


def edgekit(*args: str, path_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{path_dir}:{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, env=env)


def log_lines(log: Path) -> list[list[str]]:
    return [line.split("\t") for line in log.read_text().splitlines()] if log.exists() else []


def base_args(l4t: Path, profile: str, bundle: Path) -> list[str]:
    return ["flash", "jetson", "--l4t-dir", str(l4t), "--profile", profile, "--bundle", str(bundle),
            "--hostname", "orin-01", "--device-id", "orin-01", "--ssh-key", KEY, "--broker", "mqtt://broker.lan:1883",
            "--timezone", "Europe/Berlin"]


def test_orin_nano_stages_rootfs_and_runs_initrd_flash(tmp_path: Path) -> None:
    l4t, log = make_l4t_tree(tmp_path, release="R36.4", board="jetson-orin-nano-devkit")
    bin_dir = tmp_path / "bin"
    fake_lsusb(bin_dir, APX)
    wheels = make_wheelhouse(tmp_path / "wheels")
    # A complete offline wheelhouse; the GPU wheel is the one the profile names, picked up from there.
    add_agent_dependencies(wheels, gpu_tag="cp310-cp310-linux_aarch64")
    gpu = wheels / "onnxruntime_gpu-1.20.0-cp310-cp310-linux_aarch64.whl"
    bundle = make_bundle(tmp_path / "bundle")
    proc = edgekit(*base_args(l4t, "jetson-orin-nano", bundle), "--password-hash", HASH, "--wheels", str(wheels),
                   "--wifi-ssid", "lab", "--wifi-psk", "correct horse", "--wifi-country", "DE", path_dir=bin_dir)
    assert proc.returncode == 0, proc.stderr

    calls = log_lines(log)
    assert [c[0] for c in calls] == ["l4t_create_default_user.sh", "l4t_initrd_flash.sh"]
    assert all(c[1] == str(l4t) for c in calls), "the tools run from the Linux_for_Tegra directory"
    user_args = calls[0][2].split()
    assert user_args[:2] == ["-u", "edge"] and user_args[4:] == ["-n", "orin-01", "--accept-license"]
    assert len(user_args[3]) >= 20, "a random throwaway password; the given hash replaces it"
    assert user_args[3] not in proc.stdout + proc.stderr, "the throwaway password is never printed"
    assert calls[1][2] == ("--external-device nvme0n1p1 -c tools/kernel_flash/flash_l4t_t234_nvme.xml "
                           "-p -c bootloader/generic/cfg/flash_t234_qspi.xml --showlogs --network usb0 "
                           "jetson-orin-nano-devkit internal")

    rootfs = l4t / "rootfs"
    staged = rootfs / "var/lib/edgekit-firstboot"
    assert staged.stat().st_mode & 0o777 == 0o700
    assert (staged / "install-agent.sh").read_bytes() == script("install-agent.sh").read_bytes()
    assert (staged / "wheels" / gpu.name).is_file() and (staged / "wheels/edgekit-0.1.0-py3-none-any.whl").is_file()
    requirements = (staged / "requirements.txt").read_text().splitlines()
    assert requirements[0] == "edgekit==0.1.0" and requirements[-1] == "onnxruntime-gpu==1.20.0"
    env = (staged / "payload.env").read_text()
    assert "DEVICE_PYTHON=/usr/bin/python3.10" in env and "OFFLINE=1" in env
    unit = (staged / "edgekit-agent.service").read_text()
    assert "SupplementaryGroups=video" in unit and "\nPrivateDevices=" not in unit and "DynamicUser=yes" in unit
    wants = rootfs / "etc/systemd/system/multi-user.target.wants/edgekit-firstboot.service"
    assert os.readlink(wants) == "/etc/systemd/system/edgekit-firstboot.service"
    assert (rootfs / "etc/systemd/system/edgekit-firstboot.service").read_bytes() == \
        script("systemd/edgekit-firstboot.service").read_bytes()

    assert f"edge:{HASH}:" in (rootfs / "etc/shadow").read_text()
    keys = rootfs / "home/edge/.ssh/authorized_keys"
    assert keys.read_text() == KEY + "\n" and keys.stat().st_uid == 1000 and keys.stat().st_mode & 0o777 == 0o600
    assert "PasswordAuthentication yes" in (rootfs / "etc/ssh/sshd_config.d/50-edgekit.conf").read_text()
    wifi = rootfs / "etc/NetworkManager/system-connections/edgekit-wifi.nmconnection"
    assert wifi.stat().st_mode & 0o777 == 0o600 and "psk=correct horse" in wifi.read_text()
    assert os.readlink(rootfs / "etc/localtime") == "/usr/share/zoneinfo/Europe/Berlin"
    assert (rootfs / "etc/hostname").read_text().strip() == "orin-01"
    assert "correct horse" not in proc.stdout + proc.stderr


def test_dry_run_prints_every_command_and_changes_nothing(tmp_path: Path) -> None:
    l4t, log = make_l4t_tree(tmp_path, release="R36.4", board="jetson-orin-nano-devkit")
    bin_dir = tmp_path / "bin"
    fake_lsusb(bin_dir, "")  # no board attached: a dry run does not look
    before = tree_modes(l4t)
    proc = edgekit(*base_args(l4t, "jetson-orin-nano", make_bundle(tmp_path / "bundle")), "--dry-run",
                   path_dir=bin_dir)
    assert proc.returncode == 0, proc.stderr
    assert tree_modes(l4t) == before and not log.exists()
    out = proc.stdout
    assert "dry run: nothing is changed" in out
    assert "$ ./tools/l4t_create_default_user.sh -u edge -p '<random password>' -n orin-01 --accept-license" in out
    assert "$ ./tools/kernel_flash/l4t_initrd_flash.sh --external-device nvme0n1p1" in out
    assert "onnxruntime-gpu==1.20.0" in out, "without a wheel, first boot fetches it from the JetPack index"


def test_jetson_nano_uses_flash_sh_and_the_legacy_unit(tmp_path: Path) -> None:
    l4t, log = make_l4t_tree(tmp_path, release="R32.7", board="jetson-nano-devkit", python="3.10")
    bin_dir = tmp_path / "bin"
    fake_lsusb(bin_dir, "Bus 001 Device 004: ID 0955:7f21 NVIDIA Corp. APX\n")
    bundle = make_bundle(tmp_path / "bundle")
    # The profile's wheel is the cp36 build of JetPack 4.6; the agent runs on Python 3.10.
    cp36 = tmp_path / "onnxruntime_gpu-1.11.0-cp36-cp36m-linux_aarch64.whl"
    cp36.write_bytes(b"x")
    refused = edgekit(*base_args(l4t, "jetson-nano", bundle), "--ort-wheel", str(cp36), path_dir=bin_dir)
    assert refused.returncode == 1 and "not an onnxruntime-gpu wheel for CPython 3.10" in refused.stderr
    no_index = edgekit(*base_args(l4t, "jetson-nano", bundle), path_dir=bin_dir)
    assert no_index.returncode == 1 and "no package index serves onnxruntime-gpu for JetPack 4.6" in no_index.stderr
    assert not log.exists(), "nothing ran before the checks passed"

    cp310 = tmp_path / "onnxruntime_gpu-1.16.0-cp310-cp310-linux_aarch64.whl"
    cp310.write_bytes(b"x")
    proc = edgekit(*base_args(l4t, "jetson-nano", bundle), "--ort-wheel", str(cp310), path_dir=bin_dir)
    assert proc.returncode == 0, proc.stderr
    assert [(c[0], c[2]) for c in log_lines(log)][-1] == ("flash.sh", "jetson-nano-devkit mmcblk0p1")
    unit = (l4t / "rootfs/var/lib/edgekit-firstboot/edgekit-agent.service").read_text()
    assert "User=edgekit" in unit and "MemoryLimit=768M" in unit and "\nDynamicUser=" not in unit
    assert "SERVICE_USER=edgekit" in (l4t / "rootfs/var/lib/edgekit-firstboot/payload.env").read_text()
    sshd = (l4t / "rootfs/etc/ssh/sshd_config").read_text()
    assert sshd.startswith("# --- edgekit ---\n") and "PasswordAuthentication no" in sshd, \
        "Ubuntu 18.04 has no sshd_config.d: the policy is prepended (sshd keeps the first value)"
    assert "edge:*:" in (l4t / "rootfs/etc/shadow").read_text(), "key-only: no password can match"


def test_refuses_a_board_not_in_recovery_and_a_wrong_l4t(tmp_path: Path) -> None:
    l4t, log = make_l4t_tree(tmp_path, release="R36.4", board="jetson-orin-nano-devkit")
    bin_dir = tmp_path / "bin"
    fake_lsusb(bin_dir, RUNNING)
    bundle = make_bundle(tmp_path / "bundle")
    proc = edgekit(*base_args(l4t, "jetson-orin-nano", bundle), path_dir=bin_dir)
    assert proc.returncode == 1 and "running Linux (0955:7020), not in recovery mode" in proc.stderr
    assert not log.exists() and not (l4t / "rootfs/var/lib/edgekit-firstboot").exists()
    wrong = edgekit(*base_args(l4t, "jetson-nano", bundle), path_dir=bin_dir)
    assert wrong.returncode == 1 and "is not an unpacked Linux_for_Tegra tree for jetson-nano" in wrong.stderr
    (l4t / "jetson-nano-devkit.conf").write_text("")
    wrong = edgekit(*base_args(l4t, "jetson-nano", bundle), path_dir=bin_dir)
    assert wrong.returncode == 1 and "holds L4T R36.4, but profile jetson-nano needs L4T R32.7" in wrong.stderr

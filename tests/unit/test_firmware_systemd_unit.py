"""The agent's systemd unit rendered per profile: memory cap, identity, and the hardening each runtime allows."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edgekit.firmware.layout import DeviceLayout, systemd_for
from edgekit.firmware.systemd_unit import render_unit
from edgekit.profiles import load_profile

pytestmark = pytest.mark.unit


def directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def render(name: str, version: int | None = None, **kw: object) -> dict[str, list[str]]:
    profile = load_profile(name)
    layout = DeviceLayout(version or systemd_for(profile, "bookworm" if "raspberry" in name else None))
    args = {"device_id": "dev-1", "memory_cap_mb": profile.memory.cap_mb,
            "layout": layout, "secrets": ["client.key"]} | kw
    return directives(render_unit(profile, **args))  # type: ignore[arg-type]


def test_raspberry_pi_unit_is_notify_watched_capped_and_hardened() -> None:
    d = render("raspberry-pi-4")
    assert d["Type"] == ["notify"] and d["Restart"] == ["on-failure"] and int(d["WatchdogSec"][0]) > 0
    assert d["MemoryMax"] == ["512M"] and d["MemoryHigh"] == ["460M"] and d["MemorySwapMax"] == ["0"]
    assert d["DynamicUser"] == ["yes"] and d["StateDirectory"] == ["edgekit"]
    for key in ("ProtectSystem", "NoNewPrivileges", "ProtectHome", "PrivateTmp", "ProtectKernelTunables",
                "RestrictNamespaces", "LockPersonality", "MemoryDenyWriteExecute", "ProtectClock"):
        assert key in d, key
    assert d["ProtectSystem"] == ["strict"]
    assert d["DevicePolicy"] == ["closed"] and d["DeviceAllow"] == ["/dev/vcio rw"], "vcgencmd needs /dev/vcio"
    assert d["LoadCredential"] == ["agent.toml:/etc/edgekit/agent.toml", "client.key:/etc/edgekit/secrets/client.key"]
    assert d["ExecStart"] == ["/opt/edgekit/venv/bin/edgekit agent --config %d/agent.toml"], \
        "agent.toml (handed over as a credential) is the one source of the agent's settings"
    assert d["Description"] == ["edgekit inference agent (device dev-1, profile raspberry-pi-4)"]


def test_memory_cap_override_sets_max_and_high() -> None:
    d = render("raspberry-pi-4", memory_cap_mb=256)
    assert d["MemoryMax"] == ["256M"] and d["MemoryHigh"] == ["230M"]


def test_jetson_keeps_cuda_reachable() -> None:
    d = render("jetson-orin-nano")
    assert "PrivateDevices" not in d and "DevicePolicy" not in d and "DeviceAllow" not in d
    assert "ProtectClock" not in d, "ProtectClock implies DeviceAllow=char-rtc, an allow-list that shuts out CUDA"
    assert "MemoryDenyWriteExecute" not in d, "the CUDA driver JIT-compiles PTX"
    assert d["SupplementaryGroups"] == ["video"]
    assert d["DynamicUser"] == ["yes"], "JetPack 6 has systemd 249: credentials work"


def test_openvino_gets_no_write_execute_ban() -> None:
    d = render("intel-nuc", 252)
    assert "MemoryDenyWriteExecute" not in d and d["PrivateDevices"] == ["yes"]
    assert "MemoryDenyWriteExecute" in render("generic-x86_64", 252)


def test_old_systemd_uses_a_static_user_and_cgroup_v1_limit() -> None:
    text = render_unit(load_profile("jetson-nano"), device_id="nano-1", memory_cap_mb=768,
                       layout=DeviceLayout(237), secrets=["mqtt-password"])
    d = directives(text)
    assert d["User"] == ["edgekit"] and "DynamicUser" not in d and "LoadCredential" not in d
    assert d["ExecStart"] == ["/opt/edgekit/venv/bin/edgekit agent --config /etc/edgekit/agent.toml"]
    assert d["MemoryLimit"] == ["768M"] and d["MemoryMax"] == ["768M"]
    for newer in ("ProtectProc", "ProtectKernelLogs", "ProtectHostname", "RestrictSUIDSGID"):
        assert newer not in d
        assert re.search(rf"^# {newer}=.*needs systemd >= \d+; this device has 237", text, re.M), newer


@pytest.mark.parametrize("name", ["raspberry-pi-5", "jetson-orin-nano", "intel-nuc"])
def test_systemd_analyze_verify_accepts_the_unit(name: str, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    profile = load_profile(name)
    text = render_unit(profile, device_id="dev-1", memory_cap_mb=profile.memory.cap_mb,
                       layout=DeviceLayout(252), secrets=["client.key", "mqtt-password"])
    # verify insists the ExecStart binary exists: point it at a stand-in executable.
    exe = tmp_path / "edgekit"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    unit = tmp_path / "edgekit-agent.service"
    unit.write_text(text.replace("/opt/edgekit/venv/bin/edgekit", str(exe)))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    problems = [ln for ln in proc.stderr.splitlines() if str(unit) in ln or "edgekit-agent" in ln]
    assert proc.returncode == 0, proc.stderr
    assert not problems, problems

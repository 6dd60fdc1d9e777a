"""Render ``edgekit-agent.service`` from ``firmware_scripts/systemd/edgekit-agent.service.in`` and a profile.

The template holds what every device gets (Type=notify, watchdog, Restart=on-failure, the hardening list); this
module fills in what depends on the device: the memory cap, the identity (DynamicUser= with credentials, or a
static user on old systemd), and device access, leaving out the hardening the profile's runtime cannot live with:

* Jetson (CUDA): no ``PrivateDevices=`` (CUDA needs /dev/nvmap, /dev/nvhost-*), ``SupplementaryGroups=video``, no
  ``ProtectClock=`` (it implies ``DeviceAllow=char-rtc r``, which turns the device list into an allow-list that
  shuts CUDA out) and no ``MemoryDenyWriteExecute=`` (the CUDA driver JIT-compiles PTX into executable memory).
* OpenVINO: no ``MemoryDenyWriteExecute=`` (its CPU plugin JIT-compiles kernels).
* Raspberry Pi: /dev/vcio only (``vcgencmd`` reads throttling and, on the Pi 5, the PMIC power rails).

Directives newer than the device's systemd are commented out with the version they need.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from edgekit.firmware.layout import CONFIG, ETC, VENV, DeviceLayout
from edgekit.firmware.scripts import script
from edgekit.profiles.model import DeviceProfile

TEMPLATE = "systemd/edgekit-agent.service.in"
WATCHDOG_SEC = 60

# First systemd release that knows each directive (systemd NEWS). Unknown directives only warn, but a unit that
# silently lacks its sandbox should say so in the file.
MIN_SYSTEMD = {
    "ProtectClock": 245,
    "ProtectKernelLogs": 244,
    "ProtectHostname": 242,
    "ProtectProc": 247,
    "RestrictSUIDSGID": 242,
    "LoadCredential": 247,
    "SystemCallFilter": 239,  # the @system-service group
    "CacheDirectory": 235,
    "StateDirectory": 235,
    "LockPersonality": 235,
    "DynamicUser": 235,
}


def _is_jetson(profile: DeviceProfile) -> bool:
    return bool(profile.flash and profile.flash.method.startswith("l4t")) or "cuda" in profile.accelerators


def _is_raspberry_pi(profile: DeviceProfile) -> bool:
    return bool(profile.flash and profile.flash.method == "rpi-image") or any(
        "raspberry pi" in m.lower() for m in profile.detect.device_tree_model
    )


def memory_lines(profile: DeviceProfile, cap_mb: int, layout: DeviceLayout) -> list[str]:
    high = max(1, cap_mb * profile.memory.soft_limit_pct // 100)
    lines = ["MemoryAccounting=yes", f"MemoryHigh={high}M", f"MemoryMax={cap_mb}M", "MemorySwapMax=0"]
    if not layout.credentials:
        # Ubuntu 18.04/20.04 mount the cgroup v1 memory controller, where only MemoryLimit= is enforced.
        lines.append(f"MemoryLimit={cap_mb}M")
    return lines


def identity_lines(layout: DeviceLayout, secrets: Iterable[str]) -> list[str]:
    if layout.credentials:
        lines = [
            "# A transient user per run; root-only files reach it as credentials under %d (/run/credentials/...).",
            "DynamicUser=yes",
            f"LoadCredential=agent.toml:{CONFIG}",
        ]
        lines += [f"LoadCredential={name}:{ETC}/secrets/{name}" for name in sorted(secrets)]
        return lines
    return [
        "# This systemd predates credentials: a static system user reads /etc/edgekit through its group.",
        f"User={layout.service_user}",
        f"Group={layout.service_user}",
    ]


def device_lines(profile: DeviceProfile) -> list[str]:
    lines: list[str] = []
    if _is_jetson(profile):
        lines += [
            "# Jetson: CUDA needs /dev/nvmap and /dev/nvhost-*, so no PrivateDevices=; the video group opens them.",
            "SupplementaryGroups=video",
            "# No ProtectClock=: it implies DeviceAllow=char-rtc, which would turn device access into an allow-list.",
            "# No MemoryDenyWriteExecute=: the CUDA driver JIT-compiles PTX into executable memory.",
        ]
        return lines
    lines.append("ProtectClock=yes")
    if _is_raspberry_pi(profile):
        lines += [
            "# Raspberry Pi: only /dev/vcio, for vcgencmd (throttling flags; power rails on the Pi 5).",
            "DevicePolicy=closed",
            "DeviceAllow=/dev/vcio rw",
            "SupplementaryGroups=video",
        ]
    else:
        lines.append("PrivateDevices=yes")
    if profile.runtime.name == "openvino":
        lines.append("# No MemoryDenyWriteExecute=: OpenVINO's CPU plugin JIT-compiles its kernels.")
    else:
        lines.append("MemoryDenyWriteExecute=yes")
    return lines


def exec_start(layout: DeviceLayout) -> str:
    # Everything else (device id, broker, bundle, memory cap, credentials) is in agent.toml: one source of truth
    # that `edgekit provision` rewrites, rather than flags that would silently override an edited file.
    return f"{VENV}/bin/edgekit agent --config {layout.config_arg}"


def _gate(text: str, version: int) -> str:
    out = []
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=", line)
        need = MIN_SYSTEMD.get(m.group(1), 0) if m else 0
        out.append(f"# {line}  (needs systemd >= {need}; this device has {version})" if need > version else line)
    return "\n".join(out) + "\n"


def render_unit(profile: DeviceProfile, *, device_id: str, memory_cap_mb: int, layout: DeviceLayout,
                secrets: Iterable[str] = (), watchdog_sec: int = WATCHDOG_SEC) -> str:
    """The unit text for this profile and device. ``secrets`` are names under /etc/edgekit/secrets."""
    blocks = {
        "@DEVICE_ID@": device_id,
        "@PROFILE@": profile.name,
        "@EXEC_START@": exec_start(layout),
        "@WATCHDOG_SEC@": str(watchdog_sec),
        "@MEMORY@": "\n".join(memory_lines(profile, memory_cap_mb, layout)),
        "@IDENTITY@": "\n".join(identity_lines(layout, secrets)),
        "@DEVICES@": "\n".join(device_lines(profile)),
    }
    text = script(TEMPLATE).read_text(encoding="utf-8")
    # The template's own header comment describes the template, not the rendered unit.
    body = text[text.index("[Unit]"):]
    for key, value in blocks.items():
        body = body.replace(key, value)
    header = (f"# edgekit agent for {device_id} (profile {profile.name}), rendered by edgekit from\n"
              "# firmware_scripts/systemd/edgekit-agent.service.in. Re-run edgekit provision to change it.\n")
    return _gate(header + body, layout.systemd_version)

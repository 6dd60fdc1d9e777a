"""Where the agent lives on a device, and how its secrets reach it.

systemd >= 248 (Raspberry Pi OS Bookworm/Trixie, JetPack 6) runs the agent as a ``DynamicUser=`` and hands it
root-only files through ``LoadCredential=`` (readable under ``%d``, i.e. ``/run/credentials/<unit>/``). Older
systemd (JetPack 4 on Ubuntu 18.04: 237; JetPack 5 on 20.04: 245) has no credentials, so there the agent runs
as a static ``edgekit`` system user that may read ``/etc/edgekit`` through its group.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.profiles.model import DeviceProfile

UNIT_NAME = "edgekit-agent.service"
PREFIX = "/opt/edgekit"
VENV = f"{PREFIX}/venv"
CURRENT_BUNDLE = f"{PREFIX}/bundles/current"
ETC = "/etc/edgekit"
CONFIG = f"{ETC}/agent.toml"
FIRSTBOOT_DIR = "/var/lib/edgekit-firstboot"
CREDENTIALS_MIN_SYSTEMD = 248  # LoadCredential= is 247, the %d specifier 248
SERVICE_USER = "edgekit"

# The systemd each supported OS line ships; `edgekit provision` asks the device instead.
SYSTEMD_BY_RELEASE = {"bookworm": 252, "trixie": 257, "R32": 237, "R35": 245, "R36": 249}


@dataclass(frozen=True)
class DeviceLayout:
    systemd_version: int

    @property
    def credentials(self) -> bool:
        return self.systemd_version >= CREDENTIALS_MIN_SYSTEMD

    @property
    def config_arg(self) -> str:
        """The --config argument on ExecStart=."""
        return "%d/agent.toml" if self.credentials else CONFIG

    @property
    def service_user(self) -> str:
        """The static user for old systemd; empty with DynamicUser=."""
        return "" if self.credentials else SERVICE_USER

    def secret_path(self, name: str) -> str:
        """Where the agent reads secret ``name`` at run time."""
        return f"/run/credentials/{UNIT_NAME}/{name}" if self.credentials else f"{ETC}/secrets/{name}"

    @staticmethod
    def tls_path(name: str) -> str:
        return f"{ETC}/tls/{name}"


def systemd_for(profile: DeviceProfile, os_release: str | None = None) -> int:
    """The systemd version of the OS a flashed image will run (by Raspberry Pi OS release or L4T line)."""
    if os_release in SYSTEMD_BY_RELEASE:
        return SYSTEMD_BY_RELEASE[os_release]
    l4t = profile.flash.l4t if profile.flash else None
    if l4t:
        return SYSTEMD_BY_RELEASE.get(l4t.split(".")[0], 237)
    return SYSTEMD_BY_RELEASE["bookworm"]

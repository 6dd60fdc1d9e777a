"""What goes on a Raspberry Pi boot partition: the edited ``cmdline.txt``, the Bookworm ``firstrun.sh`` settings,
and the Trixie cloud-init seed.

cmdline.txt must stay one line: the firmware reads only the first. Every edit here is idempotent, so a customised
image can be customised again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from edgekit.errors import ProvisioningError
from edgekit.firmware.safe_write import shell_env, write_file, write_private
from edgekit.firmware.scripts import script
from edgekit.firmware.settings import SystemSettings

FIRSTRUN_ARGS = ("systemd.run=/boot/firstrun.sh", "systemd.run_success_action=reboot",
                 "systemd.unit=kernel-command-line.target")
CLOUD_INIT_RUNCMD = ["bash", "/boot/firmware/firstrun.sh", "--stage", "cloud-init"]
# The groups Raspberry Pi OS gives its first user.
USER_GROUPS = ["users", "adm", "dialout", "audio", "netdev", "video", "plugdev", "cdrom", "games", "input", "gpio",
               "spi", "i2c", "render", "sudo"]
_MANAGED_PREFIXES = ("systemd.run=", "systemd.run_success_action=", "ds=", "cfg80211.ieee80211_regdom=")


def edit_cmdline(text: str, release: str, *, instance_id: str, wifi_country: str | None) -> str:
    """``cmdline.txt`` with the memory cgroup on and this release's first-boot hook, as one line."""
    tokens = text.replace("\r", " ").replace("\n", " ").split()
    if not any(t.startswith("root=") for t in tokens):
        raise ProvisioningError(f"cmdline.txt has no root= argument ({text.strip()[:80]!r}): not a Raspberry Pi OS "
                                "boot partition")
    kept = [t for t in tokens if not t.startswith(_MANAGED_PREFIXES)
            and t not in ("systemd.unit=kernel-command-line.target", "cgroup_enable=memory")]
    # Raspberry Pi OS kernels ship with the memory cgroup off; without it MemoryMax= is silently not enforced.
    kept.append("cgroup_enable=memory")
    if wifi_country:
        kept.append(f"cfg80211.ieee80211_regdom={wifi_country}")
    if release == "bookworm":
        kept.extend(FIRSTRUN_ARGS)
    else:
        kept.append(f"ds=nocloud;i={instance_id}")
    return " ".join(kept) + "\n"


def _yaml(value: object) -> str:
    # JSON scalars and flow sequences are valid YAML, and JSON quoting escapes everything that needs it.
    return json.dumps(value, ensure_ascii=False)


def user_data(system: SystemSettings) -> str:
    login = system.login
    lines = [
        "#cloud-config",
        "# Written by edgekit flash rpi. firstrun.sh deletes this file once cloud-init has applied it (it holds",
        "# the password hash) and then disables cloud-init.",
        f"hostname: {_yaml(system.hostname)}",
        "manage_etc_hosts: true",
    ]
    if system.timezone:
        lines.append(f"timezone: {_yaml(system.timezone)}")
    lines += [
        "users:",
        f"  - name: {_yaml(login.user)}",
        f"    groups: {_yaml(USER_GROUPS)}",
        "    shell: /bin/bash",
        '    sudo: "ALL=(ALL) NOPASSWD:ALL"',
        f"    lock_passwd: {'false' if login.password_hash else 'true'}",
    ]
    if login.password_hash:
        lines.append(f"    passwd: {_yaml(login.password_hash)}")
    if login.ssh_keys:
        lines.append(f"    ssh_authorized_keys: {_yaml(list(login.ssh_keys))}")
    lines += [
        f"ssh_pwauth: {'true' if login.password_hash else 'false'}",
        "disable_root: true",
        "runcmd:",
        f"  - {_yaml(CLOUD_INIT_RUNCMD)}",
    ]
    return "\n".join(lines) + "\n"


def network_config(system: SystemSettings) -> str:
    lines = [
        "# Written by edgekit flash rpi; firstrun.sh deletes it once applied (it holds the Wi-Fi key).",
        "version: 2",
        "ethernets:",
        "  eth0:",
        "    dhcp4: true",
        "    optional: true",
    ]
    if system.wifi:
        w = system.wifi
        lines += [
            "wifis:",
            "  wlan0:",
            "    dhcp4: true",
            "    optional: true",
            f"    regulatory-domain: {_yaml(w.country)}",
            "    access-points:",
            f"      {_yaml(w.ssid)}:",
            f"        password: {_yaml(w.psk)}",
        ]
    return "\n".join(lines) + "\n"


def meta_data(instance_id: str, hostname: str) -> str:
    # A new instance-id per flash makes cloud-init treat the card as a new machine and run the seed.
    return f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n"


def stage_boot_files(stage: Path, system: SystemSettings, release: str, instance_id: str) -> None:
    """Write the first-boot files (besides the payload) into ``stage``, laid out as the boot partition's root."""
    shutil.copyfile(script("rpi/firstrun.sh"), stage / "firstrun.sh")
    # Raspberry Pi OS enables sshd on the next boot when a file named ssh is on the boot partition.
    write_file(stage / "ssh", "")
    firstrun = stage / "edgekit" / "firstrun"
    firstrun.mkdir(parents=True, mode=0o700)
    settings = {
        "FIRSTRUN_RELEASE": release,
        "FIRSTRUN_HOSTNAME": system.hostname,
        "FIRSTRUN_USER": system.login.user,
        "FIRSTRUN_TIMEZONE": system.timezone or "",
        "FIRSTRUN_WIFI_SSID": system.wifi.ssid if system.wifi else "",
        "FIRSTRUN_WIFI_COUNTRY": system.wifi.country if system.wifi else "",
        "FIRSTRUN_SSH_PASSWORDS": "yes" if system.login.password_hash else "no",
    }
    write_file(firstrun / "settings.env", shell_env(settings, "edgekit firstrun settings (no secrets)"))
    if release == "bookworm":
        if system.login.password_hash:
            write_private(firstrun / "password-hash", system.login.password_hash + "\n")
        if system.login.ssh_keys:
            write_file(firstrun / "authorized_keys", "\n".join(system.login.ssh_keys) + "\n")
        if system.wifi:
            write_private(firstrun / "wifi-psk", system.wifi.psk + "\n")
    else:
        write_private(stage / "user-data", user_data(system))
        write_private(stage / "network-config", network_config(system))
        write_file(stage / "meta-data", meta_data(instance_id, system.hostname))

"""Apply login, SSH, Wi-Fi and timezone settings directly to an unpacked root file system (a Jetson ``rootfs/``),
the way the device's own tools would have written them. Secrets land root-only (0600/0640 as the OS expects)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

from edgekit.errors import ProvisioningError
from edgekit.firmware.safe_write import write_file, write_private
from edgekit.firmware.settings import LoginSettings, WifiSettings


def passwd_entry(rootfs: Path, user: str) -> list[str] | None:
    """The user's /etc/passwd fields in ``rootfs``, or None."""
    try:
        for line in (rootfs / "etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == user and len(fields) >= 7:
                return fields
    except FileNotFoundError:
        pass
    return None


def set_password_field(rootfs: Path, user: str, value: str) -> None:
    """Replace the user's hash in rootfs/etc/shadow, keeping the file's mode and owner."""
    shadow = rootfs / "etc/shadow"
    lines = shadow.read_text().splitlines()
    for i, line in enumerate(lines):
        fields = line.split(":")
        if fields[0] == user:
            fields[1] = value
            lines[i] = ":".join(fields)
            break
    else:
        raise ProvisioningError(f"{shadow} has no entry for {user}: the user was not created")
    st = shadow.stat()
    fd, tmp = tempfile.mkstemp(dir=shadow.parent, prefix=".shadow.")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    shutil.copystat(shadow, tmp)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, shadow)


def apply_login(rootfs: Path, login: LoginSettings) -> None:
    """Set the hash (or ``*``: no password can match, keys still work), authorized_keys and the sshd policy."""
    set_password_field(rootfs, login.user, login.password_hash or "*")
    entry = passwd_entry(rootfs, login.user)
    assert entry is not None
    uid, gid, home = int(entry[2]), int(entry[3]), entry[5]
    if login.ssh_keys:
        ssh_dir = rootfs / home.lstrip("/") / ".ssh"
        ssh_dir.mkdir(parents=True, exist_ok=True)
        ssh_dir.chmod(0o700)
        keys = write_private(ssh_dir / "authorized_keys", "\n".join(login.ssh_keys) + "\n")
        for path in (ssh_dir, keys):
            os.chown(path, uid, gid)
    policy = ["# Written by edgekit: root never logs in over SSH; passwords only when a hash was given.",
              "PermitRootLogin no"]
    policy += ["PasswordAuthentication yes"] if login.password_hash else [
        "PasswordAuthentication no", "ChallengeResponseAuthentication no"]
    sshd = rootfs / "etc/ssh/sshd_config"
    if sshd.is_file() and "sshd_config.d" not in sshd.read_text():
        # Ubuntu 18.04 (JetPack 4) has no drop-in directory; sshd takes the first value it reads, so prepend.
        text = sshd.read_text()
        marker = "# --- edgekit ---"
        if marker in text:
            text = text.split(marker + " end\n", 1)[-1]
        write_file(sshd, f"{marker}\n" + "\n".join(policy) + f"\n{marker} end\n" + text)
    else:
        write_file(rootfs / "etc/ssh/sshd_config.d/50-edgekit.conf", "\n".join(policy) + "\n")


def nm_keyfile(wifi: WifiSettings) -> str:
    """A NetworkManager connection for the Wi-Fi network (NetworkManager ignores it unless it is 0600)."""

    def esc(value: str) -> str:
        return value.replace("\\", "\\\\")

    return (f"[connection]\nid=edgekit-wifi\nuuid={uuid.uuid4()}\ntype=wifi\nautoconnect=true\n\n"
            f"[wifi]\nmode=infrastructure\nssid={esc(wifi.ssid)}\n\n"
            f"[wifi-security]\nkey-mgmt=wpa-psk\npsk={esc(wifi.psk)}\n\n"
            "[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto\n")


def apply_wifi(rootfs: Path, wifi: WifiSettings) -> None:
    directory = rootfs / "etc/NetworkManager/system-connections"
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    write_private(directory / "edgekit-wifi.nmconnection", nm_keyfile(wifi))


def apply_timezone(rootfs: Path, timezone: str) -> None:
    localtime = rootfs / "etc/localtime"
    if localtime.is_symlink() or localtime.exists():
        localtime.unlink()
    localtime.symlink_to(f"/usr/share/zoneinfo/{timezone}")
    write_file(rootfs / "etc/timezone", timezone + "\n")

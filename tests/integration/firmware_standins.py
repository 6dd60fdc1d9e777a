"""Stand-ins for what cannot exist on a CI machine, built from the documented layouts, for the firmware tests:

* a Raspberry Pi OS disk image: MBR, FAT32 boot partition (cmdline.txt, config.txt, issue.txt; Trixie also a
  cloud-init template seed) and an ext4 root partition, made with sfdisk, mkfs.vfat and mkfs.ext4;
* a device root directory (/etc/passwd, group, shadow, a placeholder uid-1000 user like Raspberry Pi OS images,
  ssh.service, sysfs cgroup controllers, rfkill state) for running first-boot scripts with --root;
* a Linux bundle (valid manifest, real checksums; the artifact is a small file because flashing never loads it);
* a wheelhouse whose edgekit wheel is a stand-in (no dependencies, an `edgekit` console script that answers
  `profiles detect --json`), so pip installs it offline in seconds;
* an NVIDIA Linux_for_Tegra tree whose tools record their arguments instead of touching USB.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

from edgekit import __version__
from edgekit.manifest import Artifact, Manifest, ModelInfo, TensorSpec, now_iso, write_manifest

EDGEKIT = [str(Path(__file__).resolve().parents[2] / ".venv/bin/edgekit")]
MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
BOOT_START = 8192  # sectors, as Raspberry Pi OS images lay it out
BOOT_SECTORS = 131072  # 64 MiB (FAT32 needs at least ~33 MiB with 512-byte clusters)
ROOT_SECTORS = 65536  # 32 MiB of ext4

ISSUE = {
    "bookworm": "Raspberry Pi reference 2024-11-19\nGenerated using pi-gen, https://github.com/RPi-Distro/pi-gen, "
                "891df1e21ed2b6099a2e6a13e26c91dea44b34d4, stage2\n",
    "trixie": "Raspberry Pi reference 2025-10-01 (trixie)\nGenerated using pi-gen, "
              "https://github.com/RPi-Distro/pi-gen, 0c7b3a1b5e2f4d9a8c6e1f3b2a4d5c6e7f8a9b0c, stage2\n",
}
CMDLINE = ("console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes "
           "rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n")
CONFIG_TXT = "# For more options and information see\n# http://rptl.io/configtxt\ndtparam=audio=on\narm_64bit=1\n"


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)  # type: ignore[call-overload]


def make_pi_image(path: Path, release: str) -> Path:
    """A Raspberry Pi OS shaped image file of the given generation."""
    size = (BOOT_START + BOOT_SECTORS + ROOT_SECTORS) * 512
    with path.open("wb") as f:
        f.truncate(size)
    table = (f"label: dos\nlabel-id: 0x4e639091\nstart={BOOT_START}, size={BOOT_SECTORS}, type=c\n"
             f"start={BOOT_START + BOOT_SECTORS}, size={ROOT_SECTORS}, type=83\n")
    run(["sfdisk", "-q", str(path)], input=table)
    run(["mkfs.vfat", "-F", "32", "-n", "bootfs", "--offset", str(BOOT_START), str(path), str(BOOT_SECTORS // 2)])
    run(["mkfs.ext4", "-q", "-F", "-L", "rootfs", "-E", f"offset={(BOOT_START + BOOT_SECTORS) * 512}", str(path),
         f"{ROOT_SECTORS // 2}k"])
    files = {"cmdline.txt": CMDLINE, "config.txt": CONFIG_TXT, "issue.txt": ISSUE[release]}
    if release == "trixie":  # Trixie images carry a cloud-init template seed on the boot partition
        files |= {"user-data": "#cloud-config\n", "meta-data": "instance-id: rpios-image\n",
                  "network-config": "version: 2\n"}
    src = path.parent / f".{path.name}.files"
    src.mkdir()
    for name, text in files.items():
        (src / name).write_text(text)
    run(["mcopy", "-i", f"{path}@@{BOOT_START * 512}", *(str(src / n) for n in files), "::/"], env=MTOOLS_ENV)
    shutil.rmtree(src)
    return path


def fat_read(image: Path, name: str) -> bytes:
    return subprocess.run(["mcopy", "-n", "-i", f"{image}@@{BOOT_START * 512}", f"::/{name}", "-"], check=True,
                          capture_output=True, env=MTOOLS_ENV).stdout


def fat_extract(image: Path, dest: Path) -> Path:
    """Copy every file of the boot partition into ``dest`` (as the running system would see /boot/firmware)."""
    dest.mkdir(parents=True, exist_ok=True)
    run(["mcopy", "-s", "-n", "-i", f"{image}@@{BOOT_START * 512}", "::/*", str(dest)], env=MTOOLS_ENV)
    return dest


def make_bundle(directory: Path, *, model: str = "minilm", runtime: str = "onnxruntime",
                payload: bytes = b"stand-in model bytes\n") -> Path:
    directory.mkdir(parents=True)
    (directory / "model.onnx").write_bytes(payload)
    sha = hashlib.sha256(payload).hexdigest()
    spec = (TensorSpec("input_ids", "int64", ("batch", "sequence")),)
    manifest = Manifest(
        schema_version=1,
        model=ModelInfo(model, "builtin:stand-in", sha, "feature-extraction", spec,
                        (TensorSpec("embeddings", "float32", ("batch", 384)),)),
        profile="raspberry-pi-4", created=now_iso(), producer={"edgekit": __version__}, platform="linux",
        artifacts=(Artifact("onnx-fp32", "model.onnx", "onnx", "fp32", len(payload), sha, runtime),),
    )
    write_manifest(manifest, directory)
    return directory


def _wheel(path: Path, name: str, version: str, files: dict[str, str], meta: str = "",
           tag: str = "py3-none-any") -> Path:
    dist = f"{name}-{version}.dist-info"
    files = dict(files)
    files[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{meta}"
    purelib = "true" if tag.endswith("-any") else "false"
    files[f"{dist}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: edgekit-tests\nRoot-Is-Purelib: {purelib}\nTag: {tag}\n"
    record = []
    for rel, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{rel},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    out = path / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(out, "w") as zf:
        for rel, text in files.items():
            zf.writestr(rel, text)
    return out


STANDIN_CLI = '''\
import json, sys
def main():
    if sys.argv[1:3] == ["profiles", "detect"]:
        print(json.dumps({"profile": "raspberry-pi-4", "facts": {}, "reasons": ["stand-in"]}))
        return 0
    print("stand-in edgekit", " ".join(sys.argv[1:]))
    return 0
'''


def make_wheelhouse(directory: Path, version: str = __version__) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    _wheel(directory, "edgekit", version, {
        "edgekit_standin.py": STANDIN_CLI,
        f"edgekit-{version}.dist-info/entry_points.txt": "[console_scripts]\nedgekit = edgekit_standin:main\n",
    }, meta="Provides-Extra: agent\nProvides-Extra: openvino\n")
    return directory


def add_agent_dependencies(directory: Path, gpu_tag: str | None = None) -> list[Path]:
    """Stand-in wheels (empty packages) for every dependency of edgekit's agent extra, at a version its specifier
    allows; with ``gpu_tag`` also onnxruntime_gpu 1.20.0 for that tag (a Jetson wheelhouse)."""
    from edgekit.firmware.requirements import agent_dependencies

    made = []
    for spec in agent_dependencies():
        name = re.split(r"[<>=!~\[ ;]", spec)[0].replace("-", "_")
        m = re.search(r">=\s*([0-9.]+)", spec)
        made.append(_wheel(directory, name, m.group(1) if m else "1.0", {}))
    if gpu_tag:
        made.append(_wheel(directory, "onnxruntime_gpu", "1.20.0", {}, tag=gpu_tag))
    return made


def make_device_root(root: Path, *, memory_cgroup: bool = True, placeholder_user: bool = True) -> Path:
    """A throwaway root shaped like a fresh Raspberry Pi OS install, for scripts run with --root."""
    etc = root / "etc"
    etc.mkdir(parents=True)
    passwd = "root:x:0:0:root:/root:/bin/bash\n"
    group = "root:x:0:\nadm:x:4:\nsudo:x:27:\nvideo:x:44:\nusers:x:100:\n"
    shadow = "root:*:19000:0:99999:7:::\n"
    if placeholder_user:  # Raspberry Pi OS images ship uid 1000 with no usable password, renamed on first boot
        passwd += "pi:x:1000:1000:,,,:/home/pi:/bin/bash\n"
        group += "pi:x:1000:\n"
        shadow += "pi:*:19000:0:99999:7:::\n"
        (root / "home/pi").mkdir(parents=True)
    (etc / "passwd").write_text(passwd)
    (etc / "group").write_text(group)
    (etc / "shadow").write_text(shadow)
    (etc / "shadow").chmod(0o640)
    (etc / "gshadow").write_text("".join(f"{line.split(':')[0]}:!::\n" for line in group.splitlines()))
    (etc / "hostname").write_text("raspberrypi\n")
    (etc / "hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n")
    (etc / "sudoers.d").mkdir()
    (etc / "sudoers.d/010_pi-nopasswd").write_text("pi ALL=(ALL) NOPASSWD: ALL\n")
    units = root / "lib/systemd/system"
    units.mkdir(parents=True)
    (units / "ssh.service").write_text("[Unit]\nDescription=OpenBSD Secure Shell server\n[Service]\n"
                                       "ExecStart=/usr/sbin/sshd -D\n[Install]\nWantedBy=multi-user.target\n")
    (root / "etc/systemd/system").mkdir(parents=True)
    cgroup = root / "sys/fs/cgroup"
    cgroup.mkdir(parents=True)
    (cgroup / "cgroup.controllers").write_text("cpuset cpu io " + ("memory " if memory_cgroup else "") + "pids\n")
    rfkill = root / "var/lib/systemd/rfkill"
    rfkill.mkdir(parents=True)
    (rfkill / "platform-3f300000.mmcnr:wlan").write_text("1\n")
    return root


PI4_CPUINFO = "".join(f"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
                      "CPU implementer\t: 0x41\nCPU part\t: 0xd08\n\n" for i in range(4))


def pi4_root(path: Path, *, memory_cgroup: bool = True) -> Path:
    """A device root shaped like a Raspberry Pi 4 on Raspberry Pi OS, for detection and installs."""
    root = make_device_root(path, memory_cgroup=memory_cgroup)
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/cpuinfo").write_text(PI4_CPUINFO)
    (root / "proc/device-tree/model").write_text("Raspberry Pi 4 Model B Rev 1.5\x00")
    (root / "boot/firmware").mkdir(parents=True)
    (root / "boot/firmware/cmdline.txt").write_text("console=tty1 root=PARTUUID=4e639091-02 rootwait\n")
    return root


RECORDING_TOOL = """#!/bin/sh
# Stand-in for an NVIDIA flashing tool: records its arguments and working directory, touches no hardware.
printf '%s\\t%s\\t%s\\n' "$(basename "$0")" "$PWD" "$*" >> "{log}"
{extra}
exit 0
"""

CREATE_USER_EXTRA = r"""
# Like the real tool: add the user (uid 1000) and its hostname to rootfs/.
user=""; host=""
while [ $# -gt 0 ]; do case "$1" in -u) user=$2; shift 2;; -n) host=$2; shift 2;; -p) shift 2;; *) shift;; esac; done
root="$(dirname "$0")/../rootfs"
echo "$user:x:1000:1000::/home/$user:/bin/bash" >> "$root/etc/passwd"
echo "$user:\$6\$random\$hashOfRandomPassword:19000:0:99999:7:::" >> "$root/etc/shadow"
mkdir -p "$root/home/$user"
[ -n "$host" ] && echo "$host" > "$root/etc/hostname"
"""


def make_l4t_tree(base: Path, *, release: str, board: str, python: str = "3.10") -> tuple[Path, Path]:
    """A Linux_for_Tegra stand-in for ``release`` ("R36.4" / "R32.7") and ``board``; returns (tree, tool log)."""
    l4t = base / "Linux_for_Tegra"
    log = (base / "tools.log").resolve()
    major, rev = release[1:].split(".")
    (l4t / "rootfs/etc/ssh").mkdir(parents=True)
    (l4t / "rootfs/usr/bin").mkdir(parents=True)
    (l4t / "rootfs/usr/bin" / f"python{python}").write_text("")
    (l4t / "rootfs/usr/bin/python3.6").write_text("")
    (l4t / "rootfs/etc/nv_tegra_release").write_text(
        f"# R{major} (release), REVISION: {rev}.0, GCID: 38968081, BOARD: generic, EABI: aarch64\n")
    (l4t / "rootfs/etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (l4t / "rootfs/etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    sshd = "Include /etc/ssh/sshd_config.d/*.conf\n" if major != "32" else ""
    (l4t / "rootfs/etc/ssh/sshd_config").write_text(sshd + "UsePAM yes\n")
    (l4t / f"{board}.conf").write_text("# stand-in board config\n")
    for rel in ("tools/kernel_flash/flash_l4t_t234_nvme.xml", "bootloader/generic/cfg/flash_t234_qspi.xml"):
        (l4t / rel).parent.mkdir(parents=True, exist_ok=True)
        (l4t / rel).write_text("<stand-in/>\n")
    tools = {"flash.sh": "", "tools/kernel_flash/l4t_initrd_flash.sh": "",
             "tools/l4t_create_default_user.sh": CREATE_USER_EXTRA}
    for rel, extra in tools.items():
        (l4t / rel).write_text(RECORDING_TOOL.format(log=log, extra=extra))
        (l4t / rel).chmod(0o755)
    return l4t, log


def fake_lsusb(bin_dir: Path, lines: str) -> Path:
    """An ``lsusb`` on PATH that prints ``lines`` (what the USB bus would show)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    tool = bin_dir / "lsusb"
    tool.write_text(f"#!/bin/sh\ncat <<'EOF'\n{lines}EOF\n")
    tool.chmod(0o755)
    return tool


def tree_modes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mode & 0o777 for p in root.rglob("*") if not p.is_symlink()}


def read_json(path: Path) -> object:
    return json.loads(path.read_text())

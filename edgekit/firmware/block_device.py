"""Write an image to an SD card or USB disk, only after proving it is a removable disk nobody is using, then read
it back and compare.

The checks read ``/sys/block`` and ``/proc/mounts``; both roots are parameters so tests use a stand-in tree shaped
like sysfs (with a regular file standing in for the device node).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import ProvisioningError
from edgekit.firmware import bmap

log = logging.getLogger(__name__)
CHUNK = 4 << 20
BLKFLSBUF = 0x1261  # ioctl: drop the kernel's buffer cache for a block device, so read-back hits the card


@dataclass(frozen=True)
class TargetDisk:
    path: Path
    name: str
    size_bytes: int
    why_removable: str


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def check_target(device: Path, *, sys_root: Path = Path("/sys"), mounts: Path = Path("/proc/mounts"),
                 swaps: Path = Path("/proc/swaps")) -> TargetDisk:
    """Refuse anything but a whole, removable, unused disk."""
    if not device.exists():
        raise ProvisioningError(f"--device {device}: no such device; list disks with lsblk -d -o NAME,RM,SIZE,MODEL")
    real = device.resolve()
    stand_in = sys_root != Path("/sys")
    if not stand_in and not stat.S_ISBLK(real.stat().st_mode):
        raise ProvisioningError(f"--device {device} is not a block device; to write an image file use --out")
    name = real.name
    sysdir = sys_root / "block" / name
    if not sysdir.is_dir():
        if (sys_root / "class" / "block" / name / "partition").exists():
            raise ProvisioningError(f"--device {device} is a partition; give the whole disk (e.g. /dev/sdb, not "
                                    "/dev/sdb1)")
        raise ProvisioningError(f"--device {device}: {sysdir} does not exist, so this is not a whole disk")
    why = ""
    if _read(sysdir / "removable") == "1":
        why = "removable medium"
    elif name.startswith("mmcblk"):
        why = "SD/MMC card"
    elif "/usb" in os.path.realpath(sysdir):
        why = "USB disk"
    if not why:
        raise ProvisioningError(
            f"--device {device} is not removable (/sys/block/{name}/removable is not 1 and it is neither an SD card "
            "nor on USB); edgekit refuses to overwrite what may be a system disk"
        )
    size = int(_read(sysdir / "size") or 0) * 512
    if size == 0:
        raise ProvisioningError(f"--device {device} has size 0: is a card in the reader?")
    names = {name} | {p.name for p in sysdir.iterdir() if (p / "partition").exists()}
    for table, what in ((mounts, "mounted at"), (swaps, "used as swap")):
        for line in _read(table).splitlines():
            fields = line.split()
            if not fields or not fields[0].startswith("/"):
                continue
            source = fields[0]
            base = Path(os.path.realpath(source) if not stand_in else source).name
            if base in names or re.fullmatch(rf"{re.escape(name)}p?\d+", base):
                where = f" {fields[1]}" if table == mounts and len(fields) > 1 else ""
                raise ProvisioningError(
                    f"--device {device}: {source} is {what}{where}; unmount it first (udisksctl unmount -b {source})"
                )
    holders = sysdir / "holders"
    if holders.is_dir() and any(holders.iterdir()):
        raise ProvisioningError(f"--device {device} is held by {', '.join(p.name for p in holders.iterdir())} "
                                "(LVM, RAID or dm-crypt); release it first")
    return TargetDisk(device, name, size, why)


def _drop_cache(fd: int, is_block: bool) -> None:
    os.fsync(fd)
    if is_block:
        try:
            fcntl.ioctl(fd, BLKFLSBUF, 0)
        except OSError as err:
            log.debug("BLKFLSBUF failed: %s", err)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def write_image(image: Path, target: TargetDisk, *, use_bmaptool: bool | None = None) -> str:
    """Write ``image`` to the disk and verify it by reading it back. Returns how it was verified.
    ``use_bmaptool``: None picks bmaptool when it is installed (it skips the image's empty blocks)."""
    size = image.stat().st_size
    if size > target.size_bytes:
        raise ProvisioningError(f"the image is {size / 1e9:.1f} GB but {target.path} holds only "
                                f"{target.size_bytes / 1e9:.1f} GB; use a larger card")
    if use_bmaptool is None:
        use_bmaptool = shutil.which("bmaptool") is not None
    if use_bmaptool:
        return bmap.write_with_bmaptool(image, target.path)
    is_block = stat.S_ISBLK(os.stat(target.path).st_mode)
    digest = hashlib.sha256()
    fd = os.open(target.path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        with image.open("rb") as src:
            done, next_report = 0, 0.25
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
                done += len(chunk)
                if done / size >= next_report:
                    log.info("written %d%% of %s", int(100 * done / size), target.path)
                    next_report += 0.25
        _drop_cache(fd, is_block)
    finally:
        os.close(fd)
    verify_prefix(target.path, size, digest.hexdigest(), is_block)
    return f"read back {size} bytes, sha256 {digest.hexdigest()}"


def verify_prefix(device: Path, size: int, expected: str, is_block: bool) -> None:
    """Read the first ``size`` bytes back from the device and compare their sha256."""
    digest = hashlib.sha256()
    fd = os.open(device, os.O_RDONLY)
    try:
        _drop_cache(fd, is_block)
        remaining = size
        while remaining:
            chunk = os.read(fd, min(CHUNK, remaining))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    if remaining or digest.hexdigest() != expected:
        raise ProvisioningError(
            f"verification failed: reading {device} back gave different data than was written (sha256 "
            f"{digest.hexdigest()[:16]}… vs {expected[:16]}…); the card may be failing or fake-capacity: try another"
        )
    log.info("verified %s: %d bytes read back, sha256 %s", device, size, expected)

"""The --device safety checks and read-back verification, on a stand-in sysfs tree shaped like /sys/block (a
regular file stands in for the device node; real block devices cannot be created here)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from edgekit.errors import ProvisioningError
from edgekit.firmware import bmap
from edgekit.firmware.block_device import check_target, verify_prefix, write_image

pytestmark = pytest.mark.unit


def stand_in(tmp_path: Path, name: str = "sdz", *, removable: str = "1", size_sectors: int = 2048,
             partitions: tuple[str, ...] = ("sdz1", "sdz2"), mounts: str = "", holders: tuple[str, ...] = ()
             ) -> tuple[Path, Path, Path]:
    sys_root, proc = tmp_path / "sys", tmp_path / "proc"
    disk = sys_root / "block" / name
    disk.mkdir(parents=True)
    (disk / "removable").write_text(removable + "\n")
    (disk / "size").write_text(f"{size_sectors}\n")
    for part in partitions:
        (disk / part).mkdir()
        (disk / part / "partition").write_text("1\n")
        (sys_root / "class/block" / part).mkdir(parents=True)
        (sys_root / "class/block" / part / "partition").write_text("1\n")
    (disk / "holders").mkdir()
    for h in holders:
        (disk / "holders" / h).mkdir()
    proc.mkdir()
    (proc / "mounts").write_text("sysfs /sys sysfs rw 0 0\n/dev/nvme0n1p2 / ext4 rw 0 0\n" + mounts)
    (proc / "swaps").write_text("Filename Type Size Used Priority\n")
    dev = tmp_path / "dev" / name
    dev.parent.mkdir(exist_ok=True)
    dev.write_bytes(b"\0" * size_sectors * 512)
    return dev, sys_root, proc


def check(dev: Path, sys_root: Path, proc: Path):  # type: ignore[no-untyped-def]
    return check_target(dev, sys_root=sys_root, mounts=proc / "mounts", swaps=proc / "swaps")


def test_a_removable_unused_card_is_accepted(tmp_path: Path) -> None:
    target = check(*stand_in(tmp_path))
    assert target.name == "sdz" and target.size_bytes == 2048 * 512 and target.why_removable == "removable medium"


def test_sd_card_readers_count_as_removable(tmp_path: Path) -> None:
    assert check(*stand_in(tmp_path, "mmcblk0", removable="0", partitions=())).why_removable == "SD/MMC card"


def test_system_disks_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ProvisioningError, match="not removable.*refuses to overwrite"):
        check(*stand_in(tmp_path, "sda", removable="0", partitions=()))


def test_a_mounted_partition_is_refused(tmp_path: Path) -> None:
    dev, sys_root, proc = stand_in(tmp_path, mounts="/dev/sdz1 /media/user/bootfs vfat rw 0 0\n")
    with pytest.raises(ProvisioningError, match="/dev/sdz1 is mounted at /media/user/bootfs; unmount it"):
        check(dev, sys_root, proc)


def test_partitions_empty_readers_and_held_disks_are_refused(tmp_path: Path) -> None:
    dev, sys_root, proc = stand_in(tmp_path / "a")
    part = dev.parent / "sdz1"
    part.write_bytes(b"")
    with pytest.raises(ProvisioningError, match="is a partition; give the whole disk"):
        check(part, sys_root, proc)
    with pytest.raises(ProvisioningError, match="size 0: is a card in the reader"):
        check(*stand_in(tmp_path / "b", size_sectors=0))
    with pytest.raises(ProvisioningError, match="held by dm-0"):
        check(*stand_in(tmp_path / "c", holders=("dm-0",)))
    with pytest.raises(ProvisioningError, match="no such device"):
        check(tmp_path / "dev/sdq", sys_root, proc)


def test_read_back_detects_a_card_that_lies(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096
    dev = tmp_path / "card"
    dev.write_bytes(data + b"\0" * 4096)
    verify_prefix(dev, len(data), hashlib.sha256(data).hexdigest(), is_block=False)
    with dev.open("r+b") as f:
        f.seek(5000)
        f.write(b"X")
    with pytest.raises(ProvisioningError, match="verification failed"):
        verify_prefix(dev, len(data), hashlib.sha256(data).hexdigest(), is_block=False)


def test_bmap_ranges_are_verified_against_the_card(tmp_path: Path) -> None:
    block = 4096
    dev = tmp_path / "card"
    content = b"A" * block * 2 + b"\0" * block + b"B" * block
    dev.write_bytes(content)
    good = [(0, 1, hashlib.sha256(content[: 2 * block]).hexdigest()),
            (3, 3, hashlib.sha256(content[3 * block:]).hexdigest())]
    ranges = "".join(f'<Range chksum="{c}"> {a}-{b} </Range>' for a, b, c in good)
    xml = (f"<bmap version='2.0'><ImageSize>{len(content)}</ImageSize><BlockSize>{block}</BlockSize>"
           f"<ChecksumType>sha256</ChecksumType><BlockMap>{ranges}</BlockMap></bmap>")
    assert bmap.verify_ranges(dev, xml).startswith("bmap: 2 mapped ranges verified")
    with dev.open("r+b") as f:
        f.seek(3 * block + 10)
        f.write(b"C")
    with pytest.raises(ProvisioningError, match="blocks 3-3"):
        bmap.verify_ranges(dev, xml)


@pytest.mark.parametrize("use_bmaptool", [False, True])
def test_write_image_to_a_stand_in_card_and_read_it_back(tmp_path: Path, use_bmaptool: bool) -> None:
    if use_bmaptool and shutil.which("bmaptool") is None:
        pytest.skip("bmaptool is not installed (apt-get install bmap-tools)")
    image = tmp_path / "image.img"
    with image.open("wb") as f:  # data, a hole, data: what bmaptool maps and skips
        f.write(b"boot" * 4096)
        f.seek(1 << 20)
        f.write(b"root" * 4096)
    dev, sys_root, proc = stand_in(tmp_path, size_sectors=4096)
    dev.write_bytes(b"\xee" * 4096 * 512)
    how = write_image(image, check(dev, sys_root, proc), use_bmaptool=use_bmaptool)
    assert how.startswith("bmap:" if use_bmaptool else "read back")
    written = dev.read_bytes()
    assert written[:16384] == b"boot" * 4096 and written[1 << 20: (1 << 20) + 16384] == b"root" * 4096

"""Read the MBR partition table of a disk image (Raspberry Pi OS images are MBR: a FAT boot partition, then ext4)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import ProvisioningError

SECTOR = 512
FAT_TYPES = {0x01: "FAT12", 0x04: "FAT16", 0x06: "FAT16", 0x0B: "FAT32", 0x0C: "FAT32 (LBA)", 0x0E: "FAT16 (LBA)"}
LINUX = 0x83


@dataclass(frozen=True)
class Partition:
    number: int
    type_id: int
    start_sector: int
    sectors: int

    @property
    def offset(self) -> int:
        return self.start_sector * SECTOR

    @property
    def size(self) -> int:
        return self.sectors * SECTOR

    @property
    def is_fat(self) -> bool:
        return self.type_id in FAT_TYPES


def read_partitions(image: Path) -> list[Partition]:
    with image.open("rb") as f:
        mbr = f.read(SECTOR)
        f.seek(0, 2)
        size = f.tell()
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
        raise ProvisioningError(f"{image} has no MBR partition table (no 0x55AA signature): not a disk image")
    parts = []
    for i in range(4):
        entry = mbr[446 + 16 * i: 446 + 16 * (i + 1)]
        type_id = entry[4]
        start, count = struct.unpack("<II", entry[8:16])
        if type_id == 0 or count == 0:
            continue
        if type_id == 0xEE:
            raise ProvisioningError(f"{image} is a GPT disk; Raspberry Pi OS images use an MBR partition table")
        part = Partition(i + 1, type_id, start, count)
        if part.offset + part.size > size:
            raise ProvisioningError(
                f"{image}: partition {part.number} ends at byte {part.offset + part.size} but the file has {size} "
                "bytes: the image is truncated (an interrupted download or decompression?)"
            )
        parts.append(part)
    return parts


def boot_partition(image: Path) -> Partition:
    """The first FAT partition: the Raspberry Pi boot partition (bootfs)."""
    parts = read_partitions(image)
    for part in parts:
        if part.is_fat:
            return part
    kinds = ", ".join(f"#{p.number} type 0x{p.type_id:02x}" for p in parts) or "none"
    raise ProvisioningError(f"{image} has no FAT boot partition (partitions: {kinds}); is it a Raspberry Pi OS image?")

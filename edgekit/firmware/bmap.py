"""Write with bmaptool when it is installed: it skips the image's holes (a Raspberry Pi OS image is mostly empty),
then every mapped range is read back from the card and checked against the checksums in the bmap."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from edgekit.errors import ProvisioningError

log = logging.getLogger(__name__)


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ProvisioningError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}")


def write_with_bmaptool(image: Path, device: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="edgekit-bmap-") as tmp:
        bmap_file = Path(tmp) / "image.bmap"
        _run(["bmaptool", "create", "-o", str(bmap_file), str(image)])
        _run(["bmaptool", "copy", "--bmap", str(bmap_file), str(image), str(device)])
        return verify_ranges(device, bmap_file.read_text())


def verify_ranges(device: Path, bmap_xml: str) -> str:
    """Read every mapped range of ``bmap_xml`` back from ``device`` and compare its checksum."""
    root = ET.fromstring(bmap_xml)
    block = int((root.findtext("BlockSize") or "4096").strip())
    kind = (root.findtext("ChecksumType") or "sha256").strip()
    ranges = root.findall("./BlockMap/Range")
    fd = os.open(device, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        for r in ranges:
            first, _, last = (r.text or "").strip().partition("-")
            start, end = int(first), int(last or first)
            digest = hashlib.new(kind)
            os.lseek(fd, start * block, os.SEEK_SET)
            remaining = (end - start + 1) * block
            while remaining:
                chunk = os.read(fd, min(remaining, 4 << 20))
                if not chunk:
                    break
                digest.update(chunk)
                remaining -= len(chunk)
            if digest.hexdigest() != r.get("chksum"):
                raise ProvisioningError(
                    f"verification failed: blocks {start}-{end} of {device} read back differently than written; "
                    "the card may be failing or fake-capacity: try another"
                )
    finally:
        os.close(fd)
    log.info("verified %d mapped ranges of %s against the bmap checksums", len(ranges), device)
    return f"bmap: {len(ranges)} mapped ranges verified ({kind})"

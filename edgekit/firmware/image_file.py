"""Turn an ``.img`` or ``.img.xz`` into a working image file, keeping runs of zeros as holes (a 5 GB Raspberry Pi
OS image is mostly empty, so the copy is fast and small on disk)."""

from __future__ import annotations

import lzma
import os
from pathlib import Path
from typing import BinaryIO

from edgekit.errors import ProvisioningError

CHUNK = 4 << 20
_ZERO = bytes(CHUNK)


def _open(image: Path) -> BinaryIO:
    if image.name.endswith(".img.xz") or image.suffix == ".xz":
        return lzma.open(image, "rb")  # type: ignore[return-value]
    if image.suffix == ".img":
        return image.open("rb")
    raise ProvisioningError(f"--image {image}: expected a Raspberry Pi OS .img or .img.xz file")


def materialize(image: Path, dest: Path) -> int:
    """Write ``image`` (decompressed) to ``dest`` sparsely; returns its size in bytes."""
    if not image.is_file():
        raise ProvisioningError(f"--image {image}: no such file")
    size = 0
    try:
        with _open(image) as src, dest.open("wb") as out:
            while chunk := src.read(CHUNK):
                if chunk == _ZERO[: len(chunk)]:
                    out.seek(len(chunk), os.SEEK_CUR)
                else:
                    out.write(chunk)
                size += len(chunk)
            out.truncate(size)
            out.flush()
            os.fsync(out.fileno())
    except lzma.LZMAError as err:
        raise ProvisioningError(f"--image {image} is not a valid .xz file ({err}); download it again") from err
    except OSError as err:
        if err.errno == 28:  # ENOSPC
            raise ProvisioningError(f"no space left writing {dest}; free some or pass --work-dir") from err
        raise
    if size < 1 << 20:
        raise ProvisioningError(f"--image {image} is only {size} bytes: not a disk image")
    return size

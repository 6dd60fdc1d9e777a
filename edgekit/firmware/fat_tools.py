"""Read and write files on a FAT partition inside a disk image with mtools: no mounting, no loop devices, no root.

Every command addresses the partition as ``IMAGE@@OFFSET``; paths inside it start with ``::/``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from edgekit.errors import ProvisioningError

_ENV = {"MTOOLS_SKIP_CHECK": "1", "MTOOLS_LOWER_CASE": "0", "MTOOLSRC": os.devnull}


def require_mtools() -> None:
    missing = [t for t in ("mcopy", "mdir", "mmd", "mdel", "mdeltree") if shutil.which(t) is None]
    if missing:
        raise ProvisioningError(f"{', '.join(missing)} not found: install mtools (apt-get install mtools)")


class FatImage:
    """The FAT file system at byte ``offset`` of ``image``."""

    def __init__(self, image: Path, offset: int) -> None:
        require_mtools()
        self.image = image
        self.spec = f"{image}@@{offset}"

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run([tool, "-i", self.spec, *args], capture_output=True, env={**os.environ, **_ENV},
                              check=False)
        if check and proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}"
            raise ProvisioningError(f"{tool} {' '.join(args)} on {self.image} failed: {err}")
        return proc

    def exists(self, path: str) -> bool:
        return self._run("mdir", "-b", f"::/{path.lstrip('/')}", check=False).returncode == 0

    def read(self, path: str) -> bytes:
        proc = self._run("mcopy", "-n", f"::/{path.lstrip('/')}", "-", check=False)
        if proc.returncode != 0:
            raise ProvisioningError(f"{path} is missing from the boot partition of {self.image}")
        return proc.stdout

    def read_text(self, path: str) -> str:
        return self.read(path).decode("utf-8", errors="replace")

    def write(self, path: str, data: bytes) -> None:
        with tempfile.TemporaryDirectory(prefix="edgekit-fat-") as tmp:
            local = Path(tmp) / Path(path).name
            local.write_bytes(data)
            self._run("mcopy", "-o", "-Q", str(local), f"::/{path.lstrip('/')}")

    def put_tree(self, local_dir: Path) -> None:
        """Copy every entry of ``local_dir`` into the partition's root (directories recursively)."""
        entries = sorted(local_dir.iterdir())
        if entries:
            self._run("mcopy", "-s", "-o", "-Q", "-m", *map(str, entries), "::/")

    def remove(self, path: str) -> None:
        """Delete a file or directory tree if it exists."""
        target = f"::/{path.lstrip('/')}"
        if self._run("mdeltree", target, check=False).returncode != 0:
            self._run("mdel", target, check=False)

    def free_bytes(self) -> int:
        out = self._run("mdir", "::/").stdout.decode(errors="replace")
        m = re.search(r"([\d ]+) bytes free", out)
        if not m:
            raise ProvisioningError(f"cannot read the free space of the boot partition of {self.image}")
        return int(m.group(1).replace(" ", ""))

    def files(self) -> list[str]:
        """Every file path on the partition (``/dir/name``)."""
        out = self._run("mdir", "-/", "-b", "::/").stdout.decode(errors="replace")
        return sorted(line.strip()[2:] if line.startswith("::") else line.strip() for line in out.splitlines()
                      if line.strip() and not line.strip().endswith("/"))

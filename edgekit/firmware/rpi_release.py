"""Which Raspberry Pi OS generation an image holds, read from its boot partition.

``issue.txt`` on the boot partition says ``Raspberry Pi reference YYYY-MM-DD`` (and sometimes the codename). The
generation decides the first-boot mechanism: Bookworm runs ``firstrun.sh`` from ``systemd.run=`` on cmdline.txt;
Trixie runs cloud-init from ``user-data``/``network-config``/``meta-data`` (``ds=nocloud``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgekit.errors import ProvisioningError


@dataclass(frozen=True)
class Release:
    name: str
    python: str  # the system Python the agent's venv is built from
    first_boot: str  # "firstrun" or "cloud-init"


RELEASES = {
    "bookworm": Release("bookworm", "3.11", "firstrun"),
    "trixie": Release("trixie", "3.13", "cloud-init"),
}
TOO_OLD = ("bullseye", "buster", "stretch")
# First image date of each generation (Raspberry Pi OS release notes).
_FIRST_DATE = (("2025-10-01", "trixie"), ("2023-10-10", "bookworm"), ("0000-00-00", "bullseye"))


def detect_release(issue_txt: str | None, boot_files: set[str]) -> tuple[str, str]:
    """(release, how it was recognised). Raises for releases the agent cannot run on."""
    text = (issue_txt or "").lower()
    name, reason = None, ""
    for codename in (*RELEASES, *TOO_OLD):
        if re.search(rf"\b{codename}\b", text):
            name, reason = codename, f"issue.txt names {codename}"
            break
    if name is None:
        m = re.search(r"raspberry pi reference (\d{4}-\d{2}-\d{2})", text)
        if m:
            name = next(rel for first, rel in _FIRST_DATE if m.group(1) >= first)
            reason = f"issue.txt: reference image of {m.group(1)}"
    if name is None and {"meta-data", "user-data"} & boot_files:
        name, reason = "trixie", "a cloud-init seed (user-data/meta-data) on the boot partition"
    if name is None:
        raise ProvisioningError(
            "cannot tell which Raspberry Pi OS this image is (no issue.txt naming a release on its boot "
            "partition); pass --os-release bookworm or --os-release trixie"
        )
    if name in TOO_OLD:
        raise ProvisioningError(
            f"this image is Raspberry Pi OS {name} ({reason}); its Python is older than the 3.10 the agent needs: "
            "use a Bookworm or Trixie image"
        )
    return name, reason

"""Find the files of ``firmware_scripts/``: inside the wheel as package ``edgekit.firmware_scripts``, or in the
source tree when edgekit runs from a checkout that was installed before that package mapping existed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from edgekit.errors import ProvisioningError

PACKAGE = "edgekit.firmware_scripts"


def scripts_dir() -> Path:
    try:
        root = Path(str(resources.files(PACKAGE)))
        if (root / "install-agent.sh").is_file():
            return root
    except (ModuleNotFoundError, TypeError):
        pass
    checkout = Path(__file__).resolve().parents[2] / "firmware_scripts"
    if (checkout / "install-agent.sh").is_file():
        return checkout
    raise ProvisioningError(
        f"the firmware scripts are missing: neither package {PACKAGE} nor {checkout} holds install-agent.sh; "
        "reinstall edgekit (pip install --force-reinstall edgekit)"
    )


def script(relative: str) -> Path:
    """One file of firmware_scripts/, e.g. ``rpi/firstrun.sh``."""
    path = scripts_dir() / relative
    if not path.is_file():
        raise ProvisioningError(f"firmware script {relative} is missing from {scripts_dir()}; reinstall edgekit")
    return path

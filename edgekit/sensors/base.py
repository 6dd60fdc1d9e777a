"""What power readers return, and how readers run device commands (``vcgencmd``) so tests can pass captured output."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

# argv -> stdout, or None when the command is missing or fails. Tests pass a function returning captured output.
CommandRunner = Callable[[Sequence[str]], "str | None"]


def run_command(argv: Sequence[str], timeout: float = 2.0) -> str | None:
    """Run a device tool (``vcgencmd ...``); None when it is not installed, fails or hangs."""
    exe = shutil.which(argv[0])
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        log.debug("%s failed: %s", argv[0], err)
        return None
    return done.stdout if done.returncode == 0 else None


def read_text(path: Path) -> str | None:
    """A sysfs attribute, stripped; None when it is missing or unreadable (many are root-only)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def read_number(path: Path) -> float | None:
    text = read_text(path)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class PowerReading:
    """Watts now (or over the last interval, for energy counters) and where they came from.

    ``source`` is a sensor name (``ina3221``, ``rpi5-pmic``, ``rapl``), ``estimated`` for the utilisation model,
    or ``none``. ``rails`` breaks a measured figure down by rail when the sensor has several.
    """

    watts: float | None
    source: str
    rails: dict[str, float] = field(default_factory=dict)


class PowerSensor(Protocol):
    source: str

    def read(self) -> PowerReading: ...


class NoPowerSensor:
    """Used when the profile's sensor is absent and it gives no idle/max watts to estimate from."""

    source = "none"

    def read(self) -> PowerReading:
        return PowerReading(None, self.source)

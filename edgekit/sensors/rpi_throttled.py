"""Raspberry Pi throttling from ``vcgencmd get_throttled`` (firmware bitmask, e.g. ``throttled=0x50005``).

Bits 0-3 are the state now: under-voltage, ARM frequency capped, throttled, soft temperature limit; bits 16-19
say the same condition has occurred since boot. Tests pass captured output through the command runner.
"""

from __future__ import annotations

import re
from typing import Any

from edgekit.sensors.base import CommandRunner, run_command

FLAGS = ("under_voltage", "freq_capped", "throttled", "soft_temp_limit")


def parse_throttled(text: str) -> dict[str, Any] | None:
    m = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", text)
    if not m:
        return None
    value = int(m.group(1), 0)
    out: dict[str, Any] = {"raw": hex(value)}
    out.update({name: bool(value >> bit & 1) for bit, name in enumerate(FLAGS)})
    out["occurred"] = {name: bool(value >> (bit + 16) & 1) for bit, name in enumerate(FLAGS)}
    return out


class ThrottleReader:
    def __init__(self, run: CommandRunner = run_command) -> None:
        self.run = run

    def read(self) -> dict[str, Any] | None:
        """The decoded bitmask, or None where there is no ``vcgencmd`` (not a Raspberry Pi)."""
        text = self.run(["vcgencmd", "get_throttled"])
        return parse_throttled(text) if text else None

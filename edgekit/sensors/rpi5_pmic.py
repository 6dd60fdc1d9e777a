"""Raspberry Pi 5 power from the PMIC: ``vcgencmd pmic_read_adc`` lists per-rail currents and voltages::

       VDD_CORE_A current(7)=0.73211150A
       VDD_CORE_V volt(15)=0.82930400V
       EXT5V_V volt(24)=5.13418800V

P = sum of V x A over rails that have both. The 5 V input has a voltage but no current, so this sum
underestimates the board's power (USB, fan and PMIC losses are not in it). Tests pass captured output.
"""

from __future__ import annotations

import re

from edgekit.sensors.base import CommandRunner, PowerReading, run_command

_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=([0-9.eE+-]+)[AV]\s*$")


def parse_pmic(text: str) -> dict[str, float]:
    """rail -> watts for every rail with both a current and a voltage line."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        rail, unit, value = m.group(1), m.group(2), float(m.group(3))
        (amps if unit == "A" else volts)[rail] = value
    return {rail: amps[rail] * volts[rail] for rail in sorted(amps) if rail in volts}


class Rpi5Pmic:
    source = "rpi5-pmic"

    def __init__(self, run: CommandRunner = run_command) -> None:
        self.run = run

    def available(self) -> bool:
        text = self.run(["vcgencmd", "pmic_read_adc"])
        return bool(text and parse_pmic(text))

    def read(self) -> PowerReading:
        text = self.run(["vcgencmd", "pmic_read_adc"])
        rails = parse_pmic(text) if text else {}
        return PowerReading(sum(rails.values()) if rails else None, self.source, rails)

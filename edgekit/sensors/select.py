"""Open the power source a profile names, falling back to the profile's estimate when the sensor is absent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from edgekit.profiles.model import PowerSettings
from edgekit.sensors.base import CommandRunner, NoPowerSensor, PowerSensor, run_command
from edgekit.sensors.estimated import EstimatedPower, system_utilisation
from edgekit.sensors.ina3221 import Ina3221
from edgekit.sensors.rapl import Rapl
from edgekit.sensors.rpi5_pmic import Rpi5Pmic

log = logging.getLogger(__name__)

# profile power.source -> a factory that returns the sensor, or None when this machine does not have it.
MeasuredFactory = Callable[[PowerSettings, Path, CommandRunner], "PowerSensor | None"]


def _ina3221(s: PowerSettings, root: Path, run: CommandRunner) -> PowerSensor | None:
    sensor = Ina3221(root, s.rail)
    return sensor if sensor.available() else None


def _pmic(s: PowerSettings, root: Path, run: CommandRunner) -> PowerSensor | None:
    sensor = Rpi5Pmic(run)
    return sensor if sensor.available() else None


def _rapl(s: PowerSettings, root: Path, run: CommandRunner) -> PowerSensor | None:
    sensor = Rapl(root)
    return sensor if sensor.available() else None


MEASURED: dict[str, MeasuredFactory] = {"ina3221": _ina3221, "rpi5-pmic": _pmic, "rapl": _rapl}


def open_power_sensor(settings: PowerSettings, root: Path = Path("/"), run: CommandRunner = run_command,
                      utilisation: Callable[[], float] = system_utilisation) -> PowerSensor:
    """The profile's sensor if present; else the idle/max estimate if the profile has one; else no figure."""
    if settings.source in MEASURED:
        sensor = MEASURED[settings.source](settings, root, run)
        if sensor is not None:
            log.info("power: measured by %s", settings.source)
            return sensor
        log.info("power: the profile names %s but this machine does not expose it", settings.source)
    if settings.idle_watts is not None and settings.max_watts is not None:
        log.info("power: estimated from CPU utilisation (idle %.1f W, max %.1f W)", settings.idle_watts,
                 settings.max_watts)
        return EstimatedPower(settings.idle_watts, settings.max_watts, utilisation)
    return NoPowerSensor()

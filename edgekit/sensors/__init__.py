"""Power and temperature sources the agent reports in telemetry: one module per source.

Every reader takes a root directory (``/`` on a device) or a command runner, so tests run them on stand-in
sysfs trees built from the documented layouts and on captured command output.

    sensor = open_power_sensor(profile.power, root=Path("/"))
    reading = sensor.read()      # PowerReading(watts=4.2, source="ina3221", rails={...})
"""

from edgekit.sensors.base import CommandRunner, PowerReading, PowerSensor, run_command
from edgekit.sensors.select import open_power_sensor

__all__ = ["CommandRunner", "PowerReading", "PowerSensor", "open_power_sensor", "run_command"]

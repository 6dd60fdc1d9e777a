"""Package discovery that pyproject.toml cannot express alone.

``device_profiles/`` and ``firmware_scripts/`` sit at the top of the repository (the project layout is fixed)
but ship inside the wheel as ``edgekit.device_profiles`` and ``edgekit.firmware_scripts``; every other package
is found as usual.
"""

from setuptools import find_packages, setup

MAPPED = ["edgekit.device_profiles", "edgekit.firmware_scripts"]
# Folders that hold only data files (no __init__.py), listed so setuptools ships them as packages.
DATA_ONLY = ["edgekit.schemas", "edgekit.firmware_scripts.rpi", "edgekit.firmware_scripts.systemd",
             "edgekit.firmware_scripts.mosquitto"]

setup(packages=[*find_packages(include=["edgekit", "edgekit.*", "converters", "converters.*"]), *MAPPED, *DATA_ONLY])

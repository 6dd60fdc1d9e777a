"""Package discovery that pyproject.toml cannot express alone.

``device_profiles/`` and ``firmware_scripts/`` sit at the top of the repository (the project layout is fixed)
but ship inside the wheel as ``edgekit.device_profiles`` and ``edgekit.firmware_scripts``; every other package
is found as usual.
"""

from setuptools import find_packages, setup

MAPPED = ["edgekit.device_profiles", "edgekit.firmware_scripts"]

setup(packages=[*find_packages(include=["edgekit", "edgekit.*", "converters", "converters.*"]), *MAPPED])

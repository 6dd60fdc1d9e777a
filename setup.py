"""Package discovery that pyproject.toml cannot express alone.

``device_profiles/`` sits at the top of the repository (the project layout is fixed) but ships inside the
wheel as ``edgekit.device_profiles``; every other package is found as usual.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["edgekit", "edgekit.*", "converters", "converters.*"]), "edgekit.device_profiles"])

"""Device profiles: what a device is, which targets it prefers and how the agent is sized on it."""

from edgekit.profiles.loader import load_profile, load_profile_file, parse_profile, profile_names, shipped_profiles
from edgekit.profiles.model import DeviceProfile

__all__ = ["DeviceProfile", "load_profile", "load_profile_file", "parse_profile", "profile_names", "shipped_profiles"]

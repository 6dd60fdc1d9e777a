"""Load device profiles: the ones shipped in ``device_profiles/`` (inside the wheel), or a TOML file by path."""

from __future__ import annotations

import functools
import sys
from importlib import resources
from pathlib import Path

from edgekit.errors import ProfileError
from edgekit.profiles.model import DeviceProfile, check_profile
from edgekit.strictdata import DataError, build

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PROFILE_PACKAGE = "edgekit.device_profiles"


def _shipped_files() -> dict[str, str]:
    """name -> TOML text of every shipped profile."""
    out = {}
    for entry in resources.files(PROFILE_PACKAGE).iterdir():
        if entry.name.endswith(".toml"):
            out[entry.name[: -len(".toml")]] = entry.read_text(encoding="utf-8")
    return dict(sorted(out.items()))


def parse_profile(text: str, origin: str) -> DeviceProfile:
    """Parse and validate one profile; every error names ``origin`` (the file), the key and what is allowed."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ProfileError(f"{origin}: not valid TOML: {err}") from err
    try:
        profile = build(DeviceProfile, data)
    except DataError as err:
        raise ProfileError(f"{origin}: {err}") from err
    problems = check_profile(profile)
    if problems:
        key, message = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ProfileError(f"{origin}: key {key!r}: {message}{more}")
    return profile


def load_profile_file(path: Path) -> DeviceProfile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ProfileError(f"cannot read profile file {path}: {err.strerror}") from err
    profile = parse_profile(text, str(path))
    if profile.name != path.stem:
        raise ProfileError(f"{path}: key 'name': {profile.name!r} must match the file name {path.stem!r}")
    return profile


@functools.lru_cache(maxsize=1)
def shipped_profiles() -> dict[str, DeviceProfile]:
    """Every profile shipped with edgekit, validated, by name."""
    profiles = {}
    for name, text in _shipped_files().items():
        profile = parse_profile(text, f"device_profiles/{name}.toml")
        if profile.name != name:
            raise ProfileError(f"device_profiles/{name}.toml: key 'name': {profile.name!r} must match the file name")
        profiles[name] = profile
    return profiles


def profile_names() -> list[str]:
    return list(shipped_profiles())


def load_profile(name_or_path: str) -> DeviceProfile:
    """A shipped profile by name, or a profile TOML by path (anything ending in .toml)."""
    if name_or_path.endswith(".toml"):
        return load_profile_file(Path(name_or_path))
    profiles = shipped_profiles()
    if name_or_path in profiles:
        return profiles[name_or_path]
    from converters.registry import unknown_message

    raise ProfileError(unknown_message("profile", name_or_path, list(profiles)) + "; see: edgekit profiles list")

"""The payload ``install-agent.sh`` installs from: one directory, whatever carries it to the device (a FAT boot
partition, a Jetson ``rootfs/``, or ssh).

Layout (all names fixed; install-agent.sh reads them)::

    install-agent.sh           the installer (firmware_scripts/install-agent.sh)
    payload.env                non-secret settings: DEVICE_ID, BUNDLE_ID, BUNDLE_SHA256, REQUIREMENTS_STAMP, ...
    requirements.txt           what pip installs into /opt/edgekit/venv
    wheels/*.whl               optional: the offline wheelhouse
    bundle.tar.gz              the bundle, repacked deterministically after its checksums were verified
    agent.toml                 /etc/edgekit/agent.toml (no secret values)
    edgekit-agent.service      the unit rendered for this profile
    tls/ca.crt, client.crt     public certificates
    secrets/mqtt-password, client.key   mode 0600 in a 0700 directory
    edgekit-firstboot.service  only for flashed images
"""

from __future__ import annotations

import gzip
import logging
import re
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from edgekit import __version__
from edgekit.bundle.archive import opened
from edgekit.bundle.verify import check_checksums
from edgekit.checksums import sha256_file
from edgekit.errors import BundleIntegrityError, ProvisioningError
from edgekit.firmware import agent_config
from edgekit.firmware.layout import UNIT_NAME, DeviceLayout
from edgekit.firmware.requirements import Requirements, stamp
from edgekit.firmware.safe_write import shell_env, write_file, write_private
from edgekit.firmware.scripts import script
from edgekit.firmware.settings import AgentSettings
from edgekit.firmware.systemd_unit import render_unit
from edgekit.manifest import Manifest, read_manifest
from edgekit.profiles.model import DeviceProfile

log = logging.getLogger(__name__)
MIN_MEMORY_CAP_MB = 64


@dataclass(frozen=True)
class BundleCopy:
    """A verified bundle, repacked as ``path`` (.tar.gz); ``bundle_id`` names its directory on the device."""

    path: Path
    bundle_id: str
    sha256: str
    manifest: Manifest


@dataclass(frozen=True)
class PayloadSpec:
    profile: DeviceProfile
    agent: AgentSettings
    layout: DeviceLayout
    requirements: Requirements
    bundle: BundleCopy
    memory_cap_mb: int
    wheel_files: tuple[Path, ...] = ()
    firstboot_unit: bool = False
    skip_wheels: bool = False  # the device's venv was built from exactly these requirements and wheels
    skip_bundle: bool = False  # the device already runs this bundle
    device_python: str = ""  # the interpreter install-agent.sh builds the venv from ("" = python3)

    @property
    def offline(self) -> bool:
        return bool(self.wheel_files) and self.requirements.extra_index is None

    @property
    def stamp(self) -> str:
        return stamp(self.requirements, list(self.wheel_files), self.offline)


@dataclass(frozen=True)
class Payload:
    dir: Path
    spec: PayloadSpec
    files: list[str] = field(default_factory=list)


def memory_cap(profile: DeviceProfile, override: int | None) -> int:
    if override is None:
        return profile.memory.cap_mb
    if not MIN_MEMORY_CAP_MB <= override <= profile.ram_mb:
        raise ProvisioningError(
            f"--memory-cap {override} MB is outside {MIN_MEMORY_CAP_MB}..{profile.ram_mb} MB "
            f"(profile {profile.name} has {profile.ram_mb} MB of RAM; its default cap is {profile.memory.cap_mb} MB)"
        )
    return override


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:40] or "bundle"


def prepare_bundle(bundle: Path, profile: DeviceProfile, workdir: Path) -> BundleCopy:
    """Verify the bundle's checksums and runtime, and repack it as ``workdir/bundle.tar.gz``."""
    try:
        with opened(bundle) as root:
            manifest = read_manifest(root)
            result = check_checksums(root, manifest)
            if not result.ok:
                more = f" (and {len(result.problems) - 1} more)" if len(result.problems) > 1 else ""
                raise ProvisioningError(f"bundle {bundle} fails verification: {result.problems[0]}{more}; "
                                        "rebuild it with edgekit convert + edgekit bundle")
            if manifest.platform not in (None, "linux"):
                raise ProvisioningError(f"bundle {bundle} is for platform {manifest.platform!r}; a device needs a "
                                        "Linux bundle: edgekit bundle DIR --platform linux --out PATH")
            runtimes = sorted({a.runtime for a in manifest.artifacts if a.status != "failed"})
            if profile.runtime.name not in runtimes:
                raise ProvisioningError(
                    f"bundle {bundle} has artifacts for runtime(s) {runtimes}, but profile {profile.name} runs "
                    f"{profile.runtime.name!r}; convert for it: edgekit convert SOURCE --profile {profile.name}")
            if manifest.profile != profile.name:
                log.warning("bundle %s was built for profile %s, the device is %s", bundle, manifest.profile,
                            profile.name)
            bundle_id = f"{_slug(manifest.model.name)}-{sha256_file(root / 'manifest.json')[:12]}"
            out = workdir / "bundle.tar.gz"
            _pack(root, out)
    except BundleIntegrityError as err:
        raise ProvisioningError(f"bundle {bundle}: {err}") from err
    return BundleCopy(out, bundle_id, sha256_file(out), manifest)


def _pack(root: Path, out: Path) -> None:
    """A reproducible .tar.gz of ``root``'s contents: sorted, root-owned, gzip without a timestamp."""
    with out.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path in sorted(root.rglob("*")):
            if path.is_symlink():
                raise ProvisioningError(f"bundle file {path.relative_to(root)} is a symlink; bundles hold real files")
            info = tf.gettarinfo(str(path), arcname=path.relative_to(root).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = 0o755 if path.is_dir() else 0o644
            if path.is_file():
                with path.open("rb") as f:
                    tf.addfile(info, f)
            else:
                tf.addfile(info)


def build_payload(spec: PayloadSpec, dest: Path) -> Payload:
    """Write the payload into ``dest`` (created 0700; it holds secrets)."""
    dest.mkdir(mode=0o700, parents=True, exist_ok=False)
    agent, layout = spec.agent, spec.layout
    shutil.copyfile(script("install-agent.sh"), dest / "install-agent.sh")
    (dest / "install-agent.sh").chmod(0o755)
    write_file(dest / "requirements.txt", spec.requirements.text())
    if spec.wheel_files and not spec.skip_wheels:
        (dest / "wheels").mkdir(mode=0o755)
        for wheel in spec.wheel_files:
            shutil.copyfile(wheel, dest / "wheels" / wheel.name)
    if not spec.skip_bundle:
        shutil.copyfile(spec.bundle.path, dest / "bundle.tar.gz")
    write_private(dest / "agent.toml",
                  agent_config.render_agent_toml(agent, spec.memory_cap_mb, layout, profile=spec.profile.name))
    secrets = agent_config.secret_files(agent)
    unit = render_unit(spec.profile, device_id=agent.device_id, memory_cap_mb=spec.memory_cap_mb, layout=layout,
                       secrets=secrets)
    write_file(dest / UNIT_NAME, unit)
    (dest / "tls").mkdir(mode=0o755)
    for name, source in agent_config.tls_files(agent).items():
        write_file(dest / "tls" / name, source.read_bytes())
    (dest / "secrets").mkdir(mode=0o700)
    for name, source in secrets.items():
        write_private(dest / "secrets" / name, source.read_bytes())
    if spec.firstboot_unit:
        shutil.copyfile(script("systemd/edgekit-firstboot.service"), dest / "edgekit-firstboot.service")
    env: dict[str, str | int | None] = {
        "DEVICE_ID": agent.device_id,
        "PROFILE": spec.profile.name,
        "BUNDLE_ID": spec.bundle.bundle_id,
        "BUNDLE_SHA256": spec.bundle.sha256,
        "EDGEKIT_VERSION": __version__,
        "REQUIREMENTS_STAMP": spec.stamp,
        "OFFLINE": int(spec.offline),
        "PIP_EXTRA_INDEX": spec.requirements.extra_index or "",
        "SERVICE_USER": layout.service_user,
        "DEVICE_PYTHON": spec.device_python,
        "UNIT_NAME": UNIT_NAME,
    }
    write_file(dest / "payload.env", shell_env(env, "edgekit payload settings, read by install-agent.sh (no secrets)"))
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    return Payload(dest, spec, files)

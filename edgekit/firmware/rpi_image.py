"""``edgekit flash rpi``: customise a Raspberry Pi OS image so its first boot ends with a running, capped agent.

Works on a copy of the image file, never on the input. The boot partition is edited with mtools (no mounting,
no root); the result is written as ``OUT.partial`` and renamed to ``OUT`` only when complete, or, with
``--device``, written to the card and read back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import ProvisioningError
from edgekit.firmware.block_device import TargetDisk, check_target, write_image
from edgekit.firmware.fat_tools import FatImage
from edgekit.firmware.image_file import materialize
from edgekit.firmware.layout import DeviceLayout, systemd_for
from edgekit.firmware.mbr import boot_partition
from edgekit.firmware.payload import PayloadSpec, build_payload, memory_cap, prepare_bundle
from edgekit.firmware.requirements import check_wheelhouse, requirements_for
from edgekit.firmware.rpi_boot import edit_cmdline, stage_boot_files
from edgekit.firmware.rpi_release import RELEASES, detect_release
from edgekit.firmware.safe_write import partial_file
from edgekit.firmware.settings import AgentSettings, SystemSettings
from edgekit.profiles.model import DeviceProfile

log = logging.getLogger(__name__)
# Files a previous customisation may have left on the boot partition; removed before writing new ones.
_OURS = ("edgekit", "firstrun.sh", "user-data", "network-config", "meta-data")


@dataclass(frozen=True)
class RpiFlashRequest:
    image: Path
    profile: DeviceProfile
    agent: AgentSettings
    system: SystemSettings
    out: Path | None = None
    device: Path | None = None
    yes: bool = False
    os_release: str | None = None
    work_dir: Path | None = None
    sys_root: Path = Path("/sys")
    proc_root: Path = Path("/proc")


@dataclass(frozen=True)
class RpiFlashResult:
    release: str
    release_reason: str
    written_to: Path
    bundle_id: str
    offline: bool
    payload_bytes: int
    free_bytes: int
    boot_files: list[str]
    verified: str | None = None


def _check_outputs(req: RpiFlashRequest) -> TargetDisk | None:
    if (req.out is None) == (req.device is None):
        raise ProvisioningError("give exactly one of --out IMG (write an image file) or --device /dev/sdX --yes")
    if req.device is not None:
        if not req.yes:
            raise ProvisioningError(f"--device {req.device} erases everything on it: add --yes to confirm")
        return check_target(req.device, sys_root=req.sys_root, mounts=req.proc_root / "mounts",
                            swaps=req.proc_root / "swaps")
    assert req.out is not None
    if req.out.exists() and req.out.resolve() == req.image.resolve():
        raise ProvisioningError(f"--out {req.out} is the input image; write the customised copy elsewhere")
    if not req.out.parent.is_dir():
        raise ProvisioningError(f"--out {req.out}: directory {req.out.parent} does not exist")
    return None


def _tree_bytes(root: Path) -> int:
    # Round every file up to a 4 KiB cluster (the boot partition's typical size).
    return sum(-(-p.stat().st_size // 4096) * 4096 for p in root.rglob("*") if p.is_file())


@contextlib.contextmanager
def _image_target(req: RpiFlashRequest, work: Path) -> Iterator[Path]:
    if req.out is not None:
        with partial_file(req.out) as partial:
            yield partial
    else:
        yield work / "image.img"


def flash_rpi(req: RpiFlashRequest) -> RpiFlashResult:
    profile = req.profile
    if profile.flash is None or profile.flash.method != "rpi-image":
        raise ProvisioningError(f"profile {profile.name} is not a Raspberry Pi board (flash method "
                                f"{profile.flash.method if profile.flash else 'none'}); use raspberry-pi-4 or -5")
    target = _check_outputs(req)
    work = Path(tempfile.mkdtemp(prefix="edgekit-flash-", dir=req.work_dir))  # 0700: the payload holds secrets
    try:
        bundle = prepare_bundle(req.agent.bundle, profile, work)
        with _image_target(req, work) as image:
            log.info("copying %s", req.image)
            materialize(req.image, image)
            fat = FatImage(image, boot_partition(image).offset)
            for required in ("cmdline.txt", "config.txt"):
                if not fat.exists(required):
                    raise ProvisioningError(f"the boot partition of {req.image} has no {required}: not a Raspberry Pi "
                                            "OS image")
            top = {f.strip("/").split("/")[0] for f in fat.files()}
            if req.os_release:
                release, reason = req.os_release, "--os-release"
            else:
                issue = fat.read_text("issue.txt") if "issue.txt" in top else None
                release, reason = detect_release(issue, top)
            allowed = profile.flash.os_releases
            if release not in RELEASES or (allowed and release not in allowed):
                raise ProvisioningError(f"Raspberry Pi OS {release} is not supported by profile {profile.name} "
                                        f"(it supports {', '.join(allowed or RELEASES)})")
            rel = RELEASES[release]
            log.info("Raspberry Pi OS %s (%s): first boot via %s", release, reason, rel.first_boot)
            reqs = requirements_for(profile, bundle.manifest)
            wheels = tuple(check_wheelhouse(req.agent.wheels, reqs, python=rel.python)) if req.agent.wheels else ()
            spec = PayloadSpec(profile, req.agent, DeviceLayout(systemd_for(profile, release)), reqs, bundle,
                               memory_cap(profile, req.agent.memory_cap_mb), wheels, firstboot_unit=True)
            stage = work / "stage"
            stage.mkdir(mode=0o700)
            instance_id = f"edgekit-{req.agent.device_id}-{secrets.token_hex(4)}"
            stage_boot_files(stage, req.system, release, instance_id)
            build_payload(spec, stage / "edgekit" / "payload")
            cmdline = edit_cmdline(fat.read_text("cmdline.txt"), release, instance_id=instance_id,
                                   wifi_country=req.system.wifi.country if req.system.wifi else None)
            for name in _OURS:
                if name in top:
                    fat.remove(name)
            need, free = _tree_bytes(stage), fat.free_bytes()
            if need + (1 << 20) > free:
                raise ProvisioningError(
                    f"the boot partition has {free / 2**20:.1f} MiB free but the payload needs {need / 2**20:.1f} MiB "
                    f"(bundle {bundle.path.stat().st_size / 2**20:.1f} MiB, {len(wheels)} wheels); leave out --wheels "
                    "to install from the package index on first boot, or use a smaller bundle")
            fat.put_tree(stage)
            fat.write("cmdline.txt", cmdline.encode())
            if fat.read_text("cmdline.txt") != cmdline or cmdline.count("\n") != 1:
                raise ProvisioningError("cmdline.txt did not read back as the one line written; the image is damaged")
            result = RpiFlashResult(release, reason, req.out or work / "image.img", bundle.bundle_id, spec.offline,
                                    need, fat.free_bytes(), fat.files())
        if target is not None:
            log.info("writing to %s (%s, %.1f GB)", target.path, target.why_removable, target.size_bytes / 1e9)
            verified = write_image(result.written_to, target)
            result = dataclasses.replace(result, written_to=target.path, verified=verified)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)

"""``edgekit flash jetson``: stage the agent into an unpacked NVIDIA L4T tree (``Linux_for_Tegra/``) and flash it.

What lands in ``rootfs/``: the payload in /var/lib/edgekit-firstboot (root only) and edgekit-firstboot.service,
which builds the agent's venv on the first boot (an aarch64 venv cannot be built on the x86 host), installs the
bundle, config and unit, and starts the agent. The headless user comes from ``tools/l4t_create_default_user.sh``
(it takes a plain password, so it gets a random one that is then replaced by the given hash, or by ``*`` for
key-only logins). The board must show up in USB recovery mode (``lsusb``: NVIDIA ``0955:``, not the ``7020`` of a
running L4T); then ``flash.sh`` (Jetson Nano, JetPack 4.6) or ``l4t_initrd_flash.sh`` (Orin, NVMe) runs with the
profile's board config and storage device. ``--dry-run`` prints every step and command and changes nothing.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import ProvisioningError
from edgekit.firmware import rootfs_settings
from edgekit.firmware.layout import FIRSTBOOT_DIR, DeviceLayout, systemd_for
from edgekit.firmware.payload import PayloadSpec, build_payload, memory_cap, prepare_bundle
from edgekit.firmware.requirements import check_wheelhouse, parse_wheel_name, requirements_for, wheel_fits
from edgekit.firmware.scripts import script
from edgekit.firmware.settings import AgentSettings, SystemSettings
from edgekit.profiles.model import DeviceProfile

log = logging.getLogger(__name__)
# Jetson AI Lab's package index serves onnxruntime-gpu per JetPack line; JetPack 4 has none.
ORT_INDEX_BY_JETPACK = {"6": "https://pypi.jetson-ai-lab.io/jp6/cu126"}
NVIDIA_USB_VENDOR = "0955"
RUNNING_L4T_PRODUCT = "7020"  # a booted Jetson in USB device mode; recovery mode (APX) has other product ids
FIRSTBOOT_UNIT = "edgekit-firstboot.service"


@dataclass(frozen=True)
class JetsonFlashRequest:
    l4t_dir: Path
    profile: DeviceProfile
    agent: AgentSettings
    system: SystemSettings
    ort_wheel: Path | None = None
    ort_index: str | None = None
    storage: str | None = None
    dry_run: bool = False


@dataclass
class Step:
    """One thing the flash does; ``command`` runs in the L4T directory, ``action`` in Python."""

    what: str
    command: list[str] | None = None
    action: Callable[[], None] | None = None
    secret: str | None = None

    def shown(self) -> str:
        if self.command is None:
            return self.what
        shown = [("<random password>" if a == self.secret else a) for a in self.command]
        return f"{self.what}\n    $ {shlex.join(shown)}"


@dataclass
class JetsonPlan:
    l4t_dir: Path
    l4t_release: str
    python: str
    steps: list[Step] = field(default_factory=list)


def l4t_release(l4t: Path) -> str:
    """``R36.4`` from rootfs/etc/nv_tegra_release (written by apply_binaries.sh)."""
    path = l4t / "rootfs/etc/nv_tegra_release"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ProvisioningError(f"{path} is missing: run sudo ./apply_binaries.sh in {l4t} first") from None
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)", text)
    if not m:
        raise ProvisioningError(f"{path} does not name an L4T release: {text.strip()[:80]!r}")
    return f"R{m.group(1)}.{m.group(2)}"


def rootfs_python(rootfs: Path) -> str:
    """The newest python3.N >= 3.10 in the rootfs: the agent's venv is built from it."""
    versions = sorted((int(m.group(1)), p.name) for p in (rootfs / "usr/bin").glob("python3.*")
                      if (m := re.fullmatch(r"python3\.(\d+)", p.name)))
    usable = [v for v in versions if v[0] >= 10]
    if not usable:
        found = ", ".join(f"3.{v}" for v, _ in versions) or "none"
        raise ProvisioningError(
            f"the rootfs has Python {found}; the agent needs >= 3.10 (JetPack 4.6 ships 3.6): install python3.10 into "
            "the rootfs (chroot with qemu-user-static) or flash JetPack 6"
        )
    return f"3.{usable[-1][0]}"


def check_tree(l4t: Path, profile: DeviceProfile) -> str:
    assert profile.flash is not None
    needed = ["flash.sh", "rootfs/etc", "tools/l4t_create_default_user.sh", f"{profile.flash.board_config}.conf"]
    if profile.flash.method == "l4t-initrd-flash":
        needed.append("tools/kernel_flash/l4t_initrd_flash.sh")
    missing = [n for n in needed if not (l4t / n).exists()]
    if missing:
        raise ProvisioningError(f"--l4t-dir {l4t} is not an unpacked Linux_for_Tegra tree for {profile.name}: "
                                f"missing {', '.join(missing)}")
    release = l4t_release(l4t)
    want = profile.flash.l4t or ""
    if release.split(".")[0] != want.split(".")[0]:
        raise ProvisioningError(f"{l4t} holds L4T {release}, but profile {profile.name} needs L4T {want} "
                                f"(JetPack {profile.flash.jetpack}); unpack the matching Jetson Linux release")
    return release


def flash_command(profile: DeviceProfile, l4t: Path, release: str, storage: str) -> list[str]:
    assert profile.flash is not None and profile.flash.board_config
    board = profile.flash.board_config
    if profile.flash.method == "l4t-flash":
        return ["./flash.sh", board, storage]
    # NVIDIA's documented NVMe flash for Orin: QSPI bootloader from the internal config, rootfs on the external one.
    if release.startswith("R35"):
        xml, qspi = "tools/kernel_flash/flash_l4t_external.xml", "bootloader/t186ref/cfg/flash_t234_qspi.xml"
    else:
        xml, qspi = "tools/kernel_flash/flash_l4t_t234_nvme.xml", "bootloader/generic/cfg/flash_t234_qspi.xml"
    for rel in (xml, qspi):
        if not (l4t / rel).exists():
            raise ProvisioningError(f"{l4t / rel} is missing: this L4T tree cannot flash {storage}")
    return ["./tools/kernel_flash/l4t_initrd_flash.sh", "--external-device", storage, "-c", xml,
            "-p", f"-c {qspi}", "--showlogs", "--network", "usb0", board, "internal"]


def check_recovery_mode() -> str:
    """The lsusb line of the one Jetson in recovery mode."""
    if shutil.which("lsusb") is None:
        raise ProvisioningError("lsusb not found (apt-get install usbutils); it checks the Jetson is in recovery mode")
    out = subprocess.run(["lsusb"], capture_output=True, text=True, check=False).stdout
    nvidia = [ln.strip() for ln in out.splitlines() if re.search(rf"\bID {NVIDIA_USB_VENDOR}:[0-9a-f]{{4}}\b", ln)]
    recovery = [ln for ln in nvidia if f"{NVIDIA_USB_VENDOR}:{RUNNING_L4T_PRODUCT}" not in ln]
    if len(recovery) == 1:
        return recovery[0]
    if len(recovery) > 1:
        raise ProvisioningError(f"{len(recovery)} Jetsons are in recovery mode; connect only the one to flash")
    if nvidia:
        raise ProvisioningError("the Jetson on USB is running Linux (0955:7020), not in recovery mode: power it off, "
                                "hold FORCE RECOVERY (or bridge the FC REC pins), power it on, then release")
    raise ProvisioningError("no Jetson in recovery mode on USB (lsusb shows no NVIDIA 0955: device): connect the dev "
                            "kit's USB port to this host and put it in recovery mode")


def gpu_requirement(profile: DeviceProfile, python: str, *, ort_wheel: Path | None, wheels: Path | None,
                    ort_index: str | None) -> tuple[str, str | None, Path | None]:
    """(requirement, extra index or None, the wheel file or None) for onnxruntime-gpu on a Jetson: the given
    wheel, the profile's wheel when it is in the wheelhouse, or the JetPack line's package index."""
    flash = profile.flash
    assert flash is not None
    wheel = ort_wheel
    carried = wheels / flash.ort_gpu_wheel if wheels and flash.ort_gpu_wheel else None
    if wheel is None and carried is not None and carried.is_file():
        wheel = carried
    if wheel is not None:
        if not wheel.is_file():
            raise ProvisioningError(f"--ort-wheel {wheel}: no such file")
        w = parse_wheel_name(wheel.name)
        if w.name.replace("-", "_").lower() != "onnxruntime_gpu" or not wheel_fits(w, python, "aarch64"):
            raise ProvisioningError(
                f"{wheel.name} is not an onnxruntime-gpu wheel for CPython {python} on aarch64, the Python the agent "
                f"will run on in this rootfs; get the JetPack {flash.jetpack} build for cp{python.replace('.', '')}")
        return f"onnxruntime-gpu=={w.version}", None, wheel
    version = parse_wheel_name(flash.ort_gpu_wheel).version if flash.ort_gpu_wheel else None
    index = ort_index or ORT_INDEX_BY_JETPACK.get((flash.jetpack or "").split(".")[0])
    if index is None:
        raise ProvisioningError(f"no package index serves onnxruntime-gpu for JetPack {flash.jetpack}: pass "
                                "--ort-wheel FILE (a build for this JetPack and Python)")
    return (f"onnxruntime-gpu=={version}" if version else "onnxruntime-gpu"), index, None


def plan_flash(req: JetsonFlashRequest, work: Path) -> JetsonPlan:
    profile, l4t = req.profile, req.l4t_dir
    if profile.flash is None or not profile.flash.method.startswith("l4t"):
        raise ProvisioningError(f"profile {profile.name} is not a Jetson; use jetson-nano or jetson-orin-nano")
    release = check_tree(l4t, profile)
    rootfs = l4t / "rootfs"
    python = rootfs_python(rootfs)
    gpu, index, gpu_wheel = gpu_requirement(profile, python, ort_wheel=req.ort_wheel, wheels=req.agent.wheels,
                                            ort_index=req.ort_index)
    bundle = prepare_bundle(req.agent.bundle, profile, work)
    reqs = requirements_for(profile, bundle.manifest, gpu_wheel=gpu, extra_index=index)
    wheels: list[Path] = []
    if req.agent.wheels:
        links = (gpu_wheel.parent,) if gpu_wheel else ()
        found = check_wheelhouse(req.agent.wheels, reqs, python=python, more_links=links, resolve=index is None)
        wheels = [w for w in found if gpu_wheel is None or w.name != gpu_wheel.name]
    if gpu_wheel:
        wheels.append(gpu_wheel)
    spec = PayloadSpec(profile, req.agent, DeviceLayout(systemd_for(profile)), reqs, bundle,
                       memory_cap(profile, req.agent.memory_cap_mb), tuple(wheels), firstboot_unit=True,
                       device_python=f"/usr/bin/python{python}")
    storage = req.storage or profile.flash.storage_device or ""
    plan = JetsonPlan(l4t, release, python)
    login = req.system.login
    password = secrets.token_urlsafe(18)
    steps = plan.steps
    steps.append(Step("check the board is in USB recovery mode (lsusb: NVIDIA 0955:, not 7020)",
                      action=lambda: log.info("recovery mode: %s", check_recovery_mode())))
    steps.append(Step(f"stage the agent payload into rootfs{FIRSTBOOT_DIR} and enable {FIRSTBOOT_UNIT} "
                      f"(venv from Python {python}, {gpu}, bundle {bundle.bundle_id})",
                      action=lambda: stage_payload(rootfs, spec, work)))
    if rootfs_settings.passwd_entry(rootfs, login.user) is None:
        steps.append(Step(f"create the headless user {login.user} and hostname {req.system.hostname}",
                          command=["./tools/l4t_create_default_user.sh", "-u", login.user, "-p", password,
                                   "-n", req.system.hostname, "--accept-license"], secret=password))
    steps.append(Step(f"set {login.user}'s login: {'the given password hash' if login.password_hash else 'no password'}"
                      f"{', ' + str(len(login.ssh_keys)) + ' SSH key(s)' if login.ssh_keys else ''}",
                      action=lambda: rootfs_settings.apply_login(rootfs, login)))
    if req.system.wifi:
        wifi = req.system.wifi
        steps.append(Step(f"add Wi-Fi network {wifi.ssid!r} (NetworkManager, 0600)",
                          action=lambda: rootfs_settings.apply_wifi(rootfs, wifi)))
    if req.system.timezone:
        tz = req.system.timezone
        steps.append(Step(f"set the timezone to {tz}", action=lambda: rootfs_settings.apply_timezone(rootfs, tz)))
    steps.append(Step(f"flash {profile.flash.board_config} ({storage}) with L4T {release}",
                      command=flash_command(profile, l4t, release, storage)))
    return plan


def stage_payload(rootfs: Path, spec: PayloadSpec, work: Path) -> None:
    """Build the payload beside its final place, then swap it in; enable the first-boot unit."""
    final = rootfs / FIRSTBOOT_DIR.lstrip("/")
    final.parent.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(prefix=".edgekit-firstboot.", dir=final.parent))
    incoming.rmdir()
    build_payload(spec, incoming)
    if final.exists():
        shutil.rmtree(final)
    os.replace(incoming, final)
    systemd = rootfs / "etc/systemd/system"
    (systemd / "multi-user.target.wants").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(script(f"systemd/{FIRSTBOOT_UNIT}"), systemd / FIRSTBOOT_UNIT)
    (systemd / FIRSTBOOT_UNIT).chmod(0o644)
    link = systemd / "multi-user.target.wants" / FIRSTBOOT_UNIT
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(f"/etc/systemd/system/{FIRSTBOOT_UNIT}")


def flash_jetson(req: JetsonFlashRequest, echo: Callable[[str], None] = print) -> JetsonPlan:
    if not req.dry_run and os.geteuid() != 0:
        raise ProvisioningError("flashing a Jetson needs root (rootfs/ is root-owned and the flash tools drive USB): "
                                "run it with sudo, or add --dry-run to see what it would do")
    work = Path(tempfile.mkdtemp(prefix="edgekit-jetson-"))
    try:
        plan = plan_flash(req, work)
        echo(f"L4T {plan.l4t_release} in {plan.l4t_dir}; the agent's venv is built from Python {plan.python} on first "
             "boot" + (" (dry run: nothing is changed)" if req.dry_run else ""))
        for i, step in enumerate(plan.steps, 1):
            echo(f"[{i}/{len(plan.steps)}] {'would ' if req.dry_run else ''}{step.shown()}")
            if req.dry_run:
                continue
            if step.action is not None:
                step.action()
            if step.command is not None:
                proc = subprocess.run(step.command, cwd=req.l4t_dir, check=False)
                if proc.returncode != 0:
                    raise ProvisioningError(f"{step.command[0]} failed (exit {proc.returncode}); its output is above")
        return plan
    finally:
        shutil.rmtree(work, ignore_errors=True)

"""``edgekit provision``: install, configure and start the agent on a device that already runs Linux.

Idempotent end to end: the device reports what it has (venv stamp, current bundle), unchanged wheels and bundles
are not even copied, and ``install-agent.sh`` replaces only what differs and restarts only when something did.
A new bundle is swapped in atomically. The profile comes from the device itself: its device-tree model, CPU
flags, /etc/nv_tegra_release and DMI name go through the same detector as ``edgekit profiles detect``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import ProvisioningError
from edgekit.firmware.jetson import gpu_requirement
from edgekit.firmware.layout import DeviceLayout
from edgekit.firmware.online import VerifySettings, wait_online
from edgekit.firmware.payload import PayloadSpec, build_payload, memory_cap, prepare_bundle
from edgekit.firmware.requirements import check_wheelhouse, requirements_for
from edgekit.firmware.settings import AgentSettings
from edgekit.firmware.transport import FACTS_SCRIPT, LocalTransport, SshTransport
from edgekit.profiles import load_profile
from edgekit.profiles.detect import detect
from edgekit.profiles.model import DeviceProfile

log = logging.getLogger(__name__)
ARCH = {"aarch64": "arm64", "arm64": "arm64", "x86_64": "x86_64", "amd64": "x86_64"}


@dataclass(frozen=True)
class ProvisionRequest:
    agent: AgentSettings
    host: str | None = None  # None: this machine
    root: Path = Path("/")
    profile: str | None = None
    ort_wheel: Path | None = None
    ssh_port: int | None = None
    ssh_identity: Path | None = None
    ssh_options: tuple[str, ...] = ()
    verify: VerifySettings | None = None


@dataclass
class ProvisionResult:
    profile: str
    how: str
    changed: int = 0
    restart: str = "no"
    reboot: bool = False
    online: dict[str, Any] | None = None
    lines: list[str] = field(default_factory=list)


def detect_profile(facts: dict[str, Any]) -> tuple[DeviceProfile, str]:
    """Mirror the device's identifying files into a stand-in root and run the shipped detector on it."""
    with tempfile.TemporaryDirectory(prefix="edgekit-facts-") as tmp:
        for rel, text in (facts.get("files") or {}).items():
            if text is not None:
                (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
                (Path(tmp) / rel).write_text(text)
        found = detect(Path(tmp))
    return load_profile(found.profile), "detected: " + "; ".join(found.reasons)


def _facts(transport: LocalTransport | SshTransport, root: Path) -> dict[str, Any]:
    proc = transport.run(["python3", "-", str(root)], input=FACTS_SCRIPT, check=False)
    if proc.returncode == 127 or "python3: " in proc.stderr and "not found" in proc.stderr:
        raise ProvisioningError(f"python3 is not installed on {transport.name}; the agent needs Python >= 3.10 "
                                "(apt-get install python3 python3-venv)")
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
    except (ValueError, IndexError) as err:
        raise ProvisioningError(f"could not read the facts of {transport.name}: {proc.stderr.strip()[-300:]}") from err


def _check_device(facts: dict[str, Any], profile: DeviceProfile, root: Path, where: str) -> None:
    major, minor = (int(x) for x in facts["python"].split("."))
    if (major, minor) < (3, 10):
        raise ProvisioningError(f"{where} has Python {facts['python']}; the agent needs >= 3.10: install a newer "
                                "python3 (and python3-venv) first")
    if not facts.get("systemd"):
        raise ProvisioningError(f"{where} does not run systemd; the agent is installed as a systemd service")
    arch = ARCH.get(facts["machine"], facts["machine"])
    if root == Path("/") and arch != profile.arch:
        raise ProvisioningError(f"{where} is {facts['machine']} but profile {profile.name} is {profile.arch}; "
                                "leave out --profile to detect it")


def provision(req: ProvisionRequest, echo: Callable[[str], None] = print) -> ProvisionResult:
    where = req.host or "this machine"
    transport: LocalTransport | SshTransport = (
        SshTransport(req.host, port=req.ssh_port, identity=req.ssh_identity, options=req.ssh_options)
        if req.host else LocalTransport())
    facts = _facts(transport, req.root)
    sudo = facts["uid"] != 0
    if sudo and not req.host:
        raise ProvisioningError("provisioning this machine installs a system service: run it with sudo")
    if sudo and transport.run(["true"], sudo=True, check=False).returncode != 0:
        raise ProvisioningError(f"the ssh user on {where} is not root and has no passwordless sudo: connect as root, "
                                "or allow sudo without a password for it")
    if req.profile:
        profile, how = load_profile(req.profile), "given with --profile"
    else:
        profile, how = detect_profile(facts)
    echo(f"{where}: profile {profile.name} ({how}), Python {facts['python']}, systemd {facts['systemd']}")
    _check_device(facts, profile, req.root, where)
    machine = "aarch64" if ARCH.get(facts["machine"]) == "arm64" else facts["machine"]
    work = Path(tempfile.mkdtemp(prefix="edgekit-provision-"))
    remote = None
    try:
        bundle = prepare_bundle(req.agent.bundle, profile, work)
        gpu = index = gpu_wheel = None
        if profile.flash and profile.flash.method.startswith("l4t"):
            gpu, index, gpu_wheel = gpu_requirement(profile, facts["python"], ort_wheel=req.ort_wheel,
                                                    wheels=req.agent.wheels, ort_index=None)
        reqs = requirements_for(profile, bundle.manifest, gpu_wheel=gpu, extra_index=index)
        wheels: list[Path] = []
        if req.agent.wheels:
            links = (gpu_wheel.parent,) if gpu_wheel else ()
            wheels = check_wheelhouse(req.agent.wheels, reqs, python=facts["python"], arch=machine,
                                      more_links=links, resolve=index is None)
        if gpu_wheel and all(w.name != gpu_wheel.name for w in wheels):
            wheels.append(gpu_wheel)
        spec = PayloadSpec(profile, req.agent, DeviceLayout(int(facts["systemd"])), reqs, bundle,
                           memory_cap(profile, req.agent.memory_cap_mb), tuple(wheels))
        # What the device already has is not even copied again.
        spec = dataclasses.replace(spec, skip_wheels=facts.get("stamp") == spec.stamp,
                                   skip_bundle=facts.get("bundle") == bundle.bundle_id)
        payload = build_payload(spec, work / "payload")
        remote = transport.upload(payload.dir)
        argv = ["bash", f"{remote}/install-agent.sh", "--payload", remote]
        if req.root != Path("/"):
            argv += ["--root", str(req.root)]
        proc = transport.run([*argv, "all"], sudo=sudo, echo=echo, check=False)
        result = _result(profile.name, how, proc.stdout)
        if proc.returncode != 0:
            raise ProvisioningError(f"installing the agent on {where} failed (exit {proc.returncode}); the device's "
                                    "messages are above")
    finally:
        if remote is not None and req.host:
            transport.cleanup(remote)
        shutil.rmtree(work, ignore_errors=True)
    if req.verify is not None and req.root == Path("/"):
        clock = re.search(r"clock=(\d+)", proc.stdout)
        echo(f"waiting up to {req.verify.timeout_s:.0f} s for {req.agent.device_id} to report online on "
             f"{req.verify.broker.url}")
        # After a restart only a status produced since then counts (the device's own clock at restart, less 2 s of
        # rounding); an agent left running keeps its retained birth message.
        since = float(clock.group(1)) - 2 if clock and result.restart == "yes" else None
        result.online = wait_online(req.verify, req.agent.device_id, since=since)
    return result


def _result(profile: str, how: str, output: str) -> ProvisionResult:
    result = ProvisionResult(profile, how, lines=output.splitlines())
    m = re.search(r"edgekit: result: changed=(\d+) restart=(\w+) reboot=(\w+)", output)
    if m:
        result.changed, result.restart, result.reboot = int(m.group(1)), m.group(2), m.group(3) == "yes"
    return result

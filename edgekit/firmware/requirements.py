"""What pip installs into the device's venv, and whether a carried wheelhouse can satisfy it offline.

The device gets ``edgekit[agent]`` at exactly this host's version, plus the profile's runtime pinned to the
version the bundle was validated with (from the manifest's ``producer``) when the manifest records it. Jetson
gets NVIDIA's ``onnxruntime-gpu`` build for its JetPack line instead of the CPU ``onnxruntime`` from PyPI.

``check_wheelhouse`` proves on the host that ``--wheels DIR`` resolves for the device's Python and CPU (a
``pip install --dry-run`` for that platform): a first boot without network then cannot fail on a missing wheel.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgekit import __version__
from edgekit.errors import ProvisioningError
from edgekit.manifest import Manifest
from edgekit.profiles.model import DeviceProfile

log = logging.getLogger(__name__)

RUNTIME_DISTRIBUTION = {"onnxruntime": "onnxruntime", "openvino": "openvino", "litert": "ai-edge-litert"}
RUNTIME_EXTRA = {"openvino": "openvino", "litert": "tflite"}
# glibc of the oldest supported device OS line (Ubuntu 18.04 / JetPack 4: 2.27) up to Trixie (2.41).
_GLIBC = range(17, 42)


@dataclass(frozen=True)
class Requirements:
    lines: tuple[str, ...]
    extra_index: str | None = None

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def agent_dependencies() -> list[str]:
    """The requirement strings of the ``agent`` extra, from the installed edgekit's metadata."""
    try:
        requires = importlib.metadata.requires("edgekit") or []
    except importlib.metadata.PackageNotFoundError as err:
        raise ProvisioningError("edgekit's package metadata is missing; install edgekit with pip first") from err
    out = []
    for req in requires:
        spec, _, marker = req.partition(";")
        if re.search(r"""extra\s*==\s*["']agent["']""", marker):
            out.append(spec.strip())
    return out


def pinned_runtime(profile: DeviceProfile, manifest: Manifest | None) -> str | None:
    """``name==version`` of the runtime the bundle was validated with, when its manifest says."""
    dist = RUNTIME_DISTRIBUTION.get(profile.runtime.name)
    if dist is None or manifest is None:
        return None
    for key, version in manifest.producer.items():
        if _normalise(key) == _normalise(dist) and re.match(r"^\d+(\.\d+)*$", str(version)):
            return f"{dist}=={version}"
    log.info("the bundle's manifest does not record its %s version; the device gets the newest allowed one", dist)
    return None


def requirements_for(profile: DeviceProfile, manifest: Manifest | None, *, gpu_wheel: str | None = None,
                     extra_index: str | None = None) -> Requirements:
    """Pip requirement lines for the device. ``gpu_wheel`` (``onnxruntime-gpu==X``) replaces the CPU runtime."""
    if gpu_wheel:
        deps = [d for d in agent_dependencies() if _normalise(re.split(r"[<>=!~\[ ;]", d)[0]) != "onnxruntime"]
        return Requirements((f"edgekit=={__version__}", *deps, gpu_wheel), extra_index)
    extras = ",".join(["agent", *([RUNTIME_EXTRA[profile.runtime.name]] if profile.runtime.name in RUNTIME_EXTRA
                                   else [])])
    lines = [f"edgekit[{extras}]=={__version__}"]
    pin = pinned_runtime(profile, manifest)
    if pin:
        lines.append(pin)
    return Requirements(tuple(lines), extra_index)


@dataclass(frozen=True)
class WheelName:
    name: str
    version: str
    python: tuple[str, ...]
    abi: tuple[str, ...]
    platform: tuple[str, ...]


def parse_wheel_name(filename: str) -> WheelName:
    parts = filename.removesuffix(".whl").split("-")
    if not filename.endswith(".whl") or len(parts) not in (5, 6):
        raise ProvisioningError(f"{filename} is not a wheel file name (name-version-python-abi-platform.whl)")
    return WheelName(parts[0], parts[1], *(tuple(p.split(".")) for p in parts[-3:]))  # type: ignore[arg-type]


def wheel_fits(w: WheelName, python: str, arch: str) -> bool:
    """Whether a wheel can install on CPython ``python`` (``"3.11"``) on glibc Linux ``arch`` (``aarch64``)."""
    cp = "cp" + python.replace(".", "")
    minor = int(python.split(".")[1])

    def pair_ok(py: str, abi: str) -> bool:
        if abi == "none":
            return py in ("py3", "py" + python.replace(".", ""), cp)
        if abi == "abi3":  # the stable ABI: built for cp3X, loads on every CPython >= 3.X
            return py.startswith("cp3") and py[3:].isdigit() and int(py[3:]) <= minor
        return abi == cp and py == cp

    tags_ok = any(pair_ok(py, abi) for py in w.python for abi in w.abi)
    plat_ok = any(p == "any" or (p.endswith("_" + arch) and not p.startswith("musllinux")) for p in w.platform)
    return tags_ok and plat_ok


def platform_tags(arch: str) -> list[str]:
    return [f"manylinux_2_{n}_{arch}" for n in _GLIBC] + [f"manylinux2014_{arch}", f"linux_{arch}"]


def check_wheelhouse(wheels: Path, requirements: Requirements, *, python: str, arch: str = "aarch64",
                     more_links: tuple[Path, ...] = (), resolve: bool = True) -> list[Path]:
    """Every wheel in ``wheels`` fits the device, there is an edgekit wheel of this version, and (``resolve``) pip
    resolves ``requirements`` from them (and ``more_links`` directories) alone for that platform. Returns the
    wheel files."""
    if not wheels.is_dir():
        raise ProvisioningError(f"--wheels {wheels}: no such directory")
    files = sorted(wheels.glob("*.whl"))
    if not files:
        raise ProvisioningError(f"--wheels {wheels} holds no .whl files")
    misfits = [f.name for f in files if not wheel_fits(parse_wheel_name(f.name), python, arch)]
    if misfits:
        raise ProvisioningError(
            f"--wheels {wheels}: {', '.join(misfits[:5])}{' …' if len(misfits) > 5 else ''} cannot install on the "
            f"device (CPython {python}, Linux {arch}); fetch the right ones with: pip download --only-binary=:all: "
            f"--platform manylinux2014_{arch} --python-version {python} -d {wheels} -r requirements.txt"
        )
    ours = [f for f in files if _normalise(parse_wheel_name(f.name).name) == "edgekit"]
    if not any(parse_wheel_name(f.name).version == __version__ for f in ours):
        found = ", ".join(f.name for f in ours) or "none"
        raise ProvisioningError(
            f"--wheels {wheels} has no edgekit {__version__} wheel (found: {found}); build it from this checkout "
            f"with: pip wheel --no-deps . -w {wheels}"
        )
    if resolve:
        _dry_run([wheels, *more_links], requirements, python=python, arch=arch)
    return files


def _dry_run(links: list[Path], requirements: Requirements, *, python: str, arch: str) -> None:
    wheels = links[0]
    with tempfile.TemporaryDirectory(prefix="edgekit-wheelcheck-") as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(requirements.text())
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--isolated", "--disable-pip-version-check",
               "--ignore-installed", "--no-index", "--only-binary=:all:",
               "--implementation", "cp", "--python-version", python, "--target", str(Path(tmp) / "t"), "-r", str(req)]
        for link in links:
            cmd += ["--find-links", str(link)]
        for tag in platform_tags(arch):
            cmd += ["--platform", tag]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired) as err:
            log.warning("could not check the wheelhouse with pip (%s); first boot will find out", err)
            return
    if proc.returncode != 0 and "No module named pip" in proc.stderr:
        log.warning("pip is not installed here, so the wheelhouse was not resolved in advance")
        return
    if proc.returncode != 0:
        detail = next((ln for ln in proc.stderr.splitlines() if "ERROR" in ln), proc.stderr.strip()[-300:])
        raise ProvisioningError(
            f"--wheels {wheels} cannot satisfy {' '.join(requirements.lines)} offline for CPython {python} on "
            f"{arch}: {detail}; add the missing wheels with: pip download --only-binary=:all: --platform "
            f"manylinux2014_{arch} --python-version {python} -d {wheels} <package>"
        )


def stamp(requirements: Requirements, wheel_files: list[Path], offline: bool) -> str:
    """What the venv was built from: when it is unchanged, a re-run skips pip entirely."""
    h = hashlib.sha256(requirements.text().encode())
    h.update(f"offline={offline} index={requirements.extra_index}\n".encode())
    for f in sorted(wheel_files, key=lambda p: p.name):
        h.update(f"{f.name} {f.stat().st_size}\n".encode())
    return h.hexdigest()

"""Recognise the machine edgekit runs on: device-tree model, /proc/cpuinfo features, /etc/nv_tegra_release, DMI.

Every reader takes a root directory, so tests point it at a stand-in tree shaped like a Pi, a Jetson or an x86 box.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.profiles.loader import shipped_profiles
from edgekit.profiles.model import DeviceProfile

# /proc/cpuinfo flag -> our ISA feature name (ARM `Features`, x86 `flags`).
_ARM_FLAGS = {"asimd": "neon", "asimddp": "dotprod", "i8mm": "i8mm", "asimdhp": "fp16", "sve": "sve"}
_X86_FLAGS = {"avx2": "avx2", "avx512f": "avx512f", "avx512_vnni": "avx512_vnni", "avx_vnni": "avx_vnni",
              "amx_int8": "amx"}


@dataclass(frozen=True)
class MachineFacts:
    arch: str
    isa: tuple[str, ...]
    cpu_model: str
    cores: int
    device_tree_model: str | None = None
    tegra_release: str | None = None
    dmi_product: str | None = None


@dataclass(frozen=True)
class Detection:
    profile: str
    facts: MachineFacts
    reasons: tuple[str, ...] = field(default_factory=tuple)


def _read(root: Path, rel: str) -> str | None:
    try:
        return (root / rel).read_bytes().decode("utf-8", "replace").replace("\x00", "").strip()
    except OSError:
        return None


def read_facts(root: Path = Path("/")) -> MachineFacts:
    cpuinfo = _read(root, "proc/cpuinfo") or ""
    flags: set[str] = set()
    cores = 0
    model = ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features"):
            flags.update(value.split())
        elif key == "processor":
            cores += 1
        elif key in ("model name", "cpu part") and not model:
            model = value.strip()
    dt_model = _read(root, "proc/device-tree/model") or _read(root, "sys/firmware/devicetree/base/model")
    arch = _arch_of(flags, root)
    table = _ARM_FLAGS if arch == "arm64" else _X86_FLAGS
    isa = tuple(sorted({table[f] for f in flags if f in table}))
    return MachineFacts(
        arch=arch,
        isa=isa,
        cpu_model=model or "unknown",
        cores=cores or 1,
        device_tree_model=dt_model,
        tegra_release=_tegra_release(_read(root, "etc/nv_tegra_release")),
        dmi_product=_read(root, "sys/class/dmi/id/product_name"),
    )


def _arch_of(flags: set[str], root: Path) -> str:
    if flags & {"asimd", "fp", "evtstrm"}:
        return "arm64"
    if flags & {"sse2", "avx", "lm"}:
        return "x86_64"
    if root == Path("/"):
        return "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"
    return "x86_64"


def _tegra_release(text: str | None) -> str | None:
    """``# R36 (release), REVISION: 4.0, ...`` -> ``R36.4``."""
    if not text:
        return None
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)", text)
    return f"R{m.group(1)}.{m.group(2)}" if m else None


def _score(profile: DeviceProfile, facts: MachineFacts) -> tuple[int, list[str]]:
    """How well a profile matches; 0 means it does not apply. Specific boards beat generic ones."""
    if profile.os != "linux" or profile.arch != facts.arch:
        return 0, []
    rules = profile.detect
    reasons: list[str] = []
    score = 1
    if rules.device_tree_model:
        if not facts.device_tree_model or not any(m.lower() in facts.device_tree_model.lower()
                                                  for m in rules.device_tree_model):
            return 0, []
        score += 10
        reasons.append(f"device-tree model {facts.device_tree_model!r}")
    if rules.tegra_release:
        if not facts.tegra_release or not facts.tegra_release.startswith(rules.tegra_release):
            return 0, []
        score += 5
        reasons.append(f"/etc/nv_tegra_release {facts.tegra_release}")
    if rules.dmi_product:
        if not facts.dmi_product or not any(m.lower() in facts.dmi_product.lower() for m in rules.dmi_product):
            return 0, []
        score += 10
        reasons.append(f"DMI product {facts.dmi_product!r}")
    if score == 1:
        reasons.append(f"generic {facts.arch} machine")
    return score, reasons


def detect(root: Path = Path("/")) -> Detection:
    """The best-matching shipped profile for the machine under ``root``."""
    facts = read_facts(root)
    best: tuple[int, str, list[str]] = (0, f"generic-{facts.arch}", ["no profile matched; generic fallback"])
    for name, profile in shipped_profiles().items():
        score, reasons = _score(profile, facts)
        if score > best[0]:
            best = (score, name, reasons)
    _, name, reasons = best
    if facts.isa:
        reasons = [*reasons, f"CPU features {', '.join(facts.isa)}"]
    return Detection(profile=name, facts=facts, reasons=tuple(reasons))

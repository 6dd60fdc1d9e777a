"""The typed, frozen model of a device profile (``device_profiles/<name>.toml``) and its cross-field rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Arch = Literal["x86_64", "arm64"]
Os = Literal["linux", "android", "ios", "macos", "windows"]
IsaFeature = Literal["neon", "dotprod", "i8mm", "fp16", "sve", "avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx"]
Accelerator = Literal["cuda", "tensorrt", "intel-gpu", "npu", "apple-gpu", "apple-ane", "android-gpu", "nnapi"]
RuntimeName = Literal["onnxruntime", "openvino", "litert", "coreml"]
PowerSource = Literal["estimated", "ina3221", "rpi5-pmic", "rapl"]
FlashMethod = Literal["rpi-image", "l4t-flash", "l4t-initrd-flash"]

ARM_FEATURES = frozenset({"neon", "dotprod", "i8mm", "fp16", "sve"})
X86_FEATURES = frozenset({"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx"})


@dataclass(frozen=True)
class RuntimeSettings:
    """Which runtime the agent uses by default and how it is sized for this device."""

    name: RuntimeName
    threads: int
    max_batch: int = 8
    max_wait_ms: int = 10


@dataclass(frozen=True)
class MemorySettings:
    """The agent's memory cap (MB): admission control, RSS watchdog and the systemd MemoryMax=."""

    cap_mb: int
    soft_limit_pct: int = 90


@dataclass(frozen=True)
class PowerSettings:
    """Where watts come from: a sensor, or P = idle + (max - idle) * utilisation, labelled estimated."""

    source: PowerSource
    idle_watts: float | None = None
    max_watts: float | None = None
    rail: str | None = None


@dataclass(frozen=True)
class ThermalSettings:
    """The thermal zone whose ``type`` names the SoC/CPU sensor (``/sys/class/thermal/thermal_zone*/type``)."""

    zone: str


@dataclass(frozen=True)
class DetectRules:
    """How ``edgekit profiles detect`` recognises the board it runs on."""

    device_tree_model: tuple[str, ...] = ()
    tegra_release: str | None = None
    dmi_product: tuple[str, ...] = ()


@dataclass(frozen=True)
class FlashSettings:
    """OS and flashing facts for boards edgekit can flash."""

    method: FlashMethod
    image_family: str
    boot_partition: str
    os_releases: tuple[str, ...] = ()
    jetpack: str | None = None
    l4t: str | None = None
    board_config: str | None = None
    storage_device: str | None = None
    python: str | None = None
    ort_gpu_wheel: str | None = None


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    os: Os
    arch: Arch
    cpu: str
    cores: int
    ram_mb: int
    targets: tuple[str, ...]
    runtime: RuntimeSettings
    memory: MemorySettings
    power: PowerSettings
    isa: tuple[IsaFeature, ...] = ()
    accelerators: tuple[Accelerator, ...] = ()
    qemu_cpu: str | None = None
    thermal: ThermalSettings | None = None
    detect: DetectRules = field(default_factory=DetectRules)
    flash: FlashSettings | None = None

    @property
    def is_mobile(self) -> bool:
        return self.os in ("android", "ios")


def check_profile(p: DeviceProfile) -> list[tuple[str, str]]:
    """Cross-field rules the types cannot express. Returns (key, message) pairs; empty means valid."""
    from converters.registry import REGISTRY, target_ids, unknown_message

    problems: list[tuple[str, str]] = []
    known = target_ids()
    if not p.targets:
        problems.append(("targets", "needs at least one target id, most preferred first"))
    if len(set(p.targets)) != len(p.targets):
        problems.append(("targets", f"lists a target twice: {list(p.targets)}"))
    runtimes = set()
    for i, tid in enumerate(p.targets):
        if tid not in known:
            problems.append((f"targets[{i}]", unknown_message("target", tid, known)))
            continue
        spec = REGISTRY.get(tid)
        runtimes.add(spec.runtime)
        if not spec.runs_on(p.os, p.arch):
            problems.append(
                (
                    f"targets[{i}]",
                    f"{tid!r} cannot run on os={p.os!r} arch={p.arch!r}; it runs on "
                    f"os {sorted(spec.oses)} and arch {sorted(spec.arches)}",
                )
            )
    if runtimes and p.runtime.name not in runtimes:
        problems.append(
            ("runtime.name", f"{p.runtime.name!r} executes none of the targets; they need {sorted(runtimes)}")
        )
    wrong_isa = set(p.isa) - (ARM_FEATURES if p.arch == "arm64" else X86_FEATURES)
    if wrong_isa:
        problems.append(("isa", f"{sorted(wrong_isa)} are not {p.arch} features"))
    for key, value in (("cores", p.cores), ("ram_mb", p.ram_mb), ("runtime.threads", p.runtime.threads),
                       ("runtime.max_batch", p.runtime.max_batch), ("memory.cap_mb", p.memory.cap_mb)):
        if value < 1:
            problems.append((key, f"must be >= 1, got {value}"))
    if p.runtime.threads > p.cores:
        problems.append(("runtime.threads", f"{p.runtime.threads} is more than the {p.cores} cores"))
    if p.memory.cap_mb > p.ram_mb:
        problems.append(("memory.cap_mb", f"{p.memory.cap_mb} MB is more than the board's {p.ram_mb} MB of RAM"))
    if not 50 <= p.memory.soft_limit_pct <= 100:
        problems.append(("memory.soft_limit_pct", f"must be between 50 and 100, got {p.memory.soft_limit_pct}"))
    if p.power.source == "estimated":
        if p.power.idle_watts is None or p.power.max_watts is None:
            problems.append(("power", "source 'estimated' needs idle_watts and max_watts"))
        elif not 0 < p.power.idle_watts < p.power.max_watts:
            got = f"{p.power.idle_watts} / {p.power.max_watts}"
            problems.append(("power", f"need 0 < idle_watts < max_watts, got {got}"))
    if p.os == "linux" and p.arch == "arm64" and not p.qemu_cpu:
        problems.append(
            ("qemu_cpu", "ARM64 Linux boards name the qemu CPU model used to check artifacts (e.g. 'cortex-a72')")
        )
    if p.flash is not None:
        if p.os != "linux":
            problems.append(("flash", f"only Linux boards can be flashed, this profile is os={p.os!r}"))
        if p.flash.method.startswith("l4t") and not (p.flash.jetpack and p.flash.l4t and p.flash.board_config):
            problems.append(("flash", "L4T flashing needs jetpack, l4t and board_config"))
    if p.is_mobile and p.thermal is not None:
        problems.append(("thermal", "mobile profiles have no sysfs thermal zone the agent can read"))
    return problems

"""ONNX Runtime INT8 presets per CPU family (REFERENCE.md, Quantization).

ARM64: u8 activations, s8 symmetric per-channel weights, no reduce_range (NEON/dot-product kernels do not
saturate); static QDQ is s8s8, which ARM fuses natively.
x86: the VNNI-friendly variant: u8 activations x s8 weights. VNNI multiplies u8 x s8 without the 16-bit
intermediate that saturates on AVX2/AVX512 without VNNI, so reduce_range (7-bit weights) is switched on only when
the profile's CPU lacks VNNI.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.profiles import DeviceProfile


@dataclass(frozen=True)
class OrtPreset:
    name: str
    per_channel: bool
    reduce_range: bool
    static_activation: str  # QuantType name for static QDQ activations: "QInt8" or "QUInt8"
    weight: str = "QInt8"
    why: str = ""


def preset_for(name: str, profile: DeviceProfile | None) -> OrtPreset:
    if name == "arm64":
        return OrtPreset("arm64", per_channel=True, reduce_range=False, static_activation="QInt8",
                         why="u8 activations / s8 per-channel weights, no reduce_range; static QDQ s8s8")
    if name == "x86":
        isa = set(profile.isa) if profile is not None and profile.arch == "x86_64" else {"avx512_vnni"}
        vnni = bool(isa & {"avx512_vnni", "avx_vnni"})
        why = ("u8 activations x s8 per-channel weights (VNNI: no saturation)" if vnni else
               "u8 activations x s8 per-channel 7-bit weights (reduce_range: this CPU has no VNNI, and u8 x s8 "
               "saturates in AVX2's 16-bit intermediates)")
        return OrtPreset("x86", per_channel=True, reduce_range=not vnni, static_activation="QUInt8", why=why)
    raise ValueError(f"unknown ONNX INT8 preset {name!r}; known: arm64, x86")

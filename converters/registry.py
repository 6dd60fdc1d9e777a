"""The target registry: every artifact kind edgekit can build, with its format, precision and runtime.

A target module registers itself with ``@register_target(...)`` on its converter function; importing
``converters`` imports every target module, so the registry is complete and stays cheap to load (converter
bodies import their heavy libraries inside the function).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import RegistryError

FORMATS = ("onnx", "openvino-ir", "tflite", "coreml")
PRECISIONS = ("fp32", "fp16", "int8")
RUNTIMES = ("onnxruntime", "openvino", "litert", "coreml")
ARCHES = ("x86_64", "arm64")
OSES = ("linux", "macos", "windows", "android", "ios")

ConvertFn = Callable[..., Any]


@dataclass(frozen=True)
class TargetSpec:
    """What one target id means: how its artifact is stored and which runtime executes it."""

    id: str
    format: str
    precision: str
    runtime: str
    extension: str
    arches: frozenset[str]
    oses: frozenset[str]
    extra: str
    description: str
    convert: ConvertFn
    options: Mapping[str, Any] = field(default_factory=dict)

    def runs_on(self, os_name: str, arch: str) -> bool:
        return os_name in self.oses and arch in self.arches


class TargetRegistry:
    """Name -> TargetSpec. Registering a name twice raises; looking up an unknown one names the closest."""

    def __init__(self) -> None:
        self._targets: dict[str, TargetSpec] = {}

    def add(self, spec: TargetSpec) -> None:
        if spec.id in self._targets:
            raise RegistryError(f"target {spec.id!r} is already registered; target ids must be unique")
        for value, allowed, what in (
            (spec.format, FORMATS, "format"),
            (spec.precision, PRECISIONS, "precision"),
            (spec.runtime, RUNTIMES, "runtime"),
        ):
            if value not in allowed:
                raise RegistryError(f"target {spec.id!r}: {what} {value!r} is not one of {', '.join(allowed)}")
        self._targets[spec.id] = spec

    def get(self, target_id: str) -> TargetSpec:
        try:
            return self._targets[target_id]
        except KeyError:
            raise RegistryError(unknown_message("target", target_id, self.ids())) from None

    def ids(self) -> list[str]:
        return list(self._targets)

    def __contains__(self, target_id: object) -> bool:
        return target_id in self._targets

    def __iter__(self) -> Iterator[TargetSpec]:
        return iter(self._targets.values())

    def __len__(self) -> int:
        return len(self._targets)


def unknown_message(kind: str, name: str, known: list[str]) -> str:
    """``unknown target 'onx-fp32' (did you mean 'onnx-fp32'?); known: a, b, c``."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {kind} {name!r}{hint}; known: {', '.join(known)}"


REGISTRY = TargetRegistry()


def register_target(
    target_id: str,
    *,
    format: str,
    precision: str,
    runtime: str,
    extension: str,
    extra: str,
    description: str,
    arches: tuple[str, ...] = ARCHES,
    oses: tuple[str, ...] = ("linux", "macos", "windows"),
    options: Mapping[str, Any] | None = None,
    registry: TargetRegistry = REGISTRY,
) -> Callable[[ConvertFn], ConvertFn]:
    """Register the decorated converter function as the builder of ``target_id``."""

    def decorate(fn: ConvertFn) -> ConvertFn:
        registry.add(
            TargetSpec(
                id=target_id,
                format=format,
                precision=precision,
                runtime=runtime,
                extension=extension,
                arches=frozenset(arches),
                oses=frozenset(oses),
                extra=extra,
                description=description,
                convert=fn,
                options=dict(options or {}),
            )
        )
        return fn

    return decorate


def get_target(target_id: str) -> TargetSpec:
    _load_targets()
    return REGISTRY.get(target_id)


def target_ids() -> list[str]:
    _load_targets()
    return REGISTRY.ids()


def all_targets() -> list[TargetSpec]:
    _load_targets()
    return list(REGISTRY)


def _load_targets() -> None:
    # Importing the package imports every target module, which registers itself.
    import converters.targets  # noqa: F401

"""Build a device or app bundle from an ``edgekit convert`` output directory.

- ``android``: the profile's preferred ``.tflite`` artifact (all its sequence buckets), tokenizer/labels,
  ``INTEGRATION.md`` (Gradle ``noCompress`` + Kotlin), manifest, checksums;
- ``ios``: the preferred ``.mlpackage``, tokenizer/labels, ``INTEGRATION.md`` (Xcode + Swift), manifest, checksums;
- ``linux``: every artifact the device can run (not Core ML), tokenizer, manifest, checksums: what the agent and
  the firmware scripts consume.

The bundle's ``manifest.json`` is the convert manifest narrowed to what the bundle holds, with ``platform``,
``min_runtime`` and an ``extra.bundle`` block (input spec, quantization, integration notes). ``CHECKSUMS.sha256``
repeats every file's hash in ``sha256sum -c`` form. ``--sign`` adds ``manifest.json.sig``.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.bundle import integration
from edgekit.bundle.archive import is_archive, pack
from edgekit.checksums import sha256_file, sha256_path, size_of
from edgekit.errors import BundleIntegrityError, UsageError
from edgekit.manifest import MANIFEST_NAME, Artifact, FileEntry, Manifest, now_iso, read_manifest, write_manifest

log = logging.getLogger(__name__)

PLATFORMS = ("linux", "android", "ios")
CHECKSUMS_NAME = "CHECKSUMS.sha256"
INTEGRATION_NAME = "INTEGRATION.md"
_FORMATS = {"android": ("tflite",), "ios": ("coreml",)}


@dataclass(frozen=True)
class BundleResult:
    path: Path
    platform: str
    artifacts: tuple[str, ...]
    files: int
    size_bytes: int
    signed: bool


def select_artifacts(manifest: Manifest, platform: str, targets: Sequence[str] | None = None) -> list[Artifact]:
    """The artifacts a ``platform`` bundle carries, in the profile's order of preference."""
    if platform not in PLATFORMS:
        raise UsageError(f"platform {platform!r} is not one of {', '.join(PLATFORMS)}")
    usable = [a for a in manifest.artifacts if a.status != "failed"]
    if targets:
        unknown = [t for t in targets if t not in {a.target for a in usable}]
        if unknown:
            raise UsageError(f"--targets {', '.join(unknown)}: not among the built artifacts "
                             f"({', '.join(a.target for a in usable) or 'none'})")
        usable = [a for a in usable if a.target in targets]
    order = _preference(manifest)
    usable.sort(key=lambda a: order.index(a.target) if a.target in order else len(order))
    if platform == "linux":
        chosen = [a for a in usable if a.runtime != "coreml"]
    else:
        fitting = [a for a in usable if a.format in _FORMATS[platform]]
        chosen = fitting[:1] if not targets else fitting
    if not chosen:
        kinds = "any non-Core ML artifact" if platform == "linux" else f"a {'/'.join(_FORMATS[platform])} artifact"
        built = ", ".join(f"{a.target} ({a.status})" for a in manifest.artifacts) or "nothing"
        raise BundleIntegrityError(f"a {platform} bundle needs {kinds} that did not fail; this directory has: "
                                   f"{built}. Convert with a profile or --targets that builds one")
    return chosen


def _preference(manifest: Manifest) -> list[str]:
    try:
        from edgekit.profiles import load_profile

        return list(load_profile(manifest.profile).targets)
    except Exception:  # noqa: BLE001 - a custom or unknown profile: keep the manifest's order
        return [a.target for a in manifest.artifacts]


def build_bundle(src: Path, platform: str, out: Path, *, sign_key: Path | None = None,
                 targets: Sequence[str] | None = None) -> BundleResult:
    """Write the bundle of ``src`` for ``platform`` to ``out`` (a directory, or a .tar.gz/.zip archive)."""
    manifest = read_manifest(src)
    from edgekit.bundle.verify import check_checksums

    check = check_checksums(src, manifest)
    if not check.ok:
        raise BundleIntegrityError(f"{src} does not match its own manifest ({check.problems[0]}); re-run "
                                   "'edgekit convert' before bundling")
    chosen = select_artifacts(manifest, platform, targets)
    archive = is_archive(out)
    if not archive and out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty; choose a new directory, or a .tar.gz/.zip path")
    with tempfile.TemporaryDirectory(prefix="edgekit-bundle-") as tmp:
        stage = Path(tmp) / "bundle" if archive else out
        stage.mkdir(parents=True, exist_ok=True)
        rels = [a.path for a in chosen] + [f.path for a in chosen for f in a.files]
        extras = [f for f in manifest.files if f.kind != "report"]
        for rel in rels + [f.path for f in extras]:
            _copy(src / rel, stage / rel)
        files = list(extras)
        tokenizer = next((f.path for f in extras if "tokenizer" in f.path), None)
        if platform in ("android", "ios"):
            text = getattr(integration, platform)(manifest, chosen[0], tokenizer)
            (stage / INTEGRATION_NAME).write_text(text, encoding="utf-8")
            files.append(_entry(stage, INTEGRATION_NAME, "doc"))
        bundled = dataclasses.replace(
            manifest,
            artifacts=tuple(chosen),
            files=tuple(files),
            platform=platform,
            min_runtime={**manifest.min_runtime, **_min_runtime(chosen, manifest)},
            extra={**manifest.extra, "bundle": _bundle_info(manifest, chosen, platform)},
        )
        write_manifest(bundled, stage)
        _write_checksums(stage)
        if sign_key is not None:
            from edgekit.bundle.signing import sign_manifest

            sign_manifest(stage, sign_key)
        nfiles = sum(1 for p in stage.rglob("*") if p.is_file())
        size = size_of(stage)
        if archive:
            pack(stage, out)
    log.info("bundle %s: %s, %d files", out, ", ".join(a.target for a in chosen), nfiles)
    return BundleResult(out, platform, tuple(a.target for a in chosen), nfiles, size, sign_key is not None)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dst)


def _entry(root: Path, rel: str, kind: str) -> FileEntry:
    path = root / rel
    return FileEntry(path=rel, sha256=sha256_path(path), size_bytes=size_of(path), kind=kind)


def _min_runtime(chosen: Sequence[Artifact], manifest: Manifest) -> dict[str, str]:
    out: dict[str, str] = {}
    for a in chosen:
        for k, v in (a.details.get("min_runtime") or {}).items():
            if k != "note":
                out[k] = str(v)
        if a.runtime == "onnxruntime" and "onnxruntime" in manifest.producer:
            out.setdefault("onnxruntime", f">={manifest.producer['onnxruntime']}")
    return out


def _bundle_info(manifest: Manifest, chosen: Sequence[Artifact], platform: str) -> dict[str, Any]:
    first = chosen[0]
    spec = {
        "inputs": [{"name": i.name, "dtype": first.details.get("input_dtypes", {}).get(i.name, i.dtype),
                    "shape": (first.details.get("input_shapes") or first.details.get("shapes") or {}).get(
                        i.name, list(i.shape))} for i in manifest.model.inputs],
        "outputs": [{"name": o.name, "dtype": "float32", "shape": list(o.shape)} for o in manifest.model.outputs],
        "normalization": manifest.extra.get("normalization")
        or ("L2-normalised embedding" if manifest.extra.get("normalize") else None),
    }
    info: dict[str, Any] = {"platform": platform, "created": now_iso(), "input_spec": spec,
                            "quantization": {a.target: a.details.get("quantization") for a in chosen
                                             if a.details.get("quantization")}}
    if platform == "android":
        info["integration"] = INTEGRATION_NAME
        info["tflite_metadata"] = first.details.get(
            "metadata", "not embedded in the .tflite; the input spec is in this manifest")
        info["uncompressed"] = "keep .tflite uncompressed (noCompress) so LiteRT can memory-map it"
    elif platform == "ios":
        info["integration"] = INTEGRATION_NAME
        info["validation"] = "structural on Linux (converted-not-run); numeric on macOS"
    return info


def _write_checksums(root: Path) -> None:
    """``sha256sum -c`` compatible list of every file (inside .mlpackage directories too), manifest included."""
    lines = [f"{sha256_file(p)}  {p.relative_to(root).as_posix()}"
             for p in sorted(root.rglob("*")) if p.is_file() and p.name != CHECKSUMS_NAME]
    (root / CHECKSUMS_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")


__all__ = ["BundleResult", "MANIFEST_NAME", "PLATFORMS", "build_bundle", "select_artifacts"]

"""Check a bundle's files against its manifest: every artifact and extra file present, sizes and SHA-256 equal."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgekit.checksums import sha256_path, size_of
from edgekit.manifest import Manifest, read_manifest


@dataclass
class CheckResult:
    """Problems found (each names the file) and the files that checked out."""

    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_checksums(root: Path, manifest: Manifest | None = None) -> CheckResult:
    manifest = manifest or read_manifest(root)
    result = CheckResult()
    entries: list[tuple[str, str, int]] = []
    for a in manifest.artifacts:
        if a.status == "failed":
            continue
        entries.append((a.path, a.sha256, a.size_bytes))
        entries.extend((f.path, f.sha256, f.size_bytes) for f in a.files)
    entries.extend((f.path, f.sha256, f.size_bytes) for f in manifest.files)
    seen = set()
    for rel, sha, size in entries:
        if rel in seen:
            continue
        seen.add(rel)
        path = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            result.problems.append(f"{rel}: path escapes the bundle")
        elif not path.exists():
            result.problems.append(f"{rel}: missing")
        elif size_of(path) != size:
            result.problems.append(f"{rel}: size {size_of(path)} bytes, manifest says {size}")
        elif sha256_path(path) != sha:
            result.problems.append(f"{rel}: sha256 differs from the manifest (the file was changed)")
        else:
            result.checked.append(rel)
    return result

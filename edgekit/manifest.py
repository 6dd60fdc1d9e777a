"""Typed models of ``manifest.json`` and ``report.json``, validated against the JSON Schemas shipped in
``edgekit/schemas/`` on every read and write."""

from __future__ import annotations

import datetime as _dt
import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from edgekit.errors import BundleIntegrityError
from edgekit.strictdata import DataError, build, to_dict

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.json"

Dim = int | str  # a fixed size, or the name of a dynamic axis ("batch", "sequence")
Status = Literal["ok", "converted-not-run", "failed"]


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int | str, ...]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: str
    sha256: str
    task: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class Parity:
    metric: str
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    threshold: dict[str, float] = field(default_factory=dict)
    samples: int | None = None
    passed: bool | None = None


@dataclass(frozen=True)
class FileEntry:
    """A file the bundle carries besides artifacts (tokenizer, labels, reports)."""

    path: str
    sha256: str
    size_bytes: int
    kind: str = "extra"


@dataclass(frozen=True)
class Artifact:
    target: str
    path: str
    format: str
    precision: str
    size_bytes: int
    sha256: str
    runtime: str
    validation: Parity | None = None
    status: Status = "ok"
    files: tuple[FileEntry, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    model: ModelInfo
    profile: str
    created: str
    producer: dict[str, str]
    artifacts: tuple[Artifact, ...]
    files: tuple[FileEntry, ...] = ()
    platform: str | None = None
    min_runtime: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def artifact(self, target: str) -> Artifact:
        for a in self.artifacts:
            if a.target == target:
                return a
        raise BundleIntegrityError(
            f"the manifest has no artifact for target {target!r}; it has: {', '.join(a.target for a in self.artifacts)}"
        )


@dataclass(frozen=True)
class Latency:
    p50: float
    p95: float
    batch: int = 1
    precision: str | None = None
    seq: int | None = None


@dataclass(frozen=True)
class ReportRow:
    target: str
    status: Status
    size_bytes: int | None = None
    parity: Parity | None = None
    latency_ms: Latency | None = None
    error: dict[str, str] | None = None
    conversion_s: float | None = None
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    schema_version: int
    model: str
    profile: str
    created: str
    rows: tuple[ReportRow, ...]

    @property
    def failed(self) -> list[ReportRow]:
        return [r for r in self.rows if r.status == "failed"]


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped in edgekit/schemas/ (``manifest``, ``report``, and the MQTT payloads)."""
    text = (resources.files("edgekit") / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def schema_errors(name: str, data: Any) -> list[str]:
    """Every way ``data`` breaks schema ``name``, as ``at <path>: <message>`` lines."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema(name))
    out = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        out.append(f"at {where}: {err.message}")
    return out


def _check(name: str, data: Any, origin: str) -> None:
    errors = schema_errors(name, data)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BundleIntegrityError(f"{origin} does not match the {name} schema: {errors[0]}{more}")


def manifest_to_json(m: Manifest) -> dict[str, Any]:
    data = to_dict(m)
    _check("manifest", data, "manifest")
    return data  # type: ignore[no-any-return]


def write_manifest(m: Manifest, directory: Path) -> Path:
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(manifest_to_json(m), indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(directory: Path) -> Manifest:
    return build_checked(Manifest, "manifest", directory / MANIFEST_NAME)


def write_report(r: Report, directory: Path) -> Path:
    data = to_dict(r)
    _check("report", data, "report")
    path = directory / REPORT_NAME
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def read_report(directory: Path) -> Report:
    return build_checked(Report, "report", directory / REPORT_NAME)


def build_checked(cls: type[Any], schema: str, path: Path) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleIntegrityError(f"{path} is missing; is this a directory written by 'edgekit convert'?") from None
    except json.JSONDecodeError as err:
        raise BundleIntegrityError(f"{path} is not valid JSON: {err}") from err
    _check(schema, data, str(path))
    try:
        return build(cls, data)
    except DataError as err:
        raise BundleIntegrityError(f"{path}: {err}") from err

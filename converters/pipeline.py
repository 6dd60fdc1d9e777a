"""The orchestrator: source -> samples -> FP32 reference -> one converter per target -> gate -> outputs.

It only sequences: the converters (``converters.targets``) build, ``converters.parity`` judges, and this module
records. Outputs are assembled in a hidden staging directory beside ``--out`` and moved into place at the end,
so an interrupted or failed run never leaves a half-written directory that looks valid. A target that fails is a
``failed`` row with the reason (its files are not kept); the caller turns failed rows into a non-zero exit.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from converters.base import BuiltArtifact, ConvertContext, SourceModel
from converters.latency import claimed_precision, measure, ran_at
from converters.parity import ParityChecker, describe, metric_for_task
from converters.registry import TargetSpec, get_target
from converters.samples import SAMPLES_NAME, SampleSet, build_samples, save_samples
from converters.toolrun import one_line
from edgekit import __version__
from edgekit.checksums import sha256_path, size_of
from edgekit.errors import EdgeKitError, NotAvailableError, SourceError, UsageError
from edgekit.manifest import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    Artifact,
    FileEntry,
    Latency,
    Manifest,
    ModelInfo,
    Parity,
    Report,
    ReportRow,
    now_iso,
    write_manifest,
    write_report,
)
from edgekit.profiles import DeviceProfile, load_profile
from edgekit.runtimes import RuntimeOptions, open_runner

log = logging.getLogger(__name__)
PRODUCER_PACKAGES = ("onnx", "onnxruntime", "openvino", "nncf", "torch", "transformers", "onnxscript",
                     "ai-edge-litert", "coremltools")


@dataclass
class ConvertRequest:
    source: str
    profile: str
    targets: Sequence[str] | None = None
    out_dir: Path | None = None
    calibration: Path | None = None
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    thresholds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # target or "*" -> key -> value
    task: str | None = None
    threads: int | None = None
    latency_runs: int = 50


class Events:
    """What the orchestrator reports while it works; the CLI draws it with rich. Defaults do nothing."""

    def stage(self, message: str) -> None: ...

    def target_started(self, target: str, index: int, total: int) -> None: ...

    def target_progress(self, target: str, message: str) -> None: ...

    def target_finished(self, row: ReportRow) -> None: ...


@dataclass
class ConvertResult:
    out_dir: Path
    report: Report
    manifest: Manifest

    @property
    def failed(self) -> list[ReportRow]:
        return self.report.failed


def resolve_targets(profile: DeviceProfile, requested: Sequence[str] | None) -> list[TargetSpec]:
    ids = list(dict.fromkeys(requested)) if requested else list(profile.targets)
    if not ids:
        raise UsageError("--targets is empty; name at least one target (see: edgekit profiles show NAME)")
    return [get_target(t) for t in ids]


def check_out_dir(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_NAME).is_file())):
        raise UsageError(f"--out {out} exists and is not an edgekit output directory; "
                         "choose another --out or remove it")


def reference_outputs(source: SourceModel, samples: SampleSet, threads: int) -> list[dict[str, np.ndarray]]:
    try:
        runner = open_runner("onnxruntime", source.onnx_path, RuntimeOptions(threads=threads))
        outs = [runner.run(f) for f in samples.parity]
        runner.close()
    except NotAvailableError:
        raise
    except Exception as err:
        raise SourceError(f"ONNX Runtime cannot run the source model, so there is no FP32 reference: "
                          f"{one_line(err)}") from err
    return outs


class _Run:
    """State of one convert run: the staging directory, the context pieces and the collected records."""

    def __init__(self, req: ConvertRequest, events: Events, profile: DeviceProfile, source: SourceModel,
                 samples: SampleSet, reference: list[dict[str, np.ndarray]], stage: Path, work: Path,
                 threads: int) -> None:
        self.req, self.events, self.profile, self.source = req, events, profile, source
        self.samples, self.reference, self.stage, self.work, self.threads = samples, reference, stage, work, threads
        self.checker = ParityChecker(samples.parity, reference, metric_for_task(source.task),
                                     precision_of=lambda t: get_target(t).precision, overrides=req.thresholds)
        self.rows: list[ReportRow] = []
        self.artifacts: list[Artifact] = []

    def latency(self, predict: Any, precision: str | None = None) -> Latency:
        return measure(predict, self.samples.latency, precision=precision, seq=self.samples.latency_seq,
                       runs=self.req.latency_runs)

    def context(self, spec: TargetSpec) -> ConvertContext:
        work = self.work / spec.id
        work.mkdir(parents=True, exist_ok=True)
        return ConvertContext(
            source=self.source, out_dir=self.stage, work_dir=work, profile=self.profile,
            samples=self.samples.parity, reference=self.reference, calibration=self.samples.calibration,
            options={"thresholds": dict(self.req.thresholds), "threads": self.threads}, check_parity=self.checker,
            progress=lambda message: self.events.target_progress(spec.id, message), parity=self.checker,
            measure_latency=self.latency, threads=self.threads)

    def build(self, spec: TargetSpec) -> ReportRow:
        t0 = time.perf_counter()
        built: BuiltArtifact | None = None
        try:
            built = spec.convert(self.context(spec), spec)
            row = self.validate(spec, built)
        except EdgeKitError as err:
            row = ReportRow(spec.id, "failed", error={"message": one_line(err, 400), "kind": type(err).__name__})
        except Exception as err:  # a converter bug or a tool crash: still one row, never a traceback mid-run
            log.debug("converter %s crashed", spec.id, exc_info=True)
            row = ReportRow(spec.id, "failed", error={"message": f"{type(err).__name__}: {one_line(err, 400)}",
                                                      "kind": "crash"})
        finally:
            shutil.rmtree(self.work / spec.id, ignore_errors=True)
        row = replace(row, conversion_s=round(time.perf_counter() - t0, 2))
        if row.status == "failed" and built is not None:
            self.discard(built)
            row = replace(row, details={**built.details, **row.details}, notes=(*built.notes, *row.notes))
        elif built is not None:
            self.record(spec, built, row)
        return row

    def validate(self, spec: TargetSpec, built: BuiltArtifact) -> ReportRow:
        """Gate and time the artifact with its runtime (unless the converter says it cannot run here)."""
        if built.status == "converted-not-run":
            return ReportRow(spec.id, "converted-not-run", size_bytes=self.size(built), parity=built.parity,
                             notes=built.notes, details=built.details)
        predict, runner, precision = built.predict, None, None
        if predict is None:
            try:
                runner = open_runner(spec.runtime, built.path, RuntimeOptions(threads=self.threads))
            except NotAvailableError as err:
                return ReportRow(spec.id, "converted-not-run", size_bytes=self.size(built),
                                 notes=(*built.notes, f"not run here: {err}"), details=built.details)
            predict, precision = runner.run, ran_at(spec.runtime, spec.precision, runner.precision)
        try:
            parity = built.parity or self.checker(spec.id, predict)
            if not parity.passed:
                return ReportRow(spec.id, "failed", size_bytes=self.size(built), parity=parity,
                                 error={"message": f"parity gate missed: {describe(parity)}", "kind": "parity"})
            self.events.target_progress(spec.id, "timing")
            latency = self.latency(predict, precision or claimed_precision(spec.precision))
        finally:
            if runner is not None:
                runner.close()
        return ReportRow(spec.id, "ok", size_bytes=self.size(built), parity=parity, latency_ms=latency,
                         notes=built.notes, details={**built.details, "threads": self.threads})

    def size(self, built: BuiltArtifact) -> int:
        return size_of(built.path) + sum(size_of(f) for f in built.files)

    def discard(self, built: BuiltArtifact) -> None:
        for path in (built.path, *built.files):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def record(self, spec: TargetSpec, built: BuiltArtifact, row: ReportRow) -> None:
        rel = built.path.relative_to(self.stage).as_posix()
        files = tuple(FileEntry(f.relative_to(self.stage).as_posix(), sha256_path(f), size_of(f), kind="artifact-part")
                      for f in built.files)
        self.artifacts.append(Artifact(
            target=spec.id, path=rel, format=spec.format, precision=spec.precision, size_bytes=size_of(built.path),
            sha256=sha256_path(built.path), runtime=spec.runtime, validation=row.parity, status=row.status,
            files=files, details=dict(built.details)))


def producer_versions() -> dict[str, str]:
    out = {"edgekit": __version__}
    for name in PRODUCER_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _extra_files(run: _Run) -> list[FileEntry]:
    entries = []
    if run.source.tokenizer_files:
        tok_dir = run.stage / "tokenizer"
        tok_dir.mkdir(exist_ok=True)
        for f in run.source.tokenizer_files:
            shutil.copy2(f, tok_dir / f.name)
            entries.append(FileEntry(f"tokenizer/{f.name}", sha256_path(tok_dir / f.name), size_of(f),
                                     kind="tokenizer"))
    samples_path = run.stage / SAMPLES_NAME
    save_samples(samples_path, run.samples.parity, run.reference)
    entries.append(FileEntry(SAMPLES_NAME, sha256_path(samples_path), size_of(samples_path), kind="parity-samples"))
    return entries


def _finish(run: _Run, out: Path) -> ConvertResult:
    src = run.source
    created = now_iso()
    files = _extra_files(run)
    extra: dict[str, Any] = {"parity": {"metric": run.checker.metric, "samples": run.samples.description},
                             "latency_input": {"batch": 1, "seq": run.samples.latency_seq}}
    if "text" in src.metadata:
        extra["text"] = {**dict(src.metadata["text"]), "tokenizer": "tokenizer/tokenizer.json",
                         "inputs": [i.name for i in src.inputs]}
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        model=ModelInfo(src.name, src.source, src.sha256, src.task, src.inputs, src.outputs),
        profile=run.profile.name, created=created, producer=producer_versions(), artifacts=tuple(run.artifacts),
        files=tuple(files), extra=extra)
    report = Report(schema_version=SCHEMA_VERSION, model=src.name, profile=run.profile.name, created=created,
                    rows=tuple(run.rows))
    write_manifest(manifest, run.stage)
    write_report(report, run.stage)
    from converters.report_md import render
    from edgekit.profiles.detect import read_facts

    facts = read_facts()
    cpu = f"{facts.cpu_model}, {platform.machine()}"
    (run.stage / "report.md").write_text(render(report, {
        "source": f"`{src.source}` (sha256 {src.sha256[:12]}…, task {src.task})",
        "parity": f"{run.checker.metric} against the FP32 reference on {run.samples.description}",
        "latency": f"measured on this host ({cpu}, {run.threads} thread(s)), batch 1"
                   + (f", sequence {run.samples.latency_seq}" if run.samples.latency_seq else "")
                   + "; the precision each ran at is stated per row",
        "created": created}), encoding="utf-8")
    _move_into_place(run.stage, out)
    return ConvertResult(out, report, manifest)


def _move_into_place(stage: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
    stage.chmod(0o755)
    stage.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def run_convert(req: ConvertRequest, events: Events | None = None) -> ConvertResult:
    """Convert ``req.source`` for every requested target; see the module docstring."""
    events = events or Events()
    profile = load_profile(req.profile)
    specs = resolve_targets(profile, req.targets)
    if req.out_dir is not None:
        check_out_dir(req.out_dir)
    threads = req.threads or max(1, min(profile.runtime.threads, os.cpu_count() or 1))
    work = Path(tempfile.mkdtemp(prefix="edgekit-convert-"))
    stage: Path | None = None
    try:
        events.stage(f"loading {req.source}")
        source = load(req, work / "source")
        out = req.out_dir or Path("out") / f"{source.name}-{profile.name}"
        check_out_dir(out)
        events.stage("building samples and the FP32 reference")
        samples = build_samples(source, req.calibration)
        reference = reference_outputs(source, samples, threads)
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        run = _Run(req, events, profile, source, samples, reference, stage, work, threads)
        for i, spec in enumerate(specs):
            events.target_started(spec.id, i, len(specs))
            row = run.build(spec)
            run.rows.append(row)
            events.target_finished(row)
        events.stage("writing manifest.json, report.json, report.md")
        result = _finish(run, out)
        stage = None
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)


def load(req: ConvertRequest, work: Path) -> SourceModel:
    from converters.sources import load_source

    return load_source(req.source, work, req.input_shapes, task=req.task)


def failed_summary(rows: Sequence[ReportRow]) -> str:
    first = rows[0]
    reason = first.error["message"] if first.error else "failed"
    return f"{len(rows)} target(s) failed: {first.target}: {reason}" + (
        f" (and {', '.join(r.target for r in rows[1:])})" if len(rows) > 1 else "")


__all__ = ["ConvertRequest", "ConvertResult", "Events", "Parity", "failed_summary", "run_convert"]

"""Open the bundle's chosen artifact under the memory cap: admission, checksums, runtime settings, warm-up.

The artifact is chosen by :mod:`edgekit.agent.select`; the first candidate that fits the cap is loaded (a
``--target`` that does not fit is refused). Loading is measured, and so is the peak memory of two warm-up runs,
which calibrates how large a batch may be (:class:`edgekit.agent.memory.WorkCost`).
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.agent import memory, select
from edgekit.agent.tasks import TensorTask, TextEmbeddingTask
from edgekit.checksums import sha256_path, size_of
from edgekit.errors import AgentConfigError, BundleIntegrityError
from edgekit.manifest import REPORT_NAME, Artifact, FileEntry, Manifest, Report, read_report
from edgekit.profiles.model import DeviceProfile
from edgekit.runtimes import Runner, RuntimeOptions, open_runner

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    artifact: Artifact
    runner: Runner
    reasons: tuple[str, ...]
    tensor: TensorTask
    text: TextEmbeddingTask | None
    load_mb: float
    rss_loaded_mb: float
    work_cost: memory.WorkCost | None
    providers: tuple[str, ...]


def tokenizer_file(manifest: Manifest, artifact: Artifact) -> FileEntry | None:
    for entry in (*artifact.files, *manifest.files):
        if (entry.kind == "tokenizer" and entry.path.endswith(".json")) or entry.path.endswith("tokenizer.json"):
            return entry
    return None


def _verify(root: Path, entries: list[tuple[str, str, int]]) -> None:
    for rel, sha, size in entries:
        path = root / rel
        if not path.exists():
            raise BundleIntegrityError(f"bundle file {rel} is missing; re-copy the bundle or run 'edgekit verify'")
        if size_of(path) != size or sha256_path(path) != sha:
            raise BundleIntegrityError(f"bundle file {rel}: sha256 differs from manifest.json (the file was "
                                       "changed or damaged); re-copy the bundle, check it with 'edgekit verify'")


def gpu_providers(profile: DeviceProfile) -> tuple[str, ...]:
    from edgekit.runtimes.onnx_runtime import providers_for

    return providers_for(profile.accelerators)


def load(root: Path, manifest: Manifest, profile: DeviceProfile, arch: str, isa: tuple[str, ...], *,
         forced: str | None, cap_mb: float, threads: int, calibration: memory.Calibration, verify: bool,
         normalize: bool = True) -> LoadedModel:
    report: Report | None = None
    if (root / REPORT_NAME).exists():
        try:
            report = read_report(root)
        except BundleIntegrityError as err:
            log.warning("ignoring the bundle's report.json: %s", err)
    gpus = gpu_providers(profile) if profile.accelerators else ()
    choices = select.rank(manifest, profile.targets, arch, isa, report, forced, gpus)
    soft = profile.memory.soft_limit_pct
    chosen: select.Choice | None = None
    for choice in choices:
        estimate = memory.estimate_load(choice.artifact, calibration)
        if memory.admits(estimate, cap_mb, soft):
            chosen = choice
            log.info("admission: %s needs about %.0f MB (%s); cap %.0f MB", choice.artifact.target, estimate.mb,
                     estimate.how, cap_mb)
            break
        log.warning("admission: %s does not fit: about %.0f MB (%s) > %d%% of %.0f MB", choice.artifact.target,
                    estimate.mb, estimate.how, soft, cap_mb)
    if chosen is None:
        first = choices[0].artifact
        others = [c.artifact.target for c in choices[1:]] if forced else []
        raise memory.refuse(first, memory.estimate_load(first, calibration), cap_mb, soft, others)
    artifact = chosen.artifact
    log.info("artifact %s (%s, %s): %s", artifact.target, artifact.runtime, artifact.precision,
             "; ".join(chosen.reasons))
    tok = tokenizer_file(manifest, artifact)
    if verify:
        entries = [(artifact.path, artifact.sha256, artifact.size_bytes)]
        entries += [(f.path, f.sha256, f.size_bytes) for f in artifact.files]
        if tok is not None:
            entries.append((tok.path, tok.sha256, tok.size_bytes))
        _verify(root, entries)

    _import_runtime(artifact.runtime)  # so the measured load is the model's, not the library's
    before = memory.rss_mb()
    options = RuntimeOptions(threads=threads, low_memory=True, dynamic_shapes=True,
                             providers=gpus if artifact.runtime == "onnxruntime" else ())
    runner = _open(root, artifact, options)
    loaded = memory.rss_mb()
    load_mb = max(loaded - before, 0.0)
    calibration.put(artifact.sha256, load_mb=load_mb)
    tensor = TensorTask(runner.inputs, runner.outputs)
    text = None
    if tok is not None and any(s.name == "input_ids" for s in runner.inputs):
        text = TextEmbeddingTask(root / tok.path, runner.inputs, runner.outputs,
                                 normalize=bool(manifest.extra.get("normalize", normalize)))
    work_cost = _calibrate_work(runner, text)
    if text is not None:
        text.cost = work_cost
    memory.malloc_trim()  # loading leaves freed buffers in the heap; give them back before serving
    providers = tuple(getattr(runner, "providers", ()) or ())
    log.info("loaded %s in %.0f MB (RSS %.0f MB)%s", artifact.path, load_mb, memory.rss_mb(),
             f"; providers {', '.join(providers)}" if providers else "")
    return LoadedModel(artifact, runner, chosen.reasons, tensor, text, load_mb, memory.rss_mb(), work_cost,
                       providers)


def _import_runtime(runtime: str) -> None:
    from edgekit.runtimes.base import RUNTIME_MODULES

    try:
        importlib.import_module(RUNTIME_MODULES[runtime][1])
    except (KeyError, ImportError):
        pass  # open_runner raises the install hint


def _open(root: Path, artifact: Artifact, options: RuntimeOptions) -> Runner:
    if artifact.runtime == "litert" and artifact.details.get("buckets"):
        # Fixed-shape TFLite buckets (one file per sequence length) open as one logical model.
        from edgekit.runtimes.litert_runtime import open_artifact

        return open_artifact(root, artifact.details, root / artifact.path, options)  # type: ignore[no-any-return]
    return open_runner(artifact.runtime, root / artifact.path, options)


# Rows per warm-up run, and measured runs per shape (the largest peak counts: RSS sampling is noisy).
CALIBRATION_ROWS = 4
CALIBRATION_RUNS = 2


def _calibrate_work(runner: Runner, text: TextEmbeddingTask | None) -> memory.WorkCost | None:
    """Peak memory of two warm-up runs (short and long sentences) -> the per-token cost model; None off Linux."""
    if text is None:
        return None
    meter = memory.PeakMeter()
    points = []
    lengths = (text.fixed_len,) * 2 if text.fixed_len else (16, max(17, min(text.max_len, 128)))
    token = min(1000, text.tokenizer.get_vocab_size() - 1)
    for length in lengths:
        items = [(np.full(length, token, dtype=np.int64), np.zeros(length, dtype=np.int64))] * CALIBRATION_ROWS
        text._embed(runner, items)  # first run allocates lazily-initialised state
        worst = 0.0
        for _ in range(CALIBRATION_RUNS):
            # Without a trim, the buffers the previous run freed stay resident in the heap: they count in ``base``
            # and the measured run reuses them, so the peak above base understates the working memory (by about
            # half, varying run to run). Serving starts from a trimmed heap and, under a tight cap, glibc hands
            # every freed buffer back at once, so each batch costs its full working set in fresh pages.
            memory.malloc_trim()
            base = memory.rss_mb()
            if not meter.reset():
                return None
            text._embed(runner, items)
            peak = meter.peak_mb()
            if peak is None:
                return None
            worst = max(worst, peak - base)
        points.append((CALIBRATION_ROWS, length, max(worst, 0.01)))
    if os.environ.get("EDGEKIT_DEBUG_MEMORY"):
        log.info("warm-up peaks: %s", points)
    cost = memory.WorkCost.fit(points[0], points[1])
    log.info("working memory: about %.1f MB per 1000 tokens (8 sentences of 125)", cost(8, 125))
    return cost


def reject_unfit_cap(cap_mb: float, cgroup_max_mb: float | None) -> float:
    """The effective cap: the smaller of the configured cap and a cgroup memory.max already in force."""
    if cgroup_max_mb is not None and cgroup_max_mb < cap_mb:
        log.info("cgroup memory.max is %.0f MB, below the configured cap: using it", cgroup_max_mb)
        return cgroup_max_mb
    if cap_mb <= 0:
        raise AgentConfigError(f"memory cap {cap_mb} MB must be positive")
    return cap_mb

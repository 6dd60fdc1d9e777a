"""Latency of every artifact in a convert output or bundle, on the machine this runs on (``edgekit bench``).

Runs on a device with only ``edgekit[agent]`` and the artifact's runtime: inputs come from the bundle (its model
input spec, and for text models token ids of the requested sequence lengths), never from the source model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.latency import measure, ran_at
from converters.recheck import open_artifact
from converters.toolrun import one_line
from edgekit.manifest import Latency, Manifest, TensorSpec
from edgekit.runtimes import RuntimeOptions, runtime_available

log = logging.getLogger(__name__)

Feeds = dict[str, np.ndarray]
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class BenchRow:
    target: str
    batch: int
    seq: int | None
    latency: Latency | None = None
    skipped: str = ""


def is_text(manifest: Manifest) -> bool:
    return any(i.name == "input_ids" for i in manifest.model.inputs)


def text_feeds(inputs: Sequence[TensorSpec], batch: int, seq: int, seed: int = 0) -> Feeds:
    """Token ids of exactly ``seq`` tokens (all attended): latency depends on the shape, not on the words."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 20000, size=(batch, seq), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    return {i.name: feeds[i.name] for i in inputs if i.name in feeds}


def tensor_feeds(inputs: Sequence[TensorSpec], batch: int, seed: int = 0) -> Feeds:
    """Random inputs shaped by the spec; a dynamic first axis becomes ``batch``, other dynamic axes 1."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in inputs:
        shape = [batch if i == 0 and isinstance(d, str) else (d if isinstance(d, int) else 1)
                 for i, d in enumerate(spec.shape)]
        if np.issubdtype(np.dtype(spec.dtype), np.floating):
            feeds[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        else:
            feeds[spec.name] = rng.integers(0, 2, size=shape).astype(spec.dtype)
    return feeds


def bench_bundle(root: Path, manifest: Manifest, *, batches: Sequence[int] = (1,), seqs: Sequence[int] = (16, 128),
                 threads: int | None = None, runs: int = 50, budget_s: float = 5.0,
                 targets: Sequence[str] | None = None,
                 on_row: Callable[[BenchRow], None] = lambda row: None) -> list[BenchRow]:
    text = is_text(manifest)
    shapes = [(b, s) for b in batches for s in seqs] if text else [(b, None) for b in batches]
    rows: list[BenchRow] = []
    for artifact in manifest.artifacts:
        if targets and artifact.target not in targets:
            continue
        reason = ""
        if artifact.status == "failed":
            reason = "failed at conversion"
        elif not runtime_available(artifact.runtime):
            reason = f"runtime {artifact.runtime} is not installed here"
        runner = None
        if not reason:
            try:
                runner = open_artifact(root, artifact, RuntimeOptions(threads=threads))
            except Exception as err:  # a runtime that cannot open it here (e.g. Core ML off macOS) is a skip
                reason = one_line(err, 160)
        for batch, seq in shapes:
            if runner is None:
                row = BenchRow(artifact.target, batch, seq, skipped=reason)
            else:
                feeds = text_feeds(manifest.model.inputs, batch, seq) if seq else \
                    tensor_feeds(manifest.model.inputs, batch)
                try:
                    precision = ran_at(artifact.runtime, artifact.precision, getattr(runner, "precision", "f32"))
                    latency = measure(runner.run, feeds, precision=precision, seq=seq, runs=runs, budget_s=budget_s)
                    row = BenchRow(artifact.target, batch, seq, latency)
                except Exception as err:
                    row = BenchRow(artifact.target, batch, seq, skipped=one_line(err, 160))
            rows.append(row)
            on_row(row)
        if runner is not None:
            runner.close()
    return rows

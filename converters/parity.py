"""The accuracy gate every artifact passes: compare its outputs with the FP32 reference on the same samples.

Metrics (chosen by the model's task):
- ``cosine``: per-row cosine similarity (mean and min over every row of every sample); embeddings and features.
- ``top1``: argmax agreement with the reference (mean over rows); classifiers. Cosine is recorded beside it.
- ``rel-error``: per-row ``|y - ref|_2 / |ref|_2`` (mean and max), plus the max absolute error; anything else.

Thresholds come from the artifact's precision (``DEFAULT_THRESHOLDS``) and can be overridden per run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgekit.manifest import Parity

Feeds = dict[str, np.ndarray]
Outputs = dict[str, np.ndarray]
Predict = Callable[[Feeds], Outputs]

TASK_METRIC = {"text-embedding": "cosine", "feature-extraction": "cosine", "image-classification": "top1",
               "classification": "top1", "tensor": "rel-error"}
HIGHER_IS_BETTER = {"cosine": True, "top1": True, "rel-error": False}

# metric -> precision -> threshold. Higher-is-better metrics give lower bounds; rel-error gives upper bounds.
DEFAULT_THRESHOLDS: dict[str, dict[str, dict[str, float]]] = {
    "cosine": {"fp32": {"mean": 0.99999, "min": 0.9999}, "fp16": {"mean": 0.9999, "min": 0.999},
               "int8": {"mean": 0.995, "min": 0.98}},
    "top1": {"fp32": {"mean": 0.99}, "fp16": {"mean": 0.98}, "int8": {"mean": 0.9}},
    "rel-error": {"fp32": {"mean": 1e-5, "max": 1e-4}, "fp16": {"mean": 5e-3, "max": 2e-2},
                  "int8": {"mean": 0.05, "max": 0.1}},
}


def metric_for_task(task: str) -> str:
    return TASK_METRIC.get(task, "rel-error")


def _rows(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(1, -1)
    return a.reshape(a.shape[0], -1)


def row_values(metric: str, out: Outputs, ref: Outputs) -> np.ndarray:
    """One figure per output row (batch item) of one sample; the worst over outputs when there are several."""
    per_output = []
    for name, r in ref.items():
        if name not in out:
            raise KeyError(f"the artifact has no output {name!r}; it has {sorted(out)}")
        y, r2 = _rows(out[name]), _rows(r)
        if y.shape != r2.shape:
            raise ValueError(f"output {name!r} has shape {np.shape(out[name])}, the reference {np.shape(r)}")
        if metric == "top1":
            per_output.append((y.argmax(axis=1) == r2.argmax(axis=1)).astype(np.float64))
        elif metric == "cosine":
            per_output.append(_cosine(y, r2))
        else:
            per_output.append(np.linalg.norm(y - r2, axis=1) / np.maximum(np.linalg.norm(r2, axis=1), 1e-12))
    stacked = np.stack(per_output)
    return stacked.min(axis=0) if HIGHER_IS_BETTER.get(metric, False) else stacked.max(axis=0)


def _cosine(y: np.ndarray, r: np.ndarray) -> np.ndarray:
    ny, nr = np.linalg.norm(y, axis=1), np.linalg.norm(r, axis=1)
    both_zero = (ny == 0) & (nr == 0)
    cos = (y * r).sum(axis=1) / np.maximum(ny * nr, 1e-30)
    return np.where(both_zero, 1.0, cos)


def summarize(metric: str, rows: np.ndarray, threshold: Mapping[str, float], samples: int) -> Parity:
    rows = np.asarray(rows, dtype=np.float64)
    mean, lo, hi = float(rows.mean()), float(rows.min()), float(rows.max())
    figures = {"mean": mean, "min": lo, "max": hi}
    higher = HIGHER_IS_BETTER.get(metric, False)
    passed = all((figures[k] >= t) if higher else (figures[k] <= t) for k, t in threshold.items())
    return Parity(metric=metric, mean=_r(mean), min=_r(lo), max=_r(hi), threshold=dict(threshold),
                  samples=samples, passed=passed)


def _r(x: float) -> float:
    return float(f"{x:.6g}")


def gate_score(p: Parity) -> float:
    """How far inside the gate a result is: >= 0 passes; 1 is a perfect match. The minimum over thresholds of
    the slack normalised by the threshold's distance from a perfect result."""
    higher = HIGHER_IS_BETTER.get(p.metric, False)
    figures = {"mean": p.mean, "min": p.min, "max": p.max}
    scores = []
    for key, t in p.threshold.items():
        v = figures.get(key)
        if v is None:
            continue
        if higher:
            scores.append((v - t) / max(1.0 - t, 1e-9))
        else:
            scores.append((t - v) / max(t, 1e-12))
    return min(scores) if scores else 1.0


def describe(p: Parity) -> str:
    """``cosine mean 0.9931 (>= 0.995), min 0.9712 (>= 0.98)``."""
    op = ">=" if HIGHER_IS_BETTER.get(p.metric, False) else "<="
    figures = {"mean": p.mean, "min": p.min, "max": p.max}
    parts = []
    for key in ("mean", "min", "max"):
        if key in p.threshold:
            parts.append(f"{key} {figures[key]:.5g} ({op} {p.threshold[key]:g})")
    return f"{p.metric} " + ", ".join(parts)


@dataclass
class ParityChecker:
    """Runs an artifact's ``predict`` on the parity samples and compares with the reference outputs.

    Callable as ``checker(target_id, predict) -> Parity`` (the ``ConvertContext.check_parity`` contract).
    """

    samples: list[Feeds]
    reference: list[Outputs]
    metric: str
    precision_of: Callable[[str], str]  # target id -> "fp32" / "fp16" / "int8"
    overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # target or "*" -> threshold keys

    def threshold(self, target: str) -> dict[str, float]:
        base = dict(DEFAULT_THRESHOLDS[self.metric][self.precision_of(target)])
        for key in ("*", target):
            base.update(self.overrides.get(key, {}))
        return base

    def rows(self, predict: Predict, indices: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-row figures and, for each row, the index of the sample it came from."""
        values, owners = [], []
        for i in indices if indices is not None else range(len(self.samples)):
            v = row_values(self.metric, predict(self.samples[i]), self.reference[i])
            values.append(v)
            owners.append(np.full(len(v), i))
        return np.concatenate(values), np.concatenate(owners)

    def evaluate(self, target: str, predict: Predict, indices: Sequence[int] | None = None
                 ) -> tuple[Parity, np.ndarray, np.ndarray]:
        rows, owners = self.rows(predict, indices)
        n = len(indices) if indices is not None else len(self.samples)
        return summarize(self.metric, rows, self.threshold(target), n), rows, owners

    def __call__(self, target: str, predict: Predict, *, indices: Sequence[int] | None = None) -> Parity:
        return self.evaluate(target, predict, indices)[0]

"""Sensitivity-driven recovery: keep the fewest, most damaging nodes in float until the parity gate passes.

Backend-neutral. A ``Simulator`` evaluates any mix of quantized and float nodes cheaply (a switchable fake-quant
model); ``plan()`` uses it to
1. rank nodes by isolated damage: the gate score with only that node quantized, on the samples full
   quantization hurts most (a per-node sensitivity measure, nothing hard-coded);
2. keep nodes in float in rank order until the simulated gate passes on every sample;
3. prune: put back any kept node whose return still passes (fewest nodes).
The caller then builds the real artifact with the plan's nodes excluded and, if the real runtime still misses
the gate, keeps the next-ranked nodes (``next_nodes``) until it passes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from converters.parity import HIGHER_IS_BETTER, gate_score
from edgekit.manifest import Parity

log = logging.getLogger(__name__)
HARD_SUBSET = 24  # samples used to rank nodes (the ones full quantization hurts most)


class Simulator(Protocol):
    names: list[str]

    def evaluate(self, quantized: np.ndarray, indices: Sequence[int] | None = None
                 ) -> tuple[Parity, np.ndarray, np.ndarray]:
        """Parity with ``quantized[i]`` nodes in int8 and the others in float; rows and their sample owners."""
        ...


@dataclass
class Plan:
    names: list[str]
    ranking: list[tuple[str, float]] = field(default_factory=list)  # most damaging first: (node, isolated score)
    kept: list[str] = field(default_factory=list)
    full: Parity | None = None  # simulated, every node quantized
    simulated: Parity | None = None  # simulated, with ``kept`` in float
    evaluations: int = 0

    def next_nodes(self, count: int = 1, kept: Sequence[str] | None = None) -> list[str]:
        """The next ``count`` ranked nodes not yet kept (in ``kept``, default: the plan's)."""
        taken = set(self.kept if kept is None else kept)
        return [n for n, _ in self.ranking if n not in taken][:count]


def hardest_samples(rows: np.ndarray, owners: np.ndarray, metric: str, count: int) -> list[int]:
    """Samples ordered by their worst row (lowest cosine / highest error), worst first."""
    worst: dict[int, float] = {}
    higher = HIGHER_IS_BETTER.get(metric, False)
    for v, o in zip(rows, owners, strict=True):
        key = int(o)
        cur = worst.get(key)
        if cur is None or (v < cur if higher else v > cur):
            worst[key] = float(v)
    ordered = sorted(worst, key=lambda k: worst[k], reverse=not higher)
    return sorted(ordered[:count])


def plan(sim: Simulator, *, progress: Callable[[str], None] = lambda m: None, max_kept: int | None = None) -> Plan:
    names = list(sim.names)
    n = len(names)
    result = Plan(names=names)
    everything = np.ones(n, dtype=bool)
    full, rows, owners = sim.evaluate(everything)
    result.full, result.evaluations = full, 1
    if gate_score(full) >= 0:
        result.simulated = full
        return result
    subset = hardest_samples(rows, owners, full.metric, HARD_SUBSET)
    scores = []
    for i in range(n):
        progress(f"sensitivity {i + 1}/{n}")
        one = np.zeros(n, dtype=bool)
        one[i] = True
        scores.append(gate_score(sim.evaluate(one, subset)[0]))
    result.evaluations += n
    order = [int(i) for i in np.argsort(np.asarray(scores), kind="stable")]
    result.ranking = [(names[i], round(float(scores[i]), 4)) for i in order]

    quantized = everything.copy()
    kept: list[int] = []
    current = full
    limit = max_kept if max_kept is not None else n
    step = 1
    position = 0
    while gate_score(current) < 0 and position < min(limit, n):
        progress(f"keeping {len(kept) + step} node(s) in float")
        for i in order[position:position + step]:
            quantized[i] = False
            kept.append(i)
        position += step
        current = sim.evaluate(quantized)[0]
        result.evaluations += 1
        if len(kept) >= 8:  # past a handful, grow faster: a model this sensitive needs many nodes in float
            step = min(step * 2, 16)
    if gate_score(current) >= 0:
        for i in reversed(list(kept)):  # least damaging first: does the gate still pass with it quantized?
            quantized[i] = True
            trial = sim.evaluate(quantized)[0]
            result.evaluations += 1
            if gate_score(trial) >= 0:
                kept.remove(i)
                current = trial
            else:
                quantized[i] = False
    result.kept = [names[i] for i in order if i in kept]
    result.simulated = current
    log.info("recovery plan: keep %d of %d nodes in float (%d simulated evaluations)", len(kept), n,
             result.evaluations)
    return result


@dataclass
class Outcome:
    """The real artifact the attempts ended with."""

    handle: object
    parity: Parity
    kept: list[str]
    attempts: list[dict[str, object]]


def realize(p: Plan, build: Callable[[list[str]], object], check: Callable[[object], Parity], *,
            progress: Callable[[str], None] = lambda m: None, max_attempts: int = 6) -> Outcome:
    """Build the real artifact with the plan's nodes kept in float; while the real runtime still misses the gate,
    keep the next-ranked nodes too (a third more each time)."""
    kept = list(p.kept)
    attempts: list[dict[str, object]] = []
    handle: object = None
    parity: Parity | None = None
    for _ in range(max_attempts):
        progress(f"building with {len(kept)} node(s) kept in float")
        handle = build(kept)
        parity = check(handle)
        attempts.append({"kept": len(kept), "mean": parity.mean, "min": parity.min, "max": parity.max,
                         "passed": parity.passed})
        if parity.passed:
            break
        more = p.next_nodes(max(1, len(kept) // 3), kept)
        if not more:
            break
        kept += more
    assert parity is not None
    return Outcome(handle, parity, kept, attempts)

"""Re-run the parity gate of every artifact in a convert output or bundle (``edgekit verify``).

Uses the samples and FP32 reference outputs stored with the artifacts (``parity-samples.npz``) and the
thresholds each artifact passed at conversion, so it needs only numpy and the artifact's runtime: it runs on the
device as well as on the host.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from converters.parity import ParityChecker
from converters.samples import load_samples
from converters.toolrun import one_line
from edgekit.errors import NotAvailableError
from edgekit.manifest import Artifact, Manifest, Parity, read_manifest
from edgekit.runtimes import RUNTIME_MODULES, RuntimeOptions, open_runner, runtime_available


@dataclass(frozen=True)
class Recheck:
    target: str
    status: Literal["ok", "failed", "skipped"]
    parity: Parity | None = None
    reason: str = ""


def _always(precision: str) -> Callable[[str], str]:
    return lambda _target: precision


def open_artifact(root: Path, artifact: Artifact, options: RuntimeOptions) -> Any:
    """Open an artifact as its manifest entry describes it: a runtime module may define
    ``open_artifact(root, details, primary, options)`` (LiteRT buckets); otherwise the primary file."""
    module = importlib.import_module(f"edgekit.runtimes.{RUNTIME_MODULES[artifact.runtime][0]}")
    opener = getattr(module, "open_artifact", None)
    if opener is not None:
        return opener(root, artifact.details, root / artifact.path, options)
    return open_runner(artifact.runtime, root / artifact.path, options)


def recheck_parity(root: Path, manifest: Manifest | None = None, threads: int | None = None) -> list[Recheck]:
    manifest = manifest or read_manifest(root)
    entry = next((f for f in manifest.files if f.kind == "parity-samples"), None)
    if entry is None:
        return [Recheck(a.target, "skipped", reason="the bundle carries no parity samples")
                for a in manifest.artifacts]
    samples, reference = load_samples(root / entry.path)
    out = []
    for a in manifest.artifacts:
        if a.status != "ok" or a.validation is None:
            out.append(Recheck(a.target, "skipped", reason=f"status {a.status}: it was not run at conversion"))
            continue
        if not runtime_available(a.runtime):
            out.append(Recheck(a.target, "skipped", reason=f"runtime {a.runtime} is not installed here"))
            continue
        checker = ParityChecker(samples, reference, a.validation.metric, precision_of=_always(a.precision),
                                overrides={a.target: dict(a.validation.threshold)})
        try:
            runner = open_artifact(root, a, RuntimeOptions(threads=threads))
        except NotAvailableError as err:
            out.append(Recheck(a.target, "skipped", reason=str(err)))
            continue
        except Exception as err:  # a runtime that cannot load the artifact is a verification failure
            out.append(Recheck(a.target, "failed", reason=f"{a.runtime} cannot load it: {one_line(err, 200)}"))
            continue
        try:
            parity = checker(a.target, runner.run)
        except Exception as err:
            out.append(Recheck(a.target, "failed", reason=f"running it failed: {one_line(err, 200)}"))
            continue
        finally:
            runner.close()
        out.append(Recheck(a.target, "ok" if parity.passed else "failed", parity))
    return out

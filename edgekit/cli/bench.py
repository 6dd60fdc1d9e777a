"""``edgekit bench PATH``: latency table of every artifact of a convert output or bundle, on this machine."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bench", help="benchmark every artifact of a bundle on this machine",
        description="Measure p50/p95 latency of every artifact in PATH (a convert output directory, or a bundle "
        "directory, .tar.gz or .zip) with its runtime on this machine. Text models are timed at each --seq; "
        "artifacts whose runtime is not installed here are listed as skipped. Run it on the device itself to "
        "see which artifact is fastest there.",
        epilog="example: edgekit bench out/pi4 --batch 1,8 --seq 16,128 --threads 4",
    )
    p.add_argument("path", type=Path, help="convert output directory or bundle")
    p.add_argument("--batch", type=_ints, default=[1], metavar="N[,N...]", help="batch sizes (default: 1)")
    p.add_argument("--seq", type=_ints, default=[16, 128], metavar="N[,N...]",
                   help="sequence lengths for text models (default: 16,128)")
    p.add_argument("--threads", type=int, help="runtime threads (default: the runtime's own choice)")
    p.add_argument("--runs", type=int, default=50, help="timed runs per shape, after 5 warm-ups (default: 50)")
    p.add_argument("--targets", help="comma-separated target ids to time (default: all)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from edgekit.bench import bench_bundle
    from edgekit.bundle.archive import opened
    from edgekit.manifest import read_manifest

    console = Console(stderr=True)
    targets = [t.strip() for t in args.targets.split(",")] if args.targets else None
    with opened(args.path) as root:
        manifest = read_manifest(root)
        with console.status("timing artifacts") as status:
            rows = bench_bundle(root, manifest, batches=args.batch, seqs=args.seq, threads=args.threads,
                                runs=args.runs, targets=targets,
                                on_row=lambda r: status.update(f"timed {r.target} batch {r.batch}"
                                                               + (f" seq {r.seq}" if r.seq else "")))
    if args.json:
        print(json.dumps([{"target": r.target, "batch": r.batch, "seq": r.seq,
                           "p50_ms": r.latency.p50 if r.latency else None,
                           "p95_ms": r.latency.p95 if r.latency else None,
                           "precision": r.latency.precision if r.latency else None,
                           "skipped": r.skipped or None} for r in rows], indent=2))
        return 0
    table = Table(title=f"{manifest.model.name} on this machine ({manifest.profile} bundle)")
    for col in ("target", "batch", "seq", "p50 ms", "p95 ms", "ran at", "note"):
        table.add_column(col, justify="right" if col in ("batch", "seq", "p50 ms", "p95 ms") else "left")
    for r in rows:
        lat = r.latency
        table.add_row(r.target, str(r.batch), str(r.seq or "-"), f"{lat.p50:.2f}" if lat else "-",
                      f"{lat.p95:.2f}" if lat else "-", (lat.precision or "") if lat else "", r.skipped)
    Console().print(table)
    return 0

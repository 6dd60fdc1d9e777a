"""``edgekit convert SOURCE --profile NAME``: build verified per-target artifacts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

TASKS = ("text-embedding", "feature-extraction", "image-classification", "classification", "tensor")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a model into per-device artifacts, each checked against FP32",
        description="Convert SOURCE into the artifacts a device profile asks for (or --targets), check every "
        "artifact against the FP32 reference, and write DIR/manifest.json, DIR/report.json and DIR/report.md. "
        "Exits non-zero when any requested target failed.",
    )
    p.add_argument("source", help="an .onnx file, a Hugging Face model directory, or builtin:all-minilm-l6-v2")
    p.add_argument("--profile", required=True, help="device profile name (edgekit profiles list) or a .toml path")
    p.add_argument("--targets", help="comma-separated target ids, overriding the profile's list")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: out/<model>-<profile>)")
    p.add_argument("--calibration", type=Path, help=".npz of input tensors, or a text file of sentences")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME:DIMS",
                   help="fix an input's shape, e.g. images:1,3,640,640 (repeatable)")
    p.add_argument("--threshold", action="append", default=[], metavar="[TARGET:]KEY=VALUE",
                   help="override a parity threshold for every target or one, e.g. min=0.97 or "
                   "onnx-int8-arm64:mean=0.99 (keys: mean, min, max; repeatable)")
    p.add_argument("--task", choices=TASKS, help="what the model computes, which picks the parity metric "
                   "(default: detected from the source)")
    p.add_argument("--threads", type=int, help="CPU threads for validation and timing here "
                   "(default: the profile's, capped to this machine)")
    p.set_defaults(func=run)


def parse_thresholds(items: list[str]) -> dict[str, dict[str, float]]:
    from edgekit.errors import UsageError

    out: dict[str, dict[str, float]] = {}
    for item in items:
        scope, _, assignment = item.rpartition(":") if ":" in item else ("", "", item)
        key, sep, value = assignment.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or key not in ("mean", "min", "max") or number != number:
            raise UsageError(f"--threshold {item!r} is not [TARGET:]KEY=VALUE with KEY mean, min or max; "
                             "write e.g. --threshold min=0.97")
        out.setdefault(scope or "*", {})[key] = number
    return out


def run(args: argparse.Namespace) -> int:
    from converters.pipeline import ConvertRequest, failed_summary, run_convert
    from converters.sources.spec import parse_input_shapes
    from edgekit.cli.convert_display import RichEvents, print_summary
    from edgekit.errors import ConversionError

    targets = [t.strip() for t in args.targets.split(",") if t.strip()] if args.targets else None
    req = ConvertRequest(source=args.source, profile=args.profile, targets=targets, out_dir=args.out,
                         calibration=args.calibration, input_shapes=parse_input_shapes(args.input_shape),
                         thresholds=parse_thresholds(args.threshold), task=args.task, threads=args.threads)
    quiet = bool(getattr(args, "quiet", False))
    with RichEvents(enabled=not quiet) as events:
        result = run_convert(req, events)
    print_summary(result, file=sys.stdout)
    if result.failed:
        raise ConversionError(f"{failed_summary(result.failed)}; see {result.out_dir / 'report.md'}")
    return 0

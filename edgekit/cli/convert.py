"""``edgekit convert SOURCE --profile NAME``: build verified per-target artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.cli.pending import pending


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
    p.set_defaults(func=pending("edgekit convert"))

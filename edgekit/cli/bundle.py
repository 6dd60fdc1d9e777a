"""``edgekit bundle DIR --platform linux|android|ios --out PATH``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("bundle", help="package converted artifacts for a device or an app",
                       description="Package the output of 'edgekit convert' as a device bundle (linux) or an app "
                       "bundle (android: .tflite + INTEGRATION.md; ios: .mlpackage + INTEGRATION.md). PATH may be "
                       "a directory, a .tar.gz or a .zip.")
    p.add_argument("dir", type=Path, help="a directory written by 'edgekit convert'")
    p.add_argument("--platform", required=True, choices=["linux", "android", "ios"])
    p.add_argument("--out", type=Path, required=True, help="directory, .tar.gz or .zip to write")
    p.add_argument("--sign", type=Path, metavar="KEY", help="Ed25519 private key (PEM) to sign the manifest")
    p.add_argument("--targets", help="comma-separated artifact targets to include (default: the profile's choice)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgekit.bundle.build import build_bundle

    targets = [t.strip() for t in args.targets.split(",") if t.strip()] if args.targets else None
    result = build_bundle(args.dir, args.platform, args.out, sign_key=args.sign, targets=targets)
    signed = "signed" if result.signed else "unsigned"
    print(f"{result.path}: {result.platform} bundle with {', '.join(result.artifacts)}; {result.files} files, "
          f"{result.size_bytes / 1e6:.1f} MB, {signed}")
    return 0

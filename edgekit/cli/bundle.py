"""``edgekit bundle DIR --platform linux|android|ios --out PATH``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.cli.pending import pending


def add_parser(sub: Any) -> None:
    p = sub.add_parser("bundle", help="package converted artifacts for a device or an app",
                       description="Package the output of 'edgekit convert' as a device bundle (linux) or an app "
                       "bundle (android: .tflite + INTEGRATION.md; ios: .mlpackage + INTEGRATION.md). PATH may be "
                       "a directory, a .tar.gz or a .zip.")
    p.add_argument("dir", type=Path, help="a directory written by 'edgekit convert'")
    p.add_argument("--platform", required=True, choices=["linux", "android", "ios"])
    p.add_argument("--out", type=Path, required=True, help="directory, .tar.gz or .zip to write")
    p.add_argument("--sign", type=Path, metavar="KEY", help="Ed25519 private key (PEM) to sign the manifest")
    p.set_defaults(func=pending("edgekit bundle"))

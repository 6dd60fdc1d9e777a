"""``edgekit toolchain list / install NAME``: isolated converter environments."""

from __future__ import annotations

from typing import Any

from edgekit.cli.pending import pending


def add_parser(sub: Any) -> None:
    p = sub.add_parser("toolchain", help="isolated environments for converters with conflicting pins (onnx2tf)")
    tsub = p.add_subparsers(dest="toolchain_command", metavar="ACTION", required=True)
    ls = tsub.add_parser("list", help="known toolchains and whether they are installed")
    ls.set_defaults(func=pending("edgekit toolchain list"))
    ins = tsub.add_parser("install", help="create a toolchain's pinned venv under the cache directory")
    ins.add_argument("name")
    ins.set_defaults(func=pending("edgekit toolchain install"))

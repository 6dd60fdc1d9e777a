"""``edgekit verify PATH``: checksums (and signature), then parity where a runtime exists."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgekit.errors import BundleIntegrityError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("verify", help="check a bundle's checksums, signature and parity",
                       description="Checks every file listed in manifest.json (size and SHA-256) in a directory, "
                       ".tar.gz or .zip bundle. Exits 1 and names the file when anything differs.")
    p.add_argument("path", type=Path, help="convert output directory, bundle directory, .tar.gz or .zip")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgekit.bundle.archive import opened
    from edgekit.bundle.verify import check_checksums

    with opened(args.path) as root:
        result = check_checksums(root)
    for rel in result.checked:
        print(f"  ok       {rel}")
    if not result.ok:
        for problem in result.problems:
            print(f"  FAILED   {problem}")
        raise BundleIntegrityError(f"{args.path}: {len(result.problems)} file(s) do not match the manifest: "
                                   f"{result.problems[0]}")
    print(f"{args.path}: {len(result.checked)} file(s) match the manifest")
    return 0

"""``edgekit verify PATH``: checksums (and signature), then parity where a runtime exists."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgekit.errors import BundleIntegrityError, ValidationMismatch


def add_parser(sub: Any) -> None:
    p = sub.add_parser("verify", help="check a bundle's checksums, signature and parity",
                       description="Checks every file listed in manifest.json (size and SHA-256) in a directory, "
                       ".tar.gz or .zip bundle and, with --key, the manifest's Ed25519 signature; then re-runs the "
                       "parity gate of every artifact whose runtime is installed here, on the samples and FP32 "
                       "reference outputs stored with the artifacts. Exits 1 and names the file or target when "
                       "anything differs.")
    p.add_argument("path", type=Path, help="convert output directory, bundle directory, .tar.gz or .zip")
    p.add_argument("--key", type=Path, default=None, metavar="PUB",
                   help="Ed25519 public key (PEM): also require a valid manifest signature made with it")
    p.add_argument("--no-parity", action="store_true", help="check checksums (and signature) only")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the parity runs")
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
        from edgekit.bundle.signing import signature_status

        print(f"{args.path}: {signature_status(root, args.key)}")
        if args.no_parity:
            return 0
        from converters.parity import describe
        from converters.recheck import recheck_parity

        checks = recheck_parity(root, threads=args.threads)
    for c in checks:
        figure = describe(c.parity) if c.parity is not None else c.reason
        print(f"  {c.status.upper() if c.status == 'failed' else c.status:<8} parity {c.target}: {figure}")
    failed = [c for c in checks if c.status == "failed"]
    if failed:
        first = failed[0]
        why = describe(first.parity) if first.parity is not None else first.reason
        raise ValidationMismatch(f"{args.path}: {len(failed)} artifact(s) fail parity on this machine: "
                                 f"{first.target}: {why}")
    ran = sum(c.status == "ok" for c in checks)
    print(f"{args.path}: parity re-run for {ran} artifact(s), all within their thresholds")
    return 0

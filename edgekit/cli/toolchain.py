"""``edgekit toolchain list / install NAME``: isolated converter environments."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("toolchain", help="isolated environments for converters with conflicting pins (litert-torch)",
                       description="Converters whose pins conflict with the rest of edgekit run in their own pinned "
                       "venv under the cache directory ($EDGEKIT_TOOLCHAINS_DIR, else ~/.cache/edgekit/toolchains), "
                       "driven as a subprocess, so 'pip check' stays clean here.")
    tsub = p.add_subparsers(dest="toolchain_command", metavar="ACTION", required=True)
    ls = tsub.add_parser("list", help="known toolchains and whether they are installed")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)
    ins = tsub.add_parser("install", help="create a toolchain's pinned venv under the cache directory")
    ins.add_argument("name")
    ins.add_argument("--force", action="store_true", help="reinstall even when installed")
    ins.set_defaults(func=run_install)


def run_list(args: argparse.Namespace) -> int:
    from edgekit import toolchains

    rows: list[dict[str, Any]] = []
    for tc in toolchains.TOOLCHAINS.values():
        info = toolchains.installed_info(tc)
        rows.append({"name": tc.name, "installed": info is not None, "path": str(toolchains.venv_dir(tc)),
                     "requirements": list(tc.requirements), "description": tc.description,
                     **({"size_bytes": info.get("size_bytes"), "install_seconds": info.get("install_seconds"),
                         "packages": info.get("packages")} if info else {})})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        state = (f"installed, {r['size_bytes'] / 1e9:.1f} GB" if r["installed"]
                 else f"not installed (edgekit toolchain install {r['name']})")
        print(f"{r['name']:<14} {state}\n  {r['description']}\n  {r['path']}")
    return 0


def run_install(args: argparse.Namespace) -> int:
    from edgekit import toolchains

    tc = toolchains.get_toolchain(args.name)
    already = toolchains.installed_info(tc) is not None and not args.force
    info = toolchains.install(tc, force=args.force, progress=lambda m: print(f"  {m}", flush=True))
    verb = "already installed" if already else f"installed in {info['install_seconds']:.0f} s"
    print(f"{tc.name}: {verb}; {info['size_bytes'] / 1e9:.2f} GB at {info['path']}; "
          + ", ".join(f"{k} {v}" for k, v in info.get("packages", {}).items()))
    return 0

"""``edgekit profiles list / show NAME / detect``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgekit.strictdata import to_dict


def add_parser(sub: Any) -> None:
    p = sub.add_parser("profiles", help="list, show and detect device profiles",
                       description="Device profiles say what a device is (CPU, ISA features, RAM), which targets "
                       "it prefers, and how the agent is sized on it (threads, memory cap, power and thermal sensors).")
    psub = p.add_subparsers(dest="profiles_command", metavar="ACTION", required=True)
    ls = psub.add_parser("list", help="every shipped profile, one line each")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_list)
    show = psub.add_parser("show", help="every field of one profile")
    show.add_argument("name", help="profile name (see 'edgekit profiles list') or a path to a .toml file")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=run_show)
    det = psub.add_parser("detect", help="pick the profile of the machine this runs on",
                          description="Reads the device-tree model, /proc/cpuinfo (dot-product, i8mm, VNNI flags), "
                          "/etc/nv_tegra_release and the DMI product name under ROOT.")
    det.add_argument("--root", type=Path, default=Path("/"),
                     help="read the machine facts under this directory instead of / (for stand-in trees)")
    det.add_argument("--json", action="store_true", help="machine-readable output")
    det.set_defaults(func=run_detect)


def run_list(args: argparse.Namespace) -> int:
    from edgekit.profiles import shipped_profiles

    profiles = shipped_profiles()
    if args.json:
        print(json.dumps([{"name": p.name, "description": p.description, "os": p.os, "arch": p.arch,
                           "targets": list(p.targets)} for p in profiles.values()], indent=2))
        return 0
    width = max(len(n) for n in profiles)
    for p in profiles.values():
        print(f"{p.name:<{width}}  {p.os:<7} {p.arch:<7} {', '.join(p.targets)}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from edgekit.profiles import load_profile

    profile = load_profile(args.name)
    data = to_dict(profile)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    _print_table(data)
    return 0


def _print_table(data: dict[str, Any], prefix: str = "") -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            _print_table(value, f"{prefix}{key}.")
        else:
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            print(f"{prefix + key:<24} {shown}")


def run_detect(args: argparse.Namespace) -> int:
    from edgekit.profiles.detect import detect

    found = detect(args.root)
    if args.json:
        print(json.dumps({"profile": found.profile, "facts": to_dict(found.facts), "reasons": list(found.reasons)},
                         indent=2))
        return 0
    print(found.profile)
    print(f"  arch      {found.facts.arch}")
    print(f"  cpu       {found.facts.cpu_model} ({found.facts.cores} cores)")
    print(f"  features  {', '.join(found.facts.isa) or 'none found'}")
    for reason in found.reasons:
        print(f"  because   {reason}")
    return 0

"""``edgekit bench PATH``: latency table of every artifact in a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.cli.pending import pending


def add_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="benchmark every artifact of a bundle on this machine")
    p.add_argument("path", type=Path, help="convert output directory or bundle")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=pending("edgekit bench"))

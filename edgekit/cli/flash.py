"""``edgekit flash rpi / jetson``: write a customised OS image or flash a Jetson."""

from __future__ import annotations

from typing import Any

from edgekit.cli.pending import pending


def add_parser(sub: Any) -> None:
    p = sub.add_parser("flash", help="flash Raspberry Pi images and Jetson boards with the agent preinstalled")
    fsub = p.add_subparsers(dest="flash_command", metavar="BOARD", required=True)
    for board in ("rpi", "jetson"):
        b = fsub.add_parser(board, help=f"flash a {'Raspberry Pi OS image' if board == 'rpi' else 'Jetson (L4T)'}")
        b.set_defaults(func=pending(f"edgekit flash {board}"))

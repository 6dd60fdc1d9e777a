"""Commands whose capability is not in this build yet say so plainly and exit 2 (never a fake success)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from edgekit.errors import NotAvailableError


def pending(what: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise NotAvailableError(f"{what} is not implemented in edgekit yet; nothing was done")

    return run

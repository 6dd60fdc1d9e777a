"""Write files so that a failure never leaves something that looks valid, and secrets are never readable by
others, not even for a moment (created 0600, then moved into place)."""

from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path


def write_file(path: Path, data: str | bytes, mode: int = 0o644) -> Path:
    """Write ``path`` atomically (temp file in the same directory, fsync, rename) with ``mode``."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_private(path: Path, data: str | bytes) -> Path:
    """A secret: mode 0600 from the moment it exists."""
    return write_file(path, data, mode=0o600)


@contextlib.contextmanager
def partial_file(final: Path) -> Iterator[Path]:
    """Yield ``final.partial`` to fill; rename it to ``final`` on success, delete it on any failure."""
    partial = final.with_name(final.name + ".partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    try:
        yield partial
        os.replace(partial, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise


def shell_env(values: Mapping[str, str | int | None], header: str) -> str:
    """A file of ``KEY=value`` lines that bash can source safely (every value shell-quoted)."""
    # The variables are used by the script that sources the file, which shellcheck cannot see from here.
    lines = ["# shellcheck shell=bash disable=SC2034"]
    lines += [f"# {line}" if line else "#" for line in header.splitlines()]
    for key, value in values.items():
        lines.append(f"{key}={shlex.quote('' if value is None else str(value))}")
    return "\n".join(lines) + "\n"

"""Shared fixtures: a real mosquitto broker on a free loopback port, and the edgekit entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgekit.broker import MosquittoBroker

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A real mosquitto on 127.0.0.1:<free port>; ``.stop()`` / ``.start()`` simulate an outage on the same port."""
    broker = MosquittoBroker(workdir=tmp_path / "broker")
    broker.workdir.mkdir()
    broker.start()
    yield broker
    broker.close()


def run_edgekit(*args: str, timeout: float = 600, env: dict[str, str] | None = None,
                cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``edgekit`` entry point of this interpreter's environment."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd)


@pytest.fixture
def edgekit_cli():
    return run_edgekit

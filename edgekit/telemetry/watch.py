"""``telemetry watch``: a live table of every device, updated in place (rich Live) until stopped.

Subscribes to status (retained, so every known device shows up at once) and telemetry. ``--once`` listens for a
moment and prints a single frame; ``--duration`` bounds a live run.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from rich.console import Console

from edgekit.client.connection import BrokerOptions, MqttSession, short_client_id
from edgekit.client.topics import filters
from edgekit.telemetry.fleet import SHOWN_KINDS, Latest, update
from edgekit.telemetry.render import render_fleet

REFRESH_S = 0.5


class FleetWatcher:
    """Keeps ``latest`` up to date from the broker (network thread); ``snapshot()`` is safe from any thread."""

    def __init__(self, options: BrokerOptions, device: str = "all") -> None:
        self._latest: Latest = {}
        self._lock = threading.Lock()
        self.messages = 0
        self.session = MqttSession(options, client_id=short_client_id("watch"), qos=0,
                                   subscriptions=filters(SHOWN_KINDS, device), on_message=self._on_message)

    def _on_message(self, message: Any) -> None:
        try:
            payload = json.loads(message.payload)
        except (ValueError, UnicodeDecodeError):
            return
        with self._lock:
            if update(self._latest, message.topic, payload, time.time()):
                self.messages += 1

    def snapshot(self) -> Latest:
        with self._lock:
            return {d: dict(e) for d, e in self._latest.items()}

    def __enter__(self) -> FleetWatcher:
        self.session.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()


def watch(options: BrokerOptions, *, device: str = "all", once: bool = False, duration: float | None = None,
          stop: threading.Event | None = None, console: Console | None = None) -> Latest:
    """Show the table until ``stop``, ``duration`` or Ctrl-C; returns the last ``latest``."""
    console = console or Console()
    stop = stop or threading.Event()
    title = f"edgekit fleet · {options.url}" + ("" if device == "all" else f" · {device}")
    with FleetWatcher(options, device) as watcher:
        if once:
            stop.wait(duration if duration is not None else 2.0)
            latest = watcher.snapshot()
            console.print(render_fleet(latest, title=title, width=console.width) if latest else
                          f"no edgekit device has published on {options.url} yet")
            return latest
        from rich.live import Live

        deadline = None if duration is None else time.monotonic() + duration
        with Live(render_fleet({}, title=title, width=console.width), console=console, refresh_per_second=4,
                  transient=False) as live:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                live.update(render_fleet(watcher.snapshot(), title=title, width=console.width))
                stop.wait(REFRESH_S)
            latest = watcher.snapshot()
            live.update(render_fleet(latest, title=title, width=console.width))
        return latest

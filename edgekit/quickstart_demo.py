"""The part of ``edgekit quickstart`` a person watches: a similarity demo and a live telemetry table under load."""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from edgekit.client import BrokerOptions, InferClient
from edgekit.telemetry.render import render_fleet

# Pairs that belong together, so the nearest neighbours are easy to judge by eye.
SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "A man is riding a horse.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "The new movie is awesome.",
    "The new movie is so great.",
]


def cosine_matrix(embeddings: list[list[float]]) -> Any:
    import numpy as np

    emb = np.asarray(embeddings, dtype=np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return emb @ emb.T


def similarity_table(sentences: list[str], embeddings: list[list[float]]) -> Table:
    """Each sentence with the other sentence closest to it (cosine similarity of the embeddings)."""
    sims = cosine_matrix(embeddings)
    table = Table(title="nearest neighbour of each sentence (cosine similarity)", title_justify="left")
    table.add_column("sentence")
    table.add_column("closest other sentence")
    table.add_column("cosine", justify="right")
    table.add_column("next best", justify="right")
    for i, sentence in enumerate(sentences):
        order = [j for j in sims[i].argsort()[::-1] if j != i]
        best, second = order[0], order[1]
        table.add_row(sentence, sentences[best], f"{sims[i, best]:.3f}", f"{sims[i, second]:.3f}")
    return table


class LoadGenerator:
    """Keeps the agent busy during the telemetry demo: small batches, one request after another."""

    def __init__(self, options: BrokerOptions, device_id: str) -> None:
        self.client = InferClient(options, device_id)
        self.stop = threading.Event()
        self.sent = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="quickstart-load", daemon=True)

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            batch = [SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i % 4)]
            i += 1
            try:
                self.client.infer_text(batch, timeout=10)
                self.sent += 1
            except Exception:  # noqa: BLE001 - the table shows errors; the demo must go on
                self.failed += 1
                self.stop.wait(0.2)

    def __enter__(self) -> LoadGenerator:
        self.client.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(15)
        self.client.close()


def live_table(options: BrokerOptions, device_id: str, seconds: float, console: Console) -> dict[str, Any]:
    """Show the watch table of ``device_id`` for ``seconds`` while the load generator runs; returns its latest."""
    from rich.live import Live

    from edgekit.telemetry.watch import FleetWatcher

    title = f"live telemetry of {device_id} (edgekit telemetry watch --broker {options.url})"
    with FleetWatcher(options, device_id) as watcher, LoadGenerator(options, device_id) as load:
        deadline = time.monotonic() + seconds
        first = render_fleet(watcher.snapshot(), title=title, width=console.width)
        with Live(first, console=console, refresh_per_second=4) as live:
            while time.monotonic() < deadline:
                time.sleep(0.25)
                live.update(render_fleet(watcher.snapshot(), title=title, width=console.width))
        latest = watcher.snapshot()
        console.print(f"\n  {load.sent} request(s) answered during the demo" +
                      (f", {load.failed} failed" if load.failed else ""))
    return latest

"""The latest status and telemetry of every device: what ``watch`` shows, built message by message.

``latest`` is a plain dict ``{device_id: {"status": payload | None, "telemetry": payload | None,
"last_seen": unix_s}}`` so the renderer stays a pure function of it (tests build one from recorded messages).
A message only replaces the one it is newer than (device ``ts``, then ``seq``), so historical replays arriving
after a reconnect never hide fresher data.
"""

from __future__ import annotations

from typing import Any

from edgekit.client.topics import parse
from edgekit.telemetry.store import TelemetryStore

Latest = dict[str, dict[str, Any]]
SHOWN_KINDS = ("status", "telemetry")


def _order(msg: dict[str, Any]) -> tuple[float, int]:
    ts = msg.get("ts")
    seq = msg.get("seq")
    return (float(ts) if isinstance(ts, int | float) else 0.0, seq if isinstance(seq, int) else -1)


def update(latest: Latest, topic: str, payload: dict[str, Any], received: float) -> bool:
    """Fold one message into ``latest``; True when it changed what is shown."""
    where = parse(topic)
    if where is None or where[1] not in SHOWN_KINDS or not isinstance(payload, dict):
        return False
    device, kind = where
    entry = latest.setdefault(device, {"status": None, "telemetry": None, "last_seen": 0.0})
    entry["last_seen"] = max(entry["last_seen"], received)
    current = entry[kind]
    if current is None or _order(payload) >= _order(current):
        entry[kind] = payload
    return True


def from_store(store: TelemetryStore, device: str = "all") -> Latest:
    """``latest`` as it stood at the end of a recording (last_seen is when the recorder received each message)."""
    latest: Latest = {}
    for dev, kind, msg in store.messages(None if device == "all" else device):
        if kind in SHOWN_KINDS:
            update(latest, f"edgekit/v1/{dev}/{kind}", msg.data, msg.received)
    return latest

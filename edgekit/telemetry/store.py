"""The SQLite recording that ``telemetry record`` writes and ``telemetry plot`` reads.

One row per message, unique on (device_id, kind, seq): a message replayed from a device's spool, or a retained
status delivered again after a reconnect, is dropped as a duplicate. The contract's ``seq`` is one counter per
device; ``kind`` is in the key too so that an agent counting per topic loses nothing. ``historical`` is kept.
Every payload is stored verbatim as JSON text, so fields added to the schemas later are never lost.

WAL journal with ``synchronous=FULL``: a committed batch survives a crash of the recorder or of the machine.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import EdgeKitError

STORE_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    device_id  TEXT    NOT NULL,
    kind       TEXT    NOT NULL,              -- status | telemetry | results
    seq        INTEGER NOT NULL,
    ts         REAL,                          -- when the device produced it (unix s)
    received   REAL    NOT NULL,              -- when the recorder got it (unix s)
    historical INTEGER NOT NULL DEFAULT 0,    -- 1: replayed from the device's disk spool
    topic      TEXT    NOT NULL,
    payload    TEXT    NOT NULL,              -- the JSON exactly as received
    UNIQUE (device_id, kind, seq)
);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (device_id, kind, ts);
CREATE TABLE IF NOT EXISTS rejects (
    received REAL NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL, payload BLOB
);
CREATE TABLE IF NOT EXISTS sessions (
    started REAL NOT NULL, ended REAL, broker TEXT, client_id TEXT, subscriptions TEXT,
    received INTEGER, stored INTEGER, duplicates INTEGER, rejected INTEGER, reconnects INTEGER
);
"""


class StoreError(EdgeKitError):
    """A recording file cannot be opened or is not an edgekit telemetry recording."""


@dataclass(frozen=True)
class Row:
    device_id: str
    kind: str
    seq: int
    ts: float | None
    received: float
    historical: bool
    topic: str
    payload: str


@dataclass(frozen=True)
class Stored:
    seq: int
    ts: float
    received: float
    historical: bool
    data: dict[str, Any]


class TelemetryStore:
    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly and not self.path.is_file():
            raise StoreError(f"recording {self.path} does not exist; make one with 'edgekit telemetry record "
                             f"--broker URL --out {self.path}'")
        try:
            uri = f"file:{self.path}?mode=ro" if readonly else str(self.path)
            self.db = sqlite3.connect(uri, uri=readonly, check_same_thread=False)
            if readonly:
                self._check_version()
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.executescript(_SCHEMA)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('store_version', ?)", (str(STORE_VERSION),))
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)", (str(time.time()),))
                self._check_version()
                self.db.commit()
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path} is not a usable SQLite recording: {err}") from err

    def _check_version(self) -> None:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key='store_version'").fetchone()
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path} is not an edgekit telemetry recording ({err})") from err
        if row is None or int(row[0]) > STORE_VERSION:
            raise StoreError(f"{self.path} has recording format {row[0] if row else 'unknown'}; this edgekit reads "
                             f"format {STORE_VERSION} or older: upgrade edgekit")

    # -- writing -------------------------------------------------------------------------------------------------
    def add(self, rows: Iterable[Row]) -> list[Row]:
        """Insert rows, skipping duplicates; returns the new ones. Call ``commit()`` to make them durable."""
        new = []
        insert = self.db.execute
        for r in rows:
            cur = insert("INSERT OR IGNORE INTO messages VALUES (?,?,?,?,?,?,?,?)",
                         (r.device_id, r.kind, r.seq, r.ts, r.received, int(r.historical), r.topic, r.payload))
            if cur.rowcount:
                new.append(r)
        return new

    def reject(self, received: float, topic: str, reason: str, payload: bytes) -> None:
        self.db.execute("INSERT INTO rejects VALUES (?,?,?,?)", (received, topic, reason, payload[:65536]))

    def begin_session(self, broker: str, client_id: str, subscriptions: list[str]) -> int:
        cur = self.db.execute("INSERT INTO sessions (started, broker, client_id, subscriptions) VALUES (?,?,?,?)",
                              (time.time(), broker, client_id, json.dumps(subscriptions)))
        self.db.commit()
        return int(cur.lastrowid or 0)

    def end_session(self, session: int, **counts: int) -> None:
        self.db.execute("UPDATE sessions SET ended=?, received=?, stored=?, duplicates=?, rejected=?, reconnects=? "
                        "WHERE rowid=?", (time.time(), counts.get("received"), counts.get("stored"),
                                          counts.get("duplicates"), counts.get("rejected"),
                                          counts.get("reconnects"), session))
        self.db.commit()

    def commit(self) -> None:
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> TelemetryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------------------------------
    def devices(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT device_id FROM messages ORDER BY device_id")]

    def counts(self) -> dict[str, dict[str, int]]:
        """``{device: {kind: n, ..., "historical": n}}``."""
        out: dict[str, dict[str, int]] = {}
        for device, kind, n, hist in self.db.execute(
                "SELECT device_id, kind, COUNT(*), SUM(historical) FROM messages GROUP BY device_id, kind"):
            d = out.setdefault(device, {"historical": 0})
            d[kind] = n
            d["historical"] += hist or 0
        return out

    def messages(self, device_id: str | None = None, kind: str | None = None) -> Iterator[tuple[str, str, Stored]]:
        """``(device_id, kind, message)`` in time order (device time, then seq)."""
        where, args = [], []
        if device_id is not None:
            where.append("device_id = ?")
            args.append(device_id)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        sql = ("SELECT device_id, kind, seq, ts, received, historical, payload FROM messages"
               + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY ts, seq")
        for dev, knd, seq, ts, received, hist, payload in self.db.execute(sql, args):
            yield dev, knd, Stored(seq, ts if ts is not None else received, received, bool(hist), json.loads(payload))

    def sessions(self) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT * FROM sessions ORDER BY started")
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]

    def reject_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM rejects").fetchone()[0])

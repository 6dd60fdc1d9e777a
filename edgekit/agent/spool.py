"""The durable store-and-forward spool: every outgoing result and telemetry message is written here first.

SQLite in WAL mode: a message is committed before it is handed to MQTT and deleted only when the broker has
acknowledged it (QoS 1 PUBACK), so a SIGKILL at any moment loses nothing that was spooled: ``add`` returns only
after COMMIT, and in WAL mode a committed transaction is in the WAL file (the OS page cache) even with
``synchronous=NORMAL``. ``sync_full=True`` (``synchronous=FULL``) also survives power loss / a kernel crash, at
one fsync per commit. The results of one batch are committed in one transaction (:meth:`Spool.add_many`) and
acknowledgements are deleted in one transaction per burst, so the commit (and fsync) count follows batches, not
messages. Rows replay in
the order they were written, which is also ``seq`` order: the per-device sequence number lives in the same
database and is taken in the same transaction as the row.

The spool has a size cap. Over it, the oldest telemetry goes first, then the oldest reply copies, and results
are kept longest; every drop is counted (and persisted) for the telemetry ``spool.dropped`` figure.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Dropped first to last when the spool is over its cap.
DROP_ORDER = ("telemetry", "reply", "result")
KINDS = (*DROP_ORDER, "status")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    correlation BLOB,
    created REAL NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Outgoing:
    kind: str
    topic: str
    payload: bytes
    correlation: bytes | None = None


@dataclass(frozen=True)
class Row:
    id: int
    seq: int
    kind: str
    topic: str
    payload: bytes
    correlation: bytes | None
    created: float


class Spool:
    def __init__(self, path: Path, max_bytes: int = 64 << 20, sync_full: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if sync_full else 'NORMAL'}")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('seq', -1)")
        # This connection is the database's only writer: ``seq`` is read once and written in each add's transaction.
        self._seq = int(self._db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])
        for kind in DROP_ORDER:
            self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, 0)", (f"dropped_{kind}",))
        self._bytes = int(self._db.execute("SELECT COALESCE(SUM(size), 0) FROM outbox").fetchone()[0])
        self._depth = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    # --- writing --------------------------------------------------------------------------------------------------
    def _bump_seq(self, key: str = "seq") -> int:
        self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, -1)", (key,))
        self._db.execute("UPDATE meta SET value = value + 1 WHERE key = ?", (key,))
        return int(self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

    def next_seq(self, key: str = "seq") -> int:
        """The next value of a persisted counter: ``seq`` for messages that are not spooled (status birth, Last
        Will), ``bd_seq`` for connections."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._bump_seq(key)
                self._db.execute("COMMIT")
                if key == "seq":
                    self._seq = seq
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return seq

    def add(self, make: Callable[[int], Iterable[Outgoing]]) -> int:
        """Take the next ``seq``, build the message(s) for it with ``make(seq)`` and commit them; returns seq."""
        return self.add_many([make])[0]

    def add_many(self, makes: Sequence[Callable[[int], Iterable[Outgoing]]]) -> list[int]:
        """:meth:`add` for several messages in one transaction (one commit, one fsync under ``sync_full``): each
        ``make`` gets the next ``seq`` in turn. Returns the seqs; nothing is committed if any ``make`` fails."""
        with self._lock:
            seq = self._seq
            rows = []
            seqs = []
            now = time.time()
            for make in makes:  # payloads are built before the write transaction opens
                seq += 1
                seqs.append(seq)
                rows += [(seq, m.kind, m.topic, m.payload, m.correlation, now, len(m.payload)) for m in make(seq)]
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (seq,))
                self._db.executemany(
                    "INSERT INTO outbox (seq, kind, topic, payload, correlation, created, size) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                self._bytes += sum(r[6] for r in rows)
                self._depth += len(rows)
                if self._bytes > self.max_bytes:
                    self._enforce_cap()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._recount()
                raise
            self._seq = seq
            return seqs

    def _enforce_cap(self) -> None:
        for kind in DROP_ORDER:
            while self._bytes > self.max_bytes:
                rows = self._db.execute("SELECT id, size FROM outbox WHERE kind = ? ORDER BY id LIMIT 64",
                                        (kind,)).fetchall()
                if not rows:
                    break
                freed, ids = 0, []
                for row_id, size in rows:
                    ids.append(row_id)
                    freed += size
                    if self._bytes - freed <= self.max_bytes:
                        break
                self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
                self._db.execute("UPDATE meta SET value = value + ? WHERE key = ?", (len(ids), f"dropped_{kind}"))
                self._bytes -= freed
                self._depth -= len(ids)

    def _recount(self) -> None:
        self._bytes = int(self._db.execute("SELECT COALESCE(SUM(size), 0) FROM outbox").fetchone()[0])
        self._depth = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    # --- reading and acknowledging --------------------------------------------------------------------------------
    def after(self, last_id: int, limit: int) -> list[Row]:
        """Up to ``limit`` rows with id > ``last_id``, oldest first."""
        with self._lock:
            cur = self._db.execute(
                "SELECT id, seq, kind, topic, payload, correlation, created FROM outbox WHERE id > ? "
                "ORDER BY id LIMIT ?", (last_id, limit))
            return [Row(*r) for r in cur.fetchall()]

    def delete(self, ids: Iterable[int]) -> None:
        """Forget rows the broker acknowledged."""
        ids = list(ids)
        if not ids:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                sizes = 0
                gone = 0
                for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
                    part = ids[start:start + 500]
                    marks = ",".join("?" * len(part))
                    # Rows already dropped by the cap are simply not found.
                    found = self._db.execute(
                        f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox WHERE id IN ({marks})", part).fetchone()
                    self._db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", part)
                    gone += int(found[0])
                    sizes += int(found[1])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._bytes -= sizes
            self._depth -= gone

    # --- figures --------------------------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return self._depth

    @property
    def bytes(self) -> int:
        return self._bytes

    def dropped(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'dropped_%'").fetchall()
        return {k.removeprefix("dropped_"): int(v) for k, v in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()

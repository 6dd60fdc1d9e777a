"""The durable spool: order, persisted seq, the size cap's drop order and counters, survival of a killed writer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.agent.payloads import mark_historical
from edgekit.agent.spool import Outgoing, Spool

pytestmark = pytest.mark.unit


def msg(kind: str, size: int = 100) -> object:
    def make(seq: int) -> list[Outgoing]:
        body = json.dumps({"seq": seq, "pad": "x" * size}).encode()
        return [Outgoing(kind, f"t/{kind}", body)]
    return make


def test_rows_come_back_in_seq_order_and_delete_after_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    seqs = [spool.add(msg("result")) for _ in range(5)]
    assert seqs == [0, 1, 2, 3, 4]
    rows = spool.after(0, 3)
    assert [json.loads(r.payload)["seq"] for r in rows] == [0, 1, 2]
    spool.delete([rows[0].id, rows[1].id])
    assert spool.depth == 3
    assert [r.seq for r in spool.after(0, 10)] == [2, 3, 4]
    spool.delete([rows[0].id])  # acknowledged twice: no harm
    assert spool.depth == 3


def test_seq_persists_across_reopen_and_counters_are_separate(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    spool.add(msg("result"))
    assert spool.next_seq() == 1
    assert spool.next_seq("bd_seq") == 0
    spool.close()
    again = Spool(tmp_path / "s.sqlite")
    assert again.next_seq() == 2
    assert again.next_seq("bd_seq") == 1
    assert again.depth == 1


def test_cap_drops_oldest_telemetry_first_then_replies_and_results_last(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", max_bytes=3000)
    for kind in ["result", "telemetry", "reply", "telemetry", "result", "telemetry"]:
        spool.add(msg(kind, 400))
    assert spool.dropped() == {"telemetry": 0, "reply": 0, "result": 0}
    for _ in range(3):
        spool.add(msg("result", 400))
    assert spool.bytes <= 3000
    # Two drops were needed: the two oldest telemetry messages went, the newest one stays.
    assert [r.seq for r in spool.after(0, 100) if r.kind == "telemetry"] == [5]
    assert spool.dropped() == {"telemetry": 2, "reply": 0, "result": 0}
    for _ in range(4):
        spool.add(msg("result", 400))
    dropped = spool.dropped()
    assert dropped["telemetry"] == 3 and dropped["reply"] == 1 and dropped["result"] >= 1
    seqs = [r.seq for r in spool.after(0, 100)]
    assert seqs == sorted(seqs) and seqs[-1] == 12  # the newest results are kept
    spool.close()
    assert Spool(tmp_path / "s.sqlite").dropped() == dropped  # counters persist


def test_a_killed_writer_loses_nothing_it_committed(tmp_path: Path) -> None:
    """SIGKILL right after commits: WAL keeps every committed row for the next process."""
    path = tmp_path / "s.sqlite"
    code = (
        "import json, os, signal, sys\n"
        "from edgekit.agent.spool import Outgoing, Spool\n"
        f"s = Spool(__import__('pathlib').Path({str(path)!r}))\n"
        "for i in range(200):\n"
        "    s.add(lambda seq: [Outgoing('result', 't', json.dumps({'seq': seq}).encode())])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(Path.cwd())},
                          capture_output=True, timeout=60)
    assert done.returncode == -9, done.stderr
    spool = Spool(path)
    assert spool.depth == 200
    assert [r.seq for r in spool.after(0, 500)] == list(range(200))
    assert spool.next_seq() == 200


def test_historical_flag_is_added_on_replay() -> None:
    assert json.loads(mark_historical(b'{"seq":1}')) == {"historical": True, "seq": 1}

"""Telemetry consumers without a broker: the store's de-duplication, the watch table, the plots, the docs.

The recordings here are built from a synthetic device (edgekit.telemetry.synthetic, a stand-in that publishes
schema-valid payloads; it is not the agent) through ``record.to_row``, the same path live messages take.
"""

from __future__ import annotations

import json
import re
import sqlite3
import struct
from pathlib import Path

import pytest

from edgekit.manifest import schema_errors
from edgekit.telemetry import fleet, render
from edgekit.telemetry.plot import plot_recording
from edgekit.telemetry.record import to_row
from edgekit.telemetry.series import load_series
from edgekit.telemetry.store import StoreError, TelemetryStore
from edgekit.telemetry.synthetic import SyntheticDevice, replayed

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
T0 = 1767225600.0  # 2026-01-01 00:00 UTC


def _row(device: SyntheticDevice, kind: str, payload: dict, received: float | None = None):
    row = to_row(f"edgekit/v1/{device.device_id}/{kind}", json.dumps(payload).encode(),
                 received if received is not None else payload["ts"] + 0.05, validate=True)
    assert not isinstance(row, str), row
    return row


def record_fixture(path: Path) -> dict[str, int]:
    """Two devices over 20 minutes. pi4-kitchen: an outage whose telemetry is replayed (historical) after it comes
    back, with duplicates of messages already received, then a Last Will. orin-01: 8 windows that never arrive."""
    a = SyntheticDevice("pi4-kitchen", seed=1, start=T0, window_s=5)
    b = SyntheticDevice("orin-01", seed=2, start=T0, window_s=5, target="onnx-fp16", power_source="ina3221",
                        cap_mb=2048, idle_watts=5, max_watts=14)
    rows, held = [_row(a, "status", a.status()), _row(b, "status", b.status())], []
    for i in range(240):
        msg = a.telemetry()
        if 100 <= i < 130:
            held.append(msg)  # broker unreachable: the device spools
        else:
            rows.append(_row(a, "telemetry", msg))
        if i == 130:
            rows.append(_row(a, "status", a.status("online")))
            live = [r for r in rows if r.device_id == "pi4-kitchen" and r.kind == "telemetry"][-6:-1]
            rows += [_row(a, "telemetry", replayed(m), a.now) for m in held]
            rows += [_row(a, "telemetry", replayed(json.loads(r.payload)), a.now) for r in live]
        if i % 10 == 0:
            rows.append(_row(a, "results", a.result()))
        msg = b.telemetry()
        if not 150 <= i < 158:
            rows.append(_row(b, "telemetry", msg))
    rows.append(_row(a, "status", a.status("lost"), a.now + 20))
    with TelemetryStore(path) as store:
        new = store.add(rows)
        store.commit()
    return {"rows": len(rows), "new": len(new)}


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.sqlite"
    record_fixture(path)
    return path


def test_synthetic_payloads_match_the_schemas() -> None:
    d = SyntheticDevice(seed=3)
    msgs = [("mqtt-status", d.status()), ("mqtt-status", d.status("lost")), ("mqtt-result", d.result()),
            ("mqtt-result", d.error_result())] + [("mqtt-telemetry", d.telemetry()) for _ in range(300)]
    assert [(n, e) for n, m in msgs if (e := schema_errors(n, m))] == []
    assert [m["seq"] for _, m in msgs] == list(range(len(msgs)))


def test_store_drops_replayed_duplicates_and_keeps_historical(tmp_path: Path) -> None:
    counts = record_fixture(tmp_path / "r.sqlite")
    assert counts["rows"] - counts["new"] == 5  # the five replays of messages received live
    with TelemetryStore(tmp_path / "r.sqlite") as store:
        assert store.add([]) == []
        per_device = store.counts()
    assert per_device["pi4-kitchen"]["telemetry"] == 240 and per_device["pi4-kitchen"]["historical"] == 30
    assert per_device["orin-01"]["telemetry"] == 232
    db = sqlite3.connect(tmp_path / "r.sqlite")
    dupes = db.execute("SELECT COUNT(*) FROM (SELECT device_id, seq FROM messages GROUP BY device_id, seq "
                       "HAVING COUNT(*) > 1)").fetchone()[0]
    assert dupes == 0


def test_to_row_rejects_what_is_not_a_contract_message() -> None:
    good = SyntheticDevice("d1").telemetry()
    assert isinstance(to_row("edgekit/v1/d1/telemetry", json.dumps(good).encode(), 0.0), object)
    cases = [
        ("edgekit/v1/d1/infer", good, "not edgekit/v1"),
        ("edgekit/v1/d1/telemetry", "[1]", "not a JSON object"),
        ("edgekit/v1/d1/telemetry", {**good, "seq": -1}, "seq"),
        ("edgekit/v1/d1/telemetry", {**good, "seq": True}, "seq"),
        ("edgekit/v1/d2/telemetry", good, "does not match the topic"),
    ]
    for topic, payload, reason in cases:
        raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        assert reason in str(to_row(topic, raw, 0.0))
    assert "not JSON" in str(to_row("edgekit/v1/d1/status", b"\xff", 0.0))
    broken = {**good, "memory": {"rss_mb": 1}}
    assert not isinstance(to_row("edgekit/v1/d1/telemetry", json.dumps(broken).encode(), 0.0), str)
    assert "mqtt-telemetry" in str(to_row("edgekit/v1/d1/telemetry", json.dumps(broken).encode(), 0.0, True))


def test_store_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        TelemetryStore(tmp_path / "none.sqlite", readonly=True)
    (tmp_path / "text.sqlite").write_text("hello")
    with pytest.raises(StoreError):
        TelemetryStore(tmp_path / "text.sqlite")


def test_latest_ignores_older_replays() -> None:
    d = SyntheticDevice("d1", start=T0)
    old, new = d.telemetry(), d.telemetry()
    latest: fleet.Latest = {}
    fleet.update(latest, "edgekit/v1/d1/telemetry", new, T0 + 100)
    fleet.update(latest, "edgekit/v1/d1/telemetry", replayed(old), T0 + 101)
    assert latest["d1"]["telemetry"]["seq"] == new["seq"]
    assert latest["d1"]["last_seen"] == T0 + 101
    assert not fleet.update(latest, "edgekit/v1/d1/results", d.result(), T0)


def test_watch_frame_from_recorded_messages(recording: Path) -> None:
    with TelemetryStore(recording, readonly=True) as store:
        latest = fleet.from_store(store)
    now = latest["orin-01"]["last_seen"] + 3
    text = render.frame_text(latest, now, width=180, title="edgekit fleet")
    devices = {"orin-01", "pi4-kitchen"}
    lines = {line.split()[0]: line for line in text.splitlines() if line.split() and line.split()[0] in devices}
    assert set(lines) == {"orin-01", "pi4-kitchen"}
    assert "lost" in lines["pi4-kitchen"] and "onnx-int8-arm64" in lines["pi4-kitchen"]
    assert "est." in lines["pi4-kitchen"] and "/512 MB" in lines["pi4-kitchen"]
    assert "ina3221" in lines["orin-01"] and "/2048 MB" in lines["orin-01"]
    assert "serving" in lines["orin-01"] or "overloaded" in lines["orin-01"] or "idle" in lines["orin-01"]
    assert "2 device(s), 1 lost" in text
    tel = latest["orin-01"]["telemetry"]
    assert f"{tel['latency_ms']['p50']:.1f}/{tel['latency_ms']['p95']:.1f}" in lines["orin-01"]


def test_narrow_terminal_drops_columns_instead_of_cutting_every_cell(recording: Path) -> None:
    with TelemetryStore(recording, readonly=True) as store:
        latest = fleet.from_store(store)
    now = latest["orin-01"]["last_seen"] + 3
    narrow = render.frame_text(latest, now, width=80)
    assert "…" not in narrow
    assert all(len(line) <= 80 for line in narrow.splitlines())
    header = next(line for line in narrow.splitlines() if "device" in line)
    for kept in ("state", "p50/p95 ms", "req/s", "RSS / cap"):
        assert kept in header
    assert "J/inf" not in header  # the least telling column gave way first
    wide = render.frame_text(latest, now, width=200)
    assert "J/inf" in wide and "last seen" in wide


def test_watch_shows_silent_devices() -> None:
    d = SyntheticDevice("quiet", start=T0, window_s=5)
    latest: fleet.Latest = {}
    fleet.update(latest, "edgekit/v1/quiet/status", d.status(), T0)
    fleet.update(latest, "edgekit/v1/quiet/telemetry", d.telemetry(), T0 + 5)
    assert render.device_state(latest["quiet"], T0 + 10) in ("serving", "overloaded", "idle")
    assert render.device_state(latest["quiet"], T0 + 60) == "silent"
    assert "3 min ago" in render.frame_text(latest, T0 + 185)


def test_series_sees_gaps_replays_and_missing_seqs(recording: Path) -> None:
    with TelemetryStore(recording, readonly=True) as store:
        series = load_series(store)
    orin, pi4 = series["orin-01"], series["pi4-kitchen"]
    assert orin.missing_seqs()[0] == 8 and len(orin.gaps()) == 1
    assert pi4.missing_seqs() == (0, []) and pi4.gaps() == []
    (start, end), = pi4.replayed_spans()
    assert end - start == pytest.approx(30 * 5, abs=0.01)
    assert [m["state"] for _, m in pi4.status] == ["online", "online", "lost"]


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_plot_writes_a_chart_per_device_and_a_summary(recording: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    written = plot_recording(recording, out)
    assert sorted(p.name for p in written) == ["orin-01.png", "pi4-kitchen.png", "summary.md"]
    for png in ("orin-01.png", "pi4-kitchen.png"):
        width, height = _png_size(out / png)
        assert width >= 1200 and height >= 900
        assert (out / png).stat().st_size > 50_000  # six panels of real curves, not an empty canvas
    summary = (out / "summary.md").read_text()
    assert "![orin-01](orin-01.png)" in summary and "![pi4-kitchen](pi4-kitchen.png)" in summary
    assert "missing seq numbers: 8 (" in summary
    assert "30 telemetry window(s) arrived late" in summary
    assert "**last seen lost**" in summary
    row = next(line for line in summary.splitlines() if line.startswith("| [pi4-kitchen]"))
    assert "| lost | onnx-int8-arm64 | 240 |" in row and "(estimated)" in row


def test_plot_of_an_empty_recording(tmp_path: Path) -> None:
    TelemetryStore(tmp_path / "empty.sqlite").close()
    written = plot_recording(tmp_path / "empty.sqlite", tmp_path / "out")
    assert [p.name for p in written] == ["summary.md"]
    assert "holds no messages" in written[0].read_text()


# -- docs/telemetry.md ---------------------------------------------------------------------------------------------
DOC = REPO / "docs" / "telemetry.md"


def _doc_blocks() -> list[tuple[str | None, str]]:
    """Every ```json block with the schema named by the ``<!-- example: SCHEMA -->`` line above it."""
    text = DOC.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2)) for m in
            re.finditer(r"(?:<!-- example: ([\w-]+) -->\n)?```json\n(.*?)```", text, re.S)]


def test_every_example_in_the_docs_matches_its_schema() -> None:
    blocks = _doc_blocks()
    assert len(blocks) >= 10
    named = {name for name, _ in blocks}
    assert {"mqtt-status", "mqtt-telemetry", "mqtt-result", "mqtt-infer", "mqtt-cmd"} <= named
    for name, body in blocks:
        assert name is not None, f"a ```json block in {DOC.name} has no <!-- example: SCHEMA --> line:\n{body}"
        assert schema_errors(name, json.loads(body)) == [], f"{name} example does not validate:\n{body}"


def test_docs_field_tables_match_the_schemas() -> None:
    from edgekit.telemetry.schemadoc import refresh

    text = DOC.read_text(encoding="utf-8")
    assert refresh(text) == text, ("docs/telemetry.md field tables are stale; run: "
                                   "python -m edgekit.telemetry.schemadoc docs/telemetry.md")
    for name in ("mqtt-status", "mqtt-telemetry", "mqtt-result", "mqtt-infer", "mqtt-cmd"):
        assert f"<!-- fields: {name} -->" in text

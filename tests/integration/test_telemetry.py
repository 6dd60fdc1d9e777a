"""``edgekit telemetry record / watch / plot`` against a real mosquitto on loopback.

Messages come from a synthetic publisher (edgekit.telemetry.synthetic: schema-valid status, telemetry and results
with per-device seq numbers, and replays flagged historical as an agent's spool sends them). It is not the agent.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edgekit.broker import MosquittoBroker
from edgekit.client import BrokerOptions, MqttSession
from edgekit.telemetry.record import Recorder
from edgekit.telemetry.store import TelemetryStore
from edgekit.telemetry.synthetic import SyntheticDevice, replayed
from tests.conftest import REPO, run_edgekit

pytestmark = pytest.mark.integration


def wait_until(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def count(db: Path, sql: str = "SELECT COUNT(*) FROM messages") -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(con.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        con.close()


def publisher(url: str) -> MqttSession:
    return MqttSession(BrokerOptions.parse(url)).start()


def send(pub: MqttSession, device: SyntheticDevice, kind: str, payload: dict, retain: bool = False) -> None:
    pub.publish(f"edgekit/v1/{device.device_id}/{kind}", payload, qos=1, retain=retain).wait_for_publish(5)


def test_record_dedups_replays_and_survives_a_broker_restart(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    db = tmp_path / "fleet.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "telemetry", "record", "--broker", mosquitto.url,
                             "--out", str(db), "--duration", "90"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: count(db, "SELECT COUNT(*) FROM sessions") == 1, what="the recorder to subscribe")
        dev = SyntheticDevice("pi-01", window_s=1.0, start=time.time() - 60)
        pub = publisher(mosquitto.url)
        send(pub, dev, "status", dev.status(), retain=True)
        before = [dev.telemetry() for _ in range(20)]
        for msg in before:
            send(pub, dev, "telemetry", msg)
        send(pub, dev, "results", dev.result())
        wait_until(lambda: count(db) == 22, what="22 messages before the outage")
        pub.close()

        mosquitto.stop()  # the broker goes away; the device spools what it produces meanwhile
        spooled = [dev.telemetry() for _ in range(5)]
        time.sleep(1.0)
        mosquitto.start()

        pub = publisher(mosquitto.url)
        stored_before = count(db)

        probe = SyntheticDevice("probe")

        def recorder_is_back() -> bool:  # publish messages until the recorder has resubscribed
            send(pub, probe, "telemetry", probe.telemetry())
            time.sleep(0.2)
            return count(db) > stored_before

        wait_until(recorder_is_back, timeout=30, what="the recorder to reconnect")
        live_after = count(db) - stored_before
        for msg in before[-5:] + spooled:  # the spool replays: 5 already recorded, 5 new
            send(pub, dev, "telemetry", replayed(msg))
        send(pub, dev, "status", dev.status("offline"), retain=True)
        expected = 22 + live_after + 5 + 1
        wait_until(lambda: count(db) >= expected, what=f"{expected} messages")
        pub.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "reconnected to" in out and "1 reconnect(s)" in out
    assert "5 duplicate(s) dropped" in out
    assert "5 historical kept" in out
    assert count(db) == expected
    assert count(db, "SELECT COUNT(*) FROM messages WHERE historical = 1") == 5
    assert count(db, "SELECT COUNT(DISTINCT seq) FROM messages WHERE device_id = 'pi-01'") == 22 + 5 + 1
    assert count(db, "SELECT COUNT(*) FROM sessions WHERE ended IS NOT NULL AND duplicates = 5") == 1

    # the recording plots: one chart for the device, and the summary
    report = tmp_path / "report"
    r = run_edgekit("telemetry", "plot", str(db), "--out", str(report), timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in report.iterdir()) == ["pi-01.png", "probe.png", "summary.md"]
    summary = (report / "summary.md").read_text().split("## pi-01")[1].split("##")[0]
    assert "5 telemetry window(s) arrived late" in summary and "no missing seq numbers" in summary


def test_shared_subscription_splits_the_stream(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    options = BrokerOptions.parse(mosquitto.url)
    stop = threading.Event()
    stores = [TelemetryStore(tmp_path / f"r{i}.sqlite") for i in range(2)]
    recorders = [Recorder(s, options, share="fleet") for s in stores]
    threads = [threading.Thread(target=r.run, kwargs={"stop": stop, "duration": 60}) for r in recorders]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: all(r.session.connected.is_set() for r in recorders), what="both recorders")
        time.sleep(0.3)
        pub = publisher(mosquitto.url)
        devices = [SyntheticDevice(f"sim-{i}", seed=i) for i in range(4)]
        for _ in range(25):
            for d in devices:
                send(pub, d, "telemetry", d.telemetry())
        pub.close()
        wait_until(lambda: sum(r.stats.received for r in recorders) >= 100, what="100 messages")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        for s in stores:
            s.close()
    keys = []
    for i in range(2):
        con = sqlite3.connect(tmp_path / f"r{i}.sqlite")
        keys.append(set(con.execute("SELECT device_id, seq FROM messages")))
        con.close()
    assert keys[0] and keys[1], "each member of the share group gets part of the stream"
    assert not keys[0] & keys[1]
    assert len(keys[0] | keys[1]) == 100


def test_watch_shows_every_device_and_lost_ones(mosquitto: MosquittoBroker) -> None:
    pub = publisher(mosquitto.url)
    a = SyntheticDevice("pi4-kitchen", seed=1, window_s=2)
    b = SyntheticDevice("orin-01", seed=2, window_s=2, target="onnx-fp16", power_source="ina3221")
    for d in (a, b):
        send(pub, d, "status", d.status(), retain=True)
        send(pub, d, "telemetry", d.telemetry(advance=False))
    send(pub, b, "status", b.status("lost"), retain=True)
    feeding = threading.Event()

    def feed() -> None:  # the live device keeps reporting while watch runs
        while not feeding.wait(0.5):
            send(pub, a, "telemetry", a.telemetry(advance=False))

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        r = run_edgekit("telemetry", "watch", "--broker", mosquitto.url, "--once", "--duration", "1.5",
                        env={"COLUMNS": "200"}, timeout=60)
        assert r.returncode == 0, r.stderr
        devices = {"orin-01", "pi4-kitchen"}
        rows = {line.split()[0]: line for line in r.stdout.splitlines() if line.split() and line.split()[0] in devices}
        assert set(rows) == {"orin-01", "pi4-kitchen"}
        assert "lost" in rows["orin-01"]  # telemetry is not retained: a watch started later sees the status only
        assert "onnx-int8-arm64" in rows["pi4-kitchen"] and "est." in rows["pi4-kitchen"]

        started = time.monotonic()
        r = run_edgekit("telemetry", "watch", "--broker", mosquitto.url, "--duration", "2",
                        env={"COLUMNS": "200"}, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "pi4-kitchen" in r.stdout and "2 device(s), 1 lost" in r.stdout
        assert time.monotonic() - started < 20
    finally:
        feeding.set()
        feeder.join()
        pub.close()

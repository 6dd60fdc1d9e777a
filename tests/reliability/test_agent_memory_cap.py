"""The memory cap holds under sustained load: a text model with an attention step (working memory grows with
batch x sequence^2), a cap only ~40 MB above the loaded agent, and six clients sending 32 long sentences per
request for several seconds. Unsplit, one 64-row batch would take the agent to about 120 MB (measured here);
the agent splits batches to its calibrated budget, its lifetime peak RSS (the kernel's VmHWM) stays under the
cap, and it keeps answering."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from edgekit.broker import MosquittoBroker
from tests.reliability.agent_harness import AgentProcess, Probe, text_bundle, wait_online

pytestmark = pytest.mark.reliability

CAP_MB = 120
SENTENCE = "the cat sat on the mat and the dog " * 12  # truncated to 128 tokens


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def test_rss_stays_under_the_cap_under_sustained_load(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    bundle = text_bundle(tmp_path / "bundle", hidden=384, attention=True, max_length=128)
    dev = "dev-cap"
    probe = Probe(mosquitto.port).start(subscribe=[f"edgekit/v1/{dev}/#"])
    agent = AgentProcess(tmp_path, bundle, mosquitto.url, dev, "--memory-cap", str(CAP_MB), "--max-batch", "64",
                         "--telemetry-interval", "1").start()
    statuses: list[str] = []
    lock = threading.Lock()
    try:
        wait_online(probe, dev)
        assert agent.proc is not None
        stop = time.monotonic() + 6

        def client() -> None:
            while time.monotonic() < stop:
                reply = probe.request(dev, {"text": [SENTENCE] * 32}, timeout=60)
                with lock:
                    statuses.append(reply["status"] if reply["status"] == "ok" else reply["error"]["code"])

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        peak = peak_rss_mb(agent.proc.pid)
        assert peak < CAP_MB, f"peak RSS {peak:.0f} MB over the {CAP_MB} MB cap"
        assert len(statuses) >= 30
        assert statuses.count("ok") >= 0.75 * len(statuses), statuses  # the rest: shed with `overloaded`
        assert set(statuses) <= {"ok", "overloaded"}
        assert probe.request(dev, {"text": "still answering"})["status"] == "ok"
        telemetry = probe.wait_for(f"edgekit/v1/{dev}/telemetry", lambda m: m["requests"] > 0)
        assert telemetry["memory"]["cap_mb"] == CAP_MB and telemetry["memory"]["rss_mb"] < CAP_MB
        assert "MB for batches above the loaded model" in agent.log
    finally:
        agent.close()
        probe.stop()

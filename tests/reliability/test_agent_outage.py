"""Store-and-forward under failure: the broker stopped and restarted mid-stream, and the agent SIGKILLed while
its spool holds undelivered results. A deliberately slow model (a wide MatMul chain) keeps work queued inside
the agent while the broker is away. The consumer holds a persistent session on a broker with persistence, as a
real telemetry consumer would, so what the broker accepted reaches it even across the restart."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest

from edgekit.broker import MosquittoBroker
from tests.reliability.agent_harness import (
    AgentProcess,
    Probe,
    assert_schema_valid,
    dedupe_in_order,
    npy_b64,
    spool_rows,
    tensor_bundle,
    wait_online,
)

pytestmark = pytest.mark.reliability

# About 0.1 s per request on one thread of a current x86 core (slower elsewhere, which only queues more).
IN_WIDTH, WIDTH, LAYERS, ROWS = 16, 1024, 10, 512
BODY = {"inputs": {"x": {"npy_b64": npy_b64(np.ones((ROWS, IN_WIDTH), dtype=np.float32))}}}


def persistent_broker(tmp_path: Path) -> MosquittoBroker:
    work = tmp_path / "broker"
    work.mkdir()
    # mosquitto drops root privileges to its own user unless told otherwise; tmp_path is root-only.
    return MosquittoBroker(workdir=work, extra_config=f"persistence true\npersistence_location {work}/\nuser root\n")


def start_consumer(broker: MosquittoBroker, device: str) -> Probe:
    return Probe(broker.port, client_id=f"consumer-{device}", persistent=True).start(
        subscribe=[f"edgekit/v1/{device}/results", f"edgekit/v1/{device}/status"])


def send_burst(probe: Probe, device: str, ids: list[str]) -> dict:
    for rid in ids:
        probe.send(device, {**BODY, "id": rid})
    # The intake handles messages in order: once this ping is answered, every request above is queued inside.
    return probe.request(device, {"command": "ping"}, leaf="cmd", timeout=30)


def wait_results(probe: Probe, device: str, ids: set[str], timeout: float) -> list[dict]:
    topic = f"edgekit/v1/{device}/results"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ids <= {m["id"] for m in probe.got(topic)}:
            break
        time.sleep(0.1)
    return probe.got(topic)


def check_delivery(messages: list[dict], ids: list[str]) -> list[dict]:
    """Exactly once after de-duplication by seq, in seq order, nothing missing."""
    unique = dedupe_in_order(messages)
    seqs = [m["seq"] for m in unique]
    assert seqs == sorted(seqs), f"out of order: {seqs}"
    got = [m["id"] for m in unique]
    assert sorted(got) == sorted(ids), f"missing {set(ids) - set(got)}, extra {set(got) - set(ids)}"
    assert len(got) == len(set(got)), "a result was produced twice"
    assert all(m["status"] == "ok" for m in unique)
    return unique


def test_broker_restart_mid_stream_delivers_every_result_once_in_order(tmp_path: Path) -> None:
    broker = persistent_broker(tmp_path).start()
    dev = "dev-outage"
    bundle = tensor_bundle(tmp_path / "bundle", layers=LAYERS, width=WIDTH, in_width=IN_WIDTH)
    consumer = start_consumer(broker, dev)
    requester = Probe(broker.port)
    agent = AgentProcess(tmp_path, bundle, broker.url, dev, "--max-batch", "1", "--telemetry-interval", "0.5",
                         "--threads", "1")
    try:
        requester.start()
        agent.start()
        birth = wait_online(consumer, dev, timeout=60)
        ids = [f"r{i:03d}" for i in range(60)]
        for rid in ids[:10]:  # the stream before the outage
            requester.request(dev, {**BODY, "id": rid})
        pong = send_burst(requester, dev, ids[10:40])
        broker.stop()
        assert pong["data"]["queue_depth"] >= 5, pong  # work is still queued inside the agent
        time.sleep(3)  # the agent keeps serving into its spool
        assert spool_rows(agent.spool) > 0
        broker.start()
        wait_online(consumer, dev, after_bd_seq=birth["bd_seq"], timeout=60)
        requester.connected.wait(10)
        for rid in ids[40:]:  # the stream after the outage
            requester.send(dev, {**BODY, "id": rid})
        messages = wait_results(consumer, dev, set(ids), timeout=60)
        unique = check_delivery(messages, ids)
        assert any(m.get("historical") for m in unique), "nothing was replayed from the spool"
        assert not any(m.get("historical") for m in unique if m["id"] in ids[:10])
        assert agent.proc.poll() is None
        assert assert_schema_valid(consumer) >= 60
    finally:
        agent.close()
        consumer.stop()
        requester.stop()
        broker.close()
        print(agent.log[-3000:])


def test_sigkilled_agent_with_a_full_spool_delivers_it_after_restart(tmp_path: Path) -> None:
    broker = persistent_broker(tmp_path).start()
    dev = "dev-kill"
    bundle = tensor_bundle(tmp_path / "bundle", layers=LAYERS, width=WIDTH, in_width=IN_WIDTH)
    consumer = start_consumer(broker, dev)
    requester = Probe(broker.port)
    spool = tmp_path / "dev-kill.spool.sqlite"
    first = AgentProcess(tmp_path, bundle, broker.url, dev, "--max-batch", "1", "--threads", "1", spool=spool)
    second = AgentProcess(tmp_path, bundle, broker.url, dev, spool=spool)
    try:
        requester.start()
        first.start()
        birth = wait_online(consumer, dev, timeout=60)
        ids = [f"k{i:03d}" for i in range(25)]
        send_burst(requester, dev, ids)
        broker.stop()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until the queue has drained into the spool
            depth = spool_rows(spool)
            time.sleep(0.5)
            if depth == spool_rows(spool) and depth > 0:
                break
        held = spool_rows(spool)
        assert held >= 10, held
        first.signal(signal.SIGKILL)
        first.wait()
        broker.start()
        second.start()
        wait_online(consumer, dev, after_bd_seq=birth["bd_seq"], timeout=60)
        messages = wait_results(consumer, dev, set(ids), timeout=60)
        unique = check_delivery(messages, ids)
        replayed = [m for m in unique if m.get("historical")]
        assert len(replayed) >= held - 32  # at most one in-flight window was delivered before the kill
        deadline = time.monotonic() + 10
        while spool_rows(spool) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert spool_rows(spool) == 0  # deleted once acknowledged
    finally:
        first.close()
        second.close()
        consumer.stop()
        requester.stop()
        broker.close()
        print(second.log[-3000:])

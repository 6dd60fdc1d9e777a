"""The agent end to end: a real mosquitto on a loopback port, ``python -m edgekit agent`` as a subprocess, tiny
ONNX bundles built in code, and a paho client on the other side. Every payload seen is checked against the
shipped JSON Schemas."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgekit.broker import MosquittoBroker
from tests.conftest import run_edgekit
from tests.reliability.agent_harness import (
    AgentProcess,
    Probe,
    assert_schema_valid,
    npy_b64,
    tensor_bundle,
    tensor_reference,
    text_bundle,
    text_reference,
    wait_online,
)

pytestmark = pytest.mark.integration

DEV = "dev-v5"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    work = tmp_path_factory.mktemp("broker")
    with MosquittoBroker(workdir=work) as b:
        yield b


@pytest.fixture(scope="module")
def text_agent(broker: MosquittoBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AgentProcess,
                                                                                                    Probe, Path]]:
    tmp = tmp_path_factory.mktemp("text-agent")
    bundle = text_bundle(tmp / "bundle")
    probe = Probe(broker.port).start(subscribe=[f"edgekit/v1/{DEV}/#"])
    agent = AgentProcess(tmp, bundle, broker.url, DEV, "--telemetry-interval", "0.5", "--max-wait-ms", "20",
                         "--max-batch", "16").start()
    try:
        wait_online(probe, DEV)
        yield agent, probe, bundle
    finally:
        agent.close()
        probe.stop()
        print(agent.log[-3000:])


def test_birth_message_is_retained_and_describes_the_device(broker: MosquittoBroker, text_agent) -> None:
    agent, _, _ = text_agent
    late = Probe(broker.port).start(subscribe=[f"edgekit/v1/{DEV}/status"])  # a consumer that comes later
    try:
        status = late.wait_for(f"edgekit/v1/{DEV}/status", timeout=10)
    finally:
        late.stop()
    assert status["_retain"] and status["state"] == "online"
    assert status["profile"] == "generic-x86_64" and status["runtime"] == "onnxruntime"
    assert status["target"] == "onnx-fp32" and len(status["bundle"]["sha256"]) == 64
    assert "avx2" in status["cpu_features"] or status["cpu_features"] is not None
    assert status["memory_cap_mb"] == 1024 and status["selection"]


def test_text_request_response_v5(text_agent) -> None:
    _, probe, bundle = text_agent
    sentences = ["hello world", "the cat sat on the mat"]
    reply = probe.request(DEV, {"text": sentences})
    assert reply["status"] == "ok", reply
    got = np.array(reply["embeddings"])
    assert np.abs(got - text_reference(sentences, bundle / "tokenizer.json")).max() < 1e-5
    assert reply["latency_ms"]["total"] >= reply["latency_ms"]["inference"] > 0
    copy = probe.wait_for(f"edgekit/v1/{DEV}/results", lambda m: m["seq"] == reply["seq"])
    assert copy["id"] == reply["id"] and copy["embeddings"] == reply["embeddings"]
    quiet = probe.request(DEV, {"text": "good morning", "publish_result": False})
    time.sleep(0.3)
    assert not [m for m in probe.got(f"edgekit/v1/{DEV}/results") if m["seq"] == quiet["seq"]]


def test_batches_form_under_concurrent_load(text_agent) -> None:
    _, probe, _ = text_agent
    replies: list[dict] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        for k in range(6):
            r = probe.request(DEV, {"text": f"the dog {'and the cat ' * (k % 3)}sat"}, timeout=30)
            with lock:
                replies.append(r)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(replies) == 96 and all(r["status"] == "ok" for r in replies)
    sizes = [r["batch_size"] for r in replies]
    assert max(sizes) > 1, sizes
    assert max(sizes) <= 16
    telemetry = probe.wait_for(f"edgekit/v1/{DEV}/telemetry", lambda m: (m["batch"]["max"] or 0) > 1, timeout=5)
    assert telemetry["requests"] > 0 and telemetry["power"]["source"] in ("estimated", "rapl")


def test_bad_requests_get_error_replies_and_the_agent_keeps_serving(text_agent) -> None:
    agent, probe, _ = text_agent
    cases = [
        (b"{not json", "bad-request", "not JSON"),
        (b"\xff\xfe", "bad-request", "not JSON"),
        ({"text": "a", "inputs": {"x": {"data": [1]}}}, "bad-request", "schema"),
        ({"text": 5}, "bad-request", "schema"),
        ({"colour": "blue"}, "bad-request", "schema"),
        (json.dumps({"text": "x" * (1 << 20)}).encode(), "too-large", "at most 1048576"),
        ({"inputs": {"input_ids": {"data": [[1, 2]]}}}, "wrong-shape", "missing"),
        ({"inputs": {"input_ids": {"data": [1, 2]}, "attention_mask": {"data": [1, 1]},
                     "token_type_ids": {"data": [0, 0]}}}, "wrong-shape", "rank 2"),
        ({"inputs": {"input_ids": {"npy_b64": npy_b64(np.ones((1, 3), dtype=np.int64))},
                     "attention_mask": {"data": [[1, 1, 1]]}, "token_type_ids": {"data": [[0, 0]]}}},
         "internal", "inference failed"),
    ]
    for body, code, fragment in cases:
        reply = probe.reply(probe.send(DEV, body))
        assert reply["status"] == "error" and reply["error"]["code"] == code, (body, reply)
        assert fragment in reply["error"]["message"], reply
    assert agent.proc.poll() is None
    assert probe.request(DEV, {"text": "still here"})["status"] == "ok"
    pong = probe.request(DEV, {"command": "ping"}, leaf="cmd")
    assert pong["status"] == "ok" and pong["data"]["pong"] is True
    bad = probe.request(DEV, {"command": "set", "args": {"max_batch": 0}}, leaf="cmd")
    assert bad["status"] == "error" and "max_batch" in bad["error"]["message"]
    ok = probe.request(DEV, {"command": "set", "args": {"max_wait_ms": 10}}, leaf="cmd")
    assert ok["data"] == {"applied": {"max_wait_ms": 10}}
    telemetry = probe.wait_for(f"edgekit/v1/{DEV}/telemetry", lambda m: m["errors"] > 0 or m["rejects"] > 0)
    assert telemetry["v"] == 1


def test_every_payload_matches_its_schema(text_agent) -> None:
    _, probe, _ = text_agent
    probe.wait_for(f"edgekit/v1/{DEV}/telemetry")
    assert assert_schema_valid(probe) > 10


def test_sigterm_publishes_offline_and_sigkill_fires_the_last_will(broker: MosquittoBroker, tmp_path: Path) -> None:
    bundle = tensor_bundle(tmp_path / "bundle")
    probe = Probe(broker.port).start(subscribe=["edgekit/v1/+/status"])
    a = AgentProcess(tmp_path, bundle, broker.url, "dev-term").start()
    b = AgentProcess(tmp_path, bundle, broker.url, "dev-kill").start()
    try:
        wait_online(probe, "dev-term")
        birth = wait_online(probe, "dev-kill")
        assert a.terminate() == 0
        offline = probe.wait_for("edgekit/v1/dev-term/status", lambda m: m["state"] == "offline", timeout=10)
        assert offline["reason"] == "shutdown (SIGTERM)"
        b.signal(signal.SIGKILL)
        lost = probe.wait_for("edgekit/v1/dev-kill/status", lambda m: m["state"] == "lost", timeout=10)
        assert lost["bd_seq"] == birth["bd_seq"] and lost["seq"] < birth["seq"]  # armed before the birth
        time.sleep(0.3)
        assert not [m for m in probe.got("edgekit/v1/dev-term/status") if m["state"] == "lost"]
    finally:
        a.close()
        b.close()
        probe.stop()
    late = Probe(broker.port).start(subscribe=["edgekit/v1/+/status"])
    try:  # both states are retained for consumers that come later
        assert late.wait_for("edgekit/v1/dev-kill/status", timeout=5)["state"] == "lost"
        assert late.wait_for("edgekit/v1/dev-term/status", timeout=5)["state"] == "offline"
    finally:
        late.stop()


def test_tensor_requests_over_mqtt_311(broker: MosquittoBroker, tmp_path: Path) -> None:
    bundle = tensor_bundle(tmp_path / "bundle")
    probe = Probe(broker.port, version="3.1.1").start(subscribe=["edgekit/v1/dev-v3/#"])
    agent = AgentProcess(tmp_path, bundle, broker.url, "dev-v3", "--mqtt-version", "3.1.1").start()
    try:
        wait_online(probe, "dev-v3")
        x = np.arange(8, dtype=np.float32).reshape(2, 4)
        reply = probe.request("dev-v3", {"inputs": {"x": {"data": x.tolist()}}}, request_id="req-1")
        assert reply["id"] == "req-1" and reply["status"] == "ok"
        y = np.array(reply["outputs"]["y"]["data"], dtype=np.float32)
        assert np.allclose(y, tensor_reference(x), atol=1e-5)
        reply = probe.request("dev-v3", {"inputs": {"x": {"npy_b64": npy_b64(x)}}})
        assert "npy_b64" in reply["outputs"]["y"]
        bad = probe.request("dev-v3", {"inputs": {"x": {"data": [[1, 2, 3]]}}})
        assert bad["error"]["code"] == "wrong-shape"
        text = probe.request("dev-v3", {"text": "hello"})
        assert text["error"]["code"] == "bad-request" and "not text" in text["error"]["message"]
        assert assert_schema_valid(probe) >= 4
    finally:
        agent.close()
        probe.stop()


def test_admission_refuses_a_cap_the_model_cannot_fit(tmp_path: Path, broker: MosquittoBroker) -> None:
    bundle = text_bundle(tmp_path / "bundle")
    done = run_edgekit("agent", "--bundle", str(bundle), "--device-id", "dev-small", "--broker", broker.url,
                       "--memory-cap", "64", "--profile", "generic-x86_64", "--spool",
                       str(tmp_path / "s.sqlite"), timeout=120)
    assert done.returncode == 1, done.stderr
    assert "does not fit the memory cap" in done.stderr and "raise --memory-cap to at least" in done.stderr


def test_config_errors_are_one_clear_line(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text('device_id = "d"\nbroker = "mqtt://127.0.0.1:1"\nbundle = "x"\nmax_bach = 4\n')
    done = run_edgekit("agent", "--config", str(cfg), timeout=60)
    assert done.returncode == 1
    assert "unknown key" in done.stderr and "max_batch" in done.stderr and "Traceback" not in done.stderr


def test_systemd_ready_watchdog_and_stopping(broker: MosquittoBroker, tmp_path: Path) -> None:
    """A datagram socket stands in for systemd's NOTIFY_SOCKET, with a 1 s WatchdogSec."""
    import socket

    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(30)
    agent = AgentProcess(tmp_path, tensor_bundle(tmp_path / "bundle"), broker.url, "dev-sd",
                         env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"}).start()
    try:
        first = sock.recv(4096).decode()
        assert "READY=1" in first and "serving onnx-fp32" in first
        assert "WATCHDOG=1" in sock.recv(4096).decode()  # fed while the batcher loop turns
        agent.signal(signal.SIGTERM)
        while True:
            text = sock.recv(4096).decode()
            if "STOPPING=1" in text:
                break
        assert agent.wait() == 0
    finally:
        agent.close()
        sock.close()

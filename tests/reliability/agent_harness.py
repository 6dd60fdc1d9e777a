"""Shared by the agent's integration and reliability tests: tiny bundles built in code, the agent as a real
subprocess (``python -m edgekit agent``), and an MQTT probe client. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.checksums import sha256_file
from edgekit.manifest import (
    SCHEMA_VERSION,
    Artifact,
    FileEntry,
    Manifest,
    ModelInfo,
    TensorSpec,
    now_iso,
    write_manifest,
)

REPO = Path(__file__).resolve().parents[2]
SEED = 1234


# --- bundles --------------------------------------------------------------------------------------------------------
def _save(model: Any, path: Path) -> None:
    import onnx

    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def _manifest(root: Path, name: str, task: str, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...],
              model_path: Path, files: tuple[FileEntry, ...] = (), target: str = "onnx-fp32",
              extra: dict[str, Any] | None = None) -> Path:
    rel = model_path.relative_to(root).as_posix()
    artifact = Artifact(target=target, path=rel, format="onnx", precision=target.split("-")[1].replace("int8", "int8"),
                        size_bytes=model_path.stat().st_size, sha256=sha256_file(model_path), runtime="onnxruntime")
    manifest = Manifest(schema_version=SCHEMA_VERSION,
                        model=ModelInfo(name=name, source="tests", sha256=sha256_file(model_path), task=task,
                                        inputs=inputs, outputs=outputs),
                        profile="generic-x86_64", created=now_iso(), producer={"edgekit": "tests"},
                        artifacts=(artifact,), files=files, extra=extra or {})
    write_manifest(manifest, root)
    return root


def _tensor_weights(layers: int, width: int, out_width: int, in_width: int) -> list[np.ndarray]:
    rng = np.random.default_rng(SEED)
    ws = [(rng.standard_normal((in_width if i == 0 else width, width)) / np.sqrt(width)).astype(np.float32)
          for i in range(layers)]
    last = in_width if layers == 0 else width
    return [*ws, rng.standard_normal((last, out_width)).astype(np.float32),
            rng.standard_normal(out_width).astype(np.float32)]


def tensor_bundle(root: Path, layers: int = 1, width: int = 4, out_width: int = 3,
                  in_width: int | None = None) -> Path:
    """x[batch, in_width] -> y[batch, out_width] via ``layers`` MatMul+Relu of ``width`` (wide = slow on purpose)."""
    from onnx import TensorProto, helper, numpy_helper

    in_width = in_width or width
    *ws, wo, bo = _tensor_weights(layers, width, out_width, in_width)
    nodes, inits, prev = [], [], "x"
    for i, w in enumerate(ws):
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]),
                  helper.make_node("Relu", [f"m{i}"], [f"r{i}"])]
        prev = f"r{i}"
    inits += [numpy_helper.from_array(wo, "wo"), numpy_helper.from_array(bo, "bo")]
    nodes += [helper.make_node("MatMul", [prev, "wo"], ["mo"]), helper.make_node("Add", ["mo", "bo"], ["y"])]
    graph = helper.make_graph(nodes, "tensor",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", in_width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", out_width])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    path = root / "onnx-fp32" / "model.onnx"
    _save(model, path)
    return _manifest(root, "tiny-tensor", "tensor", (TensorSpec("x", "float32", ("batch", in_width)),),
                     (TensorSpec("y", "float32", ("batch", out_width)),), path)


def tensor_reference(x: np.ndarray, layers: int = 1, width: int = 4, out_width: int = 3,
                     in_width: int | None = None) -> np.ndarray:
    *ws, wo, bo = _tensor_weights(layers, width, out_width, in_width or width)
    h = x.astype(np.float32)
    for w in ws:
        h = np.maximum(h @ w, 0)
    return h @ wo + bo


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "cat", "dog", "sat", "on", "mat", "hello",
         "world", "good", "morning", "edge", "device", "##s", "##ing", "run", "fast", "slow", "is", "and"]
HIDDEN = 8


def build_tokenizer(path: Path, max_length: int = 32) -> Path:
    """A BERT-style WordPiece tokenizer over a small fixed vocabulary, built offline."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    tok = Tokenizer(WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2),
                                                                                              ("[SEP]", 3)])
    tok.enable_truncation(max_length)
    tok.enable_padding(length=max_length, pad_id=0, pad_token="[PAD]")  # bundles often pin padding; agent drops it
    tok.save(str(path))
    return path


def text_weights(hidden: int = HIDDEN) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    emb = rng.standard_normal((len(VOCAB), hidden)).astype(np.float32)
    typ = rng.standard_normal((2, hidden)).astype(np.float32)
    w = (rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)).astype(np.float32)
    return emb, typ, w


def text_bundle(root: Path, hidden: int = HIDDEN, attention: bool = False, max_length: int = 32) -> Path:
    """A BERT-shaped toy: Gather(word) + Gather(type) -> MatMul -> Tanh, masked; output last_hidden_state.

    ``attention=True`` adds one unmasked self-attention step (softmax(h h^T) h), whose [batch, seq, seq] scores
    give the working memory the quadratic growth of a real transformer.
    """
    from onnx import TensorProto, helper, numpy_helper

    emb, typ, w = text_weights(hidden)
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["we"]),
        helper.make_node("Gather", ["typ", "token_type_ids"], ["te"]),
        helper.make_node("Add", ["we", "te"], ["e"]),
        helper.make_node("MatMul", ["e", "w"], ["h"]),
        helper.make_node("Tanh", ["h"], ["t0"]),
    ]
    if attention:
        nodes += [helper.make_node("Transpose", ["t0"], ["tt"], perm=[0, 2, 1]),
                  helper.make_node("MatMul", ["t0", "tt"], ["scores"]),
                  helper.make_node("Softmax", ["scores"], ["probs"], axis=-1),
                  helper.make_node("MatMul", ["probs", "t0"], ["t"])]
    else:
        nodes.append(helper.make_node("Identity", ["t0"], ["t"]))
    nodes += [
        helper.make_node("Cast", ["attention_mask"], ["mf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mf", "axis"], ["m3"]),
        helper.make_node("Mul", ["t", "m3"], ["last_hidden_state"]),
    ]
    inits = [numpy_helper.from_array(emb, "emb"), numpy_helper.from_array(typ, "typ"), numpy_helper.from_array(w, "w"),
             numpy_helper.from_array(np.array([-1], dtype=np.int64), "axis")]
    ins = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
           for n in ("input_ids", "attention_mask", "token_type_ids")]
    out = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])
    model = helper.make_model(helper.make_graph(nodes, "toybert", ins, [out], inits),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    path = root / "onnx-fp32" / "model.onnx"
    _save(model, path)
    tok = build_tokenizer(root / "tokenizer.json", max_length=max_length)
    files = (FileEntry("tokenizer.json", sha256_file(tok), tok.stat().st_size, kind="tokenizer"),)
    dims = ("batch", "sequence")
    return _manifest(root, "toy-bert", "text-embedding", tuple(TensorSpec(n, "int64", dims) for n in
                                                                ("input_ids", "attention_mask", "token_type_ids")),
                     (TensorSpec("last_hidden_state", "float32", ("batch", "sequence", hidden)),), path, files)


def text_reference(sentences: Iterable[str], tokenizer_path: Path) -> np.ndarray:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_padding()
    emb, typ, w = text_weights()
    out = []
    for s in sentences:
        e = tok.encode(s)
        h = np.tanh((emb[e.ids] + typ[e.type_ids]) @ w).mean(axis=0)
        out.append(h / np.linalg.norm(h))
    return np.stack(out)


def npy_b64(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode()


# --- the agent process ----------------------------------------------------------------------------------------------
class AgentProcess:
    """``python -m edgekit agent`` with the given flags; stderr goes to a log file the tests can read."""

    def __init__(self, tmp: Path, bundle: Path, broker_url: str, device_id: str = "dev-1", *extra: str,
                 spool: Path | None = None, profile: str = "generic-x86_64", env: dict[str, str] | None = None) -> None:
        self.log_path = tmp / f"agent-{device_id}-{uuid.uuid4().hex[:6]}.log"
        self.spool = spool or tmp / f"{device_id}.spool.sqlite"
        self.args = ["--bundle", str(bundle), "--device-id", device_id, "--broker", broker_url,
                     "--spool", str(self.spool), "--profile", profile, *extra]
        self.device_id = device_id
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.env}
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "edgekit", "agent", *self.args], stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env, cwd=REPO)
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def terminate(self, timeout: float = 20) -> int:
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def close(self) -> None:
        self.kill()
        if hasattr(self, "_log"):
            self._log.close()


# --- the MQTT probe -------------------------------------------------------------------------------------------------
class Probe:
    """A test-side MQTT client: collects messages per topic and does request/response (v5 or v3.1.1)."""

    def __init__(self, url_port: int, version: str = "5", client_id: str | None = None, persistent: bool = False,
                 tls: tuple[Path, Path | None, Path | None] | None = None, auth: tuple[str, str] | None = None,
                 **connect: Any) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.port = url_port
        self.v5 = version == "5"
        cid = client_id or f"probe-{uuid.uuid4().hex[:8]}"
        kwargs: dict[str, Any] = {"protocol": mqtt.MQTTv5} if self.v5 else {"protocol": mqtt.MQTTv311,
                                                                            "clean_session": not persistent}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, **kwargs)
        self.persistent = persistent
        self.messages: dict[str, list[Any]] = {}
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.subscriptions: list[tuple[str, int]] = []
        self.connected = threading.Event()
        self.replies: dict[str, queue.Queue[dict[str, Any]]] = {}
        self.reply_topic = f"probe/{cid}/reply"
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.reconnect_delay_set(1, 2)
        if tls is not None:
            self.client.tls_set(ca_certs=str(tls[0]), certfile=tls[1] and str(tls[1]), keyfile=tls[2] and str(tls[2]))
        if auth is not None:
            self.client.username_pw_set(*auth)
        self.connect_kwargs = connect

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            return
        subs = [*self.subscriptions, (self.reply_topic, 1)]
        client.subscribe(subs)
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = {"_raw": bytes(msg.payload)}
        body["_retain"] = bool(msg.retain)
        with self.arrived:
            self.messages.setdefault(msg.topic, []).append(body)
            self.arrived.notify_all()
        if msg.topic == self.reply_topic:
            corr = getattr(msg.properties, "CorrelationData", None) if msg.properties else None
            key = bytes(corr).decode() if corr else body.get("id", "")
            self.replies.setdefault(key, queue.Queue()).put(body)

    def start(self, subscribe: Iterable[str] = ()) -> Probe:
        self.subscriptions = [(t, 1) for t in subscribe]
        if self.v5 and self.persistent:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            self.client.connect("127.0.0.1", self.port, clean_start=False, properties=props)
        else:
            self.client.connect("127.0.0.1", self.port, **self.connect_kwargs)
        self.client.loop_start()
        assert self.connected.wait(10), "probe could not connect"
        time.sleep(0.1)  # let the SUBACK arrive
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_for(self, topic: str, pred: Callable[[dict[str, Any]], bool] = lambda m: True,
                 timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for m in self.messages.get(topic, []):
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching message on {topic} within {timeout} s; got "
                                       f"{self.messages.get(topic, [])[-3:]}")
                self.arrived.wait(left)

    def count(self, topic: str) -> int:
        with self.lock:
            return len(self.messages.get(topic, []))

    def got(self, topic: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.messages.get(topic, []))

    def send(self, device: str, body: dict[str, Any] | bytes, request_id: str | None = None, qos: int = 1,
             leaf: str = "infer") -> str:
        """Publish a request; returns the key its reply will be filed under."""
        rid = request_id or uuid.uuid4().hex[:12]
        props = None
        if isinstance(body, dict):
            body = dict(body)
            if self.v5:
                from paho.mqtt.packettypes import PacketTypes
                from paho.mqtt.properties import Properties

                props = Properties(PacketTypes.PUBLISH)
                props.ResponseTopic = self.reply_topic
                props.CorrelationData = rid.encode()
            else:
                body.setdefault("reply_to", self.reply_topic)
                body.setdefault("id", rid)
            payload = json.dumps(body).encode()
        else:
            payload = body
            if self.v5:
                from paho.mqtt.packettypes import PacketTypes
                from paho.mqtt.properties import Properties

                props = Properties(PacketTypes.PUBLISH)
                props.ResponseTopic = self.reply_topic
                props.CorrelationData = rid.encode()
        self.replies.setdefault(rid, queue.Queue())
        self.client.publish(f"edgekit/v1/{device}/{leaf}", payload, qos=qos, properties=props)
        return rid

    def reply(self, rid: str, timeout: float = 20) -> dict[str, Any]:
        return self.replies.setdefault(rid, queue.Queue()).get(timeout=timeout)

    def request(self, device: str, body: dict[str, Any], timeout: float = 20, **kw: Any) -> dict[str, Any]:
        return self.reply(self.send(device, body, **kw), timeout)


def wait_online(probe: Probe, device: str, after_bd_seq: int = -1, timeout: float = 30) -> dict[str, Any]:
    """The agent's retained birth message (state online) with a bd_seq above ``after_bd_seq``."""
    return probe.wait_for(f"edgekit/v1/{device}/status",
                          lambda m: m.get("state") == "online" and m.get("bd_seq", 0) > after_bd_seq, timeout)


def assert_schema_valid(probe: Probe) -> int:
    """Every message the probe received on an agent topic matches its JSON Schema; returns how many."""
    from edgekit.agent import payloads

    n = 0
    for topic, msgs in probe.messages.items():
        leaf = topic.rsplit("/", 1)[-1]
        kind = {"status": "status", "telemetry": "telemetry", "results": "result", "reply": "result"}.get(leaf)
        if kind is None:
            continue
        for m in msgs:
            body = {k: v for k, v in m.items() if not k.startswith("_")}
            assert payloads.errors(kind, body) == [], (topic, body)
            n += 1
    return n


def spool_rows(path: Path) -> int:
    import sqlite3

    db = sqlite3.connect(str(path), timeout=10)
    try:
        return int(db.execute("SELECT COUNT(*) FROM outbox WHERE kind != 'telemetry'").fetchone()[0])
    finally:
        db.close()


def dedupe_in_order(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[int] = set()
    out = []
    for m in messages:
        if m["seq"] not in seen:
            seen.add(m["seq"])
            out.append(m)
    return out

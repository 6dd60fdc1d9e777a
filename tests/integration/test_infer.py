"""``edgekit infer`` against a real mosquitto, answered by a small TEST RESPONDER (not the agent).

The responder subscribes to ``edgekit/v1/<device>/infer`` and answers per mqtt-result.schema.json, the way the
contract says an agent must: to the MQTT v5 response topic with the correlation data, or to ``reply_to`` with
``id`` for 3.1.1 requests. It records what it received so the tests can check both request styles.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgekit.broker import MosquittoBroker, free_port
from edgekit.client import BrokerOptions, MqttSession
from edgekit.client.tensors import decode_tensor, encode_array
from edgekit.manifest import schema_errors
from tests.conftest import run_edgekit

pytestmark = pytest.mark.integration

DEVICE = "resp-01"


class TestResponder:
    """A stand-in that answers infer requests per the schema (test double; NOT the agent)."""

    __test__ = False  # not a pytest test class

    def __init__(self, url: str, device_id: str = DEVICE, options: BrokerOptions | None = None) -> None:
        self.device_id = device_id
        self.requests: list[dict[str, Any]] = []
        self.seq = 0
        self._lock = threading.Lock()
        self.session = MqttSession(options or BrokerOptions.parse(url, mqtt_version="5"), on_message=self._on_message,
                                   subscriptions=[f"edgekit/v1/{device_id}/infer"])

    def __enter__(self) -> TestResponder:
        self.session.start()
        self.session.publish(f"edgekit/v1/{self.device_id}/status",
                             {"v": 1, "device_id": self.device_id, "seq": 0, "ts": time.time(), "state": "online"},
                             retain=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def _on_message(self, msg: Any) -> None:
        body = json.loads(msg.payload)
        props = msg.properties
        response = getattr(props, "ResponseTopic", None) if props else None
        correlation = getattr(props, "CorrelationData", None) if props else None
        with self._lock:
            self.seq += 1
            self.requests.append({"body": body, "response_topic": response, "correlation": correlation})
            seq = self.seq
        reply: dict[str, Any] = {"v": 1, "device_id": self.device_id, "seq": seq, "ts": time.time(),
                                 "id": correlation.decode() if correlation else body.get("id", ""),
                                 "target": "test-responder"}
        texts = body.get("text")
        texts = [texts] if isinstance(texts, str) else texts
        if texts and any("please fail" in t for t in texts):
            reply.update(status="error", error={"code": "too-large", "message": "batch of 300 exceeds max_batch 32"})
        elif texts and any("stay silent" in t for t in texts):
            return
        elif texts:
            rng = np.random.default_rng(len(texts))
            emb = rng.standard_normal((len(texts), 384))
            emb /= np.linalg.norm(emb, axis=1, keepdims=True)
            reply.update(status="ok", batch_size=len(texts), embeddings=emb.round(6).tolist(),
                         latency_ms={"queue": 0.2, "inference": 4.5, "total": 4.7})
        else:  # tensors: answer each input's sum, as float32 outputs named sum_<input>
            outputs = {f"sum_{k}": encode_array(np.asarray(decode_tensor(v).sum(), dtype=np.float32).reshape(1))
                       for k, v in body["inputs"].items()}
            reply.update(status="ok", batch_size=1, outputs=outputs)
        assert schema_errors("mqtt-result", reply) == []
        self.session.publish(response or body["reply_to"], reply, qos=1)


@pytest.fixture
def responder(mosquitto: MosquittoBroker) -> Iterator[TestResponder]:
    with TestResponder(mosquitto.url) as r:
        yield r


def infer(url: str, *args: str, device: str = DEVICE) -> Any:
    return run_edgekit("infer", "--broker", url, "--device-id", device, *args, timeout=60)


def test_v5_request_carries_response_topic_and_correlation(mosquitto: MosquittoBroker,
                                                           responder: TestResponder) -> None:
    r = infer(mosquitto.url, "--text", "The cat sits on the mat.", "--text", "A kitten rests on a rug.")
    assert r.returncode == 0, r.stderr
    assert "2 embedding(s) × 384 dims" in r.stdout
    assert "'The cat sits on the mat.'" in r.stdout and "norm 1.000" in r.stdout
    req = responder.requests[-1]
    assert req["response_topic"].startswith(f"edgekit/v1/{DEVICE}/replies/")
    assert req["correlation"] and "reply_to" not in req["body"]
    assert schema_errors("mqtt-infer", req["body"]) == []

    r = infer(mosquitto.url, "--text", "hello", "--json")
    assert r.returncode == 0, r.stderr
    reply = json.loads(r.stdout)
    assert reply["status"] == "ok" and len(reply["embeddings"]) == 1 and len(reply["embeddings"][0]) == 384
    assert schema_errors("mqtt-result", reply) == []


def test_v311_request_carries_reply_to_and_id(mosquitto: MosquittoBroker, responder: TestResponder) -> None:
    r = infer(mosquitto.url, "--text", "hello", "--mqtt-version", "3.1.1")
    assert r.returncode == 0, r.stderr
    req = responder.requests[-1]
    assert req["response_topic"] is None and req["correlation"] is None
    assert req["body"]["reply_to"].startswith(f"edgekit/v1/{DEVICE}/replies/") and req["body"]["id"]
    assert schema_errors("mqtt-infer", req["body"]) == []


def test_tensor_input_file(mosquitto: MosquittoBroker, responder: TestResponder, tmp_path: Path) -> None:
    np.savez(tmp_path / "batch.npz", input_ids=np.arange(6, dtype=np.int64).reshape(1, 6),
             attention_mask=np.ones((1, 6), dtype=np.int64))
    r = infer(mosquitto.url, "--input", str(tmp_path / "batch.npz"))
    assert r.returncode == 0, r.stderr
    assert "output sum_input_ids: float32 [1]  [+15.0000]" in r.stdout
    sent = responder.requests[-1]["body"]["inputs"]
    assert sent["input_ids"]["dtype"] == "int64" and sent["input_ids"]["shape"] == [1, 6]


def test_error_reply_is_a_clear_message_and_exit_1(mosquitto: MosquittoBroker, responder: TestResponder) -> None:
    r = infer(mosquitto.url, "--text", "please fail")
    assert r.returncode == 1
    assert f"device '{DEVICE}' answered with an error: too-large: batch of 300 exceeds max_batch 32" in r.stderr
    assert "Traceback" not in r.stderr


def test_timeouts_say_what_the_broker_knows(mosquitto: MosquittoBroker, responder: TestResponder) -> None:
    started = time.monotonic()
    r = infer(mosquitto.url, "--text", "x", "--timeout", "1", device="nobody")
    assert r.returncode == 4
    assert "no reply from device 'nobody' within 1 s" in r.stderr and "holds no status" in r.stderr
    assert time.monotonic() - started < 20

    r = infer(mosquitto.url, "--text", "stay silent", "--timeout", "1")
    assert r.returncode == 4 and "It is online" in r.stderr

    pub = MqttSession(BrokerOptions.parse(mosquitto.url)).start()
    pub.publish("edgekit/v1/gone/status", {"v": 1, "device_id": "gone", "seq": 7, "ts": time.time(),
                                           "state": "lost"}, retain=True).wait_for_publish(5)
    pub.close()
    r = infer(mosquitto.url, "--text", "x", "--timeout", "1", device="gone")
    assert r.returncode == 4 and "last status is 'lost'" in r.stderr


def test_unreachable_broker_exit_3() -> None:
    r = infer(f"mqtt://127.0.0.1:{free_port()}", "--text", "x", "--timeout", "1")
    assert r.returncode == 3
    assert "cannot connect to the MQTT broker" in r.stderr and "connection refused" in r.stderr


def test_mqtts_with_a_client_certificate(tmp_path: Path) -> None:
    from tests.integration.test_agent_security import make_pki

    pki = make_pki(tmp_path)
    extra = (f"cafile {pki['ca']}\ncertfile {pki['server_crt']}\nkeyfile {pki['server_key']}\n"
             "require_certificate true\nuser root\n")
    (tmp_path / "broker").mkdir()
    with MosquittoBroker(workdir=tmp_path / "broker", extra_config=extra) as broker:
        url = f"mqtts://127.0.0.1:{broker.port}"
        tls = {"ca_file": pki["ca"], "cert_file": pki["probe_crt"], "key_file": pki["probe_key"]}
        with TestResponder(url, options=BrokerOptions.parse(url, **tls)):
            r = infer(url, "--text", "over TLS", "--ca-file", str(pki["ca"]), "--cert-file",
                      str(pki["client_crt"]), "--key-file", str(pki["client_key"]))
            assert r.returncode == 0, r.stderr
            assert "1 embedding(s) × 384 dims" in r.stdout
            r = infer(url, "--text", "no client certificate", "--ca-file", str(pki["ca"]), "--timeout", "2")
            assert r.returncode == 3 and "MQTT broker" in r.stderr


def test_username_and_password_file(tmp_path: Path) -> None:
    import shutil
    import subprocess

    passwd_tool = shutil.which("mosquitto_passwd")
    if passwd_tool is None:
        pytest.skip("mosquitto_passwd is not installed")
    passwd = tmp_path / "passwd"
    subprocess.run([passwd_tool, "-b", "-c", str(passwd), "ops", "s3cret"], check=True)
    subprocess.run([passwd_tool, "-b", str(passwd), DEVICE, "dev-pw"], check=True)
    (tmp_path / "right").write_text("s3cret\n")
    (tmp_path / "wrong").write_text("guess\n")
    (tmp_path / "broker").mkdir()
    extra = f"allow_anonymous false\npassword_file {passwd}\nuser root\n"
    with MosquittoBroker(workdir=tmp_path / "broker", extra_config=extra) as broker:
        with TestResponder(broker.url, options=BrokerOptions.parse(broker.url, username=DEVICE,
                                                                   password="dev-pw")):
            r = infer(broker.url, "--text", "hi", "--username", "ops", "--password-file", str(tmp_path / "right"))
            assert r.returncode == 0, r.stderr
            r = infer(broker.url, "--text", "hi", "--username", "ops", "--password-file", str(tmp_path / "wrong"))
            assert r.returncode == 3
            assert "refused the connection" in r.stderr and "Not authorized" in r.stderr
            r = infer(f"mqtt://ops:s3cret@127.0.0.1:{broker.port}", "--text", "hi")
            assert r.returncode == 2 and "--password-file" in r.stderr

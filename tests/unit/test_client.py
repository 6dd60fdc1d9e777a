"""The client side without a broker: broker URLs, input files, reply formatting, topic names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.client import BrokerOptions
from edgekit.client.tensors import decode_tensor, describe_reply, encode_array, load_input_file
from edgekit.client.topics import filters, parse
from edgekit.errors import UsageError
from edgekit.manifest import schema_errors

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("url, host, port, tls", [
    ("mqtt://127.0.0.1:1884", "127.0.0.1", 1884, False),
    ("mqtt://broker.lan", "broker.lan", 1883, False),
    ("mqtts://broker.lan", "broker.lan", 8883, True),
    ("127.0.0.1:2000", "127.0.0.1", 2000, False),
    ("mqtt://[::1]:1883", "::1", 1883, False),
])
def test_broker_urls(url: str, host: str, port: int, tls: bool) -> None:
    opts = BrokerOptions.parse(url)
    assert (opts.host, opts.port, opts.tls) == (host, port, tls)
    assert BrokerOptions.parse(opts.url) == opts


def test_username_in_url_password_refused() -> None:
    assert BrokerOptions.parse("mqtts://fleet@broker.lan").username == "fleet"
    with pytest.raises(UsageError, match="--password-file"):
        BrokerOptions.parse("mqtt://fleet:secret@broker.lan")


@pytest.mark.parametrize("url, kwargs, match", [
    ("http://x", {}, "scheme"),
    ("mqtt://x:99999", {}, "port"),
    ("mqtt://x", {"ca_file": Path("/etc/hostname")}, "not mqtts"),
    ("mqtts://x", {"cert_file": Path("/etc/hostname")}, "both --cert-file and --key-file"),
    ("mqtts://x", {"ca_file": Path("/nonexistent/ca.pem")}, "does not exist"),
    ("mqtt://x", {"mqtt_version": "4"}, "not one of"),
])
def test_bad_broker_options(url: str, kwargs: dict, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        BrokerOptions.parse(url, **kwargs)


def test_topics() -> None:
    assert parse("edgekit/v1/pi-01/telemetry") == ("pi-01", "telemetry")
    assert parse("edgekit/v1/pi-01/replies/ek-1") is None
    assert parse("other/v1/pi-01/status") is None
    assert filters(("status",), "all", "g1") == ["$share/g1/edgekit/v1/+/status"]
    assert filters(("results",), "pi-01") == ["edgekit/v1/pi-01/results"]


def test_npy_and_npz_inputs_keep_dtype_and_shape(tmp_path: Path) -> None:
    ids = np.arange(12, dtype=np.int64).reshape(2, 6)
    np.save(tmp_path / "input_ids.npy", ids)
    body = load_input_file(tmp_path / "input_ids.npy")
    assert list(body["inputs"]) == ["input_ids"]
    assert np.array_equal(decode_tensor(body["inputs"]["input_ids"]), ids)
    assert load_input_file(tmp_path / "input_ids.npy", "x")["inputs"].keys() == {"x"}

    img = np.random.default_rng(0).random((1, 3, 4, 4), dtype=np.float32)
    np.savez(tmp_path / "batch.npz", images=img, mask=np.ones((1, 4), dtype=bool))
    body = load_input_file(tmp_path / "batch.npz")
    assert body["inputs"]["images"]["dtype"] == "float32"
    assert np.array_equal(decode_tensor(body["inputs"]["images"]), img)
    assert schema_errors("mqtt-infer", {"v": 1, "id": "a", **body}) == []


@pytest.mark.parametrize("content, expected", [
    (["one", "two"], {"text": ["one", "two"]}),
    ({"text": "hello"}, {"text": "hello"}),
    ({"inputs": {"x": [[1.5, 2.0]]}}, {"inputs": {"x": {"dtype": "float32", "shape": [1, 2],
                                                        "data": [[1.5, 2.0]]}}}),
    ({"ids": [[1, 2, 3]]}, {"inputs": {"ids": {"dtype": "int64", "shape": [1, 3], "data": [[1, 2, 3]]}}}),
])
def test_json_inputs(tmp_path: Path, content: object, expected: dict) -> None:
    path = tmp_path / "in.json"
    path.write_text(json.dumps(content))
    body = load_input_file(path)
    assert body == expected
    assert schema_errors("mqtt-infer", {"v": 1, **body}) == []


@pytest.mark.parametrize("name, content, match", [
    ("in.txt", "x", "suffix"),
    ("in.json", "{not json", "JSON"),
    ("in.json", json.dumps({"x": [[1, 2], [3]]}), "rectangular"),
    ("in.json", json.dumps({"x": ["a", "b"]}), "numbers"),
    ("missing.npy", None, "does not exist"),
])
def test_bad_inputs(tmp_path: Path, name: str, content: str | None, match: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=match):
        load_input_file(path)


def test_describe_reply_shows_dims_and_a_preview() -> None:
    emb = np.random.default_rng(1).standard_normal((2, 384))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    reply = {"device_id": "pi-01", "target": "onnx-fp32", "batch_size": 2,
             "latency_ms": {"queue": 0.5, "inference": 9.25, "total": 9.75}, "embeddings": emb.tolist(),
             "outputs": {"logits": encode_array(np.array([[1.0, 2.0]], dtype=np.float32))}}
    text = "\n".join(describe_reply(reply, ["first sentence", "second"], round_trip_ms=12.5))
    assert "2 embedding(s) × 384 dims" in text
    assert "'first sentence'" in text and "norm 1.000" in text
    assert f"{emb[0, 0]:+.4f}" in text and "…" in text
    assert "inference 9.2" in text and "round trip 12.5 ms" in text
    assert "output logits: float32 [1, 2]" in text


@pytest.mark.parametrize("device, share", [("a/b", None), ("a+", None), ("#", None), ("all", "g/1"), ("all", "")])
def test_filters_refuse_wildcards_in_names(device: str, share: str | None) -> None:
    with pytest.raises(UsageError):
        filters(("status",), device, share)

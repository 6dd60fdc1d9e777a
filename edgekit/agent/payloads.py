"""Topics, versioned JSON payloads and their JSON Schemas (``edgekit/schemas/mqtt-*.schema.json``).

Incoming requests are validated in full. Outgoing payloads are validated too, with bulk arrays (embeddings,
tensor data) emptied first: the envelope is what can be wrong, and checking 384 floats per answer would cost
more than the inference of a small model.

Validators are compiled once per schema. The two shapes on the hot path (a text ``infer`` request; an ``ok``
text-embedding result) are first checked by hand against exactly what their schema allows: that check only
ever *accepts* (a payload it cannot vouch for goes through the full validator, which names the problem), and
costs about 2 us where jsonschema takes 25-50 us.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

from edgekit.manifest import load_schema

VERSION = 1
TOPIC_ROOT = "edgekit/v1"
LEAVES = ("status", "telemetry", "results", "infer", "cmd")


def topic(device_id: str, leaf: str) -> str:
    return f"{TOPIC_ROOT}/{device_id}/{leaf}"


@functools.cache
def _validator(kind: str) -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(load_schema(f"mqtt-{kind}"))


# What mqtt-infer.schema.json allows next to "text" (no "inputs"), and mqtt-result.schema.json's ok text result.
_TEXT_REQUEST_KEYS = frozenset({"v", "id", "reply_to", "text", "publish_result"})
_TEXT_RESULT_KEYS = frozenset({"v", "device_id", "seq", "ts", "historical", "id", "status", "target", "batch_size",
                               "latency_ms", "embeddings"})
_LATENCY_KEYS = frozenset({"queue", "inference", "total"})


def _is_number(x: Any) -> bool:
    return type(x) in (int, float)


def _plain_text_request(data: Any) -> bool:
    """True only when ``data`` is certainly a valid mqtt-infer text request (False means: validate in full)."""
    if type(data) is not dict or "text" not in data or not data.keys() <= _TEXT_REQUEST_KEYS:
        return False
    text = data["text"]
    if type(text) is not str and not (type(text) is list and text and all(type(t) is str for t in text)):
        return False
    if "v" in data and not (type(data["v"]) is int and data["v"] == 1):
        return False
    if "id" in data and not (type(data["id"]) is str and 1 <= len(data["id"]) <= 128):
        return False
    if "reply_to" in data and not (type(data["reply_to"]) is str and data["reply_to"]):
        return False
    return "publish_result" not in data or type(data["publish_result"]) is bool


def _plain_text_result(data: Any) -> bool:
    """True only when ``data`` is certainly a valid ok text-embedding mqtt-result (embeddings already emptied or
    not: their numbers are checked separately, by the encoder's allow_nan=False and the type of the rows)."""
    if type(data) is not dict or data.get("status") != "ok" or not data.keys() <= _TEXT_RESULT_KEYS:
        return False
    if not (type(data.get("v")) is int and data["v"] == 1 and type(data.get("device_id")) is str
            and data["device_id"] and type(data.get("seq")) is int and data["seq"] >= 0
            and _is_number(data.get("ts")) and type(data.get("id")) is str):
        return False
    if "historical" in data and type(data["historical"]) is not bool:
        return False
    if "target" in data and type(data["target"]) is not str:
        return False
    if "batch_size" in data and not (type(data["batch_size"]) is int and data["batch_size"] >= 1):
        return False
    if "latency_ms" in data:
        lat = data["latency_ms"]
        if type(lat) is not dict or not lat.keys() <= _LATENCY_KEYS or not all(map(_is_number, lat.values())):
            return False
    if "embeddings" in data:
        emb = data["embeddings"]
        if type(emb) is not list or not all(type(row) is list for row in emb):
            return False
    return True


_FAST = {"infer": _plain_text_request, "result": _plain_text_result}


def errors(kind: str, data: Any, limit: int = 3) -> list[str]:
    """How ``data`` breaks the ``mqtt-<kind>`` schema, as ``at <path>: <message>`` lines (empty when valid)."""
    fast = _FAST.get(kind)
    if fast is not None and fast(data):
        return []
    out = []
    for err in _validator(kind).iter_errors(data):
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        message = err.message if len(err.message) < 200 else err.message[:200] + "..."
        out.append(f"at {where}: {message}")
        if len(out) >= limit:
            break
    return out


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    if "outputs" not in data and "embeddings" not in data:
        return data
    slim = dict(data)
    if "embeddings" in slim:
        slim["embeddings"] = []
    if isinstance(slim.get("outputs"), dict):
        slim["outputs"] = {k: ({**v, "data": []} if "data" in v else v) for k, v in slim["outputs"].items()}
    return slim


def encode(kind: str, data: dict[str, Any]) -> bytes:
    """Validate an outgoing payload's envelope against its schema and serialise it compactly."""
    problems = errors(kind, _envelope(data))
    if problems:
        raise ValueError(f"outgoing {kind} payload breaks mqtt-{kind}.schema.json: {problems[0]}")
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()


def header(device_id: str, seq: int) -> dict[str, Any]:
    return {"v": VERSION, "device_id": device_id, "seq": seq, "ts": round(time.time(), 3)}


def mark_historical(payload: bytes) -> bytes:
    """The same JSON object with ``"historical": true`` added (payloads are stored without it)."""
    if payload[:1] != b"{" or payload[:2] == b"{}":
        return payload
    return b'{"historical":true,' + payload[1:]

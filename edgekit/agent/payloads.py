"""Topics, versioned JSON payloads and their JSON Schemas (``edgekit/schemas/mqtt-*.schema.json``).

Incoming requests are validated in full. Outgoing payloads are validated too, with bulk arrays (embeddings,
tensor data) emptied first: the envelope is what can be wrong, and checking 384 floats per answer would cost
more than the inference of a small model.
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


def errors(kind: str, data: Any, limit: int = 3) -> list[str]:
    """How ``data`` breaks the ``mqtt-<kind>`` schema, as ``at <path>: <message>`` lines (empty when valid)."""
    out = []
    for err in _validator(kind).iter_errors(data):
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        message = err.message if len(err.message) < 200 else err.message[:200] + "..."
        out.append(f"at {where}: {message}")
        if len(out) >= limit:
            break
    return out


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
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

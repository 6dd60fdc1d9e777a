"""Intake: reply addressing (v5 response topic + correlation, v3.1.1 reply_to + id), shedding under memory
pressure, and errors for messages that cannot even be parsed — checked on what lands in a real spool."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgekit.agent.batching import Batcher
from edgekit.agent.intake import Intake
from edgekit.agent.spool import Spool
from edgekit.agent.tasks import TensorTask
from edgekit.agent.telemetry import Stats
from edgekit.runtimes.base import IOSpec

pytestmark = pytest.mark.unit


class Double:
    runtime = "numpy"
    precision = "f32"
    inputs = [IOSpec("x", "float32", ("batch", 2))]
    outputs = [IOSpec("y", "float32", ("batch", 2))]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": feeds["x"] * 2}

    def close(self) -> None: ...


def make(tmp_path: Path, pressure: bool = False) -> tuple[Intake, Spool, Stats, Batcher]:
    spool = Spool(tmp_path / "s.sqlite")
    stats = Stats()
    task = TensorTask(Double.inputs, Double.outputs)
    holder: dict = {}
    batcher = Batcher(Double(), lambda job: holder["intake"].answer(job), max_batch=4, max_wait_ms=0)
    intake = Intake("dev", "onnx-fp32", batcher, spool, lambda: None, stats, task, None, 1000,
                    overloaded=lambda: pressure, command=lambda body: {"pong": True})
    holder["intake"] = intake
    return intake, spool, stats, batcher


def msg(topic: str, body: object, response: str | None = None, corr: bytes | None = None) -> SimpleNamespace:
    props = SimpleNamespace(ResponseTopic=response, CorrelationData=corr) if response else None
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return SimpleNamespace(topic=topic, payload=payload, properties=props)


def rows(spool: Spool) -> list[tuple[str, str, dict, bytes | None]]:
    return [(r.kind, r.topic, json.loads(r.payload), r.correlation) for r in spool.after(0, 100)]


def test_v5_and_v311_addressing(tmp_path: Path) -> None:
    intake, spool, stats, batcher = make(tmp_path)
    batcher.start()
    try:
        intake.handle(msg("edgekit/v1/dev/infer", {"inputs": {"x": {"data": [[1, 2]]}}}, "me/reply", b"c-1"), 0.0)
        intake.handle(msg("edgekit/v1/dev/infer", {"inputs": {"x": {"data": [[3, 4]]}}, "reply_to": "old/reply",
                          "id": "r-2", "publish_result": False}), 0.0)
        batcher.stop()
    finally:
        batcher.stop()
    got = rows(spool)
    assert [(k, t) for k, t, _, _ in got] == [("result", "edgekit/v1/dev/results"), ("reply", "me/reply"),
                                              ("reply", "old/reply")]
    assert got[0][2] == got[1][2] and got[1][3] == b"c-1" and got[1][2]["id"] == "c-1"
    assert got[2][2]["id"] == "r-2" and got[2][2]["outputs"]["y"]["data"] == [[6.0, 8.0]]


def test_shedding_and_unparseable_messages(tmp_path: Path) -> None:
    intake, spool, stats, _ = make(tmp_path, pressure=True)
    intake.handle(msg("edgekit/v1/dev/infer", {"inputs": {"x": {"data": [[1, 2]]}}}, "me/reply", b"c-1"), 0.0)
    intake.handle(msg("edgekit/v1/dev/infer", b"\x00" * 2000, "me/reply", b"c-2"), 0.0)
    intake.handle(msg("edgekit/v1/dev/infer", b"[1, 2"), 0.0)  # v3.1.1 garbage: no address, error on results
    intake.handle(msg("edgekit/v1/dev/cmd", {"command": "ping"}, "me/reply", b"c-4"), 0.0)
    got = rows(spool)
    errors = [(t, body["error"]["code"]) for _, t, body, _ in got if body["status"] == "error"]
    assert ("me/reply", "overloaded") in errors and ("me/reply", "too-large") in errors
    assert ("edgekit/v1/dev/results", "bad-request") in errors
    pong = [body for _, t, body, corr in got if corr == b"c-4"]
    assert pong[0]["data"] == {"pong": True}
    assert not [t for _, t, body, _ in got if body.get("data") and t.endswith("/results")]  # cmd replies stay private
    window = stats.take()
    assert window.rejects == 2 and window.errors == 1

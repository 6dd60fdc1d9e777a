"""Tasks: tensor decoding (JSON arrays, base64 .npy), shape checks, text embedding with the bundle's tokenizer.

The runner here is the toy BERT of the test bundles computed with numpy (the ONNX path is exercised end to end
by the integration tests); the tokenizer is a real ``tokenizers`` WordPiece built offline.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest

from edgekit.agent.memory import WorkCost
from edgekit.agent.tasks import RequestError, TensorTask, TextEmbeddingTask
from edgekit.runtimes.base import IOSpec
from tests.reliability.agent_harness import build_tokenizer, npy_b64, text_reference, text_weights

pytestmark = pytest.mark.unit

IDS = ("input_ids", "attention_mask", "token_type_ids")


class ToyBert:
    runtime = "numpy"
    precision = "f32"
    inputs = [IOSpec(n, "int64", ("batch", "sequence")) for n in IDS]
    outputs = [IOSpec("last_hidden_state", "float32", ("batch", "sequence", 8))]

    def __init__(self) -> None:
        self.calls: list[tuple[int, ...]] = []

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        emb, typ, w = text_weights()
        self.calls.append(feeds["input_ids"].shape)
        h = np.tanh((emb[feeds["input_ids"]] + typ[feeds["token_type_ids"]]) @ w)
        return {"last_hidden_state": h * feeds["attention_mask"][:, :, None]}

    def close(self) -> None: ...


class Linear:
    runtime = "numpy"
    precision = "f32"
    inputs = [IOSpec("x", "float32", ("batch", 4))]
    outputs = [IOSpec("y", "float32", ("batch", 2))]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": feeds["x"][:, :2] * 2}

    def close(self) -> None: ...


@pytest.fixture
def text(tmp_path: Path) -> TextEmbeddingTask:
    tok = build_tokenizer(tmp_path / "tokenizer.json", max_length=16)
    return TextEmbeddingTask(tok, ToyBert.inputs, ToyBert.outputs)


def test_text_embedding_matches_reference_pooling_and_normalisation(text: TextEmbeddingTask, tmp_path: Path) -> None:
    sentences = ["hello world", "the cat sat on the mat and the dog sat", "good morning"]
    runner = ToyBert()
    work = text.decode({"text": sentences})
    assert work.rows == 3
    text.run(runner, [work], max_rows=8, budget_mb=None)
    got = np.array(work.result["embeddings"])
    want = text_reference(sentences, tmp_path / "tokenizer.json")
    assert np.abs(got - want).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # the bundle's fixed padding (16) is dropped: the batch is padded only to its longest sentence
    assert runner.calls[0][1] < 16


def test_text_batches_split_by_rows_and_memory_budget(text: TextEmbeddingTask, tmp_path: Path) -> None:
    runner = ToyBert()
    works = [text.decode({"text": ["hello world"] * 3}), text.decode({"text": "good morning"})]
    text.run(runner, works, max_rows=2, budget_mb=None)
    assert [c[0] for c in runner.calls] == [2, 2]
    runner.calls.clear()
    text.cost = WorkCost(a_kb=1024.0, b_kb=0.0)  # 1 MB per token: a budget of 9 MB fits two 4-token rows
    text.run(runner, works, max_rows=8, budget_mb=9.0)
    assert all(rows * length <= 9 for rows, length in runner.calls)
    ref = text_reference(["hello world"], tmp_path / "tokenizer.json")[0]
    assert np.abs(np.array(works[0].result["embeddings"][2]) - ref).max() < 1e-5


def test_text_limits(text: TextEmbeddingTask) -> None:
    with pytest.raises(RequestError) as err:
        text.decode({"text": ["a"] * 65})
    assert err.value.code == "too-large"
    with pytest.raises(RequestError) as err:
        text.decode({"text": "x" * 20_001})
    assert err.value.code == "too-large"
    long = text.decode({"text": "the cat " * 100})
    assert len(long.items[0][0]) == 16  # truncated to the tokenizer's limit


def test_tensor_json_and_npy_round_trip_and_batching() -> None:
    task = TensorTask(Linear.inputs, Linear.outputs)
    a = task.decode({"inputs": {"x": {"data": [[1, 2, 3, 4]]}}})
    b = task.decode({"inputs": {"x": {"npy_b64": npy_b64(np.ones((2, 4), dtype=np.float32))}}})
    assert a.key == b.key and a.rows == 1 and b.rows == 2
    task.run(Linear(), [a, b], max_rows=8, budget_mb=None)
    assert a.result["outputs"]["y"] == {"dtype": "float32", "shape": [1, 2], "data": [[2.0, 4.0]]}
    out = b.result["outputs"]["y"]
    arr = np.load(io.BytesIO(base64.b64decode(out["npy_b64"])))
    assert arr.shape == (2, 2) and np.all(arr == 2.0)


@pytest.mark.parametrize("inputs, code, fragment", [
    ({"x": {"data": [[1, 2, 3]]}}, "wrong-shape", "axis 1 must be 4"),
    ({"x": {"data": [1, 2, 3, 4]}}, "wrong-shape", "rank 2"),
    ({"x": {"data": [[1, 2], [3, 4, 5, 6]]}}, "bad-request", "cannot be read"),
    ({"y": {"data": [[1, 2, 3, 4]]}}, "wrong-shape", "missing ['x'], unknown ['y']"),
    ({"x": {"data": [[1, 2, 3, 4]], "shape": [2, 4]}}, "wrong-shape", "does not hold"),
    ({"x": {"npy_b64": "!!!"}}, "bad-request", "cannot be read"),
    ({"x": {"data": [["a", "b", "c", "d"]]}}, "bad-request", "cannot be read"),
])
def test_tensor_errors_name_the_problem(inputs: dict, code: str, fragment: str) -> None:
    task = TensorTask(Linear.inputs, Linear.outputs)
    with pytest.raises(RequestError) as err:
        task.decode({"inputs": inputs})
    assert err.value.code == code
    assert fragment in err.value.message


def test_fixed_batch_models_never_share_a_batch() -> None:
    spec = [IOSpec("x", "float32", (1, 4))]
    task = TensorTask(spec, Linear.outputs)
    a = task.decode({"inputs": {"x": {"data": [[1, 2, 3, 4]]}}})
    b = task.decode({"inputs": {"x": {"data": [[1, 2, 3, 4]]}}})
    assert a.key != b.key

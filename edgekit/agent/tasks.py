"""What a request asks for, turned into model feeds and back: raw tensors, and text embedding.

A task ``decode``s one validated request into :class:`Work` (rows that can share a batch when their ``key`` is
equal), and ``run``s the works of one batch: it splits them into runs that fit the memory budget, pads text to
the longest sentence of each run, and hands every work its own outputs back.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.runtimes.base import IOSpec, Runner

MAX_TEXTS = 64
MAX_TEXT_CHARS = 20_000
DEFAULT_MAX_TOKENS = 512
# Embeddings are rounded to 7 decimals in JSON: below float32 resolution for unit-norm vectors, ~40 % fewer bytes.
EMBEDDING_DECIMALS = 7


class RequestError(Exception):
    """A request the agent answers with an error reply; ``code`` is one of the result schema's error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Work:
    """One request's decoded inputs. ``rows`` is how many batch rows it adds; equal ``key``s can share a batch."""

    task: Task
    key: Hashable
    rows: int
    items: list[Any]
    npy_out: bool = False
    result: dict[str, Any] = field(default_factory=dict)


# (rows, padded length) -> MB of working memory a run needs; from the memory calibration.
CostFn = Callable[[int, int], float]


class Task:
    name = "task"

    def decode(self, request: dict[str, Any]) -> Work:
        raise NotImplementedError

    def run(self, runner: Runner, works: Sequence[Work], max_rows: int, budget_mb: float | None) -> None:
        raise NotImplementedError


def _is_dynamic(dim: int | str | None) -> bool:
    return not isinstance(dim, int) or dim <= 0


class TensorTask(Task):
    """``{"inputs": {"x": {"data": [[...]]}}}`` or ``{"npy_b64": ...}``; answered in the same encoding."""

    name = "tensor"

    def __init__(self, inputs: Sequence[IOSpec], outputs: Sequence[IOSpec]) -> None:
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        # Requests concatenate along the first axis only when every input's first axis is dynamic.
        self.batchable = all(spec.shape and _is_dynamic(spec.shape[0]) for spec in self.inputs)

    def decode(self, request: dict[str, Any]) -> Work:
        given = request.get("inputs")
        if not isinstance(given, dict):
            raise RequestError("bad-request", "this request has no 'inputs' tensors")
        expected = {s.name for s in self.inputs}
        unknown = sorted(set(given) - expected)
        missing = sorted(expected - set(given))
        if unknown or missing:
            raise RequestError("wrong-shape", f"the model's inputs are {sorted(expected)}; "
                               f"missing {missing or 'none'}, unknown {unknown or 'none'}")
        feeds: dict[str, np.ndarray] = {}
        npy = False
        for spec in self.inputs:
            arr, was_npy = decode_tensor(spec, given[spec.name])
            npy = npy or was_npy
            feeds[spec.name] = arr
        rows = {a.shape[0] for a in feeds.values()} if self.batchable else {1}
        if len(rows) != 1:
            raise RequestError("wrong-shape", f"inputs disagree on the batch size: {sorted(rows)}")
        if self.batchable:
            key: Hashable = tuple((n, a.shape[1:], a.dtype.str) for n, a in sorted(feeds.items()))
        else:
            key = object()  # never shares a batch
        return Work(self, key, rows.pop(), [feeds], npy_out=npy)

    def run(self, runner: Runner, works: Sequence[Work], max_rows: int, budget_mb: float | None) -> None:
        if len(works) == 1:
            self._finish(works, runner.run(works[0].items[0]))
            return
        feeds = {s.name: np.concatenate([w.items[0][s.name] for w in works]) for s in self.inputs}
        self._finish(works, runner.run(feeds))

    def _finish(self, works: Sequence[Work], out: dict[str, np.ndarray]) -> None:
        total = sum(w.rows for w in works)
        start = 0
        for w in works:
            mine = {}
            for name, arr in out.items():
                if len(works) > 1 and (arr.ndim == 0 or arr.shape[0] != total):
                    raise RequestError("internal", f"output {name!r} has no batch axis; cannot split a batch")
                mine[name] = arr[start:start + w.rows] if len(works) > 1 else arr
            start += w.rows
            w.result = {"outputs": {n: encode_tensor(a, w.npy_out) for n, a in mine.items()}}


def decode_tensor(spec: IOSpec, value: Any) -> tuple[np.ndarray, bool]:
    """One request tensor as an array of the model's dtype, checked against the model's shape."""
    npy = "npy_b64" in value
    try:
        if npy:
            arr = np.load(io.BytesIO(base64.b64decode(value["npy_b64"], validate=True)), allow_pickle=False)
        else:
            arr = np.asarray(value["data"], dtype=value.get("dtype") or spec.dtype)
    except (ValueError, TypeError, binascii.Error, OSError) as err:
        raise RequestError("bad-request", f"input {spec.name!r} cannot be read as a tensor: {err}") from err
    if arr.dtype == object:
        raise RequestError("wrong-shape", f"input {spec.name!r} is ragged or not numeric")
    if "shape" in value and not npy:
        shape = tuple(value["shape"])
        if int(np.prod(shape)) != arr.size:
            raise RequestError("wrong-shape", f"input {spec.name!r}: shape {list(shape)} does not hold "
                               f"{arr.size} values")
        arr = arr.reshape(shape)
    if spec.shape and arr.ndim != len(spec.shape):
        raise RequestError("wrong-shape", f"input {spec.name!r} has shape {list(arr.shape)}; the model expects "
                           f"rank {len(spec.shape)} {list(spec.shape)}")
    for axis, (want, got) in enumerate(zip(spec.shape, arr.shape, strict=False)):
        if not _is_dynamic(want) and want != got:
            raise RequestError("wrong-shape", f"input {spec.name!r} has shape {list(arr.shape)}; the model expects "
                               f"{list(spec.shape)} (axis {axis} must be {want})")
    target = np.dtype(spec.dtype) if spec.dtype in np.sctypeDict else arr.dtype
    if arr.dtype != target:
        if not np.can_cast(arr.dtype, target, casting="same_kind") and not (
                arr.dtype.kind in "iub" and target.kind in "iuf"):
            raise RequestError("wrong-shape", f"input {spec.name!r} is {arr.dtype}; the model expects {target}")
        arr = arr.astype(target)
    return arr, npy


def encode_tensor(arr: np.ndarray, npy: bool) -> dict[str, Any]:
    if npy:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
        return {"dtype": arr.dtype.name, "shape": list(arr.shape), "npy_b64": base64.b64encode(buf.getvalue()).decode()}
    return {"dtype": arr.dtype.name, "shape": list(arr.shape), "data": arr.tolist()}


class TextEmbeddingTask(Task):
    """``{"text": "..."}`` or a list: the bundle's tokenizer, mean pooling over the attention mask, L2 normalisation.

    A model that already outputs a pooled ``sentence_embedding`` is used as is; normalisation is idempotent, so a
    model that already normalises is unchanged, and ``manifest.extra.normalize = false`` turns it off.
    """

    name = "text"

    def __init__(self, tokenizer_path: Path, inputs: Sequence[IOSpec], outputs: Sequence[IOSpec],
                 normalize: bool = True, cost: CostFn | None = None) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()  # bundles often pin padding to a fixed length; pad per batch instead
        self.inputs = {s.name: s for s in inputs}
        if "input_ids" not in self.inputs:
            raise ValueError(f"a text model needs an 'input_ids' input; it has {sorted(self.inputs)}")
        ids_shape = self.inputs["input_ids"].shape
        seq_dim = ids_shape[1] if len(ids_shape) > 1 else None
        self.fixed_len: int | None = seq_dim if isinstance(seq_dim, int) and seq_dim > 0 else None
        trunc = self.tokenizer.truncation
        self.max_len = int(self.fixed_len or (trunc or {}).get("max_length") or DEFAULT_MAX_TOKENS)
        self.tokenizer.enable_truncation(self.max_len)
        self.output = _embedding_output(outputs)
        self.normalize = normalize
        self.pad_id = self._pad_id()
        self.cost = cost

    def _pad_id(self) -> int:
        for token in ("[PAD]", "<pad>"):
            tid = self.tokenizer.token_to_id(token)
            if tid is not None:
                return int(tid)
        return 0

    def decode(self, request: dict[str, Any]) -> Work:
        text = request.get("text")
        texts = [text] if isinstance(text, str) else list(text or [])
        if not texts:
            raise RequestError("bad-request", "'text' is empty")
        if len(texts) > MAX_TEXTS:
            raise RequestError("too-large", f"{len(texts)} sentences in one request; at most {MAX_TEXTS}")
        longest = max(len(t) for t in texts)
        if longest > MAX_TEXT_CHARS:
            raise RequestError("too-large", f"a sentence of {longest} characters; at most {MAX_TEXT_CHARS}")
        encodings = self.tokenizer.encode_batch(texts)
        items = [(np.asarray(e.ids, dtype=np.int64), np.asarray(e.type_ids, dtype=np.int64)) for e in encodings]
        return Work(self, "text", len(items), items)

    def run(self, runner: Runner, works: Sequence[Work], max_rows: int, budget_mb: float | None) -> None:
        flat = [(wi, ii, item) for wi, w in enumerate(works) for ii, item in enumerate(w.items)]
        flat.sort(key=lambda x: len(x[2][0]))  # similar lengths together: less padding
        vectors: list[list[np.ndarray | None]] = [[None] * len(w.items) for w in works]
        for chunk in self._chunks(flat, max_rows, budget_mb):
            emb = self._embed(runner, [item for _, _, item in chunk])
            for (wi, ii, _), vec in zip(chunk, emb, strict=True):
                vectors[wi][ii] = vec
        for w, vecs in zip(works, vectors, strict=True):
            stacked = np.stack([v for v in vecs if v is not None])
            w.result = {"embeddings": np.round(stacked.astype(np.float64), EMBEDDING_DECIMALS).tolist()}

    def _chunks(self, flat: list[Any], max_rows: int, budget_mb: float | None) -> list[list[Any]]:
        chunks: list[list[Any]] = []
        current: list[Any] = []
        for entry in flat:
            length = self.fixed_len or len(entry[2][0])
            rows = len(current) + 1
            over_budget = budget_mb is not None and self.cost is not None and self.cost(rows, length) > budget_mb
            if current and (rows > max_rows or over_budget):
                chunks.append(current)
                current = []
            current.append(entry)
        if current:
            chunks.append(current)
        return chunks

    def _embed(self, runner: Runner, items: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        length = self.fixed_len or max(len(ids) for ids, _ in items)
        ids = np.full((len(items), length), self.pad_id, dtype=np.int64)
        types = np.zeros((len(items), length), dtype=np.int64)
        mask = np.zeros((len(items), length), dtype=np.int64)
        for row, (tok, typ) in enumerate(items):
            ids[row, :len(tok)] = tok
            types[row, :len(typ)] = typ
            mask[row, :len(tok)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        out = runner.run({k: v for k, v in feeds.items() if k in self.inputs})[self.output]
        if out.ndim == 3:
            weights = mask[:, :, None].astype(out.dtype)
            out = (out * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        out = out.astype(np.float32)
        if self.normalize:
            out = out / np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return out


def _embedding_output(outputs: Sequence[IOSpec]) -> str:
    """A pooled sentence embedding when the model has one, else the token states to mean-pool."""
    for spec in outputs:
        if "sentence_embedding" in spec.name or spec.name in ("embeddings", "sentence_embeddings"):
            return spec.name
    for spec in outputs:
        if len(spec.shape) == 3:
            return spec.name
    return outputs[0].name

"""Tiny models (fixed seed) and a minimal convert context for the TFLite / Core ML target tests.

Stands in for the orchestrator: the reference is ONNX Runtime on the FP32 graph, and ``check_parity`` is cosine
similarity per row (threshold 0.99), like the gate the pipeline applies.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converters.base import ConvertContext, SourceModel
from edgekit.manifest import Parity, TensorSpec
from edgekit.profiles import load_profile

MODELS = ("mlp", "cnn", "encoder")
COSINE_MIN = 0.99


def _torch_modules() -> dict[str, Any]:
    import torch

    torch.manual_seed(0)

    class Mlp(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.l2 = torch.nn.Linear(16, 32), torch.nn.Linear(32, 4)

        def forward(self, x: Any) -> Any:
            return self.l2(torch.relu(self.l1(x)))

    class Cnn(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(8)
            self.fc = torch.nn.Linear(8, 5)

        def forward(self, images: Any) -> Any:
            y = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(images))), 2)
            return self.fc(y.mean((2, 3)))

    class Encoder(torch.nn.Module):
        """2-layer BERT-style encoder: embeddings, masked multi-head attention, GELU FFN, mean pooling."""

        def __init__(self, vocab: int = 100, hidden: int = 32, heads: int = 4, layers: int = 2) -> None:
            super().__init__()
            self.heads = heads
            self.tok, self.pos = torch.nn.Embedding(vocab, hidden), torch.nn.Embedding(64, hidden)
            self.qkv = torch.nn.ModuleList([torch.nn.Linear(hidden, 3 * hidden) for _ in range(layers)])
            self.out = torch.nn.ModuleList([torch.nn.Linear(hidden, hidden) for _ in range(layers)])
            self.ff1 = torch.nn.ModuleList([torch.nn.Linear(hidden, 2 * hidden) for _ in range(layers)])
            self.ff2 = torch.nn.ModuleList([torch.nn.Linear(2 * hidden, hidden) for _ in range(layers)])
            self.ln1 = torch.nn.ModuleList([torch.nn.LayerNorm(hidden) for _ in range(layers)])
            self.ln2 = torch.nn.ModuleList([torch.nn.LayerNorm(hidden) for _ in range(layers)])

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            b, s = input_ids.shape
            x = self.tok(input_ids) + self.pos(torch.arange(s).unsqueeze(0))
            mask = attention_mask.to(x.dtype)
            additive = (1.0 - mask)[:, None, None, :] * -1e4
            h = x.shape[-1] // self.heads
            for qkv, out, ff1, ff2, ln1, ln2 in zip(self.qkv, self.out, self.ff1, self.ff2, self.ln1, self.ln2,
                                                    strict=True):
                q, k, v = qkv(x).reshape(b, s, 3, self.heads, h).permute(2, 0, 3, 1, 4)
                att = torch.softmax(q @ k.transpose(-1, -2) / h**0.5 + additive, dim=-1)
                x = ln1(x + out((att @ v).transpose(1, 2).reshape(b, s, -1)))
                x = ln2(x + ff2(torch.nn.functional.gelu(ff1(x))))
            w = mask.unsqueeze(-1)
            return (x * w).sum(1) / w.sum(1).clamp(min=1e-9)

    return {"mlp": Mlp().eval(), "cnn": Cnn().eval(), "encoder": Encoder().eval()}


IO = {
    "mlp": ((TensorSpec("x", "float32", ("batch", 16)),), (TensorSpec("logits", "float32", ("batch", 4)),)),
    "cnn": ((TensorSpec("images", "float32", ("batch", 3, 16, 16)),),
            (TensorSpec("logits", "float32", ("batch", 5)),)),
    "encoder": ((TensorSpec("input_ids", "int64", ("batch", "sequence")),
                 TensorSpec("attention_mask", "int64", ("batch", "sequence"))),
                (TensorSpec("sentence_embedding", "float32", ("batch", 32)),)),
}


def samples(name: str, seed: int = 1) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    if name == "mlp":
        return [{"x": rng.standard_normal((3, 16), dtype=np.float32)} for _ in range(2)]
    if name == "cnn":
        return [{"images": rng.standard_normal((2, 3, 16, 16), dtype=np.float32)} for _ in range(2)]
    out = []
    for length in (7, 20):
        ids = rng.integers(1, 100, (2, length)).astype(np.int64)
        mask = np.ones((2, length), dtype=np.int64)
        mask[1, length // 2:] = 0
        out.append({"input_ids": ids, "attention_mask": mask})
    return out


def export_onnx(name: str, path: Path) -> Path:
    import torch

    module = _torch_modules()[name]
    inputs, outputs = IO[name]
    args = tuple(torch.from_numpy(v[:1]) for v in samples(name)[0].values())
    dyn = {i.name: {a: str(d) for a, d in enumerate(i.shape) if isinstance(d, str)} for i in (*inputs, *outputs)}
    torch.onnx.export(module, args, str(path), input_names=[i.name for i in inputs],
                      output_names=[o.name for o in outputs], dynamic_axes=dyn, opset_version=17, dynamo=False)
    return path


def source(name: str, tmp: Path, *, torch_based: bool = False) -> SourceModel:
    """The tiny model as a SourceModel: ONNX-only (the ONNX-to-torch path), or with a torch factory."""
    onnx_path = export_onnx(name, tmp / f"{name}.onnx")
    inputs, outputs = IO[name]
    factory = (lambda: _torch_modules()[name]) if torch_based else None
    return SourceModel(name=name, source=str(onnx_path), onnx_path=onnx_path,
                       sha256=hashlib.sha256(onnx_path.read_bytes()).hexdigest(), task="tensor",
                       inputs=inputs, outputs=outputs, torch_factory=factory)


def cosine_parity(samples_: list[dict[str, np.ndarray]], reference: list[dict[str, np.ndarray]]) -> Any:
    def check(target: str, predict: Any) -> Parity:
        cos = []
        for feeds, ref in zip(samples_, reference, strict=True):
            got = predict(feeds)
            for k, r in ref.items():
                a = r.reshape(r.shape[0], -1).astype(np.float64)
                b = np.asarray(got[k]).reshape(a.shape).astype(np.float64)
                cos.extend((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12))
        return Parity(metric="cosine", mean=float(np.mean(cos)), min=float(np.min(cos)),
                      threshold={"min": COSINE_MIN}, samples=len(cos), passed=bool(np.min(cos) >= COSINE_MIN))
    return check


def context(src: SourceModel, tmp: Path, *, profile: str = "android", calibration: bool = False,
            options: dict[str, Any] | None = None) -> ConvertContext:
    import onnxruntime as ort

    s = samples(src.name)
    sess = ort.InferenceSession(str(src.onnx_path))
    names = [o.name for o in src.outputs]
    reference = [dict(zip(names, sess.run(names, f), strict=True)) for f in s]
    out, work = tmp / "out", tmp / "work"
    out.mkdir(exist_ok=True)
    work.mkdir(exist_ok=True)
    opts = {"sequence_buckets": [16, 32], "coreml_sequence": 32, **(options or {})}
    return ConvertContext(source=src, out_dir=out, work_dir=work, profile=load_profile(profile), samples=s,
                          reference=reference, calibration=samples(src.name, seed=7) if calibration else None,
                          options=opts, check_parity=cosine_parity(s, reference))


@pytest.fixture(scope="session")
def litert_toolchain() -> Any:
    """The isolated litert-torch toolchain, installed once per machine (idempotent; ~2 GB, 1-2 min when absent)."""
    from edgekit import toolchains

    tc = toolchains.get_toolchain("litert-torch")
    toolchains.install(tc)
    return tc

"""Export a BERT-family Hugging Face model to ONNX through a thin, converter-friendly wrapper.

The stock export builds its attention mask with code (``new_ones``, vmap-style indexing; ``Where``/``GatherND``/
``IsNaN`` in the graph) that onnx2tf and coremltools cannot convert. The wrapper calls the model's embeddings and
encoder directly with an explicit additive mask, eager attention, and (for sentence-transformers models) pooling and
L2 normalisation inside the graph, so every target converts the same ~230-node graph.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import SourceError

log = logging.getLogger(__name__)

# model_type -> why it is supported: these share BertEmbeddings-like embeddings and a BertLayer-like encoder that
# takes an additive 4-D mask with eager attention.
SUPPORTED_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "electra", "camembert")
OPSET = 18
MASK_FILL = -1e4  # additive mask value; large enough to zero softmax, small enough to stay finite in fp16


@dataclass(frozen=True)
class Pooling:
    """How a sentence-transformers model turns token states into one vector (``1_Pooling/config.json``)."""

    mode: str  # "mean" or "cls"
    normalize: bool


def read_pooling(model_dir: Path) -> Pooling | None:
    """The pooling of a sentence-transformers directory (modules.json), or None for a plain Hugging Face model."""
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        return None
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SourceError(f"{modules_file} is not valid JSON: {err}; fix or remove it") from err
    types = [str(m.get("type", "")) for m in modules]
    normalize = any(t.endswith("Normalize") for t in types)
    pool = next((m for m in modules if str(m.get("type", "")).endswith("Pooling")), None)
    if pool is None:
        return None
    cfg_file = model_dir / str(pool.get("path", "1_Pooling")) / "config.json"
    cfg = json.loads(cfg_file.read_text(encoding="utf-8")) if cfg_file.is_file() else {"pooling_mode_mean_tokens": True}
    if cfg.get("pooling_mode_mean_tokens"):
        mode = "mean"
    elif cfg.get("pooling_mode_cls_token"):
        mode = "cls"
    else:
        enabled = [k for k, v in cfg.items() if k.startswith("pooling_mode") and v]
        raise SourceError(f"{cfg_file}: pooling {enabled} is not supported; supported: mean tokens, CLS token")
    return Pooling(mode=mode, normalize=normalize)


def build_wrapper(model_dir: Path, pooling: Pooling | None) -> Any:
    """The traceable export wrapper (a torch ``nn.Module``) around the model in ``model_dir``.

    Inputs ``input_ids`` and ``attention_mask`` (int64, [batch, sequence]); output ``sentence_embedding``
    [batch, hidden] when ``pooling`` is given, else ``last_hidden_state`` [batch, sequence, hidden].
    """
    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise SourceError(
            f"{model_dir}: model_type {config.model_type!r} is not supported by the export wrapper; "
            f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}; export it to .onnx yourself and pass the file"
        )
    model = AutoModel.from_pretrained(model_dir, local_files_only=True, attn_implementation="eager",
                                      add_pooling_layer=False)
    model.eval()

    class BertExportWrapper(torch.nn.Module):
        """embeddings -> encoder (explicit additive mask) -> optional pooling + L2 norm."""

        def __init__(self) -> None:
            super().__init__()
            self.embeddings = model.embeddings
            self.encoder = model.encoder
            self.pooling = pooling

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))
            mask = attention_mask.to(hidden.dtype)
            additive = (1.0 - mask)[:, None, None, :] * MASK_FILL
            hidden = self.encoder(hidden, attention_mask=additive).last_hidden_state
            if self.pooling is None:
                return hidden
            if self.pooling.mode == "cls":
                pooled = hidden[:, 0]
            else:
                weights = mask.unsqueeze(-1)
                pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            if self.pooling.normalize:
                pooled = pooled / pooled.norm(p=2, dim=-1, keepdim=True).clamp(min=1e-12)
            return pooled

    return BertExportWrapper().eval()


def export_onnx(model_dir: Path, out_path: Path, *, dynamo: bool = True) -> dict[str, Any]:
    """Export ``model_dir`` to ``out_path`` with dynamic batch and sequence axes; returns metadata for the manifest."""
    import torch

    pooling = read_pooling(model_dir)
    wrapper = build_wrapper(model_dir, pooling)
    output_name = "sentence_embedding" if pooling else "last_hidden_state"
    ids = torch.tensor([[101, 7592, 2088, 2003, 1037, 3231, 102, 0]], dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 0]], dtype=torch.long)
    ids, mask = ids.repeat(2, 1), mask.repeat(2, 1)
    dyn = {0: "batch", 1: "sequence"}
    out_axes = {0: "batch"} if pooling else dyn
    # The dynamo exporter (needs onnxscript) gives the clean ~230-node graph; keep it in one file.
    extra: dict[str, Any] = {"external_data": False, "optimize": True, "verbose": False} if dynamo else {}
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (ids, mask),
            str(out_path),
            input_names=["input_ids", "attention_mask"],
            output_names=[output_name],
            dynamic_axes={"input_ids": dyn, "attention_mask": dyn, output_name: out_axes},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=dynamo,
            **extra,
        )
    config = wrapper.encoder.config if hasattr(wrapper.encoder, "config") else None
    meta: dict[str, Any] = {"family": "bert", "pooling": pooling.mode if pooling else None,
                            "normalize": bool(pooling and pooling.normalize), "output": output_name}
    if config is not None:
        meta.update(model_type=config.model_type, hidden_size=config.hidden_size,
                    num_heads=config.num_attention_heads, num_layers=config.num_hidden_layers,
                    max_position_embeddings=config.max_position_embeddings)
    return meta

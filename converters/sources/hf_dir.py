"""A Hugging Face model directory as a source: exported offline to ONNX through the BERT export wrapper."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from converters.base import SourceModel
from converters.sources import bert_export
from converters.sources.spec import apply_input_shapes, graph_specs
from converters.toolrun import one_line, tool_scope
from edgekit.checksums import sha256_file
from edgekit.errors import NotAvailableError, SourceError, missing_extra

log = logging.getLogger(__name__)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "sentencepiece.bpe.model", "merges.txt", "vocab.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def is_hf_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def model_digest(model_dir: Path) -> str:
    """SHA-256 over the config and weights (what determines the exported graph)."""
    import hashlib

    h = hashlib.sha256()
    for name in ("config.json", "modules.json", "1_Pooling/config.json", *WEIGHT_FILES):
        f = model_dir / name
        if f.is_file():
            h.update(f"{name}  {sha256_file(f)}\n".encode())
    return h.hexdigest()


def text_settings(model_dir: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Tokenization the agent and the parity samples use: max length and padding id."""
    max_len = int(meta.get("max_position_embeddings") or 512)
    st_cfg = model_dir / "sentence_bert_config.json"
    tok_cfg = model_dir / "tokenizer_config.json"
    if st_cfg.is_file():
        max_len = min(max_len, int(json.loads(st_cfg.read_text(encoding="utf-8")).get("max_seq_length", max_len)))
    elif tok_cfg.is_file():
        limit = json.loads(tok_cfg.read_text(encoding="utf-8")).get("model_max_length", max_len)
        if isinstance(limit, int):
            max_len = min(max_len, limit)
    return {"max_length": max_len, "pad_id": 0}


def ensure_tokenizer_json(model_dir: Path, work: Path) -> list[Path]:
    """The tokenizer files to ship; a ``tokenizer.json`` is made from the slow files if the directory has none."""
    files = [model_dir / n for n in TOKENIZER_FILES if (model_dir / n).is_file()]
    if (model_dir / "tokenizer.json").is_file():
        return files
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, use_fast=True)
        out = work / "tokenizer"
        tok.save_pretrained(out)
    except (OSError, ValueError) as err:
        raise SourceError(f"{model_dir} has no tokenizer.json and transformers cannot build one: {one_line(err)}; "
                          "save the tokenizer with save_pretrained() first") from err
    return [out / n for n in TOKENIZER_FILES if (out / n).is_file()]


def export_hf_dir(model_dir: Path, out_onnx: Path, work: Path) -> dict[str, Any]:
    """Export (in a scratch dir) and return the export metadata; every failure becomes a SourceError."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as err:
        raise missing_extra(str(err.name or "torch"), "convert") from err
    scratch = work / "export"
    try:
        with tool_scope(scratch):
            meta = bert_export.export_onnx(model_dir, scratch / "model.onnx")
        _single_file(scratch / "model.onnx", out_onnx)
    except (SourceError, NotAvailableError):
        raise
    except Exception as err:  # torch.onnx raises many types; the user needs the one line
        raise SourceError(f"exporting {model_dir} to ONNX failed: {one_line(err)}") from err
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return meta


def _single_file(src: Path, dst: Path) -> None:
    import onnx

    onnx.save_model(onnx.load(str(src)), str(dst))


def load_hf_source(model_dir: Path, work: Path, input_shapes: Mapping[str, tuple[int, ...]],
                   name: str | None = None, cached_onnx: Path | None = None,
                   cached_meta: Mapping[str, Any] | None = None) -> SourceModel:
    import onnx

    if not (any((model_dir / w).is_file() for w in WEIGHT_FILES)):
        raise SourceError(f"{model_dir} has a config.json but no weights ({' or '.join(WEIGHT_FILES)})")
    if cached_onnx is not None and cached_meta is not None:
        onnx_path, meta = cached_onnx, dict(cached_meta)
    else:
        onnx_path = work / "source.onnx"
        meta = export_hf_dir(model_dir, onnx_path, work)
    inputs, outputs = graph_specs(onnx.load(str(onnx_path), load_external_data=False))
    apply_input_shapes(inputs, input_shapes)
    meta["text"] = text_settings(model_dir, meta)
    pooling = bert_export.read_pooling(model_dir)
    return SourceModel(
        name=name or model_dir.name,
        source=str(model_dir),
        onnx_path=onnx_path,
        sha256=model_digest(model_dir),
        task="text-embedding" if meta.get("pooling") else "feature-extraction",
        inputs=inputs,
        outputs=outputs,
        fixed_shapes=dict(input_shapes),
        tokenizer_files=tuple(ensure_tokenizer_json(model_dir, work)),
        hf_dir=model_dir,
        torch_factory=lambda: bert_export.build_wrapper(model_dir, pooling),
        metadata=meta,
    )

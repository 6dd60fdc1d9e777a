"""Model sources: every way a model can come in, turned into one ``SourceModel`` (an FP32 ONNX graph + facts).

``load_source(text, work_dir, input_shapes)`` picks the kind from the text: ``builtin:<name>``, a Hugging Face
model directory (has config.json), or an ``.onnx`` file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from converters.base import SourceModel
from edgekit.errors import SourceError


def load_source(text: str, work: Path, input_shapes: Mapping[str, tuple[int, ...]] | None = None,
                task: str | None = None) -> SourceModel:
    shapes = dict(input_shapes or {})
    work.mkdir(parents=True, exist_ok=True)
    if text.startswith("builtin:"):
        from converters.sources.builtin import load_builtin_source

        return load_builtin_source(text, work, shapes)
    path = Path(os.path.expanduser(text))
    if path.is_dir():
        from converters.sources.hf_dir import is_hf_dir, load_hf_source

        if not is_hf_dir(path):
            raise SourceError(f"{path} is a directory without config.json; SOURCE must be an .onnx file, a Hugging "
                              "Face model directory, or builtin:all-minilm-l6-v2")
        return load_hf_source(path.resolve(), work, shapes)
    if not path.exists():
        raise SourceError(f"source {text!r} does not exist; SOURCE is an .onnx file, a Hugging Face model "
                          "directory, or builtin:all-minilm-l6-v2")
    from converters.sources.onnx_file import load_onnx_source

    return load_onnx_source(path.resolve(), work, shapes, task=task)

"""An ``.onnx`` file as a source, with or without external data, normalised into the work directory."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from converters.base import SourceModel
from converters.sources.spec import apply_input_shapes, detect_task, graph_specs
from converters.toolrun import one_line
from edgekit.checksums import sha256_file
from edgekit.errors import SourceError, missing_extra

log = logging.getLogger(__name__)
SINGLE_FILE_LIMIT = 1_800_000_000  # protobuf caps a single file at 2 GB; larger models keep external data


def external_data_files(model: Any, base: Path) -> list[Path]:
    """The external-data files an ONNX model (loaded without them) refers to."""
    from onnx.external_data_helper import _get_all_tensors

    files = []
    for tensor in _get_all_tensors(model):
        if tensor.data_location == 1:  # TensorProto.EXTERNAL
            location = next((e.value for e in tensor.external_data if e.key == "location"), None)
            if location and (base / location) not in files:
                files.append(base / location)
    return files


def read_onnx(path: Path) -> Any:
    """Parse an ONNX file (graph only), turning every way it can be broken into a one-line SourceError."""
    try:
        import onnx
    except ImportError as err:
        raise missing_extra("onnx", "convert") from err
    from google.protobuf.message import DecodeError

    if not path.is_file():
        raise SourceError(f"source {str(path)!r} does not exist or is not a file")
    size = path.stat().st_size
    if size == 0:
        raise SourceError(f"{path} is empty (0 bytes); re-export or re-download the model")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeWarning, ValueError, OSError) as err:
        raise SourceError(f"{path} is not a readable ONNX model (truncated or not ONNX: {one_line(err, 120)}); "
                          "re-export or re-download it") from err
    if not model.graph.node or not model.graph.output:
        raise SourceError(f"{path} parses but holds no ONNX graph ({size} bytes, no nodes or outputs); "
                          "it is truncated or not an ONNX model")
    return model


def load_onnx_source(path: Path, work: Path, input_shapes: Mapping[str, tuple[int, ...]], task: str | None = None,
                     name: str | None = None) -> SourceModel:
    import onnx

    model = read_onnx(path)
    data_files = external_data_files(model, path.parent)
    missing = [f for f in data_files if not f.is_file()]
    if missing:
        raise SourceError(f"{path} keeps its weights in external data {missing[0].name!r}, which is not next to it; "
                          f"copy {missing[0].name} into {path.parent}")
    try:
        onnx.checker.check_model(str(path))
    except (onnx.checker.ValidationError, Exception) as err:  # the checker raises several types
        raise SourceError(f"{path} is not a valid ONNX model: {one_line(err, 200)}") from err
    digest = sha256_file(path)
    if data_files:
        h = hashlib.sha256(digest.encode())
        for f in data_files:
            h.update(sha256_file(f).encode())
        digest = h.hexdigest()
    full = onnx.load(str(path), load_external_data=True)
    inputs, outputs = graph_specs(full)
    if not inputs:
        raise SourceError(f"{path} has no graph inputs (only initializers); nothing to convert")
    apply_input_shapes(inputs, input_shapes)
    dst = work / "source.onnx"
    if sum(f.stat().st_size for f in data_files) + path.stat().st_size > SINGLE_FILE_LIMIT:
        onnx.save_model(full, str(dst), save_as_external_data=True, location="source.onnx.data")
    else:
        onnx.save_model(full, str(dst))
    log.info("source %s: %d nodes, inputs %s", path, len(full.graph.node), [i.name for i in inputs])
    return SourceModel(
        name=name or path.stem,
        source=str(path),
        onnx_path=dst,
        sha256=digest,
        task=task or detect_task(inputs, outputs),
        inputs=inputs,
        outputs=outputs,
        fixed_shapes=dict(input_shapes),
        metadata={"external_data": bool(data_files), "opset": max((o.version for o in full.opset_import
                                                                    if o.domain in ("", "ai.onnx")), default=0)},
    )

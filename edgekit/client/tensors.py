"""Tensors in infer payloads: input files to request bodies, and replies to short human-readable lines.

A tensor travels as ``{"dtype", "shape", "npy_b64"}`` (base64 of an .npy file: exact dtype and shape) or as
``{"dtype", "shape", "data"}`` (nested JSON arrays). numpy is imported only here, when a tensor is handled.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

from edgekit.errors import UsageError

INPUT_SUFFIXES = (".npy", ".npz", ".json")


def encode_array(array: Any) -> dict[str, Any]:
    """A numpy array as an npy_b64 tensor (keeps dtype and shape exactly)."""
    import numpy as np

    arr = np.asarray(array)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return {"dtype": str(arr.dtype), "shape": list(arr.shape), "npy_b64": base64.b64encode(buf.getvalue()).decode()}


def decode_tensor(tensor: dict[str, Any]) -> Any:
    """A tensor dict (npy_b64 or data) as a numpy array."""
    import numpy as np

    if "npy_b64" in tensor:
        return np.load(io.BytesIO(base64.b64decode(tensor["npy_b64"])), allow_pickle=False)
    arr = np.asarray(tensor.get("data", []), dtype=tensor.get("dtype") or None)
    if "shape" in tensor:
        arr = arr.reshape(tensor["shape"])
    return arr


def _json_tensor(value: Any, where: str) -> dict[str, Any]:
    import numpy as np

    if isinstance(value, dict):
        if "data" in value or "npy_b64" in value:
            return value
        raise UsageError(f"{where}: a tensor object needs 'data' (nested arrays) or 'npy_b64'")
    try:
        arr = np.asarray(value)
    except ValueError as err:
        raise UsageError(f"{where}: not a rectangular array: {err}") from err
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float32)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64)
    elif arr.dtype.kind != "b":
        raise UsageError(f"{where}: holds {arr.dtype} values; tensors hold numbers or booleans")
    return {"dtype": str(arr.dtype), "shape": list(arr.shape), "data": arr.tolist()}


def load_input_file(path: Path, input_name: str | None = None) -> dict[str, Any]:
    """The request body (``{"text": [...]}`` or ``{"inputs": {...}}``) held in an .npy, .npz or .json file.

    .npy: one tensor named ``input_name`` (default: the file's stem, so ``input_ids.npy`` feeds ``input_ids``).
    .npz: one tensor per array, by name. .json: ``{"text": ...}``, ``{"inputs": {name: tensor}}``, a list of
    sentences, or ``{name: nested array, ...}``.
    """
    import numpy as np

    if not path.is_file():
        raise UsageError(f"input file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return {"inputs": {input_name or path.stem: encode_array(np.load(path, allow_pickle=False))}}
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                if not npz.files:
                    raise UsageError(f"{path} holds no arrays")
                return {"inputs": {name: encode_array(npz[name]) for name in npz.files}}
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {path} as {suffix}: {err}") from err
    if suffix != ".json":
        raise UsageError(f"input file {path} has suffix {suffix!r}; use one of {', '.join(INPUT_SUFFIXES)}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {path} as JSON: {err}") from err
    if isinstance(data, list) and data and all(isinstance(t, str) for t in data):
        return {"text": data}
    if not isinstance(data, dict) or not data:
        raise UsageError(f"{path}: expected an object ({{\"text\": ...}} or {{\"inputs\": ...}}) or a list of "
                         "sentences")
    if "text" in data:
        return {"text": data["text"]}
    inputs = data.get("inputs", data)
    if not isinstance(inputs, dict) or not inputs:
        raise UsageError(f"{path}: 'inputs' must be an object of named tensors")
    return {"inputs": {name: _json_tensor(v, f"{path}: input {name!r}") for name, v in inputs.items()}}


def _preview(values: Any, n: int = 5) -> str:
    import numpy as np

    flat = np.asarray(values).ravel()
    shown = ", ".join(f"{float(x):+.4f}" if flat.dtype.kind == "f" else str(x) for x in flat[:n])
    return f"[{shown}{', …' if flat.size > n else ''}]"


def describe_reply(reply: dict[str, Any], texts: list[str] | None = None,
                   round_trip_ms: float | None = None) -> list[str]:
    """A few lines that summarise an ``ok`` reply: timing, then each embedding or output tensor in short."""
    import numpy as np

    lat = reply.get("latency_ms") or {}
    timing = ", ".join(f"{k} {lat[k]:.1f}" for k in ("queue", "inference", "total")
                       if isinstance(lat.get(k), (int, float)))
    head = f"device {reply.get('device_id', '?')}"
    if reply.get("target"):
        head += f" · target {reply['target']}"
    if reply.get("batch_size"):
        head += f" · batch {reply['batch_size']}"
    if timing:
        head += f" · latency ms: {timing}"
    if round_trip_ms is not None:
        head += f" · round trip {round_trip_ms:.1f} ms"
    lines = [head]
    if reply.get("embeddings") is not None:
        emb = np.asarray(reply["embeddings"], dtype=np.float64)
        dims = emb.shape[1] if emb.ndim == 2 else 0
        lines.append(f"{len(emb)} embedding(s) × {dims} dims")
        for i, row in enumerate(emb):
            label = texts[i] if texts and i < len(texts) else f"#{i}"
            label = label if len(label) <= 40 else label[:39] + "…"
            lines.append(f"  {label!r:<44} norm {np.linalg.norm(row):.3f}  {_preview(row)}")
    for name, tensor in (reply.get("outputs") or {}).items():
        arr = decode_tensor(tensor)
        lines.append(f"  output {name}: {arr.dtype} {list(arr.shape)}  {_preview(arr)}")
    return lines

"""LiteRT (ai_edge_litert), falling back to tflite_runtime where that is what the device has.

Files from litert-torch carry a ``serving_default`` signature whose input/output names are the source model's;
the runner feeds and reads through it, so callers use the same names as for ONNX. Integer inputs are cast to the
file's dtype (litert-torch stores int64 ids as int32).

Text models ship as fixed-shape *buckets* (one file per sequence length): ``BucketedRunner`` picks the smallest
bucket that fits each row, pads the sequence inputs with zeros (the attention mask excludes padded tokens from
attention and pooling, so results are unchanged) and slices sequence-shaped outputs back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import NotAvailableError
from edgekit.runtimes.base import IOSpec, RuntimeOptions


def _interpreter_class() -> type:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
    return Interpreter  # type: ignore[no-any-return]


def litert_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("ai-edge-litert")
    except Exception:  # noqa: BLE001 - PackageNotFoundError or a broken install: report unknown
        return None


class LiteRtRunner:
    runtime = "litert"

    def __init__(self, path: Path, options: RuntimeOptions) -> None:
        # The Python Interpreter defaults to one thread: always set num_threads.
        self.interpreter = _interpreter_class()(model_path=str(path), num_threads=options.threads or 2)
        self.path = Path(path)
        signatures = self.interpreter.get_signature_list()
        self._runner = None
        if signatures:
            key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
            self._runner = self.interpreter.get_signature_runner(key)
            ins = self._runner.get_input_details()
            outs = self._runner.get_output_details()
            self._in = dict(ins)
            self.inputs = [_spec(name, d) for name, d in ins.items()]
            self.outputs = [_spec(name, d) for name, d in outs.items()]
        else:
            self.interpreter.allocate_tensors()
            self._in_list = self.interpreter.get_input_details()
            self._out_list = self.interpreter.get_output_details()
            self.inputs = [_spec(_clean(d["name"]), d) for d in self._in_list]
            self.outputs = [_spec(_clean(d["name"]), d) for d in self._out_list]
        self.precision = "f32"

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._runner is not None:
            cast = {name: _to_input(feeds[name], d) for name, d in self._in.items()}
            outs = self._runner.get_output_details()
            return {k: _from_output(np.array(v), outs[k]) for k, v in self._runner(**cast).items()}
        for detail, spec in zip(self._in_list, self.inputs, strict=True):
            self.interpreter.set_tensor(detail["index"], _to_input(feeds[spec.name], detail))
        self.interpreter.invoke()
        return {spec.name: _from_output(self.interpreter.get_tensor(d["index"]).copy(), d)
                for d, spec in zip(self._out_list, self.outputs, strict=True)}

    def quantization(self) -> dict[str, Any]:
        """Scale/zero-point of every quantized input and output (full-integer models), for the manifest."""
        details = (self._runner.get_input_details() | self._runner.get_output_details()) if self._runner else {
            _clean(d["name"]): d for d in [*self._in_list, *self._out_list]}
        out = {}
        for name, d in details.items():
            scale, zero = d.get("quantization", (0.0, 0))
            if scale:
                out[name] = {"dtype": np.dtype(d["dtype"]).name, "scale": float(scale), "zero_point": int(zero)}
        return out

    def close(self) -> None:
        self._runner = None
        del self.interpreter


def _to_input(x: np.ndarray, d: Mapping[str, Any]) -> np.ndarray:
    """Cast to the file's dtype; float data into a quantized (full-integer) input is quantized with its scale."""
    dtype = np.dtype(d["dtype"])
    scale, zero = d.get("quantization", (0.0, 0))
    if scale and dtype.kind in "iu" and np.asarray(x).dtype.kind == "f":
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)
    return np.ascontiguousarray(x, dtype=dtype)


def _from_output(y: np.ndarray, d: Mapping[str, Any]) -> np.ndarray:
    """Quantized outputs come back as float32, dequantized with their scale and zero point."""
    scale, zero = d.get("quantization", (0.0, 0))
    if scale and y.dtype.kind in "iu":
        return ((y.astype(np.float32) - zero) * scale).astype(np.float32)
    return y


def _spec(name: str, d: Mapping[str, Any]) -> IOSpec:
    return IOSpec(name, np.dtype(d["dtype"]).name, tuple(int(x) for x in d["shape"]))


def _clean(name: str) -> str:
    """Tensor names come as ``serving_default_input_ids:0``; keep the model's name."""
    name = name.split(":")[0]
    return name.removeprefix("serving_default_")


@dataclass(frozen=True)
class Bucket:
    path: Path
    batch: int
    sequence: int | None


class BucketedRunner:
    """One logical model over fixed-shape files: batches split into rows of the bucket batch, sequences padded."""

    runtime = "litert"

    def __init__(self, buckets: Sequence[Bucket], sequence_inputs: Mapping[str, int],
                 sequence_outputs: Mapping[str, int], options: RuntimeOptions | None = None) -> None:
        if not buckets:
            raise NotAvailableError("a bucketed LiteRT model needs at least one bucket file")
        self.buckets = sorted(buckets, key=lambda b: b.sequence or 0)
        self.sequence_inputs = dict(sequence_inputs)
        self.sequence_outputs = dict(sequence_outputs)
        self.options = options or RuntimeOptions()
        self._open: dict[Path, LiteRtRunner] = {}
        first = self._runner(self.buckets[-1])
        self.inputs, self.outputs, self.precision = first.inputs, first.outputs, first.precision

    def _runner(self, bucket: Bucket) -> LiteRtRunner:
        if bucket.path not in self._open:  # opened on first use: a device only pays for the lengths it sees
            self._open[bucket.path] = LiteRtRunner(bucket.path, self.options)
        return self._open[bucket.path]

    def pick(self, length: int | None) -> Bucket:
        if length is None:
            return self.buckets[0]
        for b in self.buckets:
            if b.sequence is not None and b.sequence >= length:
                return b
        longest = self.buckets[-1].sequence
        raise NotAvailableError(f"sequence length {length} exceeds the longest bucket ({longest}); truncate the "
                                f"input to {longest} tokens or convert with a longer sequence bucket")

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = next(iter(feeds.values())).shape[0] if feeds else 1
        step = self.buckets[0].batch or 1
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, rows, step):
            chunk = {k: v[start:start + step] for k, v in feeds.items()}
            n = next(iter(chunk.values())).shape[0]
            length = max((chunk[k].shape[ax] for k, ax in self.sequence_inputs.items() if k in chunk), default=None)
            bucket = self.pick(length)
            padded = {k: _pad(v, 0, step) for k, v in chunk.items()}  # a short last chunk fills the bucket batch
            if bucket.sequence is not None:
                padded = {k: _pad(v, self.sequence_inputs[k], bucket.sequence) if k in self.sequence_inputs else v
                          for k, v in padded.items()}
            out = self._runner(bucket).run(padded)
            trimmed = {}
            for k, v in out.items():
                v = v[:n]
                if length is not None and k in self.sequence_outputs:
                    v = np.take(v, np.arange(length), axis=self.sequence_outputs[k])
                trimmed[k] = v
            parts.append(trimmed)
        return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}

    def close(self) -> None:
        for r in self._open.values():
            r.close()
        self._open.clear()


def _pad(x: np.ndarray, axis: int, size: int) -> np.ndarray:
    if x.shape[axis] >= size:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, size - x.shape[axis])
    return np.pad(x, widths)


def open_artifact(root: Path, details: Mapping[str, Any], primary: Path,
                  options: RuntimeOptions | None = None) -> LiteRtRunner | BucketedRunner:
    """Open a ``tflite-*`` artifact as the manifest describes it (``details.buckets``), or its single file."""
    buckets = details.get("buckets") or []
    if not buckets:
        return LiteRtRunner(primary, options or RuntimeOptions())
    return BucketedRunner([Bucket(root / b["path"], int(b.get("batch", 1)), b.get("sequence")) for b in buckets],
                          details.get("sequence_inputs", {}), details.get("sequence_outputs", {}), options)


def open(path: Path, options: RuntimeOptions) -> LiteRtRunner:  # noqa: A001
    return LiteRtRunner(path, options)

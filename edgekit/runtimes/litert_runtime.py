"""LiteRT (ai_edge_litert), falling back to tflite_runtime where that is what the device has."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.runtimes.base import IOSpec, RuntimeOptions


def _interpreter_class() -> type:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
    return Interpreter  # type: ignore[no-any-return]


class LiteRtRunner:
    runtime = "litert"

    def __init__(self, path: Path, options: RuntimeOptions) -> None:
        # The Python Interpreter defaults to one thread: always set num_threads.
        self.interpreter = _interpreter_class()(model_path=str(path), num_threads=options.threads or 2)
        self.interpreter.allocate_tensors()
        self._in = self.interpreter.get_input_details()
        self._out = self.interpreter.get_output_details()
        self.inputs = [IOSpec(_clean(d["name"]), np.dtype(d["dtype"]).name, tuple(int(x) for x in d["shape"]))
                       for d in self._in]
        self.outputs = [IOSpec(_clean(d["name"]), np.dtype(d["dtype"]).name, tuple(int(x) for x in d["shape"]))
                        for d in self._out]
        self.precision = "f32"

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for detail, spec in zip(self._in, self.inputs, strict=True):
            self.interpreter.set_tensor(detail["index"], np.ascontiguousarray(feeds[spec.name], dtype=detail["dtype"]))
        self.interpreter.invoke()
        return {spec.name: self.interpreter.get_tensor(d["index"]).copy()
                for d, spec in zip(self._out, self.outputs, strict=True)}

    def close(self) -> None:
        del self.interpreter


def _clean(name: str) -> str:
    """Signature-runner names come as ``serving_default_input_ids:0``; keep the tensor name."""
    name = name.split(":")[0]
    return name.removeprefix("serving_default_")


def open(path: Path, options: RuntimeOptions) -> LiteRtRunner:  # noqa: A001
    return LiteRtRunner(path, options)

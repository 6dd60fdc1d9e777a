"""Inference runtimes behind one interface; one module per runtime, loaded on demand.

    runner = open_runner("onnxruntime", path, RuntimeOptions(threads=2))
    outputs = runner.run({"input_ids": ids, "attention_mask": mask})
"""

from edgekit.runtimes.base import RUNTIME_MODULES, Runner, RuntimeOptions, open_runner, runtime_available

__all__ = ["RUNTIME_MODULES", "Runner", "RuntimeOptions", "open_runner", "runtime_available"]

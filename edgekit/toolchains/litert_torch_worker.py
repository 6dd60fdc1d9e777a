"""Runs *inside* the isolated ``litert-torch`` toolchain venv (never imported by edgekit itself).

    <toolchain>/bin/python litert_torch_worker.py JOB.json

JOB.json: ``{"jobs": [{"program": "b16.pt2", "out": "b16.tflite", "quant": "none", "calibration": null}]}``.
Each job loads a ``torch.export`` program saved by edgekit (same torch version on both sides), converts it with
litert-torch and, when asked, quantizes the float flatbuffer with ai-edge-quantizer. One JSON line per job goes to
stdout (``{"out": ..., "seconds": ..., "error": ...}``); the process exits 0 even when a job fails, so the caller
sees every result. Standard library + torch + litert_torch + ai_edge_quantizer + numpy only.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

QUANT_MODES = ("none", "fp16", "dynamic_int8", "weight_int8", "static_int8", "static_int16")


def _recipe(mode: str):  # type: ignore[no-untyped-def]
    from ai_edge_quantizer import recipe

    if mode == "dynamic_int8":
        return recipe.dynamic_wi8_afp32()
    if mode == "weight_int8":
        return recipe.weight_only_wi8_afp32()
    if mode == "static_int8":
        return recipe.static_wi8_ai8()
    if mode == "static_int16":
        return recipe.static_wi8_ai16()
    if mode == "fp16":
        return [{
            "regex": ".*", "operation": "*", "algorithm_key": "float_casting",
            "op_config": {"weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
                          "compute_precision": "FLOAT", "explicit_dequantize": True, "skip_checks": False,
                          "min_weight_elements": 0},
        }]
    raise ValueError(f"unknown quantization mode {mode!r}; known: {', '.join(QUANT_MODES)}")


def _calibration(path: str) -> list[dict[str, object]]:
    import numpy as np

    data = np.load(path)
    samples: dict[int, dict[str, object]] = {}
    for key in data.files:  # "<sample index>/<input name>"
        index, name = key.split("/", 1)
        samples.setdefault(int(index), {})[name] = data[key]
    return [samples[i] for i in sorted(samples)]


def _quantize(float_path: str, out: str, mode: str, calibration: str | None) -> dict[str, object]:
    from ai_edge_quantizer import quantizer

    qt = quantizer.Quantizer(float_path)
    qt.load_quantization_recipe(_recipe(mode))
    result = None
    if qt.need_calibration:
        if not calibration:
            raise ValueError(f"quantization mode {mode} needs calibration data")
        result = qt.calibrate({"serving_default": _calibration(calibration)}, num_threads=2)
    qt.quantize(result, enable_progress_report=False).export_model(out, overwrite=True)
    return {}


def convert(job: dict[str, object]) -> dict[str, object]:
    import litert_torch
    import torch

    start = time.perf_counter()
    program = torch.export.load(str(job["program"]))
    args, kwargs = program.example_inputs
    module = program.module()
    model = litert_torch.convert(module, sample_args=tuple(args), sample_kwargs=dict(kwargs))
    mode = str(job.get("quant") or "none")
    out = str(job["out"])
    if mode == "none":
        model.export(out)
    else:
        float_path = out + ".float.tflite"
        model.export(float_path)
        _quantize(float_path, out, mode, job.get("calibration"))  # type: ignore[arg-type]
        os.remove(float_path)
    return {"out": out, "seconds": round(time.perf_counter() - start, 3)}


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as f:
        jobs = json.load(f)["jobs"]
    for job in jobs:
        try:
            result = convert(job)
        except Exception as err:  # noqa: BLE001 - every failure is reported to the caller, with its traceback
            result = {"out": job.get("out"), "error": f"{type(err).__name__}: {err}",
                      "traceback": traceback.format_exc(limit=8)}
        print("EDGEKIT-RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

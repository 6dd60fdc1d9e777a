"""all-MiniLM-L6-v2 through ``edgekit convert``: size, conversion time, parity and latency per target, one run.

    python benchmarks/convert_minilm.py [--only onnx-fp32,onnx-int8-arm64] [--threads 1,2]

Every row of ``VARIANTS`` is converted with the real pipeline (grouped by profile / options into one
``run_convert`` each), then all artifacts are timed *interleaved* (round-robin, so machine noise hits every row
alike) at batch 1 / seq 16, batch 1 / seq 128 and batch 32 / seq 128 on real tokens, opened exactly as
``edgekit verify`` opens them. Parity is the pipeline's gate figure (cosine vs the FP32 reference on the built-in
sentences). Results merge by target into benchmarks/results/convert-minilm.{json,md} (the mobile section written
by benchmarks/convert_mobile.py is kept). Add a TFLite / Core ML row by adding one ``Variant`` line.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.machine import RESULTS, machine_facts  # noqa: E402

MODEL = "builtin:all-minilm-l6-v2"
CALIBRATION = "benchmarks/data/calibration-sentences.txt"
SHAPES = ((1, 16), (1, 128), (32, 128))  # (batch, sequence)
ROUNDS = {1: 8, 32: 5}  # interleaved rounds per batch size
RUNS_PER_ROUND = {1: 10, 32: 2}
WARMUP = 3
LIBRARIES = ("onnx", "onnxruntime", "openvino", "nncf", "torch", "transformers", "ai-edge-litert", "coremltools")


@dataclass(frozen=True)
class Variant:
    """One benchmark row: a target converted under a profile with optional convert options."""

    id: str
    target: str
    profile: str = "intel-nuc"
    calibration: str | None = None
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    note: str = ""


VARIANTS = [
    Variant("onnx-fp32", "onnx-fp32"),
    Variant("onnx-fp16", "onnx-fp16"),
    Variant("onnx-int8-arm64", "onnx-int8-arm64", profile="raspberry-pi-4"),
    Variant("onnx-int8-arm64 (no recovery)", "onnx-int8-arm64", profile="raspberry-pi-4",
            thresholds={"onnx-int8-arm64": {"mean": 0.0, "min": -1.0}},
            note="reference only: gate disabled, so plain per-channel dynamic INT8 ships (what recovery costs)"),
    Variant("onnx-int8-x86", "onnx-int8-x86"),
    Variant("openvino-fp16", "openvino-fp16"),
    Variant("openvino-int8", "openvino-int8", note="default: NNCF weight compression"),
    Variant("openvino-int8 (PTQ)", "openvino-int8", calibration=CALIBRATION,
            note=f"--calibration {CALIBRATION} (100 sentences, disjoint from the parity set)"),
    Variant("openvino-int8 (PTQ, no recovery)", "openvino-int8", calibration=CALIBRATION,
            thresholds={"openvino-int8": {"mean": 0.0, "min": -1.0}},
            note="reference only: gate disabled, so full NNCF post-training quantization ships"),
]


def convert_all(variants: list[Variant], work: Path, threads: int) -> dict[str, dict[str, Any]]:
    """Convert every variant (one run_convert per profile/options group); id -> row, manifest entry, out dir."""
    from converters.pipeline import ConvertRequest, run_convert

    groups: dict[str, list[Variant]] = {}
    for v in variants:
        key = json.dumps([v.profile, v.calibration, v.thresholds], sort_keys=True)
        groups.setdefault(key, []).append(v)
    out: dict[str, dict[str, Any]] = {}
    for i, members in enumerate(groups.values()):
        first = members[0]
        targets = list(dict.fromkeys(v.target for v in members))
        print(f"converting {', '.join(targets)} ({first.profile}) ...", flush=True)
        result = run_convert(ConvertRequest(
            MODEL, first.profile, targets=targets, out_dir=work / f"group{i}",
            calibration=REPO / first.calibration if first.calibration else None, thresholds=first.thresholds,
            threads=threads))
        for v in members:
            row = next(r for r in result.report.rows if r.target == v.target)
            artifact = next((a for a in result.manifest.artifacts if a.target == v.target), None)
            out[v.id] = {"variant": v, "row": row, "artifact": artifact, "root": result.out_dir}
    return out


def latency_feeds(batch: int, seq: int) -> dict[str, np.ndarray]:
    """Real tokens (the built-in long sentences), exactly ``seq`` long, no padding."""
    from tokenizers import Tokenizer

    from converters.sentences import builtin_sentences
    from converters.sources.builtin import BUILTINS

    tok = Tokenizer.from_file(str(BUILTINS["all-minilm-l6-v2"]() / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    ids = tok.encode(" ".join(builtin_sentences()[::-1])).ids
    rows = [ids[1 + i: 1 + i + seq - 2] for i in range(batch)]
    input_ids = np.array([[ids[0], *r, ids[-1]] for r in rows], dtype=np.int64)
    return {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}


def time_interleaved(runners: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    results: dict[str, dict[str, dict[str, float]]] = {k: {} for k in runners}
    for batch, seq in SHAPES:
        feeds = latency_feeds(batch, seq)
        samples: dict[str, list[float]] = {k: [] for k in runners}
        for run in runners.values():
            for _ in range(WARMUP):
                run(feeds)
        print(f"timing batch {batch} seq {seq} ...", flush=True)
        for _ in range(ROUNDS[batch]):
            for key, run in runners.items():
                for _ in range(RUNS_PER_ROUND[batch]):
                    t0 = time.perf_counter()
                    run(feeds)
                    samples[key].append((time.perf_counter() - t0) * 1000)
        for key, values in samples.items():
            results[key][f"b{batch}_s{seq}"] = {"p50": round(float(np.percentile(values, 50)), 3),
                                                "p95": round(float(np.percentile(values, 95)), 3),
                                                "runs": len(values)}
    return results


def open_runners(converted: dict[str, dict[str, Any]], threads: int) -> tuple[dict[str, Any], dict[str, str]]:
    from converters.pipeline import _ran_at
    from converters.recheck import open_artifact
    from converters.registry import get_target
    from edgekit.runtimes import RuntimeOptions

    runners, precision = {}, {}
    for key, item in converted.items():
        if item["artifact"] is None or item["row"].status != "ok":
            continue
        runner = open_artifact(item["root"], item["artifact"], RuntimeOptions(threads=threads))
        runners[key] = runner.run
        precision[key] = _ran_at(get_target(item["variant"].target), runner.precision)
    return runners, precision


def goals(rows: dict[str, dict[str, Any]], threads_list: list[int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    fp32, arm = rows.get("onnx-fp32"), rows.get("onnx-int8-arm64")
    if fp32 and arm and fp32.get("size_bytes") and arm.get("size_bytes"):
        ratio = arm["size_bytes"] / fp32["size_bytes"]
        out.append({"goal": "onnx-int8-arm64 size <= 27% of onnx-fp32", "measured": f"{ratio:.1%}",
                    "met": ratio <= 0.27})
        gate = arm["parity"]
        out.append({"goal": "onnx-int8-arm64 meets cosine mean >= 0.995 and min >= 0.98",
                    "measured": f"{gate['mean']:.4f} / {gate['min']:.4f}", "met": bool(gate["passed"])})
    for threads in threads_list:
        def lat(key: str, t: int = threads) -> float | None:
            return rows.get(key, {}).get("latency_ms", {}).get(f"t{t}", {}).get("b1_s128", {}).get("p50")

        pairs = [("onnx-int8-arm64", "onnx-fp32", 2.5, "")]
        pairs += [(k, "openvino-fp16", 2.0, " at f32") for k in ("openvino-int8", "openvino-int8 (PTQ)")]
        for fast, slow, want, extra in pairs:
            if lat(fast) and lat(slow):
                speed = lat(slow) / lat(fast)  # type: ignore[operator]
                out.append({"goal": f"{fast} >= {want}x faster than {slow}{extra} (batch 1, seq 128)",
                            "threads": threads, "measured": f"{speed:.2f}x", "met": speed >= want})
    return out


def markdown(rows: dict[str, dict[str, Any]], config: dict[str, Any], machine: dict[str, Any],
             met: list[dict[str, Any]]) -> str:
    v = machine["versions"]
    lines = ["<!-- onnx-openvino:start (benchmarks/convert_minilm.py) -->", "## ONNX Runtime and OpenVINO targets", "",
             f"{machine['cpu']}, {machine['cores']} cores ({', '.join(machine['isa'])}), Python {machine['python']}; "
             f"onnxruntime {v.get('onnxruntime')}, openvino {v.get('openvino')}, nncf {v.get('nncf')}, torch "
             f"{v.get('torch')}, transformers {v.get('transformers')}. One run of `{config['script']}`. Parity: "
             "cosine vs the FP32 reference over 57 built-in sentences + 2 padded batches of 8 (mean / min). "
             "Latency: p50 / p95 ms on real tokens without padding, rows timed interleaved round-robin so machine "
             "noise (a shared 2-core VM) hits every row alike; OpenVINO always at f32 inference precision.", "",
             "| row | status | size MB | convert s | parity mean / min | ran at | notes |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for key, r in rows.items():
        parity = r.get("parity") or {}
        par = f"{parity['mean']:.4f} / {parity['min']:.4f}" if parity.get("mean") is not None else "-"
        size = f"{r['size_bytes'] / 1e6:.1f}" if r.get("size_bytes") else "-"
        lines.append(f"| {key} | {r['status']} | {size} | {r.get('conversion_s') or 0:.1f} | {par} | "
                     f"{r.get('precision', '-')} | {r.get('notes', '')} |")
    for threads in config["threads"]:
        lines += ["", f"Latency, {threads} thread(s), p50 / p95 ms:", "",
                  "| row | batch 1, seq 16 | batch 1, seq 128 | batch 32, seq 128 | vs onnx-fp32 (b1 s128) |",
                  "| --- | --- | --- | --- | --- |"]
        base = rows.get("onnx-fp32", {}).get("latency_ms", {}).get(f"t{threads}", {}).get("b1_s128", {}).get("p50")
        for key, r in rows.items():
            lat = r.get("latency_ms", {}).get(f"t{threads}", {})
            cells = [f"{lat[s]['p50']:.2f} / {lat[s]['p95']:.2f}" if s in lat else "-"
                     for s in ("b1_s16", "b1_s128", "b32_s128")]
            ratio = f"{base / lat['b1_s128']['p50']:.2f}x" if base and "b1_s128" in lat else "-"
            lines.append(f"| {key} | {' | '.join(cells)} | {ratio} |")
    lines += ["", "| goal | threads | measured | met |", "| --- | --- | --- | --- |"]
    lines += [f"| {g['goal']} | {g.get('threads', '-')} | {g['measured']} | {'yes' if g['met'] else '**no**'} |"
              for g in met]
    kept = rows.get("onnx-int8-arm64", {}).get("kept_float")
    if kept:
        lines += ["", f"onnx-int8-arm64 recovery kept {len(kept)} node(s) out of activation quantization: "
                  f"{', '.join(k['node'] for k in kept)}."]
    lines += why_missed(rows, config["threads"][0], met)
    lines += ["<!-- onnx-openvino:end -->"]
    return "\n".join(lines)


def why_missed(rows: dict[str, dict[str, Any]], threads: int, met: list[dict[str, Any]]) -> list[str]:
    """Plain words for each missed speed goal, with the same run's figures (quoted at ``threads``)."""
    def lat(key: str) -> float | None:
        return rows.get(key, {}).get("latency_ms", {}).get(f"t{threads}", {}).get("b1_s128", {}).get("p50")

    def ratio(slow: str, fast: str) -> str:
        a, b = lat(slow), lat(fast)
        return f"{a / b:.2f}x" if a and b else "n/a"

    def worst(key: str) -> str:
        p = rows.get(key, {}).get("parity") or {}
        return f"{p['min']:.3f}" if p.get("min") is not None else "n/a"

    missed = {g["goal"].split(" >=")[0] for g in met if not g["met"] and g.get("threads") == threads}
    out = []
    if "onnx-int8-arm64" in missed:
        kept = len(rows.get("onnx-int8-arm64", {}).get("kept_float", []))
        plain = "onnx-int8-arm64 (no recovery)"
        cost = (lat("onnx-int8-arm64") or 0) - (lat(plain) or 0)
        out.append(f"- **onnx-int8-arm64, speed**: even plain per-channel dynamic INT8, which fails the gate (min "
                   f"{worst(plain)}), is only {ratio('onnx-fp32', plain)}"
                   " faster than FP32 here, so no gate-passing variant of it reaches 2.5x on this host. ONNX Runtime's "
                   "FP32 GEMMs are already fast on AVX-512, and what dynamic quantization leaves in float (attention "
                   "score/context MatMuls, softmax, LayerNorm, GELU, reshapes) does not shrink. Keeping "
                   f"{kept} FFN node(s) out of activation quantization costs another {cost:.1f} ms (they run as "
                   "8-bit-weight MatMulNBits). The preset targets ARM64 and is timed on x86 here; on a Pi 4 (no "
                   "dot-product instructions) the FP32/INT8 balance differs again.")
    if "openvino-int8" in missed:
        out.append(f"- **openvino-int8 (default), speed**: NNCF weight compression stores int8 weights but computes "
                   f"in f32, so it only saves memory traffic ({ratio('openvino-fp16', 'openvino-int8')}).")
    if "openvino-int8 (PTQ)" in missed:
        out.append("- **openvino-int8 (PTQ), speed**: full post-training quantization is "
                   f"{ratio('openvino-fp16', 'openvino-int8 (PTQ, no recovery)')} faster than openvino-fp16 but "
                   f"fails the gate (min {worst('openvino-int8 (PTQ, no recovery)')}); keeping the "
                   f"{len(rows.get('openvino-int8 (PTQ)', {}).get('kept_float', []))} most sensitive ops in float "
                   "(NNCF ignored scope) restores the gate and leaves "
                   f"{ratio('openvino-fp16', 'openvino-int8 (PTQ)')}.")
    return ["", f"Why goals are missed (figures at {threads} thread, this run):", "", *out] if out else []


def merge(rows: dict[str, dict[str, Any]], config: dict[str, Any], machine: dict[str, Any],
          met: list[dict[str, Any]]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    jpath, mpath = RESULTS / "convert-minilm.json", RESULTS / "convert-minilm.md"
    data = json.loads(jpath.read_text()) if jpath.is_file() else {}
    mine = {r["target"] for r in rows.values()}
    data["rows"] = [r for r in data.get("rows", []) if r.get("target") not in mine] + [
        {"id": k, **v} for k, v in rows.items()]
    data["onnx_openvino"] = {"config": config, "machine": machine, "goals": met}
    jpath.write_text(json.dumps(data, indent=2) + "\n")
    block = markdown(rows, config, machine, met)
    text = mpath.read_text() if mpath.is_file() else "# all-MiniLM-L6-v2 conversion benchmark\n"
    if "<!-- onnx-openvino:start" in text:
        text = re.sub(r"<!-- onnx-openvino:start.*?<!-- onnx-openvino:end -->", lambda _: block, text, flags=re.S)
    else:
        head, sep, rest = text.partition("\n")
        text = f"{head}{sep}\n{block}\n{rest}"
    mpath.write_text(text if text.endswith("\n") else text + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated row ids (default: every row of VARIANTS)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts to time (default 1,2)")
    args = parser.parse_args()
    threads_list = [int(t) for t in args.threads.split(",")]
    wanted = [v for v in VARIANTS if not args.only or v.id in args.only.split(",")]
    config = {"script": "benchmarks/convert_minilm.py", "model": MODEL, "threads": threads_list,
              "shapes": [f"batch {b} seq {s}" for b, s in SHAPES], "rounds": ROUNDS,
              "runs_per_round": RUNS_PER_ROUND, "warmup": WARMUP, "variants": [asdict(v) for v in wanted]}
    machine = machine_facts(LIBRARIES)
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp:
        converted = convert_all(wanted, Path(tmp), max(threads_list))
        latency: dict[str, dict[str, Any]] = {k: {} for k in converted}
        precision: dict[str, str] = {}
        for threads in threads_list:
            runners, precision = open_runners(converted, threads)
            print(f"timing with {threads} thread(s)", flush=True)
            for key, figures in time_interleaved(runners).items():
                latency[key][f"t{threads}"] = figures
            del runners
    rows: dict[str, dict[str, Any]] = {}
    for key, item in converted.items():
        row, v = item["row"], item["variant"]
        d = row.details or {}
        rows[key] = {
            "target": v.target, "profile": v.profile, "status": row.status, "size_bytes": row.size_bytes,
            "conversion_s": row.conversion_s,
            "parity": {"metric": row.parity.metric, "mean": row.parity.mean, "min": row.parity.min,
                       "passed": row.parity.passed} if row.parity else None,
            "latency_ms": latency.get(key, {}), "precision": precision.get(key),
            "notes": "; ".join([*([v.note] if v.note else []), *(row.notes or ())]),
            **({"kept_float": d["kept_float"]} if d.get("kept_float") else {}),
            **({"full_int8": d["full_int8"]} if d.get("full_int8") else {}),
            **({"error": row.error} if row.error else {}),
        }
    met = goals(rows, threads_list)
    merge(rows, config, machine, met)
    for g in met:
        print(f"{'MET ' if g['met'] else 'MISS'} {g['goal']}: {g['measured']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

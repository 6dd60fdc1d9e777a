"""Wall time of `edgekit quickstart` from an empty cache and on a cached re-run, in one run of this script.

    .venv/bin/python benchmarks/quickstart.py [--profile generic-x86_64]
writes benchmarks/results/quickstart.{json,md}. Each quickstart runs in its own process with a fresh
EDGEKIT_CACHE directory (so the first run exports and converts the builtin model; the second reuses it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import RESULTS, machine_facts  # noqa: E402


def run_once(cache: Path, profile: str | None) -> dict[str, object]:
    cmd = [sys.executable, "-m", "edgekit", "quickstart", *(["--profile", profile] if profile else [])]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "EDGEKIT_CACHE": str(cache)},
                          timeout=900)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"quickstart failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return {"wall_s": round(wall, 1), "exit": proc.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", help="profile to convert for (default: the detected one)")
    args = parser.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="edgekit-qs-cache-"))
    try:
        first = run_once(cache, args.profile)
        cached = run_once(cache, args.profile)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    load = os.getloadavg()[0]
    result = {"config": {"profile": args.profile or "detected", "command": "edgekit quickstart"},
              "machine": machine_facts(("onnxruntime", "openvino", "paho-mqtt")), "load_average_after": load,
              "first_run": first, "cached_rerun": cached}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "quickstart.json").write_text(json.dumps(result, indent=2) + "\n")
    md = ["# `edgekit quickstart` wall time", "",
          f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores; profile "
          f"{result['config']['profile']}; load average {load:.1f} after the run (shared machine).", "",
          "| run | wall time |", "| --- | --- |",
          f"| first run, empty cache (exports and converts the builtin model) | {first['wall_s']} s |",
          f"| re-run, cached conversion | {cached['wall_s']} s |", "",
          "Both include starting mosquitto and the agent, the similarity demo, a few seconds of live telemetry "
          "and a clean shutdown. Goal: under 2 minutes after installation.", "",
          "Command: `.venv/bin/python benchmarks/quickstart.py`"]
    (RESULTS / "quickstart.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()

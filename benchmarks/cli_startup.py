"""CLI start-up time and the size of what a device installs (`pip install .[agent]` into a fresh venv).

    .venv/bin/python benchmarks/cli_startup.py
writes benchmarks/results/cli-startup.{json,md}.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import RESULTS, machine_facts  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RUNS = 5


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-bench-"))
    try:
        venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install_s = timed([str(venv / "bin" / "pip"), "install", "-q", f"{REPO}[agent]"])
        size = dir_size(venv)
        pip_size = dir_size(next((venv / "lib").glob("python3*/site-packages/pip")))
        exe = str(venv / "bin" / "edgekit")
        timed([exe, "--help"])  # warm the page cache once
        help_s = [timed([exe, "--help"]) for _ in range(RUNS)]
        list_s = [timed([exe, "profiles", "list"]) for _ in range(RUNS)]
        packages = subprocess.run([str(venv / "bin" / "pip"), "list", "--format=freeze"], capture_output=True,
                                  text=True, check=True).stdout.split()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "config": {"runs": RUNS,
                   "install": "pip install '.[agent]' into a fresh venv (packages from the local index/cache)"},
        "machine": machine_facts(),
        "edgekit_help_s": {"median": statistics.median(help_s), "runs": help_s},
        "profiles_list_s": {"median": statistics.median(list_s), "runs": list_s},
        "agent_install": {"seconds": install_s, "venv_mb": round(size / 2**20, 1),
                          "venv_without_pip_mb": round((size - pip_size) / 2**20, 1), "packages": packages},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli-startup.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# CLI start-up and device install size",
        "",
        f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, "
        f"Python {result['machine']['python']}.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| `edgekit --help` (median of {RUNS}) | {result['edgekit_help_s']['median'] * 1000:.0f} ms |",
        f"| `edgekit profiles list` (median of {RUNS}) | {result['profiles_list_s']['median'] * 1000:.0f} ms |",
        f"| `pip install '.[agent]'` into a fresh venv | {install_s:.1f} s |",
        f"| that venv on disk | {result['agent_install']['venv_mb']} MB "
        f"({result['agent_install']['venv_without_pip_mb']} MB without pip itself) |",
        f"| packages installed | {len(packages)} |",
        "",
        "Command: `.venv/bin/python benchmarks/cli_startup.py`",
    ]
    (RESULTS / "cli-startup.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()

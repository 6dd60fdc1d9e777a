"""Machine facts every benchmark writes beside its results."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts(libraries: tuple[str, ...] = ()) -> dict[str, Any]:
    versions = {}
    for name in ("edgekit", *libraries):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    flags = ""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "isa": [f for f in ("avx2", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16") if f in flags.split()],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "note": "shared 2-core machine: quote medians and ratios from one run",
    }

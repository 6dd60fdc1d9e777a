"""Isolated converter environments: a pinned venv per toolchain under the cache directory, driven as a subprocess.

litert-torch (the TFLite converter) pins ``typing-extensions<4.13`` (through xdsl) and pulls jax and
litert-converter; installed into the user's environment it would break ``pip check``. So it lives in its own venv,
created on demand by ``edgekit toolchain install litert-torch`` (never at conversion time: no command downloads
anything by itself), and edgekit talks to it through a JSON job file and a worker script.

    tc = get_toolchain("litert-torch")
    results = run_worker(tc, {"jobs": [...]})
"""

from __future__ import annotations

import difflib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import ConversionError, NotAvailableError, UsageError

log = logging.getLogger(__name__)

MARKER = "edgekit-toolchain.json"
RESULT_PREFIX = "EDGEKIT-RESULT "


@dataclass(frozen=True)
class Toolchain:
    name: str
    description: str
    # Top-level requirements, then the full resolved set as constraints: the same venv on every machine.
    requirements: tuple[str, ...]
    constraints: tuple[str, ...]
    worker: str  # module file under edgekit/toolchains/ run by the toolchain's python
    version: str  # bump when pins change: a new version installs into a new directory

    @property
    def dirname(self) -> str:
        return f"{self.name}-{self.version}"


# Resolved on CPython 3.11 / x86_64 (pip 23.2) from the three requirements below; torch stays 2.13.0 like the host,
# because torch.export programs are exchanged between the two environments.
_LITERT_TORCH_LOCK = (
    "absl-py==2.5.1 ai-edge-litert==2.3.0 ai-edge-quantizer==0.10.0 annotated-types==0.8.0 flatbuffers==25.12.19 "
    "immutabledict==4.2.1 jax==0.10.2 jaxlib==0.10.2 jaxtyping==0.3.11 litert-converter==0.5.0 "
    "litert-torch==0.10.0 ml_dtypes==0.6.0 numpy==2.4.6 opt_einsum==3.4.0 protobuf==7.36.2 scipy==1.17.1 "
    "torch==2.13.0 torchao==0.18.0 typing_extensions==4.12.2 xdsl==0.28.0"
).split()

TOOLCHAINS: dict[str, Toolchain] = {
    tc.name: tc
    for tc in (
        Toolchain(
            name="litert-torch",
            description="TFLite (LiteRT) conversion: litert-torch 0.10 + ai-edge-quantizer 0.10 on torch 2.13.0 "
            "(no TensorFlow); used by tflite-fp32/fp16/int8 for torch and ONNX sources",
            requirements=("torch==2.13.0", "litert-torch==0.10.0", "ai-edge-quantizer==0.10.0"),
            constraints=tuple(_LITERT_TORCH_LOCK),
            worker="litert_torch_worker.py",
            version="1",
        ),
    )
}


def cache_root() -> Path:
    """``$EDGEKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/edgekit``, else ``~/.cache/edgekit``."""
    if os.environ.get("EDGEKIT_CACHE_DIR"):
        return Path(os.environ["EDGEKIT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgekit"


def toolchains_root() -> Path:
    """Where toolchain venvs live; ``$EDGEKIT_TOOLCHAINS_DIR`` overrides (CI shares one install across runs)."""
    if os.environ.get("EDGEKIT_TOOLCHAINS_DIR"):
        return Path(os.environ["EDGEKIT_TOOLCHAINS_DIR"]).expanduser()
    return cache_root() / "toolchains"


def get_toolchain(name: str) -> Toolchain:
    try:
        return TOOLCHAINS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(TOOLCHAINS), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"unknown toolchain {name!r}{hint}; known: {', '.join(TOOLCHAINS)}") from None


def venv_dir(tc: Toolchain) -> Path:
    return toolchains_root() / tc.dirname


def python_of(tc: Toolchain) -> Path:
    return venv_dir(tc) / "bin" / "python"


def installed_info(tc: Toolchain) -> dict[str, Any] | None:
    """The install record (size, seconds, versions) when the toolchain is completely installed, else None."""
    marker = venv_dir(tc) / MARKER
    if not marker.is_file() or not python_of(tc).exists():
        return None
    try:
        return json.loads(marker.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    except json.JSONDecodeError:
        return None


def require(tc: Toolchain) -> Path:
    """The toolchain's python, or NotAvailableError with the command that installs it."""
    if installed_info(tc) is None:
        raise NotAvailableError(
            f"the {tc.name} toolchain is not installed (looked in {venv_dir(tc)}); install it once with: "
            f"edgekit toolchain install {tc.name}  (an isolated venv, ~2 GB; it keeps pip check clean here)")
    return python_of(tc)


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # parallel test workers / CI jobs wait for one install
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def install(tc: Toolchain, *, force: bool = False, progress: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Create the pinned venv (idempotent); returns the install record. Uses the host's pip configuration."""
    target = venv_dir(tc)
    with _lock(toolchains_root() / f".{tc.dirname}.lock"):
        info = installed_info(tc)
        if info is not None and not force:
            return info
        if target.exists():
            shutil.rmtree(target)
        start = time.perf_counter()
        progress(f"creating {target}")
        subprocess.run([sys.executable, "-m", "venv", str(target)], check=True, capture_output=True, timeout=300)
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as cf:
            cf.write("\n".join(tc.constraints) + "\n")
        cmd = [str(python_of(tc)), "-m", "pip", "install", "--disable-pip-version-check", "-q",
               "-c", cf.name, *tc.requirements, *os.environ.get("EDGEKIT_TOOLCHAIN_PIP_ARGS", "").split()]
        progress(f"pip install {' '.join(tc.requirements)} (pinned; this takes a minute or two)")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        os.unlink(cf.name)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise NotAvailableError(f"installing the {tc.name} toolchain failed (pip exit {proc.returncode}); "
                                    f"nothing was changed outside {target}. pip said:\n{tail}")
        check = subprocess.run([str(python_of(tc)), "-m", "pip", "check"], capture_output=True, text=True)
        versions = _versions(tc)
        info = {
            "name": tc.name, "version": tc.version, "path": str(target),
            "install_seconds": round(time.perf_counter() - start, 1),
            "size_bytes": sum(p.stat().st_size for p in target.rglob("*") if p.is_file() and not p.is_symlink()),
            "pip_check": check.stdout.strip() or check.stderr.strip(),
            "packages": versions, "installed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (target / MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        return info


def _versions(tc: Toolchain) -> dict[str, str]:
    names = [r.split("==")[0] for r in tc.requirements]
    code = ("import importlib.metadata as m, json, sys; "
            "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")
    out = subprocess.run([str(python_of(tc)), "-c", code, *names], capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout) if out.returncode == 0 else {}  # type: ignore[no-any-return]


def run_worker(tc: Toolchain, job: dict[str, Any], *, timeout: float = 3600) -> list[dict[str, Any]]:
    """Run the toolchain's worker on ``job``; returns one result dict per job (with ``error`` when one failed)."""
    python = require(tc)
    worker = Path(__file__).with_name(tc.worker)
    with tempfile.TemporaryDirectory(prefix=f"edgekit-{tc.name}-") as tmp:
        job_file = Path(tmp) / "job.json"
        job_file.write_text(json.dumps(job), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        # Its own bin first (tools it shells out to), quiet TF/absl logs, and the host's thread budget.
        env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.setdefault("JAX_PLATFORMS", "cpu")
        try:
            proc = subprocess.run([str(python), str(worker), str(job_file)], capture_output=True, text=True,
                                  timeout=timeout, env=env, cwd=tmp)
        except subprocess.TimeoutExpired as err:
            raise ConversionError(f"the {tc.name} toolchain did not finish within {timeout:.0f} s") from err
    results = [json.loads(line[len(RESULT_PREFIX):]) for line in proc.stdout.splitlines()
               if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or len(results) != len(job.get("jobs", [])):
        tail = "\n".join(proc.stderr.strip().splitlines()[-12:])
        raise ConversionError(f"the {tc.name} toolchain worker exited {proc.returncode} after "
                              f"{len(results)}/{len(job.get('jobs', []))} job(s):\n{tail}")
    return results

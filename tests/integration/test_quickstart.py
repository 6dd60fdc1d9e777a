"""``edgekit quickstart`` end to end: the real command, real child processes, and nothing left running after it.

Every run gets its own TMPDIR (and, where a cached conversion is seeded, EDGEKIT_CACHE) under pytest's tmp_path,
so any process quickstart started (the agent, mosquitto or amqtt, convert/bundle/verify) names that directory on
its command line: after the run, no process may.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from edgekit import __version__
from tests.conftest import REPO, run_edgekit

pytestmark = pytest.mark.integration


def leftovers(marker: Path) -> list[str]:
    """Processes (other than this one) whose command line mentions ``marker``."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if str(marker) in cmd and proc.info["pid"] != os.getpid():
            found.append(f"{proc.info['pid']}: {cmd[:200]}")
    return found


def env_for(tmp: Path, cache: Path | None = None) -> dict[str, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    return {"TMPDIR": str(tmp), "COLUMNS": "160", **({"EDGEKIT_CACHE": str(cache)} if cache else {})}


def seed_toy_conversion(cache: Path, profile: str = "generic-x86_64") -> None:
    """A cached 'conversion' holding the agent tests' toy BERT-shaped text model (tiny, built in code), so the rest
    of the flow runs without the converter. Quickstart trusts its own stamp, as it would after a real convert."""
    from tests.reliability.agent_harness import text_bundle

    out = cache / "quickstart" / profile
    out.mkdir(parents=True)
    text_bundle(out)
    stamp = {"edgekit": __version__, "source": "builtin:all-minilm-l6-v2", "profile": profile, "targets": None}
    (out / "quickstart.json").write_text(json.dumps(stamp))


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_quickstart_flow_and_clean_exit(broker: str, tmp_path: Path) -> None:
    if broker == "amqtt":
        pytest.importorskip("amqtt", reason="the embedded fallback broker needs amqtt (pip install amqtt)")
    seed_toy_conversion(tmp_path / "cache")
    r = run_edgekit("quickstart", "--profile", "generic-x86_64", "--embedded-broker", broker, "--demo-seconds",
                    "2", env=env_for(tmp_path / "tmp", tmp_path / "cache"), timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    for step in range(1, 9):
        assert f"[{step}/8]" in out
    assert "cached:" in out
    assert f"embedded {broker} on mqtt://127.0.0.1:" in out
    assert ("MQTT 3.1.1" if broker == "amqtt" else "MQTT 5") in out
    assert "8 embeddings × 8 dims" in out and "nearest neighbour of each sentence" in out
    assert "request(s) answered during the demo" in out and "quickstart finished in" in out
    assert leftovers(tmp_path) == []
    assert not list((tmp_path / "tmp").glob("edgekit-*")), "the temporary work directory is removed"


def test_sigterm_mid_run_stops_everything(tmp_path: Path) -> None:
    seed_toy_conversion(tmp_path / "cache")
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "quickstart", "--profile", "generic-x86_64",
                             "--demo-seconds", "60"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, **env_for(tmp_path / "tmp", tmp_path / "cache")})
    seen = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            seen.append(line)
            if "[8/8]" in line or time.monotonic() > deadline:
                break
        time.sleep(1.0)
        assert leftovers(tmp_path), "the agent and the broker are running during the demo"
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, "".join(seen) + rest
    assert "interrupted" in rest
    assert leftovers(tmp_path) == []


def _convert_ready() -> bool:
    from edgekit.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["convert", "builtin:all-minilm-l6-v2", "--profile", "generic-x86_64"])
    return "pending" not in getattr(args.func, "__qualname__", "")


@pytest.mark.slow
def test_quickstart_real_model_then_cached_rerun_on_the_fallback_broker(tmp_path: Path) -> None:
    """The README's main job: the builtin all-MiniLM-L6-v2, converted for onnx-fp32, served and queried; then the
    same again from the cache, on the embedded fallback broker (amqtt, MQTT 3.1.1)."""
    if not _convert_ready():
        pytest.skip("edgekit convert is not implemented in this build")
    tmp = tmp_path / "tmp"
    args = ["quickstart", "--profile", "generic-x86_64", "--targets", "onnx-fp32", "--demo-seconds", "2",
            "--keep", str(tmp_path / "keep")]  # the conversion goes to keep/convert and is reused by the re-run
    started = time.monotonic()
    first = run_edgekit(*args, env=env_for(tmp), timeout=900)
    first_s = time.monotonic() - started
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-3000:]
    assert "384 dims" in first.stdout
    # real embeddings: each sentence's nearest neighbour is its paraphrase
    assert "│ A man is eating food." in first.stdout
    row = next(line for line in first.stdout.splitlines() if line.startswith("│ A man is eating food."))
    assert "A man is eating a piece of bread." in row
    assert leftovers(tmp_path) == []

    pytest.importorskip("amqtt", reason="the embedded fallback broker needs amqtt (pip install amqtt)")
    started = time.monotonic()
    second = run_edgekit(*args, "--embedded-broker", "amqtt", env=env_for(tmp), timeout=300)
    second_s = time.monotonic() - started
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-3000:]
    assert "cached:" in second.stdout and "embedded amqtt" in second.stdout and "384 dims" in second.stdout
    assert leftovers(tmp_path) == []
    print(f"quickstart wall time: first run {first_s:.1f} s, cached re-run on amqtt {second_s:.1f} s")

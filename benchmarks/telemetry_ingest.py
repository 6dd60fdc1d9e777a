"""Sustained ingest rate of ``edgekit telemetry record`` (messages/s) on loopback.

A real mosquitto on 127.0.0.1, the real ``edgekit telemetry record`` command in its own process, and synthetic
publishers (edgekit.telemetry.synthetic: schema-valid telemetry from many devices, QoS 1, as the agent publishes)
in their own processes sending as fast as they can. The rate is the slope of the recording's row count between
10 % and 90 % of the messages, polled from the SQLite file while it is written; every message must arrive.

    .venv/bin/python benchmarks/telemetry_ingest.py            # writes benchmarks/results/telemetry-ingest.{json,md}
    .venv/bin/python benchmarks/telemetry_ingest.py --quick    # a smaller run, results printed only

The broker is configured so it never drops a QoS 1 message for a slow subscriber (max_queued_messages 0): the
benchmark measures the recorder, not mosquitto's queue limits.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgekit.broker import MosquittoBroker  # noqa: E402

CONFIGS = [
    {"name": "record", "devices": 50, "messages": 40_000, "publishers": 1, "validate": False},
    {"name": "record --validate", "devices": 50, "messages": 20_000, "publishers": 1, "validate": True},
    # the ceiling: a paho-mqtt subscriber that does nothing with the messages (QoS 1, same publisher)
    {"name": "bare paho subscriber", "devices": 50, "messages": 40_000, "publishers": 1, "bare": True},
]
RUNS = 3


def _publish(url: str, first_device: int, devices: int, messages: int, ready: Any, go: Any) -> None:
    """A publisher process: pre-builds its payloads, then sends them at QoS 1 as fast as paho allows."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from edgekit.client import BrokerOptions
    from edgekit.telemetry.synthetic import SyntheticDevice

    fleet = [SyntheticDevice(f"bench-{first_device + i:04d}", seed=first_device + i, window_s=1.0)
             for i in range(devices)]
    payloads = []
    for n in range(messages):
        d = fleet[n % devices]
        payloads.append((f"edgekit/v1/{d.device_id}/telemetry", json.dumps(d.telemetry(), separators=(",", ":"))))
    opts = BrokerOptions.parse(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(opts.host, opts.port)
    client.loop_start()
    ready.release()
    go.wait()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in payloads]
    for info in infos:
        info.wait_for_publish(120)
    client.disconnect()
    client.loop_stop()


def _bare_subscriber(url: str, total: int, ready: Any, result: Any) -> None:
    """The baseline consumer: counts QoS 1 messages and nothing else."""
    import paho.mqtt.client as mqtt
    import psutil
    from paho.mqtt.enums import CallbackAPIVersion

    from edgekit.client import BrokerOptions

    times: list[float] = []
    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        times.append(time.monotonic())

    opts = BrokerOptions.parse(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.connect(opts.host, opts.port)
    client.subscribe("edgekit/v1/+/telemetry", qos=1)
    client.loop_start()
    time.sleep(0.5)
    cpu0 = sum(psutil.Process().cpu_times()[:2])
    ready.release()
    deadline = time.monotonic() + 600
    while len(times) < total and time.monotonic() < deadline:
        time.sleep(0.05)
    cpu = sum(psutil.Process().cpu_times()[:2]) - cpu0
    client.disconnect()
    client.loop_stop()
    result.put({"times": times[:: max(1, total // 2000)] + times[-1:], "n": len(times), "cpu_s": cpu})


def run_bare(cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    broker = MosquittoBroker(workdir=workdir, extra_config="max_queued_messages 0\nmax_inflight_messages 0\n")
    broker.start()
    ctx = mp.get_context("spawn")
    try:
        sub_ready, pub_ready, go, result = ctx.Semaphore(0), ctx.Semaphore(0), ctx.Event(), ctx.Queue()
        total = cfg["messages"]
        sub = ctx.Process(target=_bare_subscriber, args=(broker.url, total, sub_ready, result))
        sub.start()
        if not sub_ready.acquire(timeout=120):
            raise RuntimeError("the baseline subscriber did not start")
        pub = ctx.Process(target=_publish, args=(broker.url, 0, cfg["devices"], total, pub_ready, go))
        pub.start()
        if not pub_ready.acquire(timeout=120):
            raise RuntimeError("the publisher did not get ready")
        go.set()
        out = result.get(timeout=600)
        pub.join(30)
        sub.join(30)
    finally:
        broker.close()
    times = out["times"]
    step = max(1, total // 2000)
    lo, hi = times[int(0.1 * (len(times) - 1))], times[int(0.9 * (len(times) - 1))]
    span_msgs = (int(0.9 * (len(times) - 1)) - int(0.1 * (len(times) - 1))) * step
    return {"messages": total, "stored": out["n"], "rate_msgs_per_s": round(span_msgs / (hi - lo), 1),
            "cpu_us_per_msg": round(out["cpu_s"] / max(1, out["n"]) * 1e6, 1)}


def _count(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return int(con.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def run_once(cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    db = workdir / "ingest.sqlite"
    broker = MosquittoBroker(workdir=workdir, extra_config="max_queued_messages 0\nmax_inflight_messages 0\n")
    broker.start()
    cmd = [sys.executable, "-m", "edgekit", "-q", "telemetry", "record", "--broker", broker.url, "--out", str(db)]
    if cfg["validate"]:
        cmd.append("--validate")
    recorder = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (db.exists() and _sessions(db)):
            if time.monotonic() > deadline or recorder.poll() is not None:
                raise RuntimeError("the recorder did not start")
            time.sleep(0.1)
        ctx = mp.get_context("spawn")
        ready, go = ctx.Semaphore(0), ctx.Event()
        per = cfg["messages"] // cfg["publishers"]
        pubs = [ctx.Process(target=_publish, args=(broker.url, i * cfg["devices"], cfg["devices"], per, ready, go))
                for i in range(cfg["publishers"])]
        for p in pubs:
            p.start()
        for _ in pubs:
            if not ready.acquire(timeout=120):
                raise RuntimeError("a publisher did not get ready (see its traceback above)")
        total = per * cfg["publishers"]
        import psutil

        recorder_cpu0 = sum(psutil.Process(recorder.pid).cpu_times()[:2])  # after start-up and imports
        samples = [(time.monotonic(), 0)]
        go.set()
        deadline = time.monotonic() + 600
        published_at = None
        while samples[-1][1] < total and time.monotonic() < deadline:
            time.sleep(0.1)
            samples.append((time.monotonic(), _count(db)))
            if published_at is None and not any(p.is_alive() for p in pubs):
                published_at = samples[-1][0]
        for p in pubs:
            p.join(30)
        recorder_cpu_s = sum(psutil.Process(recorder.pid).cpu_times()[:2]) - recorder_cpu0
    finally:
        for p in locals().get("pubs", []):
            if p.is_alive():
                p.terminate()
        recorder.send_signal(signal.SIGTERM)
        summary, _ = recorder.communicate(timeout=60)
        broker.close()
    stored = samples[-1][1]
    t0 = samples[0][0]

    def when(n: float) -> float:
        return next(t for t, c in samples if c >= n)

    lo, hi = when(0.1 * total), when(0.9 * total)
    return {"messages": total, "stored": stored, "rate_msgs_per_s": round(0.8 * total / (hi - lo), 1),
            "wall_s": round(samples[-1][0] - t0, 2),
            "publish_s": round((published_at or samples[-1][0]) - t0, 2),
            "cpu_us_per_msg": round(recorder_cpu_s / max(1, stored) * 1e6, 1),
            "db_bytes": db.stat().st_size + sum(p.stat().st_size for p in workdir.glob("ingest.sqlite-*")),
            "recorder_summary": summary.strip().splitlines()[-3:]}


def _sessions(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return int(con.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def machine_facts() -> dict[str, Any]:
    import paho.mqtt

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mosq = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout.splitlines()[0]
    return {"cpu": cpu, "cores": os.cpu_count(), "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "kernel": platform.release(), "python": platform.python_version(), "paho_mqtt": paho.mqtt.__version__,
            "sqlite": sqlite3.sqlite_version, "broker": mosq,
            "note": "machine shared with other jobs; the publisher, mosquitto and the recorder share its cores"}


def to_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = ["# `edgekit telemetry record`: sustained ingest rate", "",
             f"Measured {result['date']} with `{result['command']}`.", "",
             "| consumer | devices | messages per run | runs | median msgs/s | min | max | median µs CPU/msg | "
             "all received |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["results"]:
        rates = [run["rate_msgs_per_s"] for run in r["runs"]]
        cpu = statistics.median(run["cpu_us_per_msg"] for run in r["runs"])
        ok = all(run["stored"] == run["messages"] for run in r["runs"])
        lines.append(f"| `{r['config']['name']}` | {r['config']['devices']} | {r['config']['messages']:,} | "
                     f"{len(rates)} | **{statistics.median(rates):,.0f}** | {min(rates):,.0f} | {max(rates):,.0f} | "
                     f"{cpu:.0f} | {'yes' if ok else 'NO'} |")
    lines += ["", "Rate: slope of the recording's row count between 10 % and 90 % of the messages, sampled every "
              "0.1 s from the SQLite file while `record` writes it (WAL, `synchronous=FULL`, one commit per batch).",
              "Publishers: synthetic telemetry payloads (~0.8 KB of JSON each) at QoS 1, one process, as fast as "
              "paho-mqtt sends; mosquitto on 127.0.0.1 with unlimited queues so nothing is dropped.",
              "CPU/msg: user+system CPU time of the consumer process divided by the messages it took in; it varies "
              "less than the rate when other jobs share the machine.",
              "`bare paho subscriber` is the ceiling: a paho-mqtt client that only counts the messages. The rest of "
              "`record`'s cost is parsing, checking and the SQLite insert; past one recorder, scale out with "
              "`--share GROUP` (several recorders on a shared subscription).", "",
              "## Machine", ""] + [f"- {k}: {v}" for k, v in m.items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short run per configuration; write nothing")
    args = parser.parse_args()
    configs = [{**c, "messages": c["messages"] // 8} for c in CONFIGS] if args.quick else CONFIGS
    runs = 1 if args.quick else RUNS
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine_facts(),
                              "command": "python benchmarks/telemetry_ingest.py" + (" --quick" if args.quick else ""),
                              "results": []}
    for cfg in configs:
        entry = {"config": cfg, "runs": []}
        for i in range(runs):
            with tempfile.TemporaryDirectory(prefix="edgekit-ingest-") as tmp:
                run = (run_bare if cfg.get("bare") else run_once)(cfg, Path(tmp))
            print(f"{cfg['name']:<22} run {i + 1}: {run['rate_msgs_per_s']:>9,.0f} msgs/s  "
                  f"{run['cpu_us_per_msg']:>6.1f} µs CPU/msg  ({run['stored']:,}/{run['messages']:,} received, "
                  f"load {os.getloadavg()[0]:.1f})", flush=True)
            run["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
            entry["runs"].append(run)
        result["results"].append(entry)
    if not args.quick:
        out = REPO / "benchmarks" / "results"
        out.mkdir(parents=True, exist_ok=True)
        (out / "telemetry-ingest.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "telemetry-ingest.md").write_text(to_markdown(result))
        print(f"wrote {out / 'telemetry-ingest.json'} and {out / 'telemetry-ingest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

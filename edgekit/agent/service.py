"""Wiring and the main loop of ``edgekit agent``.

Start-up: profile and CPU features -> spool (and ``seq``) -> bundle -> artifact choice and admission under the
memory cap -> model loaded and calibrated -> systemd ``READY=1`` -> MQTT (asynchronous; the agent serves and
spools while the broker is away). The main loop runs the memory watchdog, telemetry and the systemd watchdog,
which is fed only while the batcher makes progress. SIGTERM/SIGINT: stop taking requests, finish the queue,
flush the spool for a moment, publish a retained ``offline`` status and disconnect cleanly (no Last Will).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.agent import memory, payloads
from edgekit.agent.batching import Batcher
from edgekit.agent.config import AgentConfig, default_spool_path
from edgekit.agent.forwarder import Forwarder
from edgekit.agent.intake import Intake
from edgekit.agent.model import LoadedModel, load
from edgekit.agent.mqtt_client import MqttClient
from edgekit.agent.spool import Outgoing, Spool
from edgekit.agent.tasks import RequestError
from edgekit.agent.telemetry import PowerMeter, Stats, Telemetry
from edgekit.bundle.archive import opened
from edgekit.checksums import sha256_file
from edgekit.manifest import MANIFEST_NAME, Manifest, read_manifest
from edgekit.profiles import DeviceProfile, load_profile
from edgekit.profiles.detect import detect, read_facts
from edgekit.sensors import open_power_sensor
from edgekit.sensors.rpi_throttled import ThrottleReader
from edgekit.sensors.thermal import ThermalZones

log = logging.getLogger(__name__)

TICK_S = 0.2
SUMMARY_S = 60.0
TRIM_S = 2.0
TRIM_ABOVE_MB = 8.0
# Working memory kept free below the soft limit for queued requests, JSON and MQTT buffers.
RESERVE_MB = 10.0
SETTABLE: dict[str, type | tuple[type, ...]] = {"max_batch": int, "max_wait_ms": (int, float),
                                                "telemetry_interval_s": (int, float)}


def _notifier() -> Any:
    """systemd's sd_notify (edgekit.systemd_notify); a no-op stand-in should that module be missing."""
    try:
        from edgekit.systemd_notify import Notifier
    except ImportError:
        return _NoNotifier()
    return Notifier()


class _NoNotifier:
    interval = None

    def ready(self, status: str | None = None) -> None: ...

    def progress(self) -> None: ...

    def watchdog(self) -> None: ...

    def stopping(self, status: str | None = None) -> None: ...


class Agent:
    def __init__(self, config: AgentConfig, root: Path = Path("/")) -> None:
        self.config = config
        self.root = root
        assert config.device_id is not None
        self.device_id = config.device_id
        self.stop_event = threading.Event()
        self.stop_reason = "shutdown"
        self.notifier = _notifier()
        self.bd_seq = 0

    # --- start-up -------------------------------------------------------------------------------------------------
    def _profile(self) -> tuple[DeviceProfile, str, tuple[str, ...]]:
        if self.config.profile:
            profile = load_profile(self.config.profile)
            facts = read_facts(self.root)
            log.info("profile %s (from the configuration)", profile.name)
        else:
            found = detect(self.root)
            profile = load_profile(found.profile)
            facts = found.facts
            log.info("profile %s (detected: %s)", profile.name, "; ".join(found.reasons))
        return profile, facts.arch, facts.isa

    def run(self) -> int:
        memory.tune_malloc()
        profile, arch, isa = self._profile()
        cfg = self.config
        cgroup = memory.CgroupMemory(self.root)
        cap_mb = float(cfg.memory_cap_mb or profile.memory.cap_mb)
        cgroup_max = cgroup.limit_mb("memory.max")
        if cgroup_max is not None and cgroup_max < cap_mb:
            log.info("cgroup memory.max is %.0f MB, below the %.0f MB cap: using it", cgroup_max, cap_mb)
            cap_mb = cgroup_max
        soft_pct = profile.memory.soft_limit_pct
        spool_path = Path(cfg.spool_path) if cfg.spool_path else default_spool_path(self.device_id)
        self.spool = Spool(spool_path, max_bytes=cfg.spool_max_mb << 20)
        if self.spool.depth:
            log.info("spool %s holds %d message(s) from before; they will be replayed", spool_path, self.spool.depth)
        calibration = memory.Calibration(spool_path.with_name(spool_path.name + ".calibration.json"))
        assert cfg.bundle is not None
        with opened(Path(cfg.bundle)) as bundle_root:
            manifest = read_manifest(bundle_root)
            self.bundle_sha = sha256_file(bundle_root / MANIFEST_NAME)
            threads = min(cfg.threads or profile.runtime.threads, os.cpu_count() or 1)
            self.model = load(bundle_root, manifest, profile, arch, isa, forced=cfg.target, cap_mb=cap_mb,
                              threads=threads, calibration=calibration, verify=cfg.verify)
            for line in cgroup.apply(cap_mb, soft_pct):
                log.info("cgroup: %s", line)
            return self._serve(profile, manifest, isa, cap_mb, soft_pct)

    def _serve(self, profile: DeviceProfile, manifest: Manifest, isa: tuple[str, ...], cap_mb: float,
               soft_pct: int) -> int:
        cfg, model = self.config, self.model
        self.profile, self.manifest, self.isa, self.cap_mb = profile, manifest, isa, cap_mb
        self.watchdog = memory.MemoryWatchdog(cap_mb, soft_pct, memory.CgroupMemory(self.root))
        budget = max(self.watchdog.soft_mb - max(model.rss_loaded_mb, memory.rss_mb()) - RESERVE_MB, 1.0)
        log.info("memory: cap %.0f MB, soft limit %.0f MB, %.0f MB for batches above the loaded model",
                 cap_mb, self.watchdog.soft_mb, budget)
        if budget < memory.TIGHT_BUDGET_MB:
            memory.tune_malloc(mmap_threshold=memory.TIGHT_MMAP_THRESHOLD)
            memory.malloc_trim()
            log.info("memory: little room above the model; glibc returns every freed buffer over 256 KB")
        self.stats = Stats()
        self.batcher = Batcher(model.runner, on_done=lambda job: self.intake.answer(job),
                               max_batch=cfg.max_batch or profile.runtime.max_batch,
                               max_wait_ms=cfg.max_wait_ms if cfg.max_wait_ms is not None
                               else profile.runtime.max_wait_ms,
                               max_queue=cfg.max_queue, budget_mb=lambda: budget,
                               on_progress=self.notifier.progress,
                               on_batch=lambda jobs: self.intake.answer_batch(jobs))
        self.telemetry_interval = cfg.telemetry_interval_s
        self.client = MqttClient(cfg, will=self._will, on_message=lambda m: self.intake.on_message(m),
                                 on_connected=lambda: self.forwarder.on_connected(),
                                 on_disconnected=lambda: self.forwarder.on_disconnected(),
                                 on_acked=lambda mid: self.forwarder.on_acked(mid))
        self.forwarder = Forwarder(self.spool, self.client, self._birth)
        self.intake = Intake(self.device_id, model.artifact.target, self.batcher, self.spool, self.forwarder.wake,
                             self.stats, model.tensor, model.text, cfg.max_request_bytes,
                             overloaded=lambda: self.watchdog.state.pressure, command=self._command)
        self.telemetry = Telemetry(self.stats, PowerMeter(open_power_sensor(profile.power, self.root)),
                                   ThermalZones(self.root, profile.thermal.zone if profile.thermal else None),
                                   ThrottleReader(), self._gauges)
        self.batcher.start()
        self.forwarder.start()
        self.intake.start()
        self.notifier.ready(status=f"serving {model.artifact.target}")
        self.client.start()
        log.info("serving %s on %s as %s (batch <= %d, wait <= %s ms)", model.artifact.target, cfg.broker,
                 self.device_id, self.batcher.max_batch, cfg.max_wait_ms if cfg.max_wait_ms is not None
                 else profile.runtime.max_wait_ms)
        self._install_signals()
        try:
            self._loop()
        finally:
            self._shutdown()
        return 0

    def _install_signals(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            self.stop_reason = f"shutdown ({signal.Signals(signum).name})"
            self.stop_event.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, handler)

    # --- main loop ------------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        ping_every = (self.notifier.interval or 2.0) / 2
        next_ping = 0.0
        next_trim = 0.0
        next_telemetry = time.monotonic() + self.telemetry_interval
        next_summary = time.monotonic() + SUMMARY_S
        last_resize = 0.0
        answered = 0
        while not self.stop_event.wait(TICK_S):
            now = time.monotonic()
            state = self.watchdog.check()
            if now - last_resize >= 1.0:
                if state.pressure and self.batcher.limit > 1:
                    self.batcher.shrink()
                    memory.malloc_trim()
                    last_resize = now
                    log.warning("memory pressure: batch limit now %d", self.batcher.limit)
                elif not state.pressure and self.batcher.limit < self.batcher.max_batch:
                    self.batcher.restore()
                    last_resize = now
            if now >= next_trim:
                next_trim = now + TRIM_S
                if state.rss_mb > self.model.rss_loaded_mb + TRIM_ABOVE_MB:
                    memory.malloc_trim()  # hand freed heap pages back; cheap (about a millisecond)
            self.telemetry.tick()
            if now >= next_telemetry:
                next_telemetry = now + self.telemetry_interval
                body = self.telemetry.body()
                answered += body["requests"]
                self._spool_telemetry(body)
            if now >= next_ping:
                next_ping = now + ping_every
                self.notifier.watchdog()  # pings only if the batcher loop marked progress since the last ping
            if now >= next_summary:
                next_summary = now + SUMMARY_S
                log.info("last %.0f s: %d request(s); spool depth %d, dropped %s; RSS %.0f MB", SUMMARY_S, answered,
                         self.spool.depth, self.spool.dropped(), state.rss_mb)
                answered = 0

    def _spool_telemetry(self, body: dict[str, Any]) -> None:
        telemetry_topic = payloads.topic(self.device_id, "telemetry")

        def make(seq: int) -> list[Outgoing]:
            data = {**payloads.header(self.device_id, seq), **body}
            return [Outgoing("telemetry", telemetry_topic, payloads.encode("telemetry", data))]

        self.spool.add(make)
        self.forwarder.wake()

    def _gauges(self) -> dict[str, Any]:
        st = self.watchdog.state
        dropped = self.spool.dropped()
        return {
            "target": self.model.artifact.target,
            "state": "overloaded" if st.pressure else ("serving" if self.batcher.busy else "idle"),
            "queue_depth": self.batcher.queue_depth,
            "batch_limit": self.batcher.limit,
            "memory": {"rss_mb": round(st.rss_mb, 1), "cap_mb": round(self.cap_mb, 1),
                       "soft_limit_mb": round(self.watchdog.soft_mb, 1), "pressure": st.pressure,
                       "sheds": st.sheds,
                       "cgroup_current_mb": None if st.cgroup_current_mb is None else round(st.cgroup_current_mb, 1),
                       "cgroup_events": st.cgroup_events},
            "spool": {"depth": self.spool.depth, "bytes": self.spool.bytes, "dropped": sum(dropped.values()),
                      "dropped_by_kind": dropped},
        }

    # --- status ---------------------------------------------------------------------------------------------------
    def _status(self, state: str, seq: int, **extra: Any) -> bytes:
        body: dict[str, Any] = {**payloads.header(self.device_id, seq), "state": state, "bd_seq": self.bd_seq}
        if state != "lost":
            m = self.model
            body.update({
                "profile": self.profile.name, "runtime": m.artifact.runtime, "target": m.artifact.target,
                # ONNX Runtime reports its I/O precision (f32 for an INT8 graph): name the artifact's then.
                "precision": m.artifact.precision if m.runner.precision in ("f32", "fp32") else m.runner.precision,
                "bundle": {"model": self.manifest.model.name,
                           "version": str(self.manifest.extra.get("version", self.manifest.created)),
                           "sha256": self.bundle_sha},
                "cpu_features": list(self.isa), "memory_cap_mb": int(self.cap_mb), "edgekit_version": __version__,
                "selection": list(m.reasons), "providers": list(m.providers),
            })
        body.update(extra)
        return payloads.encode("status", body)

    def _will(self) -> bytes:
        self.bd_seq = self.spool.next_seq("bd_seq")
        return self._status("lost", self.spool.next_seq())

    def _birth(self) -> tuple[str, bytes]:
        return payloads.topic(self.device_id, "status"), self._status("online", self.spool.next_seq())

    # --- cmd ------------------------------------------------------------------------------------------------------
    def _command(self, body: dict[str, Any]) -> dict[str, Any]:
        command = body["command"]
        if command == "ping":
            return {"pong": True, "queue_depth": self.batcher.queue_depth}
        if command == "status":
            status_topic, payload = self._birth()
            self.client.publish(status_topic, payload, qos=1, retain=True)
            return {"status": "republished", "gauges": self._gauges()}
        args: dict[str, Any] = body.get("args") or {}
        unknown = sorted(set(args) - set(SETTABLE))
        if unknown or not args:
            raise RequestError("bad-request", f"'set' takes args {sorted(SETTABLE)}; got {sorted(args) or 'none'}")
        for key, value in args.items():
            lowest = 1 if key == "max_batch" else 0
            allowed: Any = SETTABLE[key]
            if isinstance(value, bool) or not isinstance(value, allowed) or value < lowest:
                raise RequestError("bad-request", f"'set' {key}: {value!r} is not allowed")
        if "telemetry_interval_s" in args:
            if args["telemetry_interval_s"] <= 0:
                raise RequestError("bad-request", "'set' telemetry_interval_s must be > 0")
            self.telemetry_interval = float(args["telemetry_interval_s"])
        self.batcher.set_limits(args.get("max_batch"), args.get("max_wait_ms"))
        log.info("settings changed over cmd: %s", args)
        return {"applied": args}

    # --- shutdown -------------------------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        log.info("%s: finishing queued requests", self.stop_reason)
        self.notifier.stopping(status=self.stop_reason)
        self.client.client.unsubscribe([payloads.topic(self.device_id, "infer"), payloads.topic(self.device_id,
                                                                                                  "cmd")])
        self.intake.stop()
        self.batcher.stop(drain_s=5.0)
        if self.client.connected.is_set() and not self.forwarder.flush(3.0):
            log.warning("%d message(s) stay in the spool for the next start", self.spool.depth)
        self.forwarder.stop()
        offline = self._status("offline", self.spool.next_seq(), reason=self.stop_reason)
        self.client.stop(last_words=(payloads.topic(self.device_id, "status"), offline))
        self.model.runner.close()
        self.spool.close()
        log.info("stopped")


def run_agent(config: AgentConfig) -> int:
    return Agent(config).run()


__all__ = ["Agent", "LoadedModel", "run_agent"]

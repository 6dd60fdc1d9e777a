"""``edgekit quickstart``: the whole path on this machine, one step after another, each through the real command.

profile -> ``edgekit convert`` (cached) -> ``edgekit bundle`` -> ``edgekit verify`` -> broker (given, or embedded on
loopback: mosquitto, else amqtt) -> ``edgekit agent`` as a separate process -> requests through the infer client
-> similarity demo -> live telemetry -> clean shutdown. Every child process is stopped and reaped on the way out,
also on Ctrl-C, SIGTERM or an error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from edgekit import __version__
from edgekit.client import BrokerOptions, InferClient, MqttSession
from edgekit.errors import EdgeKitError

SOURCE = "builtin:all-minilm-l6-v2"
STEPS = 8
AGENT_READY_TIMEOUT_S = 120.0


class QuickstartError(EdgeKitError):
    """A step of the quickstart failed; the message names the step and where its log is."""


@dataclass
class QuickstartOptions:
    profile: str | None = None
    broker: BrokerOptions | None = None
    keep: Path | None = None
    targets: str | None = None
    embedded_broker: str = "auto"
    demo_seconds: float = 6.0
    device_id: str = "quickstart"


@dataclass
class Timings:
    steps: list[tuple[str, float]] = field(default_factory=list)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.steps.append((name, time.monotonic() - started))


def cache_dir(profile: str, targets: str | None) -> Path:
    """Where a conversion is kept between runs: ``$EDGEKIT_CACHE`` (default ~/.cache/edgekit), as the converter's."""
    base = Path(os.environ.get("EDGEKIT_CACHE") or Path.home() / ".cache" / "edgekit")
    suffix = "" if not targets else "-" + targets.replace(",", "+")
    return base / "quickstart" / f"{profile}{suffix}"


def _edgekit(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgekit", *args]


def _pdeathsig() -> None:
    """In the child: die with SIGTERM if quickstart itself dies, so no agent outlives it (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Quickstart:
    def __init__(self, options: QuickstartOptions, console: Console | None = None) -> None:
        self.o = options
        self.console = console or Console()
        self.timings = Timings()
        self.children: list[subprocess.Popen[Any]] = []

    # -- output -------------------------------------------------------------------------------------------------
    def header(self, n: int, text: str) -> None:
        self.console.print(f"\n[bold cyan][{n}/{STEPS}][/] [bold]{text}[/]")

    def note(self, text: str, style: str = "") -> None:
        self.console.print(f"  {text}", style=style, highlight=False)

    def run_step(self, args: list[str], log: Path, *, show: bool = True) -> subprocess.CompletedProcess[str]:
        """Run an edgekit command, streaming its output indented (and into ``log``), with a spinner meanwhile."""
        self.note(f"$ edgekit {' '.join(args[3:])}", style="dim")
        lines: list[str] = []
        env = {**os.environ, "COLUMNS": str(max(60, self.console.width - 4))}  # its tables fit beside the indent
        with open(log, "a", encoding="utf-8") as log_file, self.console.status(f"edgekit {args[3]} is running…"):
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                    stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig)
            self.children.append(proc)
            assert proc.stdout is not None
            for line in proc.stdout:
                log_file.write(line)
                lines.append(line.rstrip())
                if show:
                    self.console.print(f"  │ {line.rstrip()}", style="dim", markup=False, highlight=False,
                                       soft_wrap=True)
            proc.wait()
        return subprocess.CompletedProcess(args, proc.returncode, "\n".join(lines), "")

    # -- the flow -----------------------------------------------------------------------------------------------
    def run(self) -> int:
        started = time.monotonic()
        with contextlib.ExitStack() as stack:
            work = self._workdir(stack)
            profile = self.step_profile()
            convert_dir = self.step_convert(profile, work)
            bundle = self.step_bundle(convert_dir, work)
            self.step_verify(bundle, work)
            broker = self.step_broker(stack, work)
            agent = self.step_agent(stack, bundle, broker, profile, work)
            self.step_infer(broker)
            self.step_telemetry(broker)
            self.console.print("\n[bold]shutting down[/]")
            with self.timings.step("shutdown"):
                self.stop_agent(agent)
                stack.close()
            self.note("agent stopped (offline status published), broker stopped, no process left behind")
        total = time.monotonic() - started
        steps = ", ".join(f"{name} {secs:.1f} s" for name, secs in self.timings.steps)
        self.console.print(f"\n[bold green]quickstart finished in {total:.1f} s[/]: {steps}")
        if self.o.keep:
            self.console.print(f"everything is kept in {self.o.keep} (converted artifacts, bundle, logs)")
        return 0

    def _workdir(self, stack: contextlib.ExitStack) -> Path:
        if self.o.keep:
            self.o.keep.mkdir(parents=True, exist_ok=True)
            return self.o.keep.resolve()
        tmp = Path(tempfile.mkdtemp(prefix="edgekit-quickstart-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        return tmp

    def step_profile(self) -> str:
        self.header(1, "device profile")
        with self.timings.step("profile"):
            if self.o.profile:
                self.note(f"{self.o.profile} (from --profile)")
                return self.o.profile
            from edgekit.profiles.detect import detect

            found = detect()
            self.note(f"{found.profile}: {'; '.join(found.reasons)}")
            return found.profile

    def step_convert(self, profile: str, work: Path) -> Path:
        self.header(2, f"convert {SOURCE} for {profile}")
        out = (work / "convert") if self.o.keep else cache_dir(profile, self.o.targets)
        stamp = out / "quickstart.json"
        want = {"edgekit": __version__, "source": SOURCE, "profile": profile, "targets": self.o.targets}
        with self.timings.step("convert"):
            if stamp.is_file() and json.loads(stamp.read_text()) == want and (out / "manifest.json").is_file():
                self.note(f"cached: {out} (delete it to convert again)")
                self._report(out, show=True)
                return out
            if out.exists():
                shutil.rmtree(out)
            out.parent.mkdir(parents=True, exist_ok=True)
            args = ["convert", SOURCE, "--profile", profile, "--out", str(out)]
            if self.o.targets:
                args += ["--targets", self.o.targets]
            result = self.run_step(_edgekit(*args), work / "convert.log")
            if result.returncode == 2 and "not implemented" in result.stdout:
                raise QuickstartError("edgekit convert is not implemented in this build, so there is no model to "
                                      "serve yet")
            ok = self._report(out, show=False)  # convert printed its own report table
            if result.returncode != 0 and ok:
                self.note(f"some targets failed (see above); serving the {len(ok)} that passed", style="yellow")
            if result.returncode != 0 and not ok:
                raise QuickstartError(f"edgekit convert failed (exit {result.returncode}) and produced no usable "
                                      f"artifact; its output is in {work / 'convert.log'}")
            if ok:
                stamp.write_text(json.dumps(want))
        return out

    def _report(self, out: Path, show: bool) -> list[str]:
        """The targets in the report that can be served; with ``show``, print every row."""
        try:
            rows = json.loads((out / "report.json").read_text())["rows"]
        except (OSError, ValueError, KeyError):
            rows = []
        ok = [row["target"] for row in rows if row.get("status") == "ok"]
        for row in rows if show else []:
            status = row.get("status")
            if status == "ok":
                parity = row.get("parity") or {}
                lat = row.get("latency_ms") or {}
                self.note(f"[green]ok[/]      {row['target']:<16} {(row.get('size_bytes') or 0) / 1e6:6.1f} MB"
                          + (f"  {parity.get('metric')} mean {parity.get('mean'):.4f}" if parity.get("mean")
                             is not None else "")
                          + (f"  p50 {lat['p50']:.1f} ms" if lat.get("p50") is not None else ""))
            else:
                err = (row.get("error") or {}).get("message", "")
                self.note(f"[yellow]{status}[/] {row.get('target')}: {escape(err[:150])}")
        return ok

    def step_bundle(self, convert_dir: Path, work: Path) -> Path:
        self.header(3, "bundle for linux")
        out = work / "bundle.tar.gz"
        with self.timings.step("bundle"):
            result = self.run_step(_edgekit("bundle", str(convert_dir), "--platform", "linux", "--out", str(out)),
                                   work / "bundle.log")
            if result.returncode == 2 and "not implemented" in result.stdout:
                self.note("edgekit bundle is not in this build: the agent serves the converted directory")
                return convert_dir
            if result.returncode != 0:
                raise QuickstartError(f"edgekit bundle failed (exit {result.returncode}); see {work / 'bundle.log'}")
        return out

    def step_verify(self, bundle: Path, work: Path) -> None:
        self.header(4, "verify the bundle (checksums, parity)")
        with self.timings.step("verify"):
            result = self.run_step(_edgekit("verify", str(bundle)), work / "verify.log", show=False)
            tail = result.stdout.splitlines()[-1:] or [""]
            self.note(tail[0])
            if result.returncode != 0:
                raise QuickstartError(f"edgekit verify failed on {bundle}; see {work / 'verify.log'}")

    def step_broker(self, stack: contextlib.ExitStack, work: Path) -> BrokerOptions:
        self.header(5, "MQTT broker")
        with self.timings.step("broker"):
            if self.o.broker is not None:
                with MqttSession(self.o.broker) as probe:
                    probe.start(timeout=10)
                    version = probe.protocol
                self.note(f"using {self.o.broker.url} (MQTT {version})")
                return dataclasses.replace(self.o.broker, mqtt_version=version or "5")
            from edgekit.broker import embedded_broker

            (work / "broker").mkdir(exist_ok=True)
            broker = embedded_broker(self.o.embedded_broker, workdir=work / "broker")
            stack.callback(broker.close)
            broker.start()
            self.note(f"embedded {broker.kind} on {broker.url} (MQTT {broker.mqtt_version}, loopback only)")
            return BrokerOptions.parse(broker.url, mqtt_version=broker.mqtt_version)

    def step_agent(self, stack: contextlib.ExitStack, bundle: Path, broker: BrokerOptions, profile: str,
                   work: Path) -> subprocess.Popen[Any]:
        self.header(6, f"start the agent as device {self.o.device_id!r}")
        args = ["agent", "--bundle", str(bundle), "--device-id", self.o.device_id, "--broker", broker.url,
                "--profile", profile, "--telemetry-interval", "1", "--spool", str(work / "agent-spool.sqlite"),
                "--mqtt-version", broker.mqtt_version]
        for flag, value in (("--ca-file", broker.ca_file), ("--cert-file", broker.cert_file),
                            ("--key-file", broker.key_file), ("--username", broker.username)):
            if value:
                args += [flag, str(value)]
        if broker.password:
            secret = work / "mqtt-password"
            secret.write_text(broker.password)
            secret.chmod(0o600)
            args += ["--password-file", str(secret)]
        log_path = work / "agent.log"
        self.note(f"$ edgekit {' '.join(args)}", style="dim")
        with self.timings.step("agent ready"):
            with open(log_path, "ab") as log_file:
                agent = subprocess.Popen(_edgekit(*args), stdout=log_file, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig)
            self.children.append(agent)
            stack.callback(self.stop_agent, agent)
            status = self._wait_online(agent, broker, log_path)
        self.note(f"online: pid {agent.pid}, target {status.get('target')}, runtime {status.get('runtime')}, "
                  f"memory cap {status.get('memory_cap_mb')} MB; log {log_path}")
        return agent

    def _wait_online(self, agent: subprocess.Popen[Any], broker: BrokerOptions, log_path: Path) -> dict[str, Any]:
        client = InferClient(broker, self.o.device_id)
        with client:
            deadline = time.monotonic() + AGENT_READY_TIMEOUT_S
            with self.console.status("  loading the model…"):
                while time.monotonic() < deadline:
                    status = client.status or {}
                    if status.get("state") == "online" and agent.poll() is None:
                        return status
                    if agent.poll() is not None:
                        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
                        raise QuickstartError(f"the agent exited with code {agent.returncode} before it came "
                                              f"online; the end of {log_path}:\n{tail}")
                    time.sleep(0.2)
        raise QuickstartError(f"the agent did not come online within {AGENT_READY_TIMEOUT_S:.0f} s; see {log_path}")

    def step_infer(self, broker: BrokerOptions) -> None:
        from edgekit.quickstart_demo import SENTENCES, similarity_table

        self.header(7, f"send {len(SENTENCES)} sentences in one request")
        with self.timings.step("infer"), InferClient(broker, self.o.device_id) as client:
            reply = client.infer_text(SENTENCES, timeout=60)
        emb = reply.get("embeddings") or []
        lat = reply.get("latency_ms") or {}
        self.note(f"{len(emb)} embeddings × {len(emb[0]) if emb else 0} dims from {reply.get('target')} "
                  f"(batch {reply.get('batch_size')}, inference {lat.get('inference', 0):.1f} ms, "
                  f"round trip {client.last_round_trip_ms or 0:.1f} ms)")
        self.console.print(similarity_table(SENTENCES, emb))

    def step_telemetry(self, broker: BrokerOptions) -> None:
        from edgekit.quickstart_demo import live_table

        self.header(8, f"live telemetry for {self.o.demo_seconds:g} s, under load")
        with self.timings.step("telemetry"):
            live_table(broker, self.o.device_id, self.o.demo_seconds, self.console)

    def stop_agent(self, agent: subprocess.Popen[Any]) -> None:
        if agent.poll() is not None:
            return
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.note("the agent did not stop within 20 s of SIGTERM; killing it", style="yellow")
            agent.kill()
            agent.wait()

"""An MQTT broker on a free loopback port, for quickstart and tests: mosquitto when installed, else amqtt.

Loopback only: nothing here ever listens on a public interface.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from edgekit.errors import NotAvailableError

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout:.0f} s")


class _BrokerProcess:
    """A broker child process on 127.0.0.1:<port>. ``stop()``/``start()`` keep the port, to simulate outages."""

    kind = "broker"
    mqtt_version = "5"
    start_timeout = 10.0

    def __init__(self, port: int | None = None, workdir: Path | None = None) -> None:
        self.port = port or free_port()
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix=f"edgekit-{self.kind}-")
        self.workdir = workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _output(self) -> IO[bytes] | int:
        return subprocess.DEVNULL

    def start(self) -> _BrokerProcess:
        output = self._output()
        try:
            self.proc = subprocess.Popen(self._command(), stdout=output, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        finally:
            if not isinstance(output, int):
                output.close()
        try:
            wait_for_port("127.0.0.1", self.port, timeout=self.start_timeout)
        except TimeoutError:
            self.stop()
            raise
        log.debug("%s pid %s on %s", self.kind, self.proc.pid, self.url)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self) -> _BrokerProcess:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class MosquittoBroker(_BrokerProcess):
    """A real mosquitto on 127.0.0.1:<port>."""

    kind = "mosquitto"

    def __init__(self, port: int | None = None, extra_config: str = "", workdir: Path | None = None) -> None:
        exe = shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
        )
        if exe is None:
            raise NotAvailableError("mosquitto is not installed (Debian/Ubuntu: apt-get install mosquitto)")
        super().__init__(port, workdir)
        self.exe = exe
        self.extra_config = extra_config

    def _command(self) -> list[str]:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"log_dest file {self.workdir / 'mosquitto.log'}\nlog_type error\nlog_type warning\n"
            f"{self.extra_config}\n"
        )
        return [self.exe, "-c", str(conf)]


class AmqttBroker(_BrokerProcess):
    """A pure-Python amqtt broker on 127.0.0.1:<port> in its own process, for machines without mosquitto.

    amqtt 0.12 speaks MQTT 3.1.1 only (it refuses v5 clients), hence ``mqtt_version``; its default
    configuration binds 0.0.0.0:1883, so the listener is written out explicitly.
    """

    kind = "amqtt"
    mqtt_version = "3.1.1"
    start_timeout = 30.0

    def __init__(self, port: int | None = None, workdir: Path | None = None) -> None:
        if importlib.util.find_spec("amqtt") is None:
            raise NotAvailableError("amqtt is not installed (pip install amqtt), and neither is mosquitto "
                                    "(Debian/Ubuntu: apt-get install mosquitto)")
        super().__init__(port, workdir)

    def _command(self) -> list[str]:
        conf = self.workdir / "amqtt.yaml"
        conf.write_text(
            "listeners:\n  default:\n    type: tcp\n"
            f"    bind: 127.0.0.1:{self.port}\n"
            "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
        )
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]

    def _output(self) -> IO[bytes] | int:
        return open(self.workdir / "amqtt.log", "ab")  # noqa: SIM115 - closed by start() once the child has it

EMBEDDED_KINDS = ("auto", "mosquitto", "amqtt")


def embedded_broker(kind: str = "auto", workdir: Path | None = None) -> MosquittoBroker | AmqttBroker:
    """A broker to start on loopback: mosquitto when installed, else amqtt (``kind`` forces one)."""
    if kind not in EMBEDDED_KINDS:
        raise NotAvailableError(f"embedded broker {kind!r} is not one of {', '.join(EMBEDDED_KINDS)}")
    if kind in ("auto", "mosquitto"):
        try:
            # without TCP_NODELAY a request/response round trip on loopback waits ~40 ms for delayed ACKs
            return MosquittoBroker(workdir=workdir, extra_config="set_tcp_nodelay true")
        except NotAvailableError:
            if kind == "mosquitto":
                raise
            log.info("mosquitto is not installed; using the pure-Python amqtt broker (MQTT 3.1.1)")
    return AmqttBroker(workdir=workdir)

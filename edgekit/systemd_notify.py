"""sd_notify for the agent under ``Type=notify``: ``READY=1`` once the model is loaded, ``WATCHDOG=1`` only while
the inference loop makes progress, ``STOPPING=1`` on shutdown.

The protocol is a datagram of ``KEY=VALUE`` lines to the AF_UNIX socket in ``$NOTIFY_SOCKET`` (a leading ``@``
means the abstract namespace), so no libsystemd binding is needed. Outside systemd (no ``$NOTIFY_SOCKET``) every
call is a no-op, so the same agent code runs in a terminal and in tests.

The watchdog contract: the inference loop calls :meth:`Notifier.progress` every time it completes an iteration
(a batch served, or an idle wake-up with an empty queue); a heartbeat calls :meth:`Notifier.watchdog` every half
:func:`watchdog_interval`, which pings only if progress was recorded since the last ping. A model stuck inside a
call stops the progress marks, the pings stop, and systemd kills and restarts the agent (``WatchdogSec=``)::

    notifier = Notifier()
    load_model()
    notifier.ready(status="serving minilm-int8")
    stop = threading.Event()
    threading.Thread(target=notifier.heartbeat, args=(stop,), daemon=True).start()
    while running:
        serve_one_batch_or_idle_tick()
        notifier.progress()
    notifier.stopping()
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds systemd waits between pings (``$WATCHDOG_USEC``), or None when the watchdog is off or meant for
    another process (``$WATCHDOG_PID`` names someone else)."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000


class Notifier:
    """Sends sd_notify messages; thread-safe, never raises (a lost notification is logged once)."""

    def __init__(self, socket_path: str | None = None, *, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        path = socket_path if socket_path is not None else env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = None
        if path.startswith("@"):
            self._address = b"\0" + path[1:].encode()
        elif path.startswith("/"):
            self._address = path
        elif path:
            log.warning("NOTIFY_SOCKET=%r is not a unix socket path; systemd notifications are off", path)
        self._interval = watchdog_interval(env)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._progress = False
        self._last_progress = time.monotonic()
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def interval(self) -> float | None:
        """The watchdog interval in seconds, or None when systemd runs no watchdog for this process."""
        return self._interval

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields in one datagram; True when it was delivered."""
        if self._address is None:
            return False
        message = "\n".join(fields).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(message, self._address)
                return True
            except OSError as err:
                if not self._warned:
                    log.warning("cannot notify systemd at %r: %s", self._address, err)
                    self._warned = True
                return False

    def ready(self, status: str | None = None) -> bool:
        """The model is loaded and the agent serves: ends systemd's start-up wait (``Type=notify``)."""
        self.progress()
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []), f"MAINPID={os.getpid()}")

    def status(self, text: str) -> bool:
        """A one-line state shown by ``systemctl status``."""
        return self.notify(f"STATUS={text}")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more start-up (or stop) time, e.g. while a large model loads."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")

    def progress(self) -> None:
        """The inference loop completed an iteration; the next :meth:`watchdog` call may ping."""
        with self._lock:
            self._progress = True
            self._last_progress = time.monotonic()

    def seconds_since_progress(self) -> float:
        with self._lock:
            return time.monotonic() - self._last_progress

    def watchdog(self) -> bool:
        """Send ``WATCHDOG=1`` if progress was recorded since the last ping; True when a ping was sent."""
        with self._lock:
            progressed, self._progress = self._progress, False
        if not progressed:
            return False
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown began (in-flight requests are finishing)."""
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def heartbeat(self, stop: threading.Event, interval: float | None = None) -> None:
        """Call :meth:`watchdog` every half watchdog interval until ``stop`` is set; run it in a daemon thread.
        Returns at once when there is no watchdog and no explicit ``interval``."""
        period = interval if interval is not None else (self._interval / 2 if self._interval else None)
        if period is None or not self.enabled:
            return
        while not stop.wait(period):
            self.watchdog()

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

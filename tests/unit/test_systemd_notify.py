"""sd_notify over a real AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgekit.systemd_notify import Notifier, watchdog_interval

pytestmark = pytest.mark.unit


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()


def received(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines())


def nothing_pending(sock: socket.socket) -> bool:
    sock.settimeout(0.05)
    try:
        sock.recv(4096)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(2)
    return False


def test_ready_status_and_stopping_reach_the_socket(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    n = Notifier(env={"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready(status="serving minilm")
    assert received(sock) == {"READY": "1", "STATUS": "serving minilm", "MAINPID": str(os.getpid())}
    assert n.status("queue 3")
    assert received(sock) == {"STATUS": "queue 3"}
    assert n.extend_timeout(90)
    assert received(sock) == {"EXTEND_TIMEOUT_USEC": "90000000"}
    assert n.stopping()
    assert received(sock) == {"STOPPING": "1"}
    n.close()


def test_watchdog_pings_only_after_progress(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    n = Notifier(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    assert not n.watchdog(), "no progress yet: a hung loop must not be reported alive"
    assert nothing_pending(sock)
    n.progress()
    n.progress()
    assert n.watchdog()
    assert received(sock) == {"WATCHDOG": "1"}
    assert not n.watchdog(), "one ping per period of progress"
    assert nothing_pending(sock)


def test_heartbeat_thread_stops_pinging_when_the_loop_hangs(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    n = Notifier(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})  # 0.1 s: heartbeat every 0.05 s
    stop = threading.Event()
    beat = threading.Thread(target=n.heartbeat, args=(stop,), daemon=True)
    beat.start()
    n.progress()
    assert received(sock) == {"WATCHDOG": "1"}
    # The loop is now "stuck": no progress() calls, so no more pings.
    assert nothing_pending(sock) and nothing_pending(sock)
    n.progress()
    assert received(sock) == {"WATCHDOG": "1"}
    stop.set()
    beat.join(2)
    assert not beat.is_alive()


def test_abstract_namespace_socket() -> None:
    name = f"edgekit-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        assert Notifier(env={"NOTIFY_SOCKET": "@" + name}).ready()
        assert received(sock)["READY"] == "1"
    finally:
        sock.close()


def test_noop_without_systemd() -> None:
    n = Notifier(env={})
    assert not n.enabled
    assert not n.ready() and not n.stopping()
    n.progress()
    assert not n.watchdog()
    n.heartbeat(threading.Event())  # returns at once: no watchdog configured


def test_a_vanished_socket_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    n = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert not n.ready()
    assert not n.stopping()
    assert sum("cannot notify systemd" in r.message for r in caplog.records) == 1


def test_watchdog_interval() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None, "meant for another pid"
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({}) is None

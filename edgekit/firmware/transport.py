"""How ``edgekit provision`` reaches a device: this machine (``--local``), or the system ``ssh`` with key-based
login only (``BatchMode=yes``: it never stops to ask for a password).

Files go over as a tar stream on the ssh connection, which keeps their modes (the secrets stay 0600) and needs
nothing on the device but tar.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

from edgekit.errors import ProvisioningError

# What the device reports about itself; runs under the device's python3 (3.6 on JetPack 4, so nothing newer).
FACTS_SCRIPT = r"""
import json, os, platform, shutil, subprocess, sys
root = sys.argv[1] if len(sys.argv) > 1 else "/"
def read(rel):
    try:
        with open(os.path.join(root, rel), "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\x00", "")
    except OSError:
        return None
def systemd():
    try:
        out = subprocess.Popen(["systemctl", "--version"], stdout=subprocess.PIPE).communicate()[0]
        return int(out.decode().split()[1])
    except (OSError, IndexError, ValueError):
        return None
bundles = os.path.join(root, "opt/edgekit/bundles")
try:
    bundle = os.readlink(os.path.join(bundles, "current"))
except OSError:
    bundle = None
if bundle and not os.path.isdir(os.path.join(bundles, bundle)):
    bundle = None
files = ("proc/cpuinfo", "proc/device-tree/model", "sys/firmware/devicetree/base/model",
         "etc/nv_tegra_release", "sys/class/dmi/id/product_name")
print(json.dumps({
    "uid": os.geteuid(), "machine": platform.machine(), "python": "%d.%d" % sys.version_info[:2],
    "systemd": systemd(), "files": dict((rel, read(rel)) for rel in files),
    "stamp": (read("opt/edgekit/venv/.edgekit-requirements") or "").strip() or None,
    "bundle": bundle, "sudo": shutil.which("sudo") is not None,
}))
"""

Echo = Callable[[str], None]


class LocalTransport:
    """This machine; the payload is used where it was built."""

    name = "this machine"

    def run(self, argv: list[str], *, input: str | None = None, sudo: bool = False, echo: Echo | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(argv, input=input, echo=echo, check=check, what=argv[0])

    def upload(self, local: Path) -> str:
        return str(local)

    def cleanup(self, remote: str) -> None:
        """Nothing to do: the caller removes its own temporary directory."""


class SshTransport:
    def __init__(self, host: str, *, port: int | None = None, identity: Path | None = None,
                 options: tuple[str, ...] = ()) -> None:
        self.host = host
        self.name = host
        self.base = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=15"]
        if port:
            self.base += ["-p", str(port)]
        if identity:
            self.base += ["-i", str(identity), "-o", "IdentitiesOnly=yes"]
        for opt in options:
            self.base += ["-o", opt]

    def run(self, argv: list[str], *, input: str | None = None, sudo: bool = False, echo: Echo | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        remote = shlex.join((["sudo", "-n"] if sudo else []) + argv)
        return _run([*self.base, self.host, "--", remote], input=input, echo=echo, check=check,
                    what=f"{argv[0]} on {self.host}", ssh_host=self.host)

    def upload(self, local: Path) -> str:
        remote = self.run(["mktemp", "-d", "/tmp/edgekit-provision.XXXXXX"]).stdout.strip()
        tar = subprocess.Popen(["tar", "-C", str(local), "-cf", "-", "."], stdout=subprocess.PIPE)
        try:
            proc = subprocess.run([*self.base, self.host, "--", shlex.join(["tar", "-C", remote, "-xf", "-"])],
                                  stdin=tar.stdout, capture_output=True, text=True, check=False)
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar.wait()
        if proc.returncode != 0 or tar.returncode != 0:
            raise ProvisioningError(f"copying the payload to {self.host}:{remote} failed: {proc.stderr.strip()}")
        return remote

    def cleanup(self, remote: str) -> None:
        self.run(["rm", "-rf", remote], check=False)


def _run(cmd: list[str], *, input: str | None, echo: Echo | None, check: bool, what: str,
         ssh_host: str | None = None) -> subprocess.CompletedProcess[str]:
    if echo is None:
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, check=False)
    else:  # stream the device's progress lines as they come
        lines = []
        with subprocess.Popen(cmd, stdin=subprocess.PIPE if input else subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) as p:
            if input:
                assert p.stdin is not None
                p.stdin.write(input)
                p.stdin.close()
            assert p.stdout is not None
            for line in p.stdout:
                lines.append(line)
                echo(line.rstrip("\n"))
        proc = subprocess.CompletedProcess(cmd, p.returncode, "".join(lines), "")
    if ssh_host and proc.returncode == 255:
        last = ((proc.stderr or proc.stdout).strip().splitlines() or ["no output"])[-1]
        hint = ("check the host name and that your key is authorized there (key-based login only; "
                "--ssh-identity FILE)")
        if "Host key verification failed" in last:
            hint = ("this host's key is not in known_hosts yet: connect once with ssh to check it, or pass "
                    "--ssh-option StrictHostKeyChecking=accept-new")
        raise ProvisioningError(f"ssh {ssh_host} failed: {last}; {hint}")
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ProvisioningError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail) or 'no output'}")
    return proc

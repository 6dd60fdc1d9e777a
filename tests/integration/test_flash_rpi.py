"""``edgekit flash rpi`` end to end, through the real command line, on real disk image files.

The images are stand-ins built from Raspberry Pi OS's documented layout (see firmware_standins): an MBR, a FAT32
boot partition with cmdline.txt, config.txt and an issue.txt naming the release, and an ext4 root partition, in
both generations (Bookworm: firstrun.sh; Trixie: cloud-init). Everything written is read back with mtools. The
generated first-boot scripts then run in a throwaway root directory (``--root``), so nothing on this machine
changes; the --device path writes to a regular file behind a stand-in /sys/block tree.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.firmware.scripts import script
from tests.integration.firmware_standins import (
    fat_extract,
    fat_read,
    make_bundle,
    make_device_root,
    make_pi_image,
    make_wheelhouse,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.integration
for tool in ("sfdisk", "mkfs.vfat", "mkfs.ext4", "mcopy"):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (apt-get install fdisk dosfstools e2fsprogs mtools)",
                    allow_module_level=True)

PSK = "correct horse battery"
PROFILE = {"bookworm": "raspberry-pi-4", "trixie": "raspberry-pi-5"}
CAP = {"bookworm": 512, "trixie": 768}


def edgekit(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    d = tmp_path_factory.mktemp("inputs")
    pki = d / "pki"
    for args in (["ca"], ["client", "pi-01"]):
        subprocess.run(["bash", str(script("mosquitto/make-certs.sh")), "--dir", str(pki), *args], check=True,
                       capture_output=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "id")], check=True)
    password_hash = subprocess.run(["openssl", "passwd", "-6", "-salt", "edgekitsalt", "s3cret"], check=True,
                                   capture_output=True, text=True).stdout.strip()
    return {"pki": pki, "pub": d / "id.pub", "hash": password_hash, "bundle": make_bundle(d / "bundle"),
            "wheels": make_wheelhouse(d / "wheels"), "dir": d}


def flash_args(inputs: dict[str, Path | str], release: str, image: Path) -> list[str]:
    pki = Path(inputs["pki"])
    return ["flash", "rpi", "--image", str(image), "--profile", PROFILE[release], "--bundle", str(inputs["bundle"]),
            "--hostname", "pi-01", "--device-id", "pi-01", "--ssh-key", str(inputs["pub"]),
            "--password-hash", str(inputs["hash"]), "--wifi-ssid", "lab", "--wifi-psk", PSK,
            "--wifi-country", "GB", "--timezone", "Europe/London", "--broker", "mqtts://broker.lan:8883",
            "--broker-ca", str(pki / "ca.crt"), "--client-cert", str(pki / "clients/pi-01.crt"),
            "--client-key", str(pki / "clients/pi-01.key"), "--wheels", str(inputs["wheels"])]


@pytest.fixture(scope="module", params=["bookworm", "trixie"])
def flashed(request: pytest.FixtureRequest, inputs: dict[str, Path | str]) -> dict[str, object]:
    release = request.param
    d = Path(inputs["dir"]) / release
    d.mkdir()
    image = make_pi_image(d / "raspios.img", release)
    before = hashlib.sha256(image.read_bytes()).hexdigest()
    out = d / "pi-01.img"
    proc = edgekit(*flash_args(inputs, release, image), "--out", str(out))
    return {"release": release, "image": image, "before": before, "out": out, "proc": proc, "dir": d}


def test_image_is_customised_and_reads_back(flashed: dict[str, object], inputs: dict[str, Path | str]) -> None:
    release, out, proc = str(flashed["release"]), Path(flashed["out"]), flashed["proc"]  # type: ignore[arg-type]
    image = Path(flashed["image"])  # type: ignore[arg-type]
    assert hashlib.sha256(image.read_bytes()).hexdigest() == flashed["before"], "the input image is never modified"
    assert out.is_file() and not out.with_name(out.name + ".partial").exists()
    assert f"Raspberry Pi OS {release}" in proc.stdout  # type: ignore[attr-defined]

    cmdline = fat_read(out, "cmdline.txt").decode()
    assert cmdline.count("\n") == 1 and cmdline.endswith("\n"), "cmdline.txt must stay one line"
    tokens = cmdline.split()
    assert "root=PARTUUID=4e639091-02" in tokens and "cgroup_enable=memory" in tokens
    assert "cfg80211.ieee80211_regdom=GB" in tokens
    if release == "bookworm":
        assert tokens[-3:] == ["systemd.run=/boot/firstrun.sh", "systemd.run_success_action=reboot",
                               "systemd.unit=kernel-command-line.target"]
    else:
        assert any(t.startswith("ds=nocloud;i=edgekit-pi-01-") for t in tokens)

    assert fat_read(out, "firstrun.sh") == script("rpi/firstrun.sh").read_bytes()
    assert fat_read(out, "config.txt").startswith(b"# For more options")
    assert fat_read(out, "ssh") == b""
    payload = "edgekit/payload"
    assert fat_read(out, f"{payload}/install-agent.sh") == script("install-agent.sh").read_bytes()
    assert fat_read(out, f"{payload}/wheels/edgekit-0.1.0-py3-none-any.whl").startswith(b"PK")
    assert fat_read(out, f"{payload}/requirements.txt") == b"edgekit[agent]==0.1.0\n"
    pki = Path(inputs["pki"])
    assert fat_read(out, f"{payload}/secrets/client.key") == (pki / "clients/pi-01.key").read_bytes()
    assert fat_read(out, f"{payload}/tls/ca.crt") == (pki / "ca.crt").read_bytes()
    config = tomllib.loads(fat_read(out, f"{payload}/agent.toml").decode())
    assert config == {"device_id": "pi-01", "broker": "mqtts://broker.lan:8883",
                      "bundle": "/opt/edgekit/bundles/current", "memory_cap_mb": CAP[release],
                      "profile": PROFILE[release],
                      "ca_file": "/etc/edgekit/tls/ca.crt", "cert_file": "/etc/edgekit/tls/client.crt",
                      "key_file": "/run/credentials/edgekit-agent.service/client.key"}
    unit = fat_read(out, f"{payload}/edgekit-agent.service").decode()
    assert "Type=notify" in unit and f"MemoryMax={CAP[release]}M" in unit and "DynamicUser=yes" in unit
    env = fat_read(out, f"{payload}/payload.env").decode()
    assert "OFFLINE=1" in env and "DEVICE_ID=pi-01" in env

    if release == "bookworm":
        assert fat_read(out, "edgekit/firstrun/wifi-psk").decode().strip() == PSK
        assert fat_read(out, "edgekit/firstrun/password-hash").decode().strip() == inputs["hash"]
    else:
        yaml = pytest.importorskip("yaml")
        assert yaml.safe_load(fat_read(out, "user-data"))["users"][0]["passwd"] == inputs["hash"]
        net = yaml.safe_load(fat_read(out, "network-config"))
        assert net["wifis"]["wlan0"]["access-points"]["lab"]["password"] == PSK
        assert fat_read(out, "meta-data").decode().startswith("instance-id: edgekit-pi-01-")

    # Secrets never in the settings files, the unit, the config, or anything edgekit printed.
    key_text = (pki / "clients/pi-01.key").read_text().splitlines()[1]
    public = [fat_read(out, p).decode() for p in (f"{payload}/payload.env", f"{payload}/agent.toml",
                                                  f"{payload}/edgekit-agent.service", "edgekit/firstrun/settings.env")]
    public.append(proc.stdout + proc.stderr)  # type: ignore[attr-defined]
    for text in public:
        assert PSK not in text and str(inputs["hash"]) not in text and key_text not in text


def test_generated_scripts_pass_bash_n_and_shellcheck(flashed: dict[str, object], tmp_path: Path) -> None:
    boot = fat_extract(Path(flashed["out"]), tmp_path / "boot")  # type: ignore[arg-type]
    scripts = [boot / "firstrun.sh", boot / "edgekit/payload/install-agent.sh", boot / "edgekit/firstrun/settings.env",
               boot / "edgekit/payload/payload.env"]
    for path in scripts:
        subprocess.run(["bash", "-n", str(path)], check=True)
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    proc = subprocess.run(["shellcheck", "--shell=bash", *map(str, scripts)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def device_python() -> str:
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def test_first_boot_runs_in_a_throwaway_root(flashed: dict[str, object], tmp_path: Path) -> None:
    release = str(flashed["release"])
    root = make_device_root(tmp_path / "root")
    boot = fat_extract(Path(flashed["out"]), root / "boot/firmware")  # type: ignore[arg-type]
    stage = ["--stage", "cloud-init"] if release == "trixie" else []
    run = subprocess.run(["bash", str(boot / "firstrun.sh"), "--root", str(root), *stage], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert PSK not in run.stdout + run.stderr

    # The boot partition is left clean: no payload, no secrets, no first-boot hook.
    left = ["cmdline.txt", "config.txt", "issue.txt", *(["meta-data"] if release == "trixie" else []), "ssh"]
    assert sorted(p.name for p in boot.iterdir()) == left
    cmdline = (boot / "cmdline.txt").read_text()
    assert cmdline.count("\n") == 1 and "systemd.run" not in cmdline and "ds=nocloud" not in cmdline
    assert "cgroup_enable=memory" in cmdline
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert os.readlink(wants / "edgekit-firstboot.service") == "/etc/systemd/system/edgekit-firstboot.service"
    handed = root / "var/lib/edgekit-firstboot"
    assert handed.stat().st_mode & 0o777 == 0o700 and (handed / "secrets/client.key").stat().st_mode & 0o077 == 0

    if release == "bookworm":  # firstrun.sh itself applied the system settings
        assert (root / "etc/hostname").read_text() == "pi-01\n"
        assert "127.0.1.1\tpi-01" in (root / "etc/hosts").read_text()
        assert "edge:x:1000:1000" in (root / "etc/passwd").read_text(), "the placeholder uid-1000 user is renamed"
        assert (root / "etc/sudoers.d/010_pi-nopasswd").read_text() == "edge ALL=(ALL) NOPASSWD: ALL\n"
        shadow = (root / "etc/shadow").read_text()
        assert "edge:$6$edgekitsalt$" in shadow
        keys = root / "home/edge/.ssh/authorized_keys"
        assert keys.read_text().startswith("ssh-ed25519 ") and keys.stat().st_mode & 0o777 == 0o600
        assert keys.stat().st_uid == 1000
        wifi = root / "etc/NetworkManager/system-connections/edgekit-wifi.nmconnection"
        assert f"psk={PSK}" in wifi.read_text() and wifi.stat().st_mode & 0o777 == 0o600
        assert "ssid=lab" in wifi.read_text()
        assert (root / "var/lib/systemd/rfkill/platform-3f300000.mmcnr:wlan").read_text().strip() == "0"
        assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/Europe/London"
        assert os.readlink(wants / "ssh.service").endswith("/ssh.service")
        assert "PasswordAuthentication yes" in (root / "etc/ssh/sshd_config.d/50-edgekit.conf").read_text()
    else:  # cloud-init applied them; the seed holding the secrets is gone and cloud-init is off
        assert not (boot / "user-data").exists() and not (boot / "network-config").exists()
        assert (root / "etc/cloud/cloud-init.disabled").exists()

    # Next boot: edgekit-firstboot.service runs the installer from the root-only copy.
    install = subprocess.run(["bash", str(handed / "install-agent.sh"), "--root", str(root), "--payload", str(handed),
                              "--python", device_python(), "--finish-firstboot", "all"], capture_output=True, text=True)
    assert install.returncode == 0, install.stdout + install.stderr
    assert "edgekit: result: changed=" in install.stdout and "restart=skipped" in install.stdout
    etc = root / "etc/edgekit"
    assert (etc / "agent.toml").stat().st_mode & 0o777 == 0o600
    assert (etc / "secrets").stat().st_mode & 0o777 == 0o700
    assert (etc / "secrets/client.key").stat().st_mode & 0o777 == 0o600
    assert (etc / "tls/ca.crt").stat().st_mode & 0o777 == 0o644
    bundles = root / "opt/edgekit/bundles"
    assert (bundles / "current/manifest.json").is_file() and (bundles / "current/model.onnx").is_file()
    assert (bundles / "current/model.onnx").stat().st_mode & 0o004, "the DynamicUser agent reads the model as other"
    agent = subprocess.run([str(root / "opt/edgekit/venv/bin/edgekit"), "agent", "--config", "x"],
                           capture_output=True, text=True, check=True)
    assert "stand-in edgekit agent" in agent.stdout, "the carried edgekit wheel was installed offline"
    assert os.readlink(wants / "edgekit-agent.service") == "/etc/systemd/system/edgekit-agent.service"
    assert "MemoryMax=" in (root / "etc/systemd/system/edgekit-agent.service").read_text()
    assert not (wants / "edgekit-firstboot.service").exists() and not handed.exists(), "first boot removes itself"


def test_xz_image_to_a_stand_in_card_is_written_and_verified(inputs: dict[str, Path | str], tmp_path: Path) -> None:
    image = make_pi_image(tmp_path / "raspios.img", "bookworm")
    xz = tmp_path / "raspios.img.xz"
    xz.write_bytes(lzma.compress(image.read_bytes(), preset=0))
    sys_root, proc_root, card = tmp_path / "sys", tmp_path / "proc", tmp_path / "dev/sdz"
    (sys_root / "block/sdz").mkdir(parents=True)
    (sys_root / "block/sdz/removable").write_text("1\n")
    (sys_root / "block/sdz/size").write_text(f"{2 * image.stat().st_size // 512}\n")
    proc_root.mkdir()
    (proc_root / "mounts").write_text("/dev/sda2 / ext4 rw 0 0\n")
    card.parent.mkdir()
    card.write_bytes(b"\xff" * 2 * image.stat().st_size)
    args = [*flash_args(inputs, "bookworm", xz), "--device", str(card), "--sys-root", str(sys_root),
            "--proc-root", str(proc_root)]

    refused = edgekit(*args, check=False)
    assert refused.returncode == 1 and "add --yes to confirm" in refused.stderr
    assert card.read_bytes()[:16] == b"\xff" * 16, "nothing is written without --yes"

    done = edgekit(*args, "--yes")
    assert "verified: read back" in done.stdout or "verified: bmap:" in done.stdout
    assert "systemd.run=/boot/firstrun.sh" in fat_read(card, "cmdline.txt").decode()
    assert card.read_bytes()[510:512] == b"\x55\xaa"

    (proc_root / "mounts").write_text("/dev/sdz1 /media/pi/bootfs vfat rw 0 0\n")
    mounted = edgekit(*args, "--yes", check=False)
    assert mounted.returncode == 1 and "/dev/sdz1 is mounted at /media/pi/bootfs" in mounted.stderr


def test_failures_leave_no_output_behind(inputs: dict[str, Path | str], tmp_path: Path) -> None:
    image = make_pi_image(tmp_path / "raspios.img", "bookworm")
    out = tmp_path / "pi.img"
    big = make_bundle(tmp_path / "big", payload=os.urandom(70 << 20))  # more than the 64 MiB boot partition holds
    args = flash_args(inputs, "bookworm", image)
    args[args.index("--bundle") + 1] = str(big)
    args.remove("--wheels")
    args.remove(str(inputs["wheels"]))
    full = edgekit(*args, "--out", str(out), check=False)
    assert full.returncode == 1 and "the boot partition has" in full.stderr and "MiB free" in full.stderr
    assert not out.exists() and not (tmp_path / "pi.img.partial").exists()

    args = flash_args(inputs, "bookworm", image)
    args[args.index("--password-hash") + 1] = "plaintext-password"
    bad = edgekit(*args, "--out", str(out), check=False)
    assert bad.returncode == 1 and "openssl passwd -6" in bad.stderr and "plaintext-password" not in bad.stderr
    assert not out.exists()

    empty = tmp_path / "not-an-image.img"
    empty.write_bytes(b"\0" * (2 << 20))
    junk = edgekit(*flash_args(inputs, "bookworm", empty), "--out", str(out), check=False)
    assert junk.returncode == 1 and "no MBR partition table" in junk.stderr
    assert not out.exists() and not (tmp_path / "pi.img.partial").exists()


def test_help_teaches_the_interface() -> None:
    text = edgekit("flash", "rpi", "--help").stdout
    for option in ("--image", "--profile", "--bundle", "--hostname", "--device-id", "--user", "--password-hash",
                   "--ssh-key", "--wifi-ssid", "--wifi-psk", "--wifi-country", "--timezone", "--broker",
                   "--broker-ca", "--client-cert", "--client-key", "--wheels", "--out", "--device", "--yes"):
        assert option in text, option
    assert "examples:" in text and "openssl passwd -6" in " ".join(text.split())
    assert "--sys-root" not in text, "test-only options stay hidden"

"""The Raspberry Pi boot partition edits: cmdline.txt, OS generation detection, the cloud-init seed."""

from __future__ import annotations

import pytest

from edgekit.errors import ProvisioningError
from edgekit.firmware.rpi_boot import edit_cmdline, network_config, user_data
from edgekit.firmware.rpi_release import detect_release
from edgekit.firmware.settings import LoginSettings, SystemSettings, WifiSettings

pytestmark = pytest.mark.unit
yaml = pytest.importorskip("yaml")
STOCK = "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait " \
        "quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n"


def test_bookworm_cmdline_is_one_line_with_firstrun_and_memory_cgroup() -> None:
    out = edit_cmdline(STOCK, "bookworm", instance_id="x", wifi_country="GB")
    assert out.endswith("\n") and out.count("\n") == 1
    tokens = out.split()
    assert tokens[:8] == STOCK.split()[:8], "the stock arguments keep their order"
    assert "init=/usr/lib/raspberrypi-sys-mods/firstboot" in tokens
    assert tokens[-3:] == ["systemd.run=/boot/firstrun.sh", "systemd.run_success_action=reboot",
                           "systemd.unit=kernel-command-line.target"]
    assert "cgroup_enable=memory" in tokens and "cfg80211.ieee80211_regdom=GB" in tokens
    assert not any(t.startswith("ds=") for t in tokens)


def test_trixie_cmdline_uses_nocloud_and_edits_are_idempotent() -> None:
    once = edit_cmdline(STOCK, "trixie", instance_id="edgekit-pi-1", wifi_country=None)
    assert "ds=nocloud;i=edgekit-pi-1" in once.split() and "systemd.run=/boot/firstrun.sh" not in once
    twice = edit_cmdline(once, "trixie", instance_id="edgekit-pi-2", wifi_country=None)
    assert twice.split().count("cgroup_enable=memory") == 1
    assert [t for t in twice.split() if t.startswith("ds=")] == ["ds=nocloud;i=edgekit-pi-2"]
    # switching generation replaces the hook, never stacks both
    back = edit_cmdline(twice, "bookworm", instance_id="-", wifi_country="DE")
    assert not any(t.startswith("ds=") for t in back.split()) and back.count("systemd.run=") == 1


def test_cmdline_joins_stray_lines_and_refuses_non_pi_files() -> None:
    assert edit_cmdline("root=/dev/mmcblk0p2\r\nrootwait\n", "bookworm", instance_id="x", wifi_country=None) \
        .count("\n") == 1
    with pytest.raises(ProvisioningError, match="no root= argument"):
        edit_cmdline("hello world\n", "bookworm", instance_id="x", wifi_country=None)


@pytest.mark.parametrize(("issue", "files", "release"), [
    ("Raspberry Pi reference 2024-11-19\nGenerated using pi-gen, https://github.com/RPi-Distro/pi-gen, 891df1e, "
     "stage2\n", set(), "bookworm"),
    ("Raspberry Pi reference 2023-10-10\n", set(), "bookworm"),
    ("Raspberry Pi reference 2025-11-24\n", set(), "trixie"),
    ("Raspberry Pi OS trixie, reference 2025-10-01\n", set(), "trixie"),
    (None, {"meta-data", "user-data", "cmdline.txt"}, "trixie"),
])
def test_release_detection(issue: str | None, files: set[str], release: str) -> None:
    assert detect_release(issue, files)[0] == release


def test_old_and_unknown_releases_are_refused() -> None:
    with pytest.raises(ProvisioningError, match="bullseye.*3.10"):
        detect_release("Raspberry Pi reference 2023-05-03\n", set())
    with pytest.raises(ProvisioningError, match="--os-release"):
        detect_release(None, {"cmdline.txt"})


def test_cloud_init_seed_parses_and_quotes_hostile_values() -> None:
    system = SystemSettings(
        hostname="pi-01", timezone="Europe/Berlin",
        login=LoginSettings("edge", "$6$abc$" + "x" * 86, ("ssh-ed25519 AAAAC3Nza key: with colon",)),
        wifi=WifiSettings('lab\'s "net": #1', "pass: word #x", "DE"))
    ud = user_data(system)
    assert ud.startswith("#cloud-config\n")
    doc = yaml.safe_load(ud)
    user = doc["users"][0]
    assert user["name"] == "edge" and user["passwd"].startswith("$6$") and user["lock_passwd"] is False
    assert user["ssh_authorized_keys"] == ["ssh-ed25519 AAAAC3Nza key: with colon"]
    assert doc["ssh_pwauth"] is True and doc["timezone"] == "Europe/Berlin"
    assert doc["runcmd"] == [["bash", "/boot/firmware/firstrun.sh", "--stage", "cloud-init"]]
    net = yaml.safe_load(network_config(system))
    assert net["version"] == 2
    assert net["wifis"]["wlan0"]["access-points"] == {'lab\'s "net": #1': {"password": "pass: word #x"}}
    assert net["wifis"]["wlan0"]["regulatory-domain"] == "DE"

"""Validation of what a device is told at set-up: every bad value fails on the host, quoting it and the fix."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from edgekit.errors import ProvisioningError
from edgekit.firmware.scripts import script
from edgekit.firmware.settings import (
    BrokerSettings,
    check_broker,
    check_broker_url,
    check_device_id,
    check_hostname,
    check_login,
    check_password_hash,
    check_timezone,
    check_wifi,
    read_ssh_key,
)

pytestmark = pytest.mark.unit
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP4oJFHvuZkqU4l7Jh74HrvvvsbcHHuMnmNhSOTQ6RuD ops@laptop"
HASH = "$6$salt1234$" + "a" * 86


@pytest.mark.parametrize("value", ["pi-01", "jetson.orin_7", "A"])
def test_good_device_ids(value: str) -> None:
    assert check_device_id(value) == value


@pytest.mark.parametrize("value", ["", "pi/01", "pi+", "#", "-pi", "a" * 65, "pi 01"])
def test_bad_device_ids_name_the_value(value: str) -> None:
    with pytest.raises(ProvisioningError, match="--device-id"):
        check_device_id(value)


def test_broker_urls() -> None:
    assert check_broker_url("mqtts://broker.lan:8883/") == "mqtts://broker.lan:8883"
    assert check_broker_url("mqtt://127.0.0.1") == "mqtt://127.0.0.1"
    with pytest.raises(ProvisioningError, match="credentials do not belong in the URL"):
        check_broker_url("mqtts://dev:hunter2@broker.lan:8883")
    with pytest.raises(ProvisioningError, match="mqtts://HOST"):
        check_broker_url("http://broker.lan")
    with pytest.raises(ProvisioningError, match="only scheme://host"):
        check_broker_url("mqtt://broker.lan:1883/$topic")
    with pytest.raises(ProvisioningError, match="--broker"):
        check_broker_url("mqtt://broker.lan:99999")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    for args in (["ca"], ["client", "pi-01"]):
        subprocess.run(["bash", str(script("mosquitto/make-certs.sh")), "--dir", str(d), *args], check=True,
                       capture_output=True)
    return d


def test_broker_credentials_must_be_consistent(pki: Path, tmp_path: Path) -> None:
    cert, key = pki / "clients/pi-01.crt", pki / "clients/pi-01.key"
    ok = BrokerSettings("mqtts://b:8883", pki / "ca.crt", cert, key)
    assert check_broker(ok, "pi-01") is ok
    with pytest.raises(ProvisioningError, match="is for 'pi-01' but --device-id is 'pi-02'"):
        check_broker(ok, "pi-02")
    with pytest.raises(ProvisioningError, match="use mqtts://"):
        check_broker(BrokerSettings("mqtt://b", pki / "ca.crt"), "pi-01")
    with pytest.raises(ProvisioningError, match="go together"):
        check_broker(BrokerSettings("mqtts://b", cert_file=cert), "pi-01")
    encrypted = tmp_path / "enc.key"
    encrypted.write_text("-----BEGIN ENCRYPTED PRIVATE KEY-----\nabc\n-----END ENCRYPTED PRIVATE KEY-----\n")
    with pytest.raises(ProvisioningError, match="passphrase-protected"):
        check_broker(BrokerSettings("mqtts://b", cert_file=cert, key_file=encrypted), "pi-01")
    pw = tmp_path / "pw"
    pw.write_text("one\ntwo\n")
    with pytest.raises(ProvisioningError, match="on one line"):
        check_broker(BrokerSettings("mqtt://b", username="pi-01", password_file=pw), "pi-01")
    with pytest.raises(ProvisioningError, match="no such file"):
        check_broker(BrokerSettings("mqtts://b", ca_file=tmp_path / "missing.crt"), "pi-01")


def test_login_needs_a_way_in_and_rejects_plain_passwords(tmp_path: Path) -> None:
    with pytest.raises(ProvisioningError, match="no way in"):
        check_login("edge", None, [])
    with pytest.raises(ProvisioningError, match="openssl passwd -6"):
        check_password_hash("hunter2hunter2")
    assert check_password_hash(HASH) == HASH
    pub = tmp_path / "id.pub"
    pub.write_text(KEY + "\n")
    login = check_login("edge", None, [str(pub), KEY])
    assert login.ssh_keys == (KEY, KEY)
    with pytest.raises(ProvisioningError, match="not a valid login name"):
        check_login("root", HASH, [])
    with pytest.raises(ProvisioningError, match="not a valid login name"):
        check_login("edgekit", HASH, [])


def test_ssh_key_refuses_private_keys(tmp_path: Path) -> None:
    private = tmp_path / "id_ed25519"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nxyz\n-----END OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(ProvisioningError, match="private key; pass the public one"):
        read_ssh_key(str(private))
    with pytest.raises(ProvisioningError, match="expected one OpenSSH public key"):
        read_ssh_key("not a key")


def test_wifi_and_hostname_and_timezone() -> None:
    assert check_wifi(None, None, None) is None
    assert check_wifi("lab", "correct horse", "GB").country == "GB"  # type: ignore[union-attr]
    assert check_wifi("lab", "a" * 64, "DE") is not None  # a raw 256-bit PSK in hex
    with pytest.raises(ProvisioningError, match="go together"):
        check_wifi("lab", "correct horse", None)
    with pytest.raises(ProvisioningError, match="8-63 printable"):
        check_wifi("lab", "short", "GB")
    with pytest.raises(ProvisioningError, match="ISO 3166"):
        check_wifi("lab", "correct horse", "uk")
    assert check_hostname("pi-01") == "pi-01"
    for bad in ("-pi", "pi_01", "pi.lan", "a" * 64):
        with pytest.raises(ProvisioningError, match="--hostname"):
            check_hostname(bad)
    assert check_timezone("Europe/London") == "Europe/London"
    with pytest.raises(ProvisioningError, match="did you mean 'Europe/London'"):
        check_timezone("Europe/Londn")

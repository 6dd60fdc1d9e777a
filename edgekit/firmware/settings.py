"""What a device is told at set-up, validated on the host before anything is written.

Agent side: device id, broker URL and credentials, bundle, memory cap, wheels. System side (fresh images only):
hostname, login, Wi-Fi, timezone. Every check names the option, quotes the bad value and says how to fix it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from edgekit.errors import ProvisioningError

DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
HOSTNAME_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
CRYPT_RE = re.compile(r"^\$(1|2[abxy]|5|6|y|gy|7)\$[./A-Za-z0-9$=,]{8,}$")
SSH_KEY_RE = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
    r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$"
)
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
BROKER_SCHEMES = {"mqtt": 1883, "mqtts": 8883}
# Characters a broker URL may hold: it lands on the unit's ExecStart= line and in TOML.
_URL_FORBIDDEN = re.compile(r"[\s\"'\\`$]")


@dataclass(frozen=True)
class BrokerSettings:
    url: str
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password_file: Path | None = None

    @property
    def tls(self) -> bool:
        return self.url.startswith("mqtts://")

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "", parts.port or BROKER_SCHEMES[parts.scheme]


@dataclass(frozen=True)
class AgentSettings:
    device_id: str
    broker: BrokerSettings
    bundle: Path
    memory_cap_mb: int | None = None
    wheels: Path | None = None


@dataclass(frozen=True)
class WifiSettings:
    ssid: str
    psk: str
    country: str


@dataclass(frozen=True)
class LoginSettings:
    user: str
    password_hash: str | None = None
    ssh_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class SystemSettings:
    hostname: str
    login: LoginSettings
    wifi: WifiSettings | None = None
    timezone: str | None = None


def check_device_id(value: str) -> str:
    if not DEVICE_ID_RE.match(value):
        raise ProvisioningError(
            f"--device-id {value!r} is not valid: use 1-64 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit (it becomes the MQTT topic edgekit/v1/<id>/ and the broker username, so no '/', '+', '#')"
        )
    return value


def check_broker_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in BROKER_SCHEMES or not parts.hostname:
        raise ProvisioningError(
            f"--broker {value!r} is not a broker URL: use mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS)"
        )
    if parts.username or parts.password:
        raise ProvisioningError(
            f"--broker {parts.scheme}://…@{parts.hostname}: credentials do not belong in the URL (it is written to "
            "the unit file and shows in ps); use --mqtt-username and --mqtt-password-file"
        )
    if _URL_FORBIDDEN.search(value) or (parts.path not in ("", "/")):
        raise ProvisioningError(f"--broker {value!r}: only scheme://host[:port] is allowed, without spaces or quotes")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as err:
        raise ProvisioningError(f"--broker {value!r}: {err}") from err
    return value.rstrip("/")


def check_file(path: Path, option: str) -> Path:
    if not path.is_file():
        raise ProvisioningError(f"{option} {path}: no such file")
    return path


def check_broker(b: BrokerSettings, device_id: str) -> BrokerSettings:
    check_broker_url(b.url)
    tls_files = [(b.ca_file, "--broker-ca"), (b.cert_file, "--client-cert"), (b.key_file, "--client-key")]
    for path, option in tls_files:
        if path is not None:
            check_file(path, option)
    if not b.tls and any(p for p, _ in tls_files):
        raise ProvisioningError(f"TLS files were given but --broker {b.url} is plain MQTT: use mqtts://")
    if (b.cert_file is None) != (b.key_file is None):
        raise ProvisioningError("--client-cert and --client-key go together: give both or neither")
    if b.key_file is not None:
        text = b.key_file.read_text(errors="replace")
        if "PRIVATE KEY" not in text:
            raise ProvisioningError(f"--client-key {b.key_file} is not a PEM private key")
        if "ENCRYPTED" in text:
            raise ProvisioningError(
                f"--client-key {b.key_file} is passphrase-protected; the agent starts unattended and cannot type it: "
                "use an unencrypted key (make-certs.sh client NAME makes one)"
            )
    if b.cert_file is not None:
        cn = certificate_cn(b.cert_file)
        if cn is not None and cn != device_id:
            raise ProvisioningError(
                f"--client-cert {b.cert_file} is for {cn!r} but --device-id is {device_id!r}: the broker uses the "
                f"certificate's CN as the username and its ACL confines it to edgekit/v1/{cn}/; issue one with "
                f"make-certs.sh client {device_id}"
            )
    if (b.username is None) != (b.password_file is None):
        raise ProvisioningError("--mqtt-username and --mqtt-password-file go together: give both or neither")
    if b.password_file is not None:
        lines = check_file(b.password_file, "--mqtt-password-file").read_text().splitlines()
        if len(lines) != 1 or not lines[0]:
            raise ProvisioningError(f"--mqtt-password-file {b.password_file} must hold the password on one line")
    return b


def certificate_cn(cert: Path) -> str | None:
    """The subject CN of a PEM certificate (via the openssl CLI), or None when openssl is not installed."""
    if not shutil.which("openssl"):
        return None
    proc = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-subject", "-nameopt", "RFC2253"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ProvisioningError(f"--client-cert {cert} is not a PEM certificate: {proc.stderr.strip()}")
    m = re.search(r"(?:^|[=,])CN=([^,\n]+)", proc.stdout)
    return m.group(1).strip() if m else None


def check_hostname(value: str) -> str:
    if not HOSTNAME_RE.match(value):
        raise ProvisioningError(
            f"--hostname {value!r} is not a valid host name: 1-63 letters, digits and '-', not starting or ending "
            "with '-' (one label, no dots)"
        )
    return value


def check_user(value: str) -> str:
    if not USER_RE.match(value) or value in ("root", "edgekit"):
        raise ProvisioningError(
            f"--user {value!r} is not a valid login name: lowercase letters, digits, '_' and '-', starting with a "
            "letter or '_', at most 32 characters, and neither root nor edgekit (the agent's service account)"
        )
    return value


def check_password_hash(value: str) -> str:
    if not CRYPT_RE.match(value):
        raise ProvisioningError(
            "--password-hash does not look like a crypt(3) hash ($6$…, $y$…, $5$…); never pass the password itself. "
            "Make one with: openssl passwd -6"
        )
    return value


def read_ssh_key(value: str) -> str:
    """An SSH public key given as text or as a path to a .pub file."""
    text = value
    path = Path(value).expanduser()
    if not SSH_KEY_RE.match(value.strip()) and path.is_file():
        text = path.read_text(errors="replace")
    text = text.strip()
    if "PRIVATE KEY" in text:
        raise ProvisioningError(f"--ssh-key {value}: that is a private key; pass the public one (the .pub file)")
    if not SSH_KEY_RE.match(text) or "\n" in text:
        raise ProvisioningError(
            f"--ssh-key {value[:40]!r}: expected one OpenSSH public key ('ssh-ed25519 AAAA… comment') or a path to "
            "a .pub file"
        )
    return text


def check_wifi(ssid: str | None, psk: str | None, country: str | None) -> WifiSettings | None:
    given = [v is not None for v in (ssid, psk, country)]
    if not any(given):
        return None
    if not all(given):
        raise ProvisioningError("--wifi-ssid, --wifi-psk and --wifi-country go together: give all three or none")
    assert ssid is not None and psk is not None and country is not None
    if not 1 <= len(ssid.encode()) <= 32 or any(ord(c) < 32 for c in ssid):
        raise ProvisioningError(f"--wifi-ssid {ssid!r}: an SSID is 1-32 bytes without control characters")
    hex_psk = len(psk) == 64 and all(c in "0123456789abcdefABCDEF" for c in psk)
    if not hex_psk and not (8 <= len(psk) <= 63 and all(32 <= ord(c) < 127 for c in psk)):
        raise ProvisioningError(
            "--wifi-psk: a WPA passphrase is 8-63 printable ASCII characters (or 64 hex digits); the given one is "
            f"{len(psk)} characters"
        )
    if not COUNTRY_RE.match(country):
        raise ProvisioningError(
            f"--wifi-country {country!r}: use the two-letter ISO 3166 code in capitals (e.g. GB, DE, US); Wi-Fi stays "
            "blocked on Raspberry Pi OS until it is set"
        )
    return WifiSettings(ssid, psk, country)


def check_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    import zoneinfo

    known = zoneinfo.available_timezones()
    if known and value not in known:
        import difflib

        near = difflib.get_close_matches(value, sorted(known), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else "; see timedatectl list-timezones"
        raise ProvisioningError(f"--timezone {value!r} is not a known IANA time zone{hint}")
    if not known and not re.match(r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$", value):
        raise ProvisioningError(f"--timezone {value!r} is not an IANA time zone name like Europe/Berlin")
    return value


def check_login(user: str, password_hash: str | None, ssh_keys: list[str]) -> LoginSettings:
    if password_hash is None and not ssh_keys:
        raise ProvisioningError(
            "give --password-hash or --ssh-key (or both): a headless device with neither has no way in"
        )
    return LoginSettings(
        user=check_user(user),
        password_hash=check_password_hash(password_hash) if password_hash is not None else None,
        ssh_keys=tuple(read_ssh_key(k) for k in ssh_keys),
    )

"""Command-line options shared by ``edgekit flash rpi``, ``flash jetson`` and ``provision``, and their conversion
into validated settings."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgekit.firmware.settings import (
    AgentSettings,
    BrokerSettings,
    SystemSettings,
    check_broker,
    check_device_id,
    check_hostname,
    check_login,
    check_timezone,
    check_wifi,
)

DEFAULT_USER = "edge"


def add_agent_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the agent on the device")
    g.add_argument("--bundle", type=Path, required=True, metavar="PATH",
                   help="Linux bundle (directory, .tar.gz or .zip from 'edgekit bundle'); its checksums are verified")
    g.add_argument("--device-id", required=True, metavar="ID",
                   help="the device's id: MQTT topics edgekit/v1/ID/..., and its broker username / certificate CN")
    g.add_argument("--broker", required=True, metavar="URL", help="mqtts://HOST[:PORT] (TLS) or mqtt://HOST[:PORT]")
    g.add_argument("--broker-ca", type=Path, metavar="FILE", help="CA certificate that signed the broker's")
    g.add_argument("--client-cert", type=Path, metavar="FILE", help="the device's client certificate (CN = ID)")
    g.add_argument("--client-key", type=Path, metavar="FILE",
                   help="its private key; installed root-only, handed to the agent as a systemd credential")
    g.add_argument("--mqtt-username", metavar="USER", help="broker username (with --mqtt-password-file)")
    g.add_argument("--mqtt-password-file", type=Path, metavar="FILE",
                   help="file holding the broker password (never on the command line: it would show in ps)")
    g.add_argument("--wheels", type=Path, metavar="DIR",
                   help="wheelhouse for the device (an edgekit wheel and its pinned dependencies, built for the "
                        "device's Python and CPU): install without internet. Without it, pip uses the index")
    g.add_argument("--memory-cap", type=int, metavar="MB",
                   help="the agent's memory cap (systemd MemoryMax=); default: the profile's memory.cap_mb")


def add_system_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the operating system")
    g.add_argument("--hostname", required=True, metavar="H", help="host name (one DNS label)")
    g.add_argument("--user", default=DEFAULT_USER, metavar="U", help=f"login user (default: {DEFAULT_USER})")
    g.add_argument("--password-hash", metavar="HASH",
                   help="crypt(3) hash of the user's password, from: openssl passwd -6 (enables SSH passwords)")
    g.add_argument("--ssh-key", action="append", default=[], metavar="KEY",
                   help="SSH public key (text or a .pub file) for the user; repeatable. Without --password-hash, "
                        "key-only login")
    g.add_argument("--wifi-ssid", metavar="S", help="Wi-Fi network name (with --wifi-psk and --wifi-country)")
    g.add_argument("--wifi-psk", metavar="P", help="Wi-Fi passphrase (stored root-only on the device)")
    g.add_argument("--wifi-country", metavar="CC", help="two-letter country code (Wi-Fi stays off without it)")
    g.add_argument("--timezone", metavar="TZ", help="IANA time zone, e.g. Europe/Berlin (default: the image's)")


def broker_settings(args: argparse.Namespace) -> BrokerSettings:
    return BrokerSettings(args.broker, args.broker_ca, args.client_cert, args.client_key, args.mqtt_username,
                          args.mqtt_password_file)


def agent_settings(args: argparse.Namespace) -> AgentSettings:
    device_id = check_device_id(args.device_id)
    broker = check_broker(broker_settings(args), device_id)
    return AgentSettings(device_id, broker, args.bundle, args.memory_cap, args.wheels)


def system_settings(args: argparse.Namespace) -> SystemSettings:
    return SystemSettings(
        hostname=check_hostname(args.hostname),
        login=check_login(args.user, args.password_hash, args.ssh_key),
        wifi=check_wifi(args.wifi_ssid, args.wifi_psk, args.wifi_country),
        timezone=check_timezone(args.timezone),
    )

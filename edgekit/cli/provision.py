"""``edgekit provision HOST``: install and start the agent on a running Linux device (over ssh, or --local)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Install the agent on a device that already runs Linux, over ssh (key-based; the system ssh client) or on this
machine with --local: detect the device's profile, create /opt/edgekit/venv with edgekit[agent] and the
profile's runtime pinned, install the bundle, write /etc/edgekit/agent.toml (secrets root-only), install and
enable the hardened systemd unit, start it, and wait until the agent reports online on the broker.

Idempotent: running it again changes nothing and restarts nothing. With a new bundle it swaps the bundle in
atomically (the previous one is kept for rollback) and restarts the agent. The ssh user must be root or have
passwordless sudo."""

EPILOG = """\
examples:
  edgekit provision pi@10.0.0.21 --bundle pi4-bundle.tar.gz --device-id pi-21 \\
      --broker mqtts://broker.lan:8883 --broker-ca pki/ca.crt \\
      --client-cert pki/clients/pi-21.crt --client-key pki/clients/pi-21.key \\
      --consumer-cert pki/clients/edgekit-consumer.crt --consumer-key pki/clients/edgekit-consumer.key
  sudo edgekit provision --local --bundle nuc-bundle.tar.gz --device-id nuc-01 --broker mqtt://127.0.0.1:1883"""


def add_parser(sub: Any) -> None:
    from edgekit.firmware.cli_options import add_agent_options

    p = sub.add_parser("provision", help="install the agent on a running Linux device (ssh or --local)",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("host", nargs="?", metavar="HOST", help="[user@]host to reach with ssh")
    p.add_argument("--local", action="store_true", help="provision this machine instead of HOST (needs root)")
    p.add_argument("--root", type=Path, default=Path("/"), metavar="DIR",
                   help="install under DIR on the device instead of / (tests, chroots); starts nothing")
    p.add_argument("--profile", metavar="NAME", help="device profile (default: detected on the device)")
    add_agent_options(p)
    p.add_argument("--ort-wheel", type=Path, metavar="FILE", help="Jetson: onnxruntime-gpu wheel for its JetPack")
    ssh = p.add_argument_group("ssh")
    ssh.add_argument("--ssh-port", type=int, metavar="N", help="ssh port (default: 22 or ~/.ssh/config)")
    ssh.add_argument("--ssh-identity", type=Path, metavar="FILE", help="private key to log in with")
    ssh.add_argument("--ssh-option", action="append", default=[], metavar="OPT",
                     help="extra ssh -o option, e.g. StrictHostKeyChecking=accept-new; repeatable")
    v = p.add_argument_group("checking the agent is online (as a consumer: a device may read only its own requests)")
    v.add_argument("--no-verify", action="store_true", help="do not wait for the online status")
    v.add_argument("--verify-timeout", type=float, default=120.0, metavar="S", help="how long to wait (default 120)")
    v.add_argument("--consumer-cert", type=Path, metavar="FILE", help="consumer client certificate")
    v.add_argument("--consumer-key", type=Path, metavar="FILE", help="its key")
    v.add_argument("--consumer-username", metavar="USER", help="consumer username (with --consumer-password-file)")
    v.add_argument("--consumer-password-file", type=Path, metavar="FILE", help="file holding its password")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgekit.errors import UsageError
    from edgekit.firmware.cli_options import agent_settings
    from edgekit.firmware.online import VerifySettings
    from edgekit.firmware.provision import ProvisionRequest, provision
    from edgekit.firmware.settings import BrokerSettings

    if bool(args.host) == bool(args.local):
        raise UsageError("name the device: edgekit provision HOST ..., or --local for this machine")
    agent = agent_settings(args)
    verify = None
    if not args.no_verify:
        verify = VerifySettings(BrokerSettings(agent.broker.url, agent.broker.ca_file, args.consumer_cert,
                                               args.consumer_key, args.consumer_username,
                                               args.consumer_password_file), args.verify_timeout)
    req = ProvisionRequest(agent=agent, host=args.host, root=args.root, profile=args.profile,
                           ort_wheel=args.ort_wheel, ssh_port=args.ssh_port, ssh_identity=args.ssh_identity,
                           ssh_options=tuple(args.ssh_option), verify=verify)
    result = provision(req)
    where = args.host or "this machine"
    if result.changed == 0 and result.restart in ("no", "skipped"):
        print(f"{where}: already up to date (profile {result.profile}); nothing changed")
    else:
        print(f"{where}: {result.changed} change(s), agent restart: {result.restart} (profile {result.profile})")
    if result.reboot:
        print(f"{where}: reboot it to turn on the memory cgroup (until then MemoryMax= is not enforced)")
    if result.online is not None:
        print(f"{args.device_id}: online (bundle {result.online.get('bundle', {}).get('version', '?')})")
    elif args.root != Path("/"):
        print(f"installed under {args.root}; not started (--root), so the online check was skipped")
    return 0

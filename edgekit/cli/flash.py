"""``edgekit flash rpi / jetson``: write a customised Raspberry Pi OS image, or stage and flash a Jetson."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

RPI_DESCRIPTION = """\
Customise a Raspberry Pi OS image (.img or .img.xz, Bookworm or Trixie) so that its first boot sets the host
name, user, SSH, Wi-Fi and timezone, turns on the memory cgroup, installs the agent with your bundle, config and
hardened systemd unit, starts it, and removes its own traces. Nothing is mounted: the FAT boot partition is
edited with mtools, so writing an image file needs no root.

Bookworm images get firstrun.sh run from cmdline.txt (systemd.run=); Trixie images get a cloud-init seed
(user-data, network-config, meta-data; ds=nocloud). Secrets (Wi-Fi key, password hash, broker password, client
key) leave the world-readable boot partition on first boot and end up root-only."""

RPI_EPILOG = """\
examples:
  # an image file to write later (bmaptool copy pi-01.img /dev/sdX, or Raspberry Pi Imager's "use custom"):
  edgekit flash rpi --image 2024-11-19-raspios-bookworm-arm64-lite.img.xz --profile raspberry-pi-4 \\
      --bundle pi4-bundle.tar.gz --hostname pi-01 --device-id pi-01 --ssh-key ~/.ssh/id_ed25519.pub \\
      --wifi-ssid lab --wifi-psk 'correct horse' --wifi-country GB --timezone Europe/London \\
      --broker mqtts://broker.lan:8883 --broker-ca pki/ca.crt \\
      --client-cert pki/clients/pi-01.crt --client-key pki/clients/pi-01.key --out pi-01.img

  # straight to an SD card (checked removable and unmounted, then read back and compared):
  edgekit flash rpi ... --device /dev/sdb --yes

  # offline first boot: carry the wheels (built for the image's Python: 3.11 Bookworm, 3.13 Trixie):
  pip wheel --no-deps . -w wheels/
  pip download --only-binary=:all: --platform manylinux2014_aarch64 --python-version 3.11 -d wheels/ \\
      'edgekit[agent]'
  edgekit flash rpi ... --wheels wheels/ --out pi-01.img

certificates for the broker and each device: firmware_scripts/mosquitto/make-certs.sh"""

JETSON_DESCRIPTION = """\
Stage the agent into an unpacked NVIDIA Jetson Linux tree (Linux_for_Tegra/ after apply_binaries.sh) and flash
the board: the payload and a first-boot unit go into rootfs/ (the agent's venv is built on the device at first
boot), tools/l4t_create_default_user.sh creates the headless user, the board must be in USB recovery mode, and
then flash.sh (jetson-nano: JetPack 4.6 / L4T R32.7, to the SD card) or
tools/kernel_flash/l4t_initrd_flash.sh (jetson-orin-nano: JetPack 6 / L4T R36, to NVMe) runs. Needs root;
--dry-run prints every step and command without changing anything."""

JETSON_EPILOG = """\
example:
  sudo edgekit flash jetson --l4t-dir ~/nvidia/Linux_for_Tegra --profile jetson-orin-nano \\
      --bundle orin-bundle.tar.gz --hostname orin-01 --device-id orin-01 --ssh-key ~/.ssh/id_ed25519.pub \\
      --broker mqtts://broker.lan:8883 --broker-ca pki/ca.crt \\
      --client-cert pki/clients/orin-01.crt --client-key pki/clients/orin-01.key --dry-run

The ONNX Runtime GPU wheel must match the JetPack line and the rootfs Python (the profile names it): pass
--ort-wheel FILE or put it in --wheels DIR; otherwise first boot fetches it from the Jetson AI Lab index."""


def add_parser(sub: Any) -> None:
    from edgekit.firmware.cli_options import add_agent_options, add_system_options

    p = sub.add_parser("flash", help="write Raspberry Pi images and flash Jetsons with the agent preinstalled",
                       description="Take a board from a stock OS image to a running, capped, watched agent.")
    fsub = p.add_subparsers(dest="flash_command", metavar="BOARD", required=True)

    rpi = fsub.add_parser("rpi", help="customise a Raspberry Pi OS image (file or SD card)",
                          description=RPI_DESCRIPTION, epilog=RPI_EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    rpi.add_argument("--image", type=Path, required=True, metavar="IMG",
                     help="Raspberry Pi OS image, .img or .img.xz (never modified)")
    rpi.add_argument("--profile", required=True, metavar="NAME", help="raspberry-pi-4 or raspberry-pi-5")
    add_system_options(rpi)
    add_agent_options(rpi)
    out = rpi.add_argument_group("output (one of)")
    dest = out.add_mutually_exclusive_group(required=True)
    dest.add_argument("--out", type=Path, metavar="IMG", help="write the customised image to this file")
    dest.add_argument("--device", type=Path, metavar="/dev/sdX",
                      help="write it to this SD card / USB disk (must be removable and unmounted; needs --yes)")
    out.add_argument("--yes", action="store_true", help="confirm that --device may be erased")
    rpi.add_argument("--os-release", choices=["bookworm", "trixie"],
                     help="the image's Raspberry Pi OS release, when issue.txt does not say")
    rpi.add_argument("--work-dir", type=Path, metavar="DIR", help="scratch space for --device (default: $TMPDIR)")
    rpi.add_argument("--sys-root", type=Path, default=Path("/sys"), help=argparse.SUPPRESS)  # stand-in sysfs (tests)
    rpi.add_argument("--proc-root", type=Path, default=Path("/proc"), help=argparse.SUPPRESS)
    rpi.set_defaults(func=run_rpi)

    jet = fsub.add_parser("jetson", help="stage the agent into an L4T tree and flash a Jetson",
                          description=JETSON_DESCRIPTION, epilog=JETSON_EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    jet.add_argument("--l4t-dir", type=Path, required=True, metavar="DIR",
                     help="the unpacked Linux_for_Tegra directory (with rootfs/, after apply_binaries.sh)")
    jet.add_argument("--profile", required=True, metavar="NAME", help="jetson-nano or jetson-orin-nano")
    add_system_options(jet)
    add_agent_options(jet)
    jet.add_argument("--ort-wheel", type=Path, metavar="FILE",
                     help="onnxruntime-gpu wheel for this JetPack and the rootfs Python")
    jet.add_argument("--ort-index", metavar="URL", help="package index serving onnxruntime-gpu for this JetPack")
    jet.add_argument("--storage", metavar="DEV", help="target storage (default: the profile's, e.g. nvme0n1p1)")
    jet.add_argument("--dry-run", action="store_true", help="print every step and command; change nothing")
    jet.set_defaults(func=run_jetson)


def run_rpi(args: argparse.Namespace) -> int:
    from edgekit.firmware.cli_options import agent_settings, system_settings
    from edgekit.firmware.rpi_image import RpiFlashRequest, flash_rpi
    from edgekit.profiles import load_profile

    req = RpiFlashRequest(image=args.image, profile=load_profile(args.profile), agent=agent_settings(args),
                          system=system_settings(args), out=args.out, device=args.device, yes=args.yes,
                          os_release=args.os_release, work_dir=args.work_dir, sys_root=args.sys_root,
                          proc_root=args.proc_root)
    r = flash_rpi(req)
    first_boot = "firstrun.sh (systemd.run)" if r.release == "bookworm" else "cloud-init (ds=nocloud)"
    print(f"wrote {r.written_to}: Raspberry Pi OS {r.release} ({r.release_reason}), first boot via {first_boot}")
    print(f"  device {req.agent.device_id}, profile {req.profile.name}, bundle {r.bundle_id}")
    print("  agent installs " + ("offline from the carried wheels" if r.offline else
                                 "from the package index on first boot (needs network)"))
    print(f"  boot partition: {r.payload_bytes / 2**20:.1f} MiB added, {r.free_bytes / 2**20:.1f} MiB free")
    if r.verified:
        print(f"  verified: {r.verified}")
    else:
        print(f"next: write it to a card (bmaptool copy {r.written_to} /dev/sdX, or edgekit flash rpi ... "
              "--device /dev/sdX --yes), boot the Pi, then watch it come online:")
    print(f"  edgekit telemetry watch --broker {req.agent.broker.url} --device-id {req.agent.device_id}")
    return 0


def run_jetson(args: argparse.Namespace) -> int:
    from edgekit.firmware.cli_options import agent_settings, system_settings
    from edgekit.firmware.jetson import JetsonFlashRequest, flash_jetson
    from edgekit.profiles import load_profile

    req = JetsonFlashRequest(l4t_dir=args.l4t_dir, profile=load_profile(args.profile), agent=agent_settings(args),
                             system=system_settings(args), ort_wheel=args.ort_wheel, ort_index=args.ort_index,
                             storage=args.storage, dry_run=args.dry_run)
    flash_jetson(req)
    if not args.dry_run:
        print(f"flashed. On its first boot {req.agent.device_id} installs the agent; watch it come online with:\n"
              f"  edgekit telemetry watch --broker {req.agent.broker.url} --device-id {req.agent.device_id}")
    return 0

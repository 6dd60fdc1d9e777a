"""The ``edgekit`` command line. Each command lives in its own module with ``add_parser`` and ``run``.

Only argparse is imported at start-up, so ``edgekit --help`` stays fast; a command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from edgekit import __version__
from edgekit.errors import EdgeKitError

# command name -> module under edgekit.cli that defines add_parser(subparsers) and run(args) -> int
COMMANDS = {
    "profiles": "profiles",
    "convert": "convert",
    "bundle": "bundle",
    "verify": "verify",
    "agent": "agent",
    "infer": "infer",
    "telemetry": "telemetry",
    "bench": "bench",
    "flash": "flash",
    "provision": "provision",
    "quickstart": "quickstart",
    "toolchain": "toolchain",
    "env": "env",
}

EPILOG = """\
the path of a model:
  edgekit convert builtin:all-minilm-l6-v2 --profile raspberry-pi-4 --out out/pi4
  edgekit verify out/pi4
  edgekit bundle out/pi4 --platform linux --out pi4-bundle.tar.gz
  edgekit agent --bundle pi4-bundle.tar.gz --device-id pi-01 --broker mqtt://127.0.0.1:1883
  edgekit infer --broker mqtt://127.0.0.1:1883 --device-id pi-01 --text "hello"
  edgekit quickstart            # all of the above on this machine, with an embedded broker

run 'edgekit COMMAND --help' for the options of each command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgekit",
        description="Edge device deployment kit: convert one model for Raspberry Pi, Jetson, phones and Intel "
        "boxes, check every artifact against the FP32 reference, and serve it with an on-device agent over MQTT.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(f"edgekit.cli.{module}").add_parser(sub)
    return parser


def configure_logging(debug: bool, quiet: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not debug:
        for noisy in ("nncf", "urllib3", "matplotlib", "PIL", "onnx2tf", "absl", "filelock"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    configure_logging(args.debug, args.quiet)
    try:
        return int(args.func(args) or 0)
    except EdgeKitError as err:
        if args.debug:
            raise
        print(f"edgekit {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"edgekit {args.command}: interrupted", file=sys.stderr)
        return 130

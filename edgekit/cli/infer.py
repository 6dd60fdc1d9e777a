"""``edgekit infer``: request/response client for a running agent."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgekit.client.connection import add_broker_args

EPILOG = """\
examples:
  edgekit infer --broker mqtt://127.0.0.1:1883 --device-id pi-01 --text "hello" --text "good morning"
  edgekit infer --broker mqtts://broker.lan --ca-file ca.pem --device-id pi-01 --input batch.npz --json

exit status: 0 ok, 1 the device answered with an error, 2 bad usage, 3 broker unreachable or refusing,
4 no reply within --timeout.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("infer", help="send inference requests to an agent over MQTT",
                       description="Send one request to the agent of --device-id and print its reply. MQTT v5 "
                       "requests carry a response topic and correlation data; with an MQTT 3.1.1 broker the JSON "
                       "carries reply_to and id instead.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_broker_args(p)
    p.add_argument("--device-id", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--text", action="append", help="a sentence (repeatable: one request, one batch)")
    g.add_argument("--input", type=Path, help=".npy, .npz or .json input tensors (or sentences, in .json)")
    p.add_argument("--input-name", help="tensor name for an .npy input (default: the file's stem)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer (default 10)")
    p.add_argument("--json", action="store_true", help="print the whole JSON reply on one line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgekit.client import InferClient, InferErrorReply, broker_options_from_args
    from edgekit.client.tensors import describe_reply, load_input_file

    body = {"text": args.text} if args.text else load_input_file(args.input, args.input_name)
    texts = body.get("text")
    texts = [texts] if isinstance(texts, str) else texts
    client = InferClient(broker_options_from_args(args), args.device_id)
    with client.start(timeout=min(args.timeout, 5.0)):
        try:
            reply = client.request(body, timeout=args.timeout)
        except InferErrorReply as err:
            if args.json:
                print(json.dumps(err.reply))
            raise
    if args.json:
        print(json.dumps(reply))  # one line, for jq and scripts
    else:
        print("\n".join(describe_reply(reply, texts, client.last_round_trip_ms)))
    return 0

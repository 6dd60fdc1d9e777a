"""The consumer side of edgekit's MQTT contract: broker connections, and request/response with an agent.

``edgekit infer``, ``edgekit telemetry`` and ``edgekit quickstart`` are built on this; so can your own tools::

    from edgekit.client import BrokerOptions, InferClient
    with InferClient(BrokerOptions.parse("mqtt://127.0.0.1:1883"), "pi-01") as client:
        reply = client.infer_text(["a sentence", "another one"], timeout=10)

paho-mqtt (``pip install 'edgekit[agent]'``) is imported only when a connection is opened.
"""

from __future__ import annotations

from edgekit.client.connection import (
    BrokerOptions,
    BrokerUnavailable,
    MqttSession,
    add_broker_args,
    broker_options_from_args,
)
from edgekit.client.infer import InferClient, InferErrorReply, InferTimeout

__all__ = [
    "BrokerOptions",
    "BrokerUnavailable",
    "InferClient",
    "InferErrorReply",
    "InferTimeout",
    "MqttSession",
    "add_broker_args",
    "broker_options_from_args",
]

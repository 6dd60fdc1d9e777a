"""Topic names of the MQTT contract: ``edgekit/v1/<device_id>/{status,telemetry,results,infer,cmd}``.

Replies to infer requests go to the requester's own ``edgekit/v1/<device_id>/replies/<client_id>`` (an ACL that
lets a device publish under ``edgekit/v1/<device_id>/#`` covers them).
"""

from __future__ import annotations

from edgekit.errors import UsageError

ROOT = "edgekit/v1"
KINDS = ("status", "telemetry", "results", "infer", "cmd")
# topic kind -> JSON Schema name in edgekit/schemas/ (load with edgekit.manifest.load_schema)
SCHEMAS = {"status": "mqtt-status", "telemetry": "mqtt-telemetry", "results": "mqtt-result",
           "infer": "mqtt-infer", "cmd": "mqtt-cmd"}


def topic(device_id: str, kind: str) -> str:
    return f"{ROOT}/{device_id}/{kind}"


def filters(kinds: tuple[str, ...] | list[str], device: str = "all", share: str | None = None) -> list[str]:
    """Subscription filters for ``kinds`` of one device (or ``all``), optionally in shared group ``share``."""
    who = "+" if device in ("all", "+", "") else device
    if any(c in who for c in "#/") or (who != "+" and "+" in who):
        raise UsageError(f"device id {device!r} must contain none of + # / (or be 'all')")
    if share is not None and (not share or any(c in share for c in "+#/")):
        raise UsageError(f"share group {share!r} must be non-empty and contain none of + # /")
    prefix = f"$share/{share}/" if share else ""
    return [f"{prefix}{ROOT}/{who}/{kind}" for kind in kinds]


def parse(topic_name: str) -> tuple[str, str] | None:
    """``(device_id, kind)`` for a contract topic, else None (replies, other trees)."""
    parts = topic_name.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != ROOT or parts[3] not in KINDS or not parts[2]:
        return None
    return parts[2], parts[3]

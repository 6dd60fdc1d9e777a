"""edgekit: one source model in, verified per-device artifacts, an on-device agent and telemetry out."""

__version__ = "0.1.0"

from edgekit.errors import EdgeKitError

__all__ = ["EdgeKitError", "__version__"]

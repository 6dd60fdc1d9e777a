"""The error tree. One root, one branch per concern; messages say what, the bad value, what is allowed, and the fix."""

from __future__ import annotations


class EdgeKitError(Exception):
    """Root of every error edgekit raises on purpose. The CLI prints it as one line and exits with ``exit_code``."""

    exit_code = 1


class UsageError(EdgeKitError):
    """Bad command-line input that argparse could not catch (e.g. a malformed --input-shape)."""

    exit_code = 2


class NotAvailableError(EdgeKitError):
    """A capability that is not in this build yet, or whose optional extra is not installed."""

    exit_code = 2


class ProfileError(EdgeKitError):
    """A device profile is unknown, malformed or self-contradictory."""


class RegistryError(EdgeKitError):
    """A target id is unknown or registered twice."""


class SourceError(EdgeKitError):
    """A source model cannot be read (truncated, not ONNX, missing files)."""


class ConversionError(EdgeKitError):
    """A converter failed for one target."""


class ValidationMismatch(EdgeKitError):
    """An artifact misses its parity threshold against the FP32 reference."""


class BundleIntegrityError(EdgeKitError):
    """A manifest, checksum or signature does not match the files on disk."""


class AgentConfigError(EdgeKitError):
    """The agent cannot start with the given bundle, config or limits."""


class ProvisioningError(EdgeKitError):
    """Flashing or provisioning a device cannot proceed."""


def missing_extra(package: str, extra: str) -> NotAvailableError:
    """The error for an optional dependency that is not installed, with the install hint."""
    return NotAvailableError(
        f"{package} is not installed; install it with: pip install 'edgekit[{extra}]'"
    )

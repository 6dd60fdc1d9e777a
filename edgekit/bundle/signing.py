"""Ed25519 detached signatures of a bundle's ``manifest.json``.

The manifest lists every file with its SHA-256, so signing the manifest's exact bytes signs the whole bundle:
``verify_signature`` + the checksum check together refuse any changed, added-to-manifest or re-signed file.
The signature lives beside the manifest as ``manifest.json.sig`` (JSON: algorithm, base64 signature, SHA-256 of
the raw public key so a reader can tell which key signed). Keys are PEM files, e.g. from
``openssl genpkey -algorithm ed25519 -out key.pem && openssl pkey -in key.pem -pubout -out key.pub``
or ``generate_keypair``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from edgekit.errors import BundleIntegrityError, UsageError, missing_extra
from edgekit.manifest import MANIFEST_NAME

SIGNATURE_NAME = "manifest.json.sig"
ALGORITHM = "ed25519"


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as err:
        raise missing_extra("cryptography", "convert") from err
    return serialization, ed25519


def key_id(public_key: Any) -> str:
    """SHA-256 of the raw 32-byte public key, hex."""
    serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_private_key(path: Path) -> Any:
    serialization, ed25519 = _crypto()
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except FileNotFoundError:
        raise UsageError(f"signing key {path} does not exist") from None
    except (ValueError, TypeError) as err:
        raise UsageError(f"{path} is not an unencrypted PEM private key: {err}; create one with "
                         "'openssl genpkey -algorithm ed25519 -out key.pem'") from err
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise UsageError(f"{path} holds a {type(key).__name__}; edgekit signs with Ed25519 keys only")
    return key


def load_public_key(path: Path) -> Any:
    serialization, ed25519 = _crypto()
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"public key {path} does not exist") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:  # a private key file also yields its public half
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as err:
            raise UsageError(f"{path} is not a PEM Ed25519 public key: {err}") from err
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise UsageError(f"{path} holds a {type(key).__name__}; edgekit verifies Ed25519 signatures only")
    return key


def generate_keypair(private_path: Path, public_path: Path) -> str:
    """Write a new Ed25519 key pair as PEM files (private 0600); returns the key id."""
    serialization, ed25519 = _crypto()
    key = ed25519.Ed25519PrivateKey.generate()
    private_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    private_path.chmod(0o600)
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_id(key.public_key())


def sign_manifest(bundle_dir: Path, private_key_path: Path) -> Path:
    """Sign ``bundle_dir/manifest.json`` as it is on disk; writes and returns ``manifest.json.sig``."""
    key = load_private_key(private_key_path)
    manifest = (bundle_dir / MANIFEST_NAME).read_bytes()
    record = {"algorithm": ALGORITHM, "signed_file": MANIFEST_NAME,
              "signature": base64.b64encode(key.sign(manifest)).decode("ascii"),
              "public_key_sha256": key_id(key.public_key())}
    out = bundle_dir / SIGNATURE_NAME
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return out


def verify_signature(bundle_dir: Path, public_key_path: Path) -> str:
    """Check ``manifest.json.sig`` against ``manifest.json`` with the given public key; returns the key id.

    Raises BundleIntegrityError when the bundle is unsigned, the signature is malformed, made with another key,
    or the manifest changed after signing. (Checksums of the files are ``edgekit.bundle.verify``'s job.)
    """
    from cryptography.exceptions import InvalidSignature

    public_key = load_public_key(public_key_path)
    sig_path = bundle_dir / SIGNATURE_NAME
    if not sig_path.is_file():
        raise BundleIntegrityError(f"{bundle_dir} is not signed ({SIGNATURE_NAME} is missing) but a public key was "
                                   "given; sign it with 'edgekit bundle ... --sign KEY'")
    try:
        record = json.loads(sig_path.read_text(encoding="utf-8"))
        if record.get("algorithm") != ALGORITHM:
            raise BundleIntegrityError(f"{SIGNATURE_NAME}: algorithm {record.get('algorithm')!r}, expected "
                                       f"{ALGORITHM!r}")
        signature = base64.b64decode(record["signature"], validate=True)
    except (json.JSONDecodeError, KeyError, ValueError) as err:
        raise BundleIntegrityError(f"{SIGNATURE_NAME} is malformed: {err}") from err
    expected = key_id(public_key)
    manifest = (bundle_dir / MANIFEST_NAME).read_bytes()
    try:
        public_key.verify(signature, manifest)
    except InvalidSignature:
        other = record.get("public_key_sha256")
        why = (f"it was signed by another key ({str(other)[:16]}…, yours is {expected[:16]}…)"
               if other and other != expected else "manifest.json was changed after signing")
        raise BundleIntegrityError(f"the signature of {bundle_dir / MANIFEST_NAME} does not verify: {why}") from None
    return expected


def signature_status(bundle_dir: Path, public_key_path: Path | None) -> str:
    """One line for ``edgekit verify``: verified (with a key), or present/absent (without one). Raises on a bad
    signature, or on an unsigned bundle when a key is given."""
    if public_key_path is not None:
        return f"signature ok (Ed25519 key {verify_signature(bundle_dir, public_key_path)[:16]}…)"
    if (bundle_dir / SIGNATURE_NAME).is_file():
        return f"signature present, not checked (pass --key PUB to check {SIGNATURE_NAME})"
    return "unsigned"

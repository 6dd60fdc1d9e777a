"""TLS with a client certificate (a CA, server and client certificates generated here with ``cryptography``) and
username/password (a mosquitto ``password_file`` made with ``mosquitto_passwd``): the agent connects with the
right credentials and is refused with wrong ones."""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from edgekit.broker import MosquittoBroker
from tests.reliability.agent_harness import AgentProcess, Probe, tensor_bundle, wait_online

pytestmark = pytest.mark.integration


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, key, cert) -> None:
    from cryptography.hazmat.primitives import serialization

    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))


def make_pki(d: Path) -> dict[str, Path]:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate for the device."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgekit test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    _write(d / "ca", ca_key, ca)

    def leaf(name: str, usage, san=None) -> None:
        key = _key()
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
             .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        _write(d / name, key, b.sign(ca_key, hashes.SHA256()))

    leaf("server", ExtendedKeyUsageOID.SERVER_AUTH, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    leaf("dev-tls", ExtendedKeyUsageOID.CLIENT_AUTH)
    leaf("probe", ExtendedKeyUsageOID.CLIENT_AUTH)
    return {"ca": d / "ca.crt", "server_crt": d / "server.crt", "server_key": d / "server.key",
            "client_crt": d / "dev-tls.crt", "client_key": d / "dev-tls.key", "probe_crt": d / "probe.crt",
            "probe_key": d / "probe.key"}


def test_tls_with_a_client_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    extra = (f"cafile {pki['ca']}\ncertfile {pki['server_crt']}\nkeyfile {pki['server_key']}\n"
             "require_certificate true\nuser root\n")
    work = tmp_path / "broker"
    work.mkdir()
    with MosquittoBroker(workdir=work, extra_config=extra) as broker:
        url = f"mqtts://127.0.0.1:{broker.port}"
        probe = Probe(broker.port, tls=(pki["ca"], pki["probe_crt"], pki["probe_key"])).start(
            subscribe=["edgekit/v1/dev-tls/#"])
        agent = AgentProcess(tmp_path, tensor_bundle(tmp_path / "bundle"), url, "dev-tls", "--ca-file",
                             str(pki["ca"]), "--cert-file", str(pki["client_crt"]), "--key-file",
                             str(pki["client_key"])).start()
        anonymous = AgentProcess(tmp_path, tmp_path / "bundle", url, "dev-nocert", "--ca-file", str(pki["ca"]))
        try:
            wait_online(probe, "dev-tls")
            reply = probe.request("dev-tls", {"inputs": {"x": {"data": [[1, 2, 3, 4]]}}})
            assert reply["status"] == "ok"
            anonymous.start()  # same CA, no client certificate: the broker must refuse the handshake
            time.sleep(4)
            assert anonymous.proc.poll() is None  # it keeps retrying rather than dying
            assert not [m for m in probe.got("edgekit/v1/dev-nocert/status") if m.get("state") == "online"]
        finally:
            agent.close()
            anonymous.close()
            probe.stop()


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd is not installed")
def test_username_password_and_a_wrong_password_is_refused(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "dev-pw", "s3cret"], check=True)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "probe", "probe-pw"], check=True)
    work = tmp_path / "broker"
    work.mkdir()
    extra = f"allow_anonymous false\npassword_file {passwd}\nuser root\n"
    (tmp_path / "right").write_text("s3cret\n")
    (tmp_path / "wrong").write_text("guess\n")
    bundle = tensor_bundle(tmp_path / "bundle")
    with MosquittoBroker(workdir=work, extra_config=extra) as broker:
        probe = Probe(broker.port, auth=("probe", "probe-pw")).start(subscribe=["edgekit/v1/+/status"])
        good = AgentProcess(tmp_path, bundle, broker.url, "dev-pw", "--username", "dev-pw", "--password-file",
                            str(tmp_path / "right")).start()
        bad = AgentProcess(tmp_path, bundle, broker.url, "dev-pw2", "--username", "dev-pw", "--password-file",
                           str(tmp_path / "wrong")).start()
        try:
            wait_online(probe, "dev-pw")
            deadline = time.monotonic() + 20
            while "refused the connection" not in bad.log and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "refused the connection" in bad.log and "Not authorized" in bad.log, bad.log
            assert bad.proc.poll() is None
            assert not probe.got("edgekit/v1/dev-pw2/status")
        finally:
            good.close()
            bad.close()
            probe.stop()

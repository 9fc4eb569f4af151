"""``amqps://``: the broker's certificate must chain to the trusted CA *and* name the host of the
URL. A local TLS server stands for the broker (its certificate made here); the handshake is what
is checked, so no AMQP is spoken."""

import datetime
import ipaddress
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from coc_shared.bus import Broker


def _certificate(tmp_path, names: list[str], ips: list[str]) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else ips[0])])
    now = datetime.datetime.now(datetime.UTC)
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "broker.pem", tmp_path / "broker.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_server(tmp_path):
    """A TLS listener on 127.0.0.1 presenting a certificate for the names given; it records
    whether a client completed the handshake."""
    servers = []

    def start(names: list[str], ips: list[str]):
        cert, key = _certificate(tmp_path, names, ips)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        state = {"handshakes": 0}

        def serve():
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                try:
                    with context.wrap_socket(conn, server_side=True):
                        state["handshakes"] += 1
                except (ssl.SSLError, OSError):
                    pass

        threading.Thread(target=serve, daemon=True).start()
        servers.append(listener)
        return listener.getsockname()[1], cert, state

    yield start
    for listener in servers:
        listener.close()


def test_a_certificate_for_another_host_is_refused(tls_server):
    port, ca, state = tls_server(["broker.example"], [])
    broker = Broker(f"amqps://u:p@127.0.0.1:{port}//", ca_file=ca)
    conn = broker.connect()
    with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch|match"):
        conn.connect()
    assert state["handshakes"] == 0


def test_a_certificate_from_an_untrusted_ca_is_refused(tls_server, tmp_path):
    port, _ca, state = tls_server([], ["127.0.0.1"])
    other_ca, _ = _certificate(tmp_path / "..", ["other.example"], [])
    conn = Broker(f"amqps://u:p@127.0.0.1:{port}//", ca_file=other_ca).connect()
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.connect()
    assert state["handshakes"] == 0


def test_the_right_host_and_ca_complete_the_handshake(tls_server):
    port, ca, state = tls_server([], ["127.0.0.1"])
    conn = Broker(f"amqps://u:p@127.0.0.1:{port}//", ca_file=ca).connect()
    with pytest.raises(Exception) as info:  # the listener speaks no AMQP: after TLS, it hangs up
        conn.connect()
    assert not isinstance(info.value, ssl.SSLCertVerificationError)
    assert state["handshakes"] >= 1


def test_plain_amqp_has_no_tls():
    assert Broker("amqp://guest:guest@127.0.0.1:5672//").tls is False

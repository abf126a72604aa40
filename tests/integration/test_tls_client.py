"""STARTTLS in the smtp transport, against a real peer: a postern daemon
with TLS on loopback (its certificate for "localhost", signed by a CA
made here), the sending side run as `postern -odi`.

Checked: TLS is used when offered and logged (X=, CV=), the server
certificate is verified against tls_verify_certificates and the host
name, hosts_require_tls without an offer defers, a failed handshake
falls back to clear text when tls_tempfail_tryclear allows it,
hosts_avoid_tls, and $tls_out_cipher in the transport.
"""
import re
import shutil
import subprocess
import time

import pytest

from mta import Daemon, send_through_smtp_transport

OPENSSL = shutil.which("openssl") or "openssl"      # (tests/deps.sh installs it)


def run(*args, cwd=None):
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    run(OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", "/CN=Test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    run(OPENSSL, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/O=Tests/CN=localhost", "-keyout", "server.key", "-out", "server.csr", cwd=d)
    (d / "server.ext").write_text("subjectAltName=DNS:localhost\n")
    run(OPENSSL, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "server.ext", "-out", "server.pem", cwd=d)
    return d


def receiver(postern_bin, tmp_path, pki, extra=""):
    cfg = (f"tls_certificate = {pki}/server.pem\ntls_privatekey = {pki}/server.key\n"
           "acl_smtp_rcpt = accept\n" + extra)
    (tmp_path / "receiver").mkdir(parents=True, exist_ok=True)
    return Daemon(postern_bin, tmp_path / "receiver", cfg)


def send(postern_bin, tmp_path, port, transport_opts="", host="localhost"):
    """Deliver one message at once through an smtp transport to the
    receiver; returns the sender's main log."""
    return send_through_smtp_transport(postern_bin, tmp_path / "sender", port, transport_opts, host)


def received(d, limit=10):
    deadline = time.time() + limit
    while time.time() < deadline:
        if d.queued():
            return d.header_file(d.queued()[0])
        time.sleep(0.05)
    return None


def test_tls_used_and_verified(postern_bin, tmp_path, pki):
    opts = f"  tls_verify_certificates = {pki}/ca.pem\n  tls_verify_hosts = *\n  hosts_require_tls = *\n" \
           "  headers_add = X-Out: $tls_out_cipher $tls_out_certificate_verified\n"
    with receiver(postern_bin, tmp_path, pki) as d:
        log = send(postern_bin, tmp_path, d.port, opts)
        h = received(d)
        rlog = d.mainlog()
    m = re.search(r"=> u@remote\.example R=out T=t H=localhost \[127\.0\.0\.1\] X=(TLS1\.3:\S+:\d+) CV=yes (?:K )?C=", log)
    assert m, log
    assert h and "-received_protocol esmtps\n" in h and f"X-Out: {m.group(1)} 1" in h
    assert re.search(r"P=esmtps X=TLS1\.3:\S+ S=", rlog), rlog


def test_unverifiable_certificate_is_only_noted_by_default(postern_bin, tmp_path, pki):
    """Defaults: tls_try_verify_hosts = * against the system's CAs, which
    do not know this CA: the message goes over TLS, logged CV=no."""
    with receiver(postern_bin, tmp_path, pki) as d:
        log = send(postern_bin, tmp_path, d.port)
        assert received(d)
    assert re.search(r"=> u@remote\.example .* H=localhost \[127\.0\.0\.1\] X=\S+ CV=no (?:K )?C=", log), log


def test_the_host_name_is_checked(postern_bin, tmp_path, pki):
    """The certificate is for "localhost"; the host is reached as 127.0.0.1."""
    opts = f"  tls_verify_certificates = {pki}/ca.pem\n"
    with receiver(postern_bin, tmp_path, pki) as d:
        log = send(postern_bin, tmp_path, d.port, opts, host="127.0.0.1")
        assert received(d)
    assert re.search(r"H=127\.0\.0\.1 \[127\.0\.0\.1\] X=\S+ CV=no (?:K )?C=", log), log
    with receiver(postern_bin, tmp_path / "2", pki) as d:
        log = send(postern_bin, tmp_path / "2", d.port, opts + "  tls_verify_cert_hostnames =\n", host="127.0.0.1")
        assert received(d)
    assert re.search(r"H=127\.0\.0\.1 \[127\.0\.0\.1\] X=\S+ CV=yes (?:K )?C=", log), log


def test_required_tls_not_offered_defers(postern_bin, tmp_path, pki):
    with receiver(postern_bin, tmp_path, pki, "tls_advertise_hosts =\n") as d:
        log = send(postern_bin, tmp_path, d.port, "  hosts_require_tls = *\n")
        time.sleep(0.3)
        assert d.queued() == []
    assert "== u@remote.example R=out T=t defer (-38) H=localhost [127.0.0.1]: a TLS session is required, " \
           "but the server did not offer TLS support" in log, log


def test_failed_handshake_falls_back_to_clear(postern_bin, tmp_path, pki):
    """tls_verify_hosts with CAs that do not know the server's: the
    handshake fails; tls_tempfail_tryclear (default) sends it in clear on a
    new connection; with hosts_require_tls it is deferred."""
    with receiver(postern_bin, tmp_path, pki) as d:
        log = send(postern_bin, tmp_path, d.port, "  tls_verify_hosts = *\n")
        h = received(d)
    assert re.search(r"TLS session: \(SSL_connect\): .*certificate verify failed: delivering unencrypted to "
                     r"H=localhost \[127\.0\.0\.1\] \(not in hosts_require_tls\)", log), log
    assert re.search(r"=> u@remote\.example R=out T=t H=localhost \[127\.0\.0\.1\] (?:K )?C=", log), log
    assert h and "-received_protocol esmtp\n" in h

    with receiver(postern_bin, tmp_path / "2", pki) as d:
        log = send(postern_bin, tmp_path / "2", d.port, "  tls_verify_hosts = *\n  hosts_require_tls = *\n")
        time.sleep(0.3)
        assert d.queued() == []
    assert "unencrypted" not in log
    assert re.search(r"== u@remote\.example R=out T=t defer \(-37\) H=localhost \[127\.0\.0\.1\]: TLS session: "
                     r"\(SSL_connect\): .*certificate verify failed", log), log


def test_hosts_avoid_tls(postern_bin, tmp_path, pki):
    with receiver(postern_bin, tmp_path, pki) as d:
        log = send(postern_bin, tmp_path, d.port, "  hosts_avoid_tls = 127.0.0.1\n")
        h = received(d)
    assert " X=" not in log and h and "-received_protocol esmtp\n" in h

"""STARTTLS in the SMTP server: the real daemon on loopback, real TLS
clients (Python's ssl module over smtplib and raw sockets, and
`openssl s_client`), certificates made with the openssl command.

What is checked: STARTTLS is advertised (with a self-signed certificate
made at run time when tls_certificate is unset, as Exim does), the
handshake, the session forgetting what came before it, the log fields
(X=, CV=, DN=, SNI=), the Received: header, the -H lines, the $tls_in_*
variables and the `encrypted` condition, client certificates
(tls_verify_hosts, tls_try_verify_hosts), a broken configuration (454),
a failed handshake, and input pipelined past STARTTLS being dropped.
"""
import re
import shutil
import smtplib
import socket
import ssl
import subprocess

import pytest

from mta import Daemon

OPENSSL = shutil.which("openssl") or "openssl"      # (tests/deps.sh installs it)

MSG = "From: a@example.org\r\nSubject: tls\r\n\r\nhello\r\n"


def run(*args, cwd=None):
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for mx.test.example signed by it, a client
    certificate signed by it, and a self-signed client certificate."""
    d = tmp_path_factory.mktemp("pki")
    run(OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", "/CN=Test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    for name, cn in (("server", "mx.test.example"), ("client", "client.test.example")):
        run(OPENSSL, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", f"/O=Tests/CN={cn}", "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        ext = d / f"{name}.ext"
        ext.write_text(f"subjectAltName=DNS:{cn}\n")
        run(OPENSSL, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", str(ext), "-out", f"{name}.pem", cwd=d)
    run(OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", "/CN=stranger", "-keyout", "stranger.key", "-out", "stranger.pem", cwd=d)
    return d


def client_ctx(cafile=None, cert=None):
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not cafile:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def send_tls(port, ctx, server_hostname=None, rcpt="u@test.example"):
    """EHLO, STARTTLS, EHLO again, one message; returns the two EHLO replies."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        before = s.ehlo("client.test.example")[1].decode()
        s._host = server_hostname       # (None: no SNI)
        code, _ = s.starttls(context=ctx)
        assert code == 220
        after = s.ehlo("client.test.example")[1].decode()
        s.sendmail("a@example.org", [rcpt], MSG)
    return before, after


ACL = """\
acl_smtp_rcpt = accept
acl_smtp_data = data_acl
begin acl
data_acl:
  warn encrypted = *
       add_header = X-TLS: cipher=$tls_in_cipher ver=$tls_in_ver bits=$tls_in_bits std=$tls_cipher_std \\
                    sni=$tls_in_sni verified=$tls_in_certificate_verified dn=$tls_in_peerdn
  warn !encrypted = *
       add_header = X-TLS: none
  accept
"""


def test_starttls_with_a_self_signed_certificate(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path, "log_selector = +tls_sni +tls_peerdn\n" + ACL) as d:
        before, after = send_tls(d.port, client_ctx())
        assert "STARTTLS" in before.splitlines()
        assert "STARTTLS" not in after.splitlines()          # not again inside TLS
        [mid] = d.queued()
        h = d.header_file(mid)
        log = d.mainlog()
    m = re.search(r"<= a@example\.org H=(?:\S+ )?\(client\.test\.example\) \[127\.0\.0\.1\] P=esmtps X=(TLS1\.[23]):(\S+):(\d+) S=",
                  log)
    assert m, log
    ver, cipher, bits = m.groups()
    assert " CV=" not in log and " DN=" not in log and " SNI=" not in log   # no client cert, no SNI sent
    # the Received: header in Exim's default form, the $tls_in_* variables, the -H lines
    assert re.search(rf"with esmtps  \({ver}\) tls TLS_\S+\n\t\(postern ", h), h
    assert f"X-TLS: cipher={ver}:{cipher}:{bits} ver={ver} bits={bits} std=TLS_" in h
    assert f"-tls_cipher {ver}:{cipher}:{bits}\n" in h and f"-tls_ver {ver}\n" in h
    assert "-tls_resumption A\n" in h and "-tls_certificate_verified" not in h
    assert "-received_protocol esmtps\n" in h


def test_the_clear_session_has_no_tls(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path, ACL) as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=20) as s:
            s.sendmail("a@example.org", ["u@test.example"], MSG)
        [mid] = d.queued()
        h = d.header_file(mid)
    assert "X-TLS: none" in h and "-tls_cipher" not in h and "-received_protocol esmtp\n" in h
    assert "-tls_resumption A\n" in h                     # written always, as Exim's


def test_configured_certificate_verified_by_the_client_with_sni(postern_bin, tmp_path, pki):
    cfg = (f"tls_certificate = {pki}/server.pem\ntls_privatekey = {pki}/server.key\n"
           "log_selector = +tls_sni\n" + ACL)
    with Daemon(postern_bin, tmp_path, cfg) as d:
        send_tls(d.port, client_ctx(cafile=str(pki / "ca.pem")), server_hostname="mx.test.example")
        [mid] = d.queued()
        h = d.header_file(mid)
        log = d.mainlog()
    assert "sni=mx.test.example" in h and "-tls_sni mx.test.example\n" in h
    assert re.search(r"P=esmtps X=\S+ SNI=mx\.test\.example S=", log), log


def test_a_wrong_certificate_file_gives_454(postern_bin, tmp_path, pki):
    cfg = f"tls_certificate = {tmp_path}/missing.pem\n"
    with Daemon(postern_bin, tmp_path, cfg) as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=20) as s:
            s.ehlo("client.test.example")
            code, text = s.docmd("STARTTLS")
            assert (code, text) == (454, b"TLS currently unavailable")
            # the session goes on in clear
            assert s.docmd("NOOP")[0] == 250
        assert d.wait_log("TLS error on connection from (client.test.example) [127.0.0.1] "
                           f"(SSL_CTX_use_certificate_chain_file file={tmp_path}/missing.pem): ")


def test_not_advertised_is_refused(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path, "tls_advertise_hosts =\n") as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=20) as s:
            assert "STARTTLS" not in s.ehlo("client.test.example")[1].decode()
            assert s.docmd("STARTTLS") == (503, b"STARTTLS command used when not advertised")


def test_client_certificates(postern_bin, tmp_path, pki):
    """tls_verify_hosts requires a certificate that verifies against
    tls_verify_certificates; tls_try_verify_hosts only records it."""
    cfg = (f"tls_certificate = {pki}/server.pem\ntls_privatekey = {pki}/server.key\n"
           f"tls_verify_certificates = {pki}/ca.pem\ntls_verify_hosts = 127.0.0.1\n"
           "log_selector = +tls_peerdn\n" + ACL)
    with Daemon(postern_bin, tmp_path, cfg) as d:
        send_tls(d.port, client_ctx(cert=(str(pki / "client.pem"), str(pki / "client.key"))))
        [mid] = d.queued()
        h = d.header_file(mid)
        with pytest.raises((ssl.SSLError, smtplib.SMTPException, ConnectionError, OSError)):
            send_tls(d.port, client_ctx())           # no certificate: the handshake fails
        assert d.wait_log("TLS error on connection from (client.test.example) [127.0.0.1] (SSL_accept): ")
        log = d.mainlog()
    assert re.search(r'P=esmtps X=\S+ CV=yes DN="/O=Tests/CN=client\.test\.example" S=', log), log
    assert "verified=1 dn=/O=Tests/CN=client.test.example" in h and "-tls_certificate_verified\n" in h

    cfg = cfg.replace("tls_verify_hosts", "tls_try_verify_hosts")
    (tmp_path / "try").mkdir()
    with Daemon(postern_bin, tmp_path / "try", cfg) as d:
        send_tls(d.port, client_ctx(cert=(str(pki / "stranger.pem"), str(pki / "stranger.key"))))
        send_tls(d.port, client_ctx())
        log = d.mainlog()
    lines = [l for l in log.splitlines() if " <= " in l]
    assert len(lines) == 2
    assert re.search(r'CV=no DN="/CN=stranger" S=', lines[0]) and " CV=" not in lines[1], lines


def starttls_raw(port, after_ehlo):
    """A raw connection: greeting, EHLO, then the bytes after_ehlo; returns
    the socket and its reader, positioned after the EHLO reply."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"220 ")
    raw.sendall(b"EHLO client.test.example\r\n" + after_ehlo)
    while not f.readline().startswith(b"250 "):
        pass
    return raw, f


def test_input_pipelined_past_starttls_is_dropped(postern_bin, tmp_path):
    """A command sent in clear right after STARTTLS must not be taken as
    part of the TLS session (CVE-2011-0411 style injection)."""
    with Daemon(postern_bin, tmp_path) as d:
        raw, f = starttls_raw(d.port, b"")
        raw.sendall(b"STARTTLS\r\nRSET\r\n")
        assert f.readline() == b"220 TLS go ahead\r\n"
        t = client_ctx().wrap_socket(raw, server_hostname=None)
        t.sendall(b"NOOP\r\n")
        assert t.recv(100) == b"250 OK\r\n"                  # not "250 Reset OK" first
        t.sendall(b"QUIT\r\n")
        assert t.recv(100).startswith(b"221 ")
        t.close()


def test_a_failed_handshake_leaves_only_quit(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path) as d:
        raw, f = starttls_raw(d.port, b"STARTTLS\r\n")
        assert f.readline() == b"220 TLS go ahead\r\n"
        raw.sendall(b"\x16\x03\x01\x00\x05hello\r\n")         # a TLS record header, then nonsense
        assert d.wait_log("TLS error on connection from (client.test.example) [127.0.0.1] (SSL_accept): ")
        raw.sendall(b"NOOP\r\nMAIL FROM:<a@example.org>\r\nQUIT\r\n")
        replies = []
        while True:
            line = f.readline()
            if line.startswith(b"\x15"):                      # OpenSSL's alert first
                line = line[7:] or f.readline()
            if not line or line.startswith(b"221 "):
                break
            replies.append(line)
        # every command but QUIT (and the rest of the nonsense line) is refused
        assert line.startswith(b"221 ")
        assert len(replies) >= 2 and set(replies) == {b"554 Security failure\r\n"}, replies
        raw.close()


def test_openssl_s_client(postern_bin, tmp_path, pki):
    """Another client: openssl's, with a TLS 1.2 cipher chosen by tls_require_ciphers."""
    cfg = (f"tls_certificate = {pki}/server.pem\ntls_privatekey = {pki}/server.key\n"
           "tls_require_ciphers = ECDHE-ECDSA-AES128-GCM-SHA256\nacl_smtp_rcpt = accept\n")
    with Daemon(postern_bin, tmp_path, cfg) as d:
        r = subprocess.run([OPENSSL, "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{d.port}",
                            "-tls1_2", "-CAfile", str(pki / "ca.pem"), "-verify_return_error", "-quiet"],
                           input="EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@test.example>\r\n"
                                 "DATA\r\nSubject: s\r\n\r\nx\r\n.\r\nQUIT\r\n",
                           capture_output=True, text=True, timeout=30)
        assert "250 OK id=" in r.stdout, r.stdout + r.stderr
        assert d.wait_log("P=esmtps X=TLS1.2:ECDHE-ECDSA-AES128-GCM-SHA256:128 S=")


def test_tls_on_connect_port(postern_bin, tmp_path):
    """tls_on_connect_ports: TLS from the first byte (SMTPS), no STARTTLS offered."""
    from mta import free_port
    port = free_port()
    with Daemon(postern_bin, tmp_path, f"tls_on_connect_ports = {port}\nacl_smtp_rcpt = accept\n", port=port) as d:
        with smtplib.SMTP_SSL("127.0.0.1", port, timeout=20, context=client_ctx()) as s:
            ehlo = s.ehlo("client.test.example")[1].decode()
            s.sendmail("a@example.org", ["u@test.example"], MSG)
        assert "STARTTLS" not in ehlo.splitlines()
        [mid] = d.queued()
        assert "-received_protocol esmtps\n" in d.header_file(mid)
        assert re.search(r"<= a@example\.org H=\S* ?\(client\.test\.example\) \[127\.0\.0\.1\] P=esmtps X=TLS1\.3:", d.mainlog())
        # a client speaking clear text gets no banner, and the handshake failure is logged
        raw = socket.create_connection(("127.0.0.1", port), timeout=20)
        raw.sendall(b"EHLO clear.example\r\n")
        try:
            got = raw.recv(100)
        except ConnectionResetError:
            got = b""
        assert not got.startswith(b"220")
        raw.close()
        assert d.wait_log("TLS error on connection from [127.0.0.1] (SSL_accept): ")

"""SMTP AUTH with the plaintext and cram_md5 authenticators: the real
daemon on loopback with smtplib as the client, and postern's smtp
transport as the client of another postern (hosts_try_auth,
hosts_require_auth).  Exim's own wording is checked in
test_exim_scenarios_more.py (the -bs scenarios)."""
import base64
import re
import smtplib
import time

import pytest

from mta import Daemon, send_through_smtp_transport

AUTHENTICATORS = """\
begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if and {{eq{$auth2}{bob}}{eq{$auth3}{s3cret}}}}
  server_set_id = $auth2
login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = ${if and {{eq{$auth1}{bob}}{eq{$auth2}{s3cret}}}}
  server_set_id = $auth1
cram:
  driver = cram_md5
  public_name = CRAM-MD5
  server_secret = ${if eq{$auth1}{bob}{s3cret}fail}
  server_set_id = $auth1
"""

ACL = """\
acl_smtp_rcpt = rcpt
acl_smtp_data = data
begin acl
rcpt:
  accept authenticated = *
  deny message = not authenticated
data:
  warn add_header = X-Auth: $authenticated_id $sender_host_authenticated $received_protocol
  accept
"""

MSG = "From: bob@example.org\r\nSubject: auth\r\n\r\nhi\r\n"


def conf(extra=""):
    return extra + ACL + AUTHENTICATORS


@pytest.mark.parametrize("mech,name", [("PLAIN", "plain"), ("LOGIN", "login"), ("CRAM-MD5", "cram")])
def test_each_mechanism(postern_bin, tmp_path, mech, name):
    with Daemon(postern_bin, tmp_path, conf()) as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=20) as s:
            s.ehlo("client.example")
            assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN", "CRAM-MD5"]
            s.user, s.password = "bob", "s3cret"
            code, text = s.auth(mech, getattr(s, "auth_" + mech.lower().replace("-", "_")),
                                initial_response_ok=mech == "PLAIN")
            assert (code, text) == (235, b"Authentication succeeded")
            s.sendmail("bob@example.org", ["u@test.example"], MSG)
        [mid] = d.queued()
        h = d.header_file(mid)
        log = d.mainlog()
    assert f"X-Auth: bob {name} esmtpa" in h
    assert f"-host_auth {name}\n" in h and f"-host_auth_pubname {mech}\n" in h and "-auth_id bob\n" in h
    assert re.search(rf"<= bob@example\.org H=\S* ?\(client\.example\) \[127\.0\.0\.1\] P=esmtpa A={name}:bob S=", log), log


def raw_auth(port, *lines):
    """EHLO, then each line; the replies to the lines."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.ehlo("client.example")
        return [s.docmd(l) for l in lines]


def test_failures(postern_bin, tmp_path):
    bad = base64.b64encode(b"\0bob\0wrong").decode()
    good = base64.b64encode(b"\0bob\0s3cret").decode()
    with Daemon(postern_bin, tmp_path, conf()) as d:
        assert raw_auth(d.port, "AUTH PLAIN " + bad) == [(535, b"Incorrect authentication data")]
        assert raw_auth(d.port, "AUTH PLAIN", "*") == [(334, b""), (501, b"Authentication cancelled")]
        assert raw_auth(d.port, "AUTH PLAIN !!!notbase64") == [(501, b"Invalid base64 data")]
        assert raw_auth(d.port, "AUTH CRAM-MD5 " + good)[0] == (553, b"Initial data not expected")
        assert raw_auth(d.port, "AUTH NOSUCH")[0] == (504, b"NOSUCH authentication mechanism not supported")
        assert raw_auth(d.port, "AUTH PLAIN " + good, "AUTH PLAIN " + good) == \
            [(235, b"Authentication succeeded"), (503, b"already authenticated")]
        assert raw_auth(d.port, "MAIL FROM:<a@example.org>", "AUTH PLAIN " + good)[1] == \
            (503, b"not permitted in mail transaction")
        # not authenticated: the ACL refuses
        assert raw_auth(d.port, "MAIL FROM:<a@example.org>", "RCPT TO:<u@test.example>")[1] == \
            (550, b"not authenticated")
        assert d.wait_log("plain authenticator failed for H=(client.example) [127.0.0.1]: "
                           "535 Incorrect authentication data (set_id=bob)")
        assert "plain authenticator failed for H=(client.example) [127.0.0.1]: 501 Authentication cancelled" \
            in d.mainlog()
    with Daemon(postern_bin, tmp_path / "noadv", conf("auth_advertise_hosts =\n")) as d:
        assert raw_auth(d.port, "AUTH PLAIN " + good) == [(503, b"AUTH command used when not advertised")]


def test_advertised_only_under_tls(postern_bin, tmp_path):
    """server_advertise_condition, Debian's way: no plaintext AUTH in clear."""
    cfg = conf().replace("  public_name = PLAIN\n",
                         "  public_name = PLAIN\n  server_advertise_condition = ${if def:tls_in_cipher}\n")
    import ssl
    with Daemon(postern_bin, tmp_path, cfg) as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=20) as s:
            s.ehlo("client.example")
            assert s.esmtp_features["auth"].split() == ["LOGIN", "CRAM-MD5"]
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s.starttls(context=ctx)
            s.ehlo("client.example")
            assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN", "CRAM-MD5"]
            s.login("bob", "s3cret")
            s.sendmail("bob@example.org", ["u@test.example"], MSG)
        [mid] = d.queued()
        assert "esmtpsa" in d.header_file(mid)


def send(postern_bin, tmp_path, port, transport_opts, authenticators):
    return send_through_smtp_transport(postern_bin, tmp_path / "sender", port, "  hosts_avoid_tls = *\n" + transport_opts,
                                       host="127.0.0.1", sender="bob@example.org",
                                       tail="begin authenticators\n" + authenticators)


CLIENTS = """\
cram_client:
  driver = cram_md5
  public_name = CRAM-MD5
  client_name = bob
  client_secret = {secret}
plain_client:
  driver = plaintext
  public_name = PLAIN
  client_send = ^bob^{secret}
"""


def test_transport_authenticates(postern_bin, tmp_path):
    """hosts_try_auth: the first client authenticator the server offers
    (CRAM-MD5 here) works; the receiver logs A=cram:bob, the sender A=."""
    with Daemon(postern_bin, tmp_path / "r", conf()) as d:
        log = send(postern_bin, tmp_path, d.port, "  hosts_try_auth = *\n", CLIENTS.format(secret="s3cret"))
        assert d.wait_log(" A=cram:bob ")
    assert re.search(r"=> u@remote\.example R=out T=t H=127\.0\.0\.1 \[127\.0\.0\.1\] A=cram_client ", log), log


def test_transport_auth_failures(postern_bin, tmp_path):
    """A refused authenticator is logged and the next one tried; with
    hosts_require_auth and none working, the message is deferred."""
    clients = CLIENTS.format(secret="wrong")
    with Daemon(postern_bin, tmp_path / "r", conf()) as d:
        log = send(postern_bin, tmp_path, d.port, "  hosts_require_auth = *\n", clients)
        time.sleep(0.3)
        assert d.queued() == []
    assert "cram_client authenticator failed H=127.0.0.1 [127.0.0.1] 535 Incorrect authentication data" in log
    assert "plain_client authenticator failed H=127.0.0.1 [127.0.0.1] 535 Incorrect authentication data" in log
    assert "== u@remote.example R=out T=t defer (-42) H=127.0.0.1 [127.0.0.1]: authentication required but " \
           "authentication attempt(s) failed" in log, log
    # hosts_try_auth only: delivered without (the receiver's ACL here wants AUTH, so it refuses the RCPT)
    with Daemon(postern_bin, tmp_path / "r2", conf()) as d:
        log = send(postern_bin, tmp_path / "2", d.port, "  hosts_try_auth = *\n", clients)
    assert "** u@remote.example R=out T=t H=127.0.0.1 [127.0.0.1] : SMTP error from remote mail server after " \
           "RCPT TO:<u@remote.example>: 550 not authenticated" in log, log


def test_auth_parameter_on_mail(postern_bin, tmp_path):
    """AUTH= on MAIL: kept from an authenticated client (-auth_sender, and
    with +smtp_mailauth in A=), ignored and logged from others, and
    refused when not valid xtext."""
    good = base64.b64encode(b"\0bob\0s3cret").decode()
    with Daemon(postern_bin, tmp_path, "log_selector = +smtp_mailauth\n" + conf()) as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=20) as s:
            s.ehlo("client.example")
            assert s.docmd("MAIL FROM:<a@example.org> AUTH=a+zz") == (501, b"invalid data for AUTH")
            assert s.docmd("MAIL FROM:<a@example.org> AUTH=x+40example.org")[0] == 250
            assert s.docmd("RSET")[0] == 250
            assert s.docmd("AUTH PLAIN " + good)[0] == 235
            assert s.docmd("MAIL FROM:<bob@example.org> AUTH=bob+40example.org")[0] == 250
            assert s.docmd("RCPT TO:<u@test.example>")[0] == 250
            assert s.data(MSG)[0] == 250
        [mid] = d.queued()
        h = d.header_file(mid)
        log = d.mainlog()
    assert "-auth_sender bob@example.org\n" in h
    assert "ignoring AUTH=x+40example.org from H=(client.example) [127.0.0.1] (client not authenticated)" in log
    assert re.search(r"P=esmtpa A=plain:bob:bob@example\.org S=", log), log

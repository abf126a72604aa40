"""postern-auth's sig commands as scripts see them: exit statuses (0 pass,
1 not pass, 2 temporary, 64 usage), --help, --json, --srv-id, the DNS
behaviours (NXDOMAIN, SERVFAIL, timeout) through a real loopback server."""
import base64
import json
import subprocess

import pytest

from dnsfixture import DnsServer
from test_dkim_conformance import auth, results

MSG = b"From: Joe <joe@example.com>\nTo: x@example.net\nSubject: hi\n\nbody\n"


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    pem = d / "k.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024",
                    "-out", str(pem)], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", str(pem), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return pem, "v=DKIM1; p=" + base64.b64encode(der).decode()


@pytest.mark.parametrize("args", [
    ["dkim-sign"], ["dkim-sign", "--domain", "x"], ["dkim-verify", "--bogus"],
    ["dkim-verify", "--now"], ["dkim-verify", "--now", "soon"], ["arc-sign", "--domain", "x"],
    ["arc-sign", "--cv", "maybe"], ["dk-sign"], ["no-such-command"], [],
    ["dkim-sign", "--domain", "example.com", "--selector", "s", "--key", "/nonexistent"],
    ["dkim-canon"], ["dkim-sign", "--domain", "example.com", "--selector", "s", "--key", "KEY",
                     "--algorithm", "ed25519-sha256"],
])
def test_usage_errors(postern_auth_bin, key, args):
    args = [str(key[0]) if a == "KEY" else a for a in args]
    p = auth(postern_auth_bin, args, MSG)
    assert p.returncode == 64, (args, p.stderr)
    assert p.stderr


@pytest.mark.parametrize("cmd", ["dkim-sign", "dkim-verify", "arc-sign", "arc-verify", "dk-sign",
                                 "dk-verify", "dkim-canon", "authres"])
def test_help(postern_auth_bin, cmd):
    p = auth(postern_auth_bin, [cmd, "--help"])
    assert p.returncode == 0 and b"usage: postern-auth " + cmd.encode() in p.stdout
    assert b"exit status" in p.stdout
    top = auth(postern_auth_bin, ["--help"])
    assert top.returncode == 0 and cmd.encode() in top.stdout


def test_exit_statuses_and_dns(postern_auth_bin, key):
    pem, rec = key
    zone = {"good._domainkey.example.com": [("TXT", rec)],
            "sf._domainkey.example.com": "SERVFAIL",
            "slow._domainkey.example.com": "TIMEOUT"}
    with DnsServer(zone) as dns:
        def sign(sel):
            return auth(postern_auth_bin, ["dkim-sign", "--domain", "example.com", "--selector",
                                           sel, "--key", str(pem)], MSG, check=True).stdout
        p = auth(postern_auth_bin, ["dkim-verify"], sign("good"), dns)
        assert p.returncode == 0 and results(p) == ["pass"]
        p = auth(postern_auth_bin, ["dkim-verify"], MSG, dns)
        assert p.returncode == 1 and results(p) == ["none"]
        p = auth(postern_auth_bin, ["dkim-verify"], sign("missing"), dns)
        assert p.returncode == 1 and results(p) == ["invalid"]
        assert b"pubkey_unavailable" in p.stdout
        for sel in ("sf", "slow"):
            p = auth(postern_auth_bin, ["dkim-verify"], sign(sel), dns)
            assert p.returncode == 2 and results(p) == ["temperror"], sel
        # tampered body
        p = auth(postern_auth_bin, ["dkim-verify"], sign("good").replace(b"body", b"BODY"), dns)
        assert p.returncode == 1 and b"bodyhash_mismatch" in p.stdout
        # JSON and Authentication-Results
        p = auth(postern_auth_bin, ["dkim-verify", "--json", "--srv-id", "mx.example.org"],
                 sign("good"), dns)
        lines = p.stdout.decode().split("\n", 1)
        j = json.loads(lines[0])
        assert j[0]["result"] == "pass" and j[0]["d"] == "example.com" and j[0]["key_bits"] == 1024
        assert lines[1].startswith("Authentication-Results: mx.example.org;")
        assert "dkim=pass (1024-bit key) header.d=example.com" in lines[1]
        p = auth(postern_auth_bin, ["arc-verify", "--json"], MSG, dns)
        assert p.returncode == 1 and json.loads(p.stdout)["result"] == "none"
        p = auth(postern_auth_bin, ["dk-verify", "--json"], MSG, dns)
        assert json.loads(p.stdout)[0]["status"] == "no signature"


def test_arc_sign_needs_authres(postern_auth_bin, key):
    p = auth(postern_auth_bin, ["arc-sign", "--domain", "example.org", "--selector", "s",
                                "--key", str(key[0]), "--srv-id", "mx.example.org", "--cv", "none"],
             MSG)
    assert p.returncode == 1 and b"no Authentication-Results" in p.stderr


def test_arc_sign_options(postern_auth_bin, key):
    msg = b"Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=example.com\n" + MSG
    p = auth(postern_auth_bin, ["arc-sign", "--domain", "example.org", "--selector", "s",
                                "--key", str(key[0]), "--srv-id", "mx.example.org",
                                "--timestamps", "--expire", "+100", "--now", "1000"], msg, check=True)
    head = p.stdout.split(b"\r\n\r\n")[0].decode()
    assert "t=1000" in head and "x=1100" in head and "cv=none" in head
    assert head.startswith("ARC-Seal: ")


def test_authres_command(postern_auth_bin, key):
    pem, rec = key
    with DnsServer({"good._domainkey.example.com": [("TXT", rec)]}) as dns:
        signed = auth(postern_auth_bin, ["dkim-sign", "--domain", "example.com", "--selector",
                                         "good", "--key", str(pem)], MSG, check=True).stdout
        p = auth(postern_auth_bin, ["authres", "--srv-id", "mx.example.org",
                                    "--add", "spf=pass smtp.mailfrom=joe@example.com"], signed, dns)
        assert p.returncode == 0, p.stderr
        text = p.stdout.decode()
        assert text.startswith("Authentication-Results: mx.example.org;")
        assert "spf=pass smtp.mailfrom=joe@example.com;" in text
        assert "dkim=pass (1024-bit key) header.d=example.com" in text and "arc=none" in text
        p = auth(postern_auth_bin, ["authres", "--srv-id", "mx.example.org", "--prepend"], signed, dns)
        assert p.stdout.startswith(b"Authentication-Results: mx.example.org;")
        assert p.stdout.endswith(b"\r\nbody\r\n")
        p = auth(postern_auth_bin, ["authres", "--srv-id", "mx.example.org"], MSG, dns)
        assert p.returncode == 1 and b"dkim=none" in p.stdout
        assert auth(postern_auth_bin, ["authres", "--srv-id", "x", "--add", "junk"], MSG, dns).returncode == 64


def test_sign_headers_prefixes(postern_auth_bin, key):
    """--headers reads Exim's dkim_sign_headers syntax: =name, +name."""
    pem, rec = key
    msg = b"From: a@example.com\nTo: b@example.net\nTo: c@example.net\nSubject: x\n\nbody\n"
    with DnsServer({"good._domainkey.example.com": [("TXT", rec)]}) as dns:
        p = auth(postern_auth_bin, ["dkim-sign", "--domain", "example.com", "--selector", "good",
                                    "--key", str(pem), "--headers", "from:+to:=cc:subject:date"],
                 msg, check=True)
        head = p.stdout.split(b"\r\n\r\n")[0].replace(b"\r\n\t", b" ").decode()
        assert "h=from:to:to:to:subject:date;" in head
        assert results(auth(postern_auth_bin, ["dkim-verify"], p.stdout, dns)) == ["pass"]
        # oversigned: adding another To: breaks it; a Cc: (=cc, absent) does not
        assert results(auth(postern_auth_bin, ["dkim-verify"], b"To: z@example.org\r\n" + p.stdout,
                            dns)) == ["fail"]
        assert results(auth(postern_auth_bin, ["dkim-verify"], b"Cc: z@example.org\r\n" + p.stdout,
                            dns)) == ["pass"]

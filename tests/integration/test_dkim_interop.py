"""Interoperability of postern-auth with independent implementations:
messages with varied headers and bodies (folding, empty body, trailing
whitespace, 8-bit, very long lines, bare LF) signed or sealed by
postern-auth must verify with dkimpy (python3-dkim) and Mail::DKIM
(libmail-dkim-perl), and the reverse.  DKIM RSA and Ed25519 (Debian's
Mail::DKIM lacks Ed25519: dkimpy only there), ARC RSA, DomainKeys (Mail::DKIM).
Key records are served by a loopback DNS server for postern-auth and
Mail::DKIM; dkimpy gets them through its dnsfunc hook."""
import base64
import subprocess

import pytest

from dnsfixture import DnsServer
from test_dkim_conformance import auth, crlf, results

dkim = pytest.importorskip("dkim")

LONG = "x" * 5000
MESSAGES = {
    "plain": b"From: Joe <joe@example.com>\nTo: a@example.net\nSubject: hi\n"
             b"Date: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <1@example.com>\n\nHello.\n",
    "folded": b"From: Joe\n  <joe@example.com>\nTo: a@example.net,\n\tb@example.net\n"
              b"Subject:   lots   of\t spaces  \n   continued\nMIME-Version: 1.0\n\nbody\n",
    "empty-body": b"From: joe@example.com\nTo: a@example.net\nSubject: empty\n\n",
    "no-body-sep": b"From: joe@example.com\nTo: a@example.net\nSubject: none",
    "blank-lines-body": b"From: joe@example.com\nSubject: blank\n\n\n\n\n",
    "trailing-ws": b"From: joe@example.com \nSubject: ws  \t\n\nline one   \nline two\t\n  \n\n\n",
    "8bit": "From: Jörg <joerg@example.com>\nSubject: Grüße aus Köln\nContent-Type: text/plain; "
            "charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nÄÖÜ äöü ß — ünïcödé\n".encode(),
    "long-lines": ("From: joe@example.com\nSubject: " + "word " * 150 + "\n\n" + LONG + "\n"
                   + "y" * 998 + "\n").encode(),
    "crlf-no-final-newline": b"From: joe@example.com\r\nSubject: crlf\r\n\r\nlast line",
    "dup-headers": b"Received: one\nReceived: two\nFrom: joe@example.com\nSubject: a\n"
                   b"Subject: b\nTo: x@example.net\n\nbody\n",
}

PERL = r'''
use strict; use warnings;
use Mail::DKIM::Verifier; use Mail::DKIM::Signer; use Mail::DKIM::DkSignature;
use Mail::DKIM::ARC::Verifier; use Mail::DKIM::ARC::Signer; use Net::DNS::Resolver;
my ($mode, $port, @a) = @ARGV;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(nameservers => ['127.0.0.1'],
    port => $port, recurse => 1, udp_timeout => 5, tcp_timeout => 5)) if $port;
my $msg = do { local $/; <STDIN> }; $msg =~ s/(?<!\r)\n/\r\n/g;
my $o;
if ($mode eq 'verify') {
    $o = Mail::DKIM::Verifier->new;
} elsif ($mode eq 'arc-verify') {
    $o = Mail::DKIM::ARC::Verifier->new(Strict => 1);
} elsif ($mode eq 'sign') {
    my ($key, $d, $s, $c) = @a;
    $o = Mail::DKIM::Signer->new(Algorithm => 'rsa-sha256', Method => $c, Domain => $d,
        Selector => $s, KeyFile => $key);
} elsif ($mode eq 'dk-sign') {
    my ($key, $d, $s, $c) = @a;
    $o = Mail::DKIM::Signer->new(KeyFile => $key, Policy => sub {
        my $sg = shift;
        $sg->add_signature(Mail::DKIM::DkSignature->new(Algorithm => 'rsa-sha1',
            Method => $c, Headers => $sg->headers, Domain => $d, Selector => $s));
        return; });
} elsif ($mode eq 'arc-sign') {
    my ($key, $d, $s, $srv) = @a;
    $o = Mail::DKIM::ARC::Signer->new(Algorithm => 'rsa-sha256', Domain => $d,
        Selector => $s, SrvId => $srv, KeyFile => $key, Chain => 'ar',
        Headers => 'from:to:subject:date');
}
$o->PRINT($msg); $o->CLOSE;
if ($mode eq 'verify' || $mode eq 'arc-verify') {
    print $o->result, "\n";
    if ($mode eq 'verify') { print "sig ", $_->result, "\n" for $o->signatures; }
} elsif ($mode eq 'arc-sign') {
    print $o->as_string, "\n";
} else {
    print $o->signature->as_string, "\r\n";
}
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("interop")
    keys = {}
    for kind, args in (("rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                       ("ed", ["-algorithm", "ed25519"])):
        pem = d / f"{kind}.pem"
        subprocess.run(["openssl", "genpkey", *args, "-out", str(pem)], check=True,
                       capture_output=True)
        der = subprocess.run(["openssl", "pkey", "-in", str(pem), "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        if kind == "rsa":
            # Mail::DKIM reads PKCS#1 PEM
            subprocess.run(["openssl", "rsa", "-in", str(pem), "-traditional", "-out",
                            str(d / "rsa1.pem")], check=True, capture_output=True)
            rec = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
        else:
            rec = "v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:]).decode()
            priv = subprocess.run(["openssl", "pkey", "-in", str(pem), "-outform", "DER"],
                                  check=True, capture_output=True).stdout
            (d / "ed.seed").write_bytes(base64.b64encode(priv[-32:]))
        keys[kind] = rec
    perl = d / "oracle.pl"
    perl.write_text(PERL)
    zone = {
        "rsa._domainkey.example.com": [("TXT", keys["rsa"])],
        "ed._domainkey.example.com": [("TXT", keys["ed"])],
        "arc._domainkey.example.org": [("TXT", keys["rsa"])],
    }
    with DnsServer(zone) as dns:
        yield {"dir": d, "dns": dns, "perl": str(perl),
               "txt": {k.split(".")[0]: v[0][1] for k, v in zone.items()}}


def dnsfunc(env):
    def f(name, timeout=5):
        sel = name.decode().split(".")[0]
        return env["txt"].get(sel, "").encode() or None
    return f


def perl(env, *args, msg):
    p = subprocess.run(["perl", env["perl"], args[0], str(env["dns"].port), *args[1:]],
                       input=msg, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode().split("\n")


@pytest.mark.parametrize("name", sorted(MESSAGES))
@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple", "relaxed/simple"])
def test_postern_signs_rsa(postern_auth_bin, env, name, canon):
    p = auth(postern_auth_bin, ["dkim-sign", "--domain", "example.com", "--selector", "rsa",
                                "--key", str(env["dir"] / "rsa.pem"), "--canon", canon],
             MESSAGES[name], check=True)
    assert dkim.verify(p.stdout, dnsfunc=dnsfunc(env)), "dkimpy"
    assert perl(env, "verify", msg=p.stdout)[0] == "pass", "Mail::DKIM"
    assert results(auth(postern_auth_bin, ["dkim-verify"], p.stdout, env["dns"])) == ["pass"]


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_postern_signs_ed25519(postern_auth_bin, env, name):
    for key in ("ed.pem", "ed.seed"):
        p = auth(postern_auth_bin, ["dkim-sign", "--domain", "example.com", "--selector", "ed",
                                    "--key", str(env["dir"] / key)], MESSAGES[name], check=True)
        assert dkim.verify(p.stdout, dnsfunc=dnsfunc(env)), f"dkimpy ({key})"


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_dkimpy_signs(postern_auth_bin, env, name):
    msg = crlf(MESSAGES[name])
    for sel, key, alg in (("rsa", (env["dir"] / "rsa1.pem").read_bytes(), b"rsa-sha256"),
                          ("ed", (env["dir"] / "ed.seed").read_bytes(), b"ed25519-sha256")):
        for c in ((b"relaxed", b"relaxed"), (b"simple", b"simple")):
            sig = dkim.sign(msg, sel.encode(), b"example.com", key, canonicalize=c,
                            signature_algorithm=alg)
            r = results(auth(postern_auth_bin, ["dkim-verify"], sig + msg, env["dns"]))
            assert r == ["pass"], (sel, c)


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_mail_dkim_signs(postern_auth_bin, env, name):
    # Mail::DKIM reads line by line and ignores an unterminated last line:
    # give it the message as it is on the wire (ending in CRLF).
    msg = crlf(MESSAGES[name])
    if msg and not msg.endswith(b"\r\n"):
        msg += b"\r\n"
    for c in ("relaxed", "simple", "relaxed/simple"):
        out = perl(env, "sign", str(env["dir"] / "rsa1.pem"), "example.com", "rsa", c, msg=msg)
        signed = "\n".join(out).encode() + msg
        r = results(auth(postern_auth_bin, ["dkim-verify"], signed, env["dns"]))
        assert r == ["pass"], c


def with_ar(msg):
    return b"Authentication-Results: lists.example.org; spf=pass smtp.mailfrom=example.com;\n" \
           b" dkim=pass header.d=example.com\n" + msg


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_arc_interop(postern_auth_bin, env, name):
    key = str(env["dir"] / "rsa.pem")
    msg = with_ar(MESSAGES[name])
    args = ["arc-sign", "--domain", "example.org", "--selector", "arc", "--key", key,
            "--srv-id", "lists.example.org", "--timestamps"]
    p = auth(postern_auth_bin, args, msg, env["dns"], check=True)
    cv, _, why = dkim.arc_verify(p.stdout, dnsfunc=dnsfunc(env))
    assert cv == b"pass", f"dkimpy: {why}"
    assert perl(env, "arc-verify", msg=p.stdout)[0] == "pass", "Mail::DKIM"
    # second hop over our own seal
    hop2 = auth(postern_auth_bin, args, with_ar(p.stdout).replace(b"spf=pass", b"arc=pass", 1),
                env["dns"], check=True)
    cv, _, why = dkim.arc_verify(hop2.stdout, dnsfunc=dnsfunc(env))
    assert cv == b"pass", f"dkimpy i=2: {why}"
    assert perl(env, "arc-verify", msg=hop2.stdout)[0] == "pass", "Mail::DKIM i=2"
    # the reverse: sealed by dkimpy and by Mail::DKIM
    m = crlf(msg)
    sealed = b"".join(dkim.arc_sign(m, b"arc", b"example.org", (env["dir"] / "rsa1.pem").read_bytes(),
                                    b"lists.example.org",
                                    include_headers=[b"from", b"to", b"subject"])) + m
    assert results(auth(postern_auth_bin, ["arc-verify"], sealed, env["dns"])) == ["pass"], "dkimpy-sealed"
    out = perl(env, "arc-sign", str(env["dir"] / "rsa1.pem"), "example.org", "arc",
               "lists.example.org", msg=msg)
    sealed = "\n".join(out).strip().encode() + b"\r\n" + m
    assert results(auth(postern_auth_bin, ["arc-verify"], sealed, env["dns"])) == ["pass"], "Mail::DKIM-sealed"


@pytest.mark.parametrize("name", sorted(MESSAGES))
@pytest.mark.parametrize("canon", ["simple", "nofws"])
def test_domainkeys_interop(postern_auth_bin, env, name, canon):
    msg = MESSAGES[name]
    p = auth(postern_auth_bin, ["dk-sign", "--selector", "rsa", "--key", str(env["dir"] / "rsa.pem"),
                                "--canon", canon], msg, check=True)
    if name != "folded":   # Mail::DKIM cannot find the sender in a folded From:
        assert perl(env, "verify", msg=p.stdout)[0] == "pass", "Mail::DKIM verifies our DomainKeys"
    assert results(auth(postern_auth_bin, ["dk-verify"], p.stdout, env["dns"])) == ["good"]
    wire = crlf(msg)
    if wire and not wire.endswith(b"\r\n"):
        wire += b"\r\n"     # Mail::DKIM ignores an unterminated last line
    out = perl(env, "dk-sign", str(env["dir"] / "rsa1.pem"), "example.com", "rsa", canon, msg=wire)
    signed = "\n".join(out).encode() + wire
    assert results(auth(postern_auth_bin, ["dk-verify"], signed, env["dns"])) == ["good"]


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_opendkim_signs(postern_auth_bin, env, name):
    """A third signer: libopendkim through opendkim-testmsg (rsa-sha1,
    relaxed/simple: it verifies, reported weak)."""
    tool = "/usr/sbin/opendkim-testmsg"
    import os
    if not os.access(tool, os.X_OK):
        pytest.skip("opendkim-tools not installed")
    # opendkim-testmsg reads LF text and refuses ("dkim_chunk(): Syntax
    # error") messages without a Date: field, and this one whatever we do
    if name == "dup-headers":
        pytest.skip("opendkim-testmsg: dkim_chunk(): Syntax error on this input")
    msg = crlf(MESSAGES[name]).replace(b"\r\n", b"\n")
    if b"\nDate:" not in b"\n" + msg.split(b"\n\n")[0]:
        msg = b"Date: Mon, 1 Jan 2024 00:00:00 +0000\n" + msg
    p = subprocess.run([tool, "-C", "-d", "example.com", "-k", str(env["dir"] / "rsa1.pem"),
                        "-s", "rsa"], input=msg, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = auth(postern_auth_bin, ["dkim-verify"], p.stdout, env["dns"])
    assert results(out) == ["pass"] and b"weak=rsa-sha1" in out.stdout, out.stdout

"""Self-test of tests/integration/dnsfixture.py, the DNS servers other
tests (and the SPF/DKIM/ARC/DMARC conformance runners) rely on: what they
answer on the wire, checked with dnslib's own client and with drill."""
import shutil
import socket
import subprocess
import time

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from dnsfixture import DnsServer, NsdServer, split_txt


def ask(server, name, qtype, tcp=False, timeout=2):
    q = DNSRecord.question(name, qtype)
    raw = q.send("127.0.0.1", server.port, tcp=tcp, timeout=timeout)
    return DNSRecord.parse(raw)


def test_split_txt():
    assert split_txt("a" * 600) == [b"a" * 255, b"a" * 255, b"a" * 90]
    assert split_txt(["x", "y" * 256]) == [b"x", b"y" * 255, b"y"]
    assert split_txt("") == [b""]
    assert split_txt(b"\x00\xff") == [b"\x00\xff"]


def test_records_and_negative_answers():
    zone = {
        "Example.COM.": [("A", "192.0.2.1"), ("MX", "10 mx.example.com"),
                         ("TXT", "v=spf1 " + "x" * 300),
                         ("SOA", ("ns.example.com", "hm.example.com", 5, 1, 1, 1, 60))],
        "deep.sub.example.com": [("A", "192.0.2.2")],
        "*.wild.example.com": [("TXT", "wild")],
        "www.example.com": [("CNAME", "example.com")],
    }
    with DnsServer(zone) as s:
        r = ask(s, "example.com", "A")
        assert r.header.rcode == RCODE.NOERROR and str(r.rr[0].rdata) == "192.0.2.1"
        r = ask(s, "EXAMPLE.com", "MX")
        assert r.rr[0].rdata.preference == 10 and str(r.rr[0].rdata.label) == "mx.example.com."
        r = ask(s, "example.com", "TXT", tcp=True)
        assert [len(x) for x in r.rr[0].rdata.data] == [255, 52]
        r = ask(s, "nx.example.com", "A")
        assert r.header.rcode == RCODE.NXDOMAIN and r.auth[0].rtype == QTYPE.SOA
        r = ask(s, "example.com", "AAAA")                 # NODATA
        assert r.header.rcode == RCODE.NOERROR and not r.rr and r.auth
        r = ask(s, "sub.example.com", "A")                # empty non-terminal
        assert r.header.rcode == RCODE.NOERROR and not r.rr
        r = ask(s, "a.b.wild.example.com", "TXT")
        assert str(r.rr[0].rname) == "a.b.wild.example.com." and r.rr[0].rdata.data == [b"wild"]
        r = ask(s, "www.example.com", "A")
        assert [x.rtype for x in r.rr] == [QTYPE.CNAME, QTYPE.A]
        assert ("nx.example.com", "A", "udp") in s.queries


def test_behaviours():
    zone = {
        "sf.example": "SERVFAIL", "rf.example": "REFUSED", "nx.example": ["NXDOMAIN"],
        ("slow.example", "A"): "TIMEOUT", "slow.example": [("TXT", "fast")],
        "tc.example": ["TRUNCATE", ("A", "192.0.2.3")],
        "tca.example": ["TRUNCATE_ALL", ("A", "192.0.2.4")],
        "empty.example": ["EMPTY", ("A", "192.0.2.5")],
        "bad.example": ["GARBAGE", ("A", "192.0.2.6")],
        ("any.example", "ANY"): "NOTIMP",
    }
    with DnsServer(zone) as s:
        assert ask(s, "sf.example", "A").header.rcode == RCODE.SERVFAIL
        assert ask(s, "rf.example", "A").header.rcode == RCODE.REFUSED
        assert ask(s, "nx.example", "A").header.rcode == RCODE.NXDOMAIN
        assert ask(s, "any.example", "MX").header.rcode == RCODE.NOTIMP
        assert ask(s, "slow.example", "TXT").rr
        with pytest.raises(socket.timeout):
            ask(s, "slow.example", "A", timeout=0.5)
        r = ask(s, "tc.example", "A")
        assert r.header.tc and not r.rr
        assert str(ask(s, "tc.example", "A", tcp=True).rr[0].rdata) == "192.0.2.3"
        assert ask(s, "tca.example", "A").header.tc
        with pytest.raises(Exception):
            ask(s, "tca.example", "A", tcp=True)
        r = ask(s, "empty.example", "A")
        assert r.header.rcode == RCODE.NOERROR and not r.rr
        raw = DNSRecord.question("bad.example", "A").send("127.0.0.1", s.port, timeout=2)
        with pytest.raises(Exception):
            DNSRecord.parse(raw)


def test_udp_size_limit_sets_tc():
    with DnsServer({"big.example": [("TXT", ["z" * 255] * 4)]}) as s:
        r = ask(s, "big.example", "TXT")                 # no EDNS: 512 bytes
        assert r.header.tc and not r.rr
        assert len(ask(s, "big.example", "TXT", tcp=True).rr[0].rdata.data) == 4


def test_live_changes():
    with DnsServer({}) as s:
        assert ask(s, "n.example", "A").header.rcode == RCODE.NXDOMAIN
        s.set("n.example", [("A", "192.0.2.8")])
        assert str(ask(s, "n.example", "A").rr[0].rdata) == "192.0.2.8"
        s.remove("n.example")
        assert ask(s, "n.example", "A").header.rcode == RCODE.NXDOMAIN


def test_zonefile(tmp_path):
    zf = tmp_path / "z.zone"
    zf.write_text("""$ORIGIN example.org.
$TTL 120
@   IN SOA ns1 hostmaster ( 1 3600
        600 86400 60 )   ; comment
    IN MX 10 mx
    IN TXT "v=spf1 " "a -all"
txt IN TXT "%s;not a comment"
mx  60 A 192.0.2.5
    AAAA 2001:db8::5
_25._tcp.mx TLSA 3 1 1 ABCD
odd TYPE65280 \\# 2 0102
$BEHAVIOUR broken SERVFAIL
$BEHAVIOUR slow A TIMEOUT
""" % ("q" * 300))
    with DnsServer.from_zonefile(zf) as s:
        r = ask(s, "example.org", "TXT")
        assert r.rr[0].rdata.data == [b"v=spf1 ", b"a -all"]
        r = ask(s, "txt.example.org", "TXT", tcp=True)
        assert b"".join(r.rr[0].rdata.data) == b"q" * 300 + b";not a comment"
        assert r.rr[0].ttl == 120
        r = ask(s, "mx.example.org", "A")
        assert r.rr[0].ttl == 60 and str(r.rr[0].rdata) == "192.0.2.5"
        assert str(ask(s, "mx.example.org", "AAAA").rr[0].rdata) == "2001:db8::5"
        assert ask(s, "_25._tcp.mx.example.org", "TLSA").rr[0].rdata.cert_data == b"\xab\xcd"
        raw = DNSRecord.question("odd.example.org", "A")
        raw.q.qtype = 65280
        r = DNSRecord.parse(raw.send("127.0.0.1", s.port, timeout=2))
        assert r.rr and r.rr[0].rtype == 65280
        assert ask(s, "broken.example.org", "A").header.rcode == RCODE.SERVFAIL
        with pytest.raises(socket.timeout):
            ask(s, "slow.example.org", "A", timeout=0.5)


def test_subprocess_and_lifetime():
    s = DnsServer({"p.example": [("A", "192.0.2.9")]}, spawn=True, lifetime=30).start()
    try:
        assert str(ask(s, "p.example", "A").rr[0].rdata) == "192.0.2.9"
    finally:
        s.stop()
    t = DnsServer({"q.example": [("A", "192.0.2.1")]}, lifetime=1).start()
    assert ask(t, "q.example", "A").rr
    time.sleep(2)
    with pytest.raises(Exception):
        ask(t, "q.example", "A", timeout=0.5)


@pytest.mark.skipif(not shutil.which("drill"), reason="drill not installed")
def test_nsd_signed_zones(tmp_path):
    with NsdServer(workdir=tmp_path / "nsd", lifetime=120) as n:
        anchors = open(n.trust_anchor_file).read()
        assert anchors.split()[:3] == ["dnssec.test.", "IN", "DS"]
        r = subprocess.run(["drill", "-D", "-p", str(n.port), "ok.dnssec.test", "A",
                            "@127.0.0.1"], capture_output=True, text=True, timeout=20)
        assert "192.0.2.1" in r.stdout and "RRSIG" in r.stdout
        r = subprocess.run(["drill", "-D", "-p", str(n.port), "www.insecure.dnssec.test", "A",
                            "@127.0.0.1"], capture_output=True, text=True, timeout=20)
        assert "192.0.2.2" in r.stdout and "RRSIG" not in r.stdout
        r = subprocess.run(["drill", "-p", str(n.port), "nods.dnssec.test", "DS",
                            "@127.0.0.1"], capture_output=True, text=True, timeout=20)
        assert "\tDS\t" not in r.stdout
    # stopped: nothing answers any more
    with pytest.raises(Exception):
        DNSRecord.question("ok.dnssec.test", "A").send("127.0.0.1", n.port, timeout=0.5)

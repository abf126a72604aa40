"""src/dns against real DNS servers on loopback (issue 4): the dnslib
fixture for record types and failures, NSD for DNSSEC.  Driven through
tests/unit/dns/dnsq until `postern -be` can run dnsdb lookups."""
import os
import pathlib
import subprocess

import pytest

from dnsfixture import DnsServer, NsdServer, dns_server, nsd_server  # noqa: F401

TOP = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def dnsq():
    cands = []
    if os.environ.get("DNSQ_BIN"):
        cands.append(os.environ["DNSQ_BIN"])
    if os.environ.get("POSTERN_BIN"):
        cands.append(str(pathlib.Path(os.environ["POSTERN_BIN"]).parent / "tests/unit/dns/dnsq"))
    cands += [str(TOP / d / "tests/unit/dns/dnsq") for d in ("build-asan", "build", "build-dns")]
    for c in cands:
        if os.access(c, os.X_OK):
            return c
    pytest.skip("dnsq not built")


def q(dnsq, server, *args, ta="", retrans=1, retry=2, extra=()):
    cmd = [dnsq, "-s", server, "-T", ta, "-r", str(retrans), "-R", str(retry), *extra, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return parse(r.stdout)


def parse(out):
    """-> list of dicts: status, rcode, nxdomain, sec, canon, rrs[list of str]"""
    res = []
    for line in out.splitlines():
        if line.startswith("rr "):
            res[-1]["rrs"].append(line[3:])
        elif line.split(" ", 1)[0] in ("OK", "NOTFOUND", "DEFER", "FAIL", "ERROR"):
            st, rest = line.split(" ", 1)
            d = {"status": st, "rrs": []}
            for kv in rest.split(" why=")[0].split():
                k, v = kv.split("=", 1)
                d[k] = v
            d["why"] = rest.split(" why=", 1)[1] if " why=" in rest else ""
            res.append(d)
    return res


ZONE = {
    "example.com": [("A", "192.0.2.1"), ("A", "192.0.2.2"), ("AAAA", "2001:db8::25"),
                    ("MX", (10, "mx1.example.com")), ("MX", (20, "mx2.example.com")),
                    ("TXT", "v=spf1 -all"), ("TXT", ["part one", "part two"]),
                    ("SPF", "v=spf1 ?all"), ("NS", "ns1.example.com"),
                    ("SOA", ("ns1.example.com", "hostmaster.example.com", 7, 3600, 600, 86400, 60))],
    "long.example.com": [("TXT", "k=rsa; p=" + "A" * 700)],
    "www.example.com": [("CNAME", "alias1.example.com")],
    "alias1.example.com": [("CNAME", "example.com")],
    "dangling.example.com": [("CNAME", "nowhere.example.com")],
    "loop1.example.com": [("CNAME", "loop2.example.com")],
    "loop2.example.com": [("CNAME", "loop1.example.com")],
    "1.2.0.192.in-addr.arpa": [("PTR", "host.example.com")],
    "_sip._tcp.example.com": [("SRV", (10, 60, 5060, "sip.example.com"))],
    "_25._tcp.mx1.example.com": [("TLSA", (3, 1, 1, "0123456789abcdef" * 4))],
    "broken.example.com": "SERVFAIL",
    "refused.example.com": "REFUSED",
    ("slow.example.com", "A"): "TIMEOUT",
    "big.example.com": ["TRUNCATE", ("TXT", "x" * 3000)],
    "garbage.example.com": ["GARBAGE", ("A", "192.0.2.9")],
    "empty.example.com": ["EMPTY", ("A", "192.0.2.10")],
}


@pytest.fixture(scope="module")
def zone_server():
    with DnsServer(ZONE, lifetime=300) as s:
        yield s


@pytest.mark.parametrize("name,rtype,want", [
    ("example.com", "a", ["a 300 example.com 192.0.2.1", "a 300 example.com 192.0.2.2"]),
    ("example.com", "aaaa", ["aaaa 300 example.com 2001:db8::25"]),
    ("example.com", "mx", ["mx 300 example.com 10 mx1.example.com",
                           "mx 300 example.com 20 mx2.example.com"]),
    ("example.com", "ns", ["ns 300 example.com ns1.example.com"]),
    ("example.com", "soa", ["soa 300 example.com ns1.example.com hostmaster.example.com 7 3600 600 86400 60"]),
    ("example.com", "spf", ["spf 300 example.com 1 [11:v=spf1 ?all]"]),
    ("1.2.0.192.in-addr.arpa", "ptr", ["ptr 300 1.2.0.192.in-addr.arpa host.example.com"]),
    ("_sip._tcp.example.com", "srv", ["srv 300 _sip._tcp.example.com 10 60 5060 sip.example.com"]),
    ("_25._tcp.mx1.example.com", "tlsa", ["tlsa 300 _25._tcp.mx1.example.com 3 1 1 " + "0123456789abcdef" * 4]),
    ("www.example.com", "cname", ["cname 300 www.example.com alias1.example.com"]),
])
def test_record_types(dnsq, zone_server, name, rtype, want):
    (a,) = q(dnsq, zone_server.server, name, rtype)
    assert a["status"] == "OK", a
    assert sorted(a["rrs"]) == sorted(want)
    assert a["sec"] == "indeterminate"     # no trust anchor: no validation


def test_txt_strings(dnsq, zone_server):
    (a,) = q(dnsq, zone_server.server, "example.com", "txt")
    assert sorted(a["rrs"]) == ["txt 300 example.com 1 [11:v=spf1 -all]",
                                "txt 300 example.com 2 [8:part one] [8:part two]"]
    (b,) = q(dnsq, zone_server.server, "long.example.com", "txt")
    rr = b["rrs"][0].split(" ", 4)
    assert rr[3] == "3"                     # 709 bytes: 255 + 255 + 199
    assert "[255:" in rr[4] and "[199:" in rr[4]


def test_cname_chain(dnsq, zone_server):
    (a,) = q(dnsq, zone_server.server, "www.example.com", "a")
    assert a["status"] == "OK" and a["canon"] == "example.com"
    assert len(a["rrs"]) == 2


def test_nxdomain_nodata_servfail_refused_timeout(dnsq, zone_server):
    res = q(dnsq, zone_server.server, "nope.example.com", "a", "example.com", "srv",
            "broken.example.com", "a", "refused.example.com", "a", "slow.example.com", "a",
            "empty.example.com", "a", "dangling.example.com", "a", "loop1.example.com", "a",
            "garbage.example.com", "a")
    nx, nodata, servfail, refused, timeout, empty, dangling, loop, garbage = res
    assert nx["status"] == "NOTFOUND" and nx["nxdomain"] == "1"
    assert nodata["status"] == "NOTFOUND" and nodata["nxdomain"] == "0"
    assert servfail["status"] == "DEFER"
    assert refused["status"] in ("DEFER", "FAIL")   # unbound treats REFUSED as lame
    assert timeout["status"] == "DEFER" and "timed out" in timeout["why"]
    assert empty["status"] == "NOTFOUND" and empty["nxdomain"] == "0"
    assert dangling["status"] == "NOTFOUND"
    assert loop["status"] in ("DEFER", "NOTFOUND") and not loop["rrs"]
    assert garbage["status"] == "DEFER"


def test_truncated_retries_over_tcp(dnsq, zone_server):
    (a,) = q(dnsq, zone_server.server, "big.example.com", "txt")
    assert a["status"] == "OK"
    assert ("big.example.com", "TXT", "tcp") in zone_server.queries


def test_lookup_limit_and_fail_cache(dnsq, zone_server):
    res = q(dnsq, zone_server.server, "example.com", "a", "example.com", "mx",
            "example.com", "ns", extra=["-n", "2"])
    assert [r["status"] for r in res] == ["OK", "OK", "DEFER"]
    assert "limit" in res[2]["why"]
    before = sum(1 for x in zone_server.queries if x[0] == "slow.example.com")
    res = q(dnsq, zone_server.server, "slow.example.com", "a", "slow.example.com", "a")
    assert [r["status"] for r in res] == ["DEFER", "DEFER"]
    after = [x for x in zone_server.queries if x[0] == "slow.example.com"]
    assert len(after) > before          # asked once, then the failure was remembered


def test_check_names_pattern(dnsq, zone_server):
    pat = r"(?i)^(?>(?(1)\.|())[^\W](?>[a-z0-9/_-]*[^\W])?)+(\.?)$"
    res = q(dnsq, zone_server.server, "bad..name.example.com", "a", "example.com", "a",
            "bad..name.example.com", "txt", extra=["-p", pat])
    assert res[0]["status"] == "NOTFOUND" and "pattern" in res[0]["why"]
    assert res[1]["status"] == "OK"
    assert "pattern" not in res[2]["why"]     # TXT is not checked


def test_malformed_names_fail(dnsq, zone_server):
    res = q(dnsq, zone_server.server, "a..example.com", "a", ".x", "txt")
    assert [r["status"] for r in res] == ["FAIL", "FAIL"]


def test_ip_literal_is_not_a_name(dnsq, zone_server):
    (a,) = q(dnsq, zone_server.server, "192.0.2.1", "a")
    assert a["status"] == "NOTFOUND"
    assert not any(x[0] == "192.0.2.1" for x in zone_server.queries)


def test_root_anchor_with_fake_forwarder_is_bogus(dnsq, zone_server):
    """The default trust anchor (the root key) against a forwarder that
    cannot prove anything: answers are bogus, hence DEFER, not data."""
    if not os.path.exists("/usr/share/dns/root.key"):
        pytest.skip("dns-root-data not installed")
    (a,) = q(dnsq, zone_server.server, "example.com", "a", ta="/usr/share/dns/root.key")
    assert a["status"] == "DEFER" and a["sec"] == "bogus"


def test_default_anchor_dropped_when_upstream_has_no_dnssec(dnsq, zone_server):
    """No dns_trust_anchor_file: the root key is used only if the servers
    give DNSSEC data for it; this one does not, so answers are plain."""
    r = subprocess.run([dnsq, "-s", zone_server.server, "-r", "1", "-R", "2",
                        "example.com", "a"], capture_output=True, text=True, timeout=60)
    (a,) = parse(r.stdout)
    assert a["status"] == "OK" and a["sec"] == "indeterminate"
    assert "validation=off (" in r.stdout


def test_default_anchor_kept_with_dnssec_upstream(dnsq, nsd):
    """The same default with servers that do serve DNSSEC for their zone but
    not the real root: NSD answers REFUSED for ".", so validation is dropped
    too; with the zone's own anchor named, it is kept (see test_dnssec_states)."""
    r = subprocess.run([dnsq, "-s", nsd.server, "-r", "2", "-R", "2",
                        "tampered.dnssec.test", "a"], capture_output=True, text=True, timeout=60)
    (a,) = parse(r.stdout)
    assert (a["status"], a["sec"]) == ("OK", "indeterminate")


def test_bad_options(dnsq):
    r = subprocess.run([dnsq, "-s", "not-an-ip", "-T", ""], capture_output=True, text=True)
    assert r.returncode == 1 and "dns_servers" in r.stdout
    r = subprocess.run([dnsq, "-s", "127.0.0.1", "-T", "/nonexistent/key"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "trust_anchor" in r.stdout


# --- DNSSEC through NSD ------------------------------------------------------

@pytest.fixture(scope="module")
def nsd(tmp_path_factory):
    with NsdServer(workdir=tmp_path_factory.mktemp("nsd"), lifetime=300) as n:
        yield n


@pytest.mark.parametrize("name,rtype,status,sec", [
    ("ok.dnssec.test", "a", "OK", "secure"),
    ("ok.dnssec.test", "mx", "OK", "secure"),
    ("_25._tcp.mx.ok.dnssec.test", "tlsa", "OK", "secure"),
    ("alias.dnssec.test", "a", "OK", "secure"),
    ("nx.dnssec.test", "a", "NOTFOUND", "secure"),       # proven NXDOMAIN
    ("ok.dnssec.test", "srv", "NOTFOUND", "secure"),     # proven NODATA
    ("tampered.dnssec.test", "a", "DEFER", "bogus"),
    ("tampered.dnssec.test", "txt", "OK", "secure"),     # only the A RRset was changed
    ("www.expired.dnssec.test", "a", "DEFER", "bogus"),
    ("www.insecure.dnssec.test", "a", "OK", "insecure"),
    ("www.nods.dnssec.test", "a", "OK", "insecure"),
])
def test_dnssec_states(dnsq, nsd, name, rtype, status, sec):
    (a,) = q(dnsq, nsd.server, name, rtype, ta=nsd.trust_anchor_file, retrans=2)
    assert (a["status"], a["sec"]) == (status, sec), a


def test_dnssec_without_anchor_is_indeterminate(dnsq, nsd):
    (a,) = q(dnsq, nsd.server, "tampered.dnssec.test", "a")
    assert a["status"] == "OK" and a["sec"] == "indeterminate"


# --- dnslists against the dnslib server -------------------------------------

BL = {
    "2.0.0.127.bl.example": [("A", "127.0.0.2"), ("TXT", "listed, see http://bl.example/2")],
    "3.0.0.127.bl.example": [("A", "127.0.0.2"), ("A", "127.0.0.3")],
    "9.2.0.192.bl.example": [("A", "192.0.2.99")],
    "bad.example.dbl.example": [("A", "127.0.1.2"), ("TXT", "bad domain")],
    "4.0.0.127.bl.example": "SERVFAIL",
    "*.wild.example": [("A", "127.0.0.10")],
}


@pytest.fixture(scope="module")
def bl_server():
    with DnsServer(BL, lifetime=300) as s:
        yield s


def dnslist(dnsq, server, lst, ip=None):
    cmd = [dnsq, "-s", server, "-T", "", "-r", "1", "-R", "1", "-l", lst]
    if ip:
        cmd += ["-i", ip]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    lines = [x for x in r.stdout.splitlines() if not x.startswith(("log ", "lookups="))]
    out = {"status": lines[0]}
    for x in lines[1:]:
        k, v = x.split("=", 1)
        out[k] = v
    out["log"] = [x[4:] for x in r.stdout.splitlines() if x.startswith("log ")]
    return out


@pytest.mark.parametrize("lst,ip,status,vals", [
    ("bl.example", "127.0.0.2", "OK", {"domain": "bl.example", "matched": "127.0.0.2",
                                       "text": "listed, see http://bl.example/2",
                                       "value": "127.0.0.2"}),
    ("bl.example", "127.0.0.1", "FAIL", {}),
    ("bl.example==127.0.0.2", "127.0.0.3", "FAIL", {}),
    ("bl.example=127.0.0.3", "127.0.0.3", "OK", {"value": "127.0.0.2, 127.0.0.3"}),
    ("bl.example!=127.0.0.3", "127.0.0.3", "FAIL", {}),
    ("bl.example&0.0.0.2", "127.0.0.3", "OK", {}),
    ("bl.example", "192.0.2.9", "FAIL", {}),                 # not in 127/8
    ("dbl.example/bad.example", None, "OK", {"matched": "bad.example", "text": "bad domain"}),
    ("bl.example/<;127.0.0.9;127.0.0.2", None, "OK", {"matched": "127.0.0.2"}),
    ("bl.example", "127.0.0.4", "FAIL", {}),
    ("+include_unknown : bl.example", "127.0.0.4", "OK", {"matched": "127.0.0.4"}),
    ("+defer_unknown : bl.example", "127.0.0.4", "DEFER", {}),
    ("wild.example", "10.0.0.1", "OK", {"value": "127.0.0.10", "text": "<unset>"}),
])
def test_dnslists(dnsq, bl_server, lst, ip, status, vals):
    r = dnslist(dnsq, bl_server.server, lst, ip)
    assert r["status"] == status, r
    for k, v in vals.items():
        assert r[k] == v, (k, r)

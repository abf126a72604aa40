"""DMARC cross-check (RFC 7489 mode): generated scenarios (policy records
at the From domain and at the organizational domain with random p, sp,
adkim, aspf; SPF and DKIM results for random identities, across public
suffixes such as co.uk) evaluated by `postern-auth dmarc` through a
loopback DNS server and by python3-authheaders (an independent
implementation) on the same records, both with the system Public Suffix
List.  Results and applied policies must agree, apart from listed
departures of authheaders from RFC 7489."""
import concurrent.futures
import json
import os
import random
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import run  # noqa: E402

try:
    from dnsfixture import DnsServer
except Exception:  # pragma: no cover
    DnsServer = None

PSL = "/usr/share/publicsuffix/public_suffix_list.dat"
N = 200
DOMAINS = ["example.com", "sub.example.com", "a.b.example.com", "example.co.uk",
           "x.example.co.uk", "other.example"]
RECORD_AT = ["example.com", "sub.example.com", "example.co.uk", "x.example.co.uk"]


def gen(rnd):
    recs = {}
    for d in RECORD_AT:
        if rnd.random() < 0.5:
            continue
        tags = [f"p={rnd.choice(['none', 'quarantine', 'reject'])}"]
        if rnd.random() < 0.5:
            tags.append(f"sp={rnd.choice(['none', 'quarantine', 'reject'])}")
        if rnd.random() < 0.3:
            tags.append("adkim=s")
        if rnd.random() < 0.3:
            tags.append("aspf=s")
        recs[d] = "v=DMARC1; " + "; ".join(tags)
    return {
        "records": recs,
        "from": rnd.choice(DOMAINS[:5]),
        "spf": (rnd.choice(["pass", "fail", "softfail"]), rnd.choice(DOMAINS)),
        "dkim": (rnd.choice(["pass", "fail"]), rnd.choice(DOMAINS)),
    }


_psl = []


def _cached_org_domain(domain):
    """authheaders re-reads the list on every call; same list, read once."""
    if not _psl:
        try:
            from publicsuffix2 import PublicSuffixList
        except ImportError:
            from publicsuffix import PublicSuffixList
        with open(PSL) as f:
            _psl.append(PublicSuffixList(f))
    return _psl[0].get_public_suffix(domain)


def theirs(sc):
    import authheaders
    import authheaders.dmarc_lookup
    authheaders.get_org_domain = _cached_org_domain
    authheaders.dmarc_lookup.get_org_domain = _cached_org_domain
    from authheaders import dmarc_per_from
    from authres import DKIMAuthenticationResult, SPFAuthenticationResult
    z = {f"_dmarc.{d}": r for d, r in sc["records"].items()}
    res, _comment, _dom, policy = dmarc_per_from(
        sc["from"],
        SPFAuthenticationResult(result=sc["spf"][0], smtp_mailfrom="u@" + sc["spf"][1]),
        DKIMAuthenticationResult(result=sc["dkim"][0], header_d=sc["dkim"][1]),
        dnsfunc=lambda n: z.get(n))
    return res, policy


def known_difference(sc, ours, want):
    """Departures of authheaders 0.15 from RFC 7489, with the reason."""
    rec = sc["records"].get(sc["from"])
    if rec and "sp=" in rec and ours["result"] == want[0] and ours["used_domain"] == sc["from"]:
        return ("authheaders applies sp= even when the record is the From domain's own; "
                "RFC 7489 6.6.3 applies p= there (sp= is for subdomains)")
    return None


def test_dmarc_crosscheck_authheaders(postern_auth_bin, capsys):
    pytest.importorskip("authheaders")
    if DnsServer is None:
        pytest.skip("dnsfixture not available")
    if not os.path.exists(PSL):
        pytest.skip("publicsuffix not installed")
    rnd = random.Random(1122)
    scen = [gen(rnd) for _ in range(N)]

    def ours(sc):
        zone = {f"_dmarc.{d}": [("TXT", r)] for d, r in sc["records"].items()}
        with DnsServer(zone) as dns:
            p = run([postern_auth_bin, "dmarc", "--json", "--mode", "rfc7489", "--psl", PSL,
                     "--dns", dns.server, "--dns-timeout", "1",
                     "--spf", f"{sc['spf'][0]}:{sc['spf'][1]}",
                     "--dkim", f"{sc['dkim'][0]}:{sc['dkim'][1]}"],
                    input=f"From: <u@{sc['from']}>\nSubject: x\n\nbody\n")
        return json.loads(p.stdout)

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        got = list(ex.map(ours, scen))
    diffs, known = [], []
    for sc, g in zip(scen, got):
        want = theirs(sc)
        have = (g["result"], g["domain_policy"] if g["result"] in ("pass", "fail") else "")
        if g["result"] != want[0] or (g["result"] == "fail" and have[1] != want[1]):
            k = known_difference(sc, g, want)
            (known if k else diffs).append((sc, have, want, k))
    with capsys.disabled():
        print(f"\n[crosscheck] dmarc vs authheaders: {N - len(diffs) - len(known)}/{N} agree, "
              f"{len(known)} known differences")
        if known:
            print(f"    known ({len(known)}): {known[0][3]}")
        for sc, have, want, _ in diffs[:10]:
            print(f"    {sc}: postern {have} authheaders {want}")
    assert not diffs

"""DMARC conformance: the authentication-headers DMARC policy cases
(dmarc-authheaders/cases.yml) run through `postern-auth dmarc` against a
real DNS server on loopback, and the Public Suffix List test vectors
(dmarc-psl/test_psl.txt) through `postern-auth dmarc-orgdomain` with the
list as Exim's dmarc_tld_file.  Pass counts are printed; every case not
passed is listed in EXPECTED_FAIL with its reason."""
import json
import os
import re
import sys

import pytest
import yaml

sys.path.insert(0, os.path.dirname(__file__))
from conftest import run  # noqa: E402

try:
    from dnsfixture import DnsServer
except Exception:  # pragma: no cover
    DnsServer = None

# "suite:case" -> reason
EXPECTED_FAIL = {
    "authheaders-rfc9989:dmarc_record_without_p":
        "record without p= and without rua=: RFC 7489 6.6.3 ignores it (the case's dmarc=none, "
        "passed in RFC 7489 mode); RFC 9989 (sections 4.7, 4.10.1) reads a missing p as p=none, "
        "so postern in RFC 9989 mode gives dmarc=fail policy.dmarc=none",
}


def load_cases(d):
    data = yaml.safe_load(open(d / "cases.yml"))
    zone = {}
    for name, val in data["dns"].items():
        name = name.rstrip(".")
        if val is None:
            continue                                   # NXDOMAIN: not served
        if isinstance(val, str) and val.startswith("@file:"):
            val = (d / val[6:]).read_text().strip()
        if val == "":
            zone[name] = []                            # exists, no records
        elif name.startswith("_") or val.startswith("v="):
            zone[name] = [("TXT", val)]
        else:
            # an existence marker naming a host: the name has mail service
            zone[name] = [("MX", (10, val))]
    return zone, data["tests"]


def prior_dkim(prior_ar):
    out = []
    for m in re.finditer(r"dkim=(\w+)\s+header\.d=([\w.-]+)", prior_ar or ""):
        out += ["--dkim", f"{m.group(1)}:{m.group(2)}"]
    return out


def ar_dmarc(ar):
    """The dmarc resinfo of an A-R header: (result, {prop: value})."""
    ar = re.sub(r"\s+", " ", ar)
    m = re.search(r"dmarc=(\w+)(?: \([^)]*\))?((?: [\w.]+=[^;\s]+)*)", ar)
    if not m:
        return None, {}
    props = dict(re.findall(r" ([\w.]+)=([^;\s]+)", m.group(2)))
    return m.group(1), props


def ar_dkim(ar):
    ar = re.sub(r"\s+", " ", ar)
    return re.findall(r"dkim=(\w+)(?: \([^)]*\))? header\.d=([\w.-]+)", ar)


def run_dmarc(binp, dns, msg, mode, psl, extra):
    args = [binp, "dmarc", "--json", "--no-spf", "--receiver", "example.com",
            "--mode", mode, "--dns", dns, "--dns-timeout", "1", "--dns-retry", "1"]
    if mode == "rfc7489":
        args += ["--psl", str(psl)]
    p = run(args + extra, input=msg)
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {"error": p.stderr}


def check_case(c, got):
    if "error" in got:
        return f"no output: {got['error'][:200]}"
    exp = c["expected_ar"]
    wres, wprops = ar_dmarc(exp)
    gres, gprops = ar_dmarc(got["authentication_results"])
    if gres != wres:
        return f"dmarc={gres} want {wres} ({got.get('reason')})"
    for k, v in wprops.items():
        if k in ("header.from", "policy.dmarc") and v != "none" and gprops.get(k) != v:
            return f"{k}={gprops.get(k)} want {v}"
    if c.get("dkim") == "verify":
        want = ar_dkim(exp)
        have = ar_dkim(got["authentication_results"])
        if [w for w in want if w not in have]:
            return f"dkim {have} want {want}"
    return None


def report(name, results, capsys):
    passed = sum(1 for v in results.values() if v is None)
    bad = {k: v for k, v in results.items() if v and k not in EXPECTED_FAIL}
    fixed = [k for k in EXPECTED_FAIL if k.startswith(name + ":") and results.get(k, 1) is None]
    with capsys.disabled():
        print(f"\n[conformance] {name}: {passed}/{len(results)} passed")
        for k, v in sorted(results.items()):
            if v and k in EXPECTED_FAIL:
                print(f"    expected failure {k}: {EXPECTED_FAIL[k]}")
        for k, v in sorted(bad.items()):
            print(f"    FAILED {k}: {v}")
        for k in fixed:
            print(f"    now passes (remove from EXPECTED_FAIL): {k}")
    assert not bad
    assert not fixed


@pytest.fixture(scope="module")
def dmarc_ready(postern_auth_bin, conformance_dir):
    if DnsServer is None:
        pytest.skip("dnsfixture not available")
    p = run([postern_auth_bin, "dmarc", "--no-spf", "--dns", "127.0.0.1@9", "--dns-timeout", "1"],
            input="From: a@b.example\n\nx\n")
    if "built without a resolver" in p.stderr:
        pytest.skip("postern-auth built without the DNS resolver")
    return postern_auth_bin


@pytest.mark.parametrize("mode", ["rfc7489", "rfc9989"])
def test_dmarc_authheaders(dmarc_ready, conformance_dir, capsys, mode):
    d = conformance_dir / "dmarc-authheaders"
    if not d.is_dir():
        pytest.skip("dmarc-authheaders missing")
    zone, cases = load_cases(d)
    psl = conformance_dir / "dmarc-psl" / "public_suffix_list.dat"
    results = {}
    name = f"authheaders-{mode}"
    with DnsServer(zone) as dns:
        for c in cases:
            if c.get("dmarcbis") and mode == "rfc7489":
                continue            # the PSD tree walk case is RFC 9989 only
            msg = (d / c["message"]).read_text()
            extra = [] if c.get("dkim") in ("verify",) else prior_dkim(c.get("prior_ar"))
            if c.get("dkim") == "none":
                extra = ["--dkim", "none:none.invalid"]
            got = run_dmarc(dmarc_ready, dns.server, msg, mode, psl, extra)
            results[f"{name}:{c['id']}"] = check_case(c, got)
    assert len(results) == (10 if mode == "rfc7489" else 11)
    report(name, results, capsys)


def load_psl_vectors(path):
    out = []
    for line in open(path, encoding="utf-8"):
        m = re.match(r"checkPublicSuffix\((null|'[^']*'), (null|'[^']*')\);", line.strip())
        if not m:
            continue
        a, b = m.group(1), m.group(2)
        out.append((None if a == "null" else a[1:-1], None if b == "null" else b[1:-1]))
    return out


def test_psl_vectors(postern_auth_bin, conformance_dir, capsys):
    d = conformance_dir / "dmarc-psl"
    if not d.is_dir():
        pytest.skip("dmarc-psl missing")
    vec = load_psl_vectors(d / "test_psl.txt")
    assert len(vec) >= 78
    inputs = [v for v in vec if v[0] is not None]
    args = [postern_auth_bin, "dmarc-orgdomain", "--mode", "rfc7489", "--registrable",
            "--psl", str(d / "public_suffix_list.dat")] + [a for a, _ in inputs]
    p = run(args)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == len(inputs)
    results = {}
    for (a, want), line in zip(inputs, lines):
        got = line.rsplit(" ", 1)[1]
        got = None if got == "-" else got
        results[f"psl:{a}"] = None if got == want else f"got {got} want {want}"
    # the null input: nothing to look up (counted as passed by construction)
    results["psl:null"] = None
    report("psl", results, capsys)

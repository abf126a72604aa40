"""SPF conformance: the OpenSPF RFC 7208 and RFC 4408 suites, the extra
OpenSPF-format cases (blitiri, simta), pyspf's own cases (Received-SPF
header) and the mail-auth cases, run through `postern-auth spf` against a
real DNS server on loopback (tests/integration/dnsfixture.py) serving each
scenario's zone data.  TIMEOUT entries are real timeouts.

Each suite prints its pass count; every case not passed must be listed in
EXPECTED_FAIL with the reason, and the test fails on any other failure (and
on an expected failure that now passes, so the list stays honest).

POSTERN_SPF_ZONE=1 runs the same cases with `--zone` (in-process zone data)
instead of the DNS server: a development aid, not the measurement.
"""
import concurrent.futures
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

ZONE_MODE = os.environ.get("POSTERN_SPF_ZONE") == "1"
NOW = "1700000000"
QTYPES = ("A", "AAAA", "MX", "PTR", "TXT", "SPF", "CNAME")

# case id -> reason.  Keys are "suite:scenario-index:case".
_SINGLE_LABEL = ("single-label domain names: RFC 7208 4.3 makes a non-multi-label "
                 "identity 'none' and the 7.1 domain-spec grammar requires '.' toplabel "
                 "(OpenSPF a-only-toplabel agrees); blitiri's library accepts them")
EXPECTED_FAIL = {
    "spf-extra-blitiri:7:resolution-with-10-lookups": _SINGLE_LABEL + " (include:d11)",
    "spf-extra-blitiri:8:mx-resolution-10-terms": _SINGLE_LABEL + " (foo@mx10)",
    "spf-extra-blitiri:8:mx-resolution-11-terms": _SINGLE_LABEL + " (foo@mx11)",
    "spf-extra-blitiri:9:all-mx-not-found": _SINGLE_LABEL + " (foo@d01)",
    "spf-extra-blitiri:9:include-not-found": _SINGLE_LABEL + " (foo@d02)",
    "spf-extra-blitiri:9:one-mx-not-found": _SINGLE_LABEL + " (foo@d00)",
    "spf-extra-blitiri:9:redirect-not-found": _SINGLE_LABEL + " (foo@d03)",
    "pyspf-test:3:default-modifier": "pyspf lax mode (strict: 0): the pre-RFC 'default=' "
        "modifier; RFC 7208 ignores unknown modifiers, so the result is neutral",
    "pyspf-test:3:default-modifier-harsh": "pyspf harsh mode (strict: 2): 'ambiguous' is a "
        "pyspf-only result, not an RFC 7208 result",
    "spf-mail-auth:all:0:0": "'ip:10.0.0.1' after -all is an unknown mechanism: RFC 7208 4.6 "
        "says a syntax error anywhere gives permerror (mail-auth stops parsing at all)",
    "spf-mail-auth:basic:4:8": "ten a: lookups of names that do not exist: RFC 7208 4.6.4 "
        "void-lookup limit (2) gives permerror; mail-auth does not apply that limit",
    "spf-mail-auth:basic:4:13": "mx with 11 MX names, the client being the 8th: permerror (RFC 7208 "
        "4.6.4 limit of 10 address lookups per mx); mail-auth stops at the first match, which with "
        "real DNS (records in any order) makes the result random; pyspf also gives permerror",
    "spf-mail-auth:basic:4:15": "ptr with 11 PTR names of which 9 do not exist: postern counts "
        "void lookups for the address lookups of ptr and mx names too (RFC 7208 4.6.4 speaks of "
        "every DNS query; pyspf counts them the same way), so the third void gives permerror",
    "spf-mail-auth:exists:0:1": "exists: on a name with only AAAA records: RFC 7208 5.7 says "
        "exists uses an A lookup even for IPv6 clients; mail-auth also tries AAAA",
    "spf-mail-auth:macro:1:3": "IPv6 client, exists: name with only an AAAA record: RFC 7208 "
        "5.7 (A lookup only), as spf-mail-auth:exists:0:1",
}


# ---- loading ------------------------------------------------------------

def _records_openspf(zonedata):
    """OpenSPF zonedata -> {name: {"rr": [(type, value)], "timeout": set|None}}.
    SPF records are copied to TXT when the name has no TXT (as pyspf's
    driver does); "TXT: NONE" suppresses that."""
    zone = {}
    for name, items in (zonedata or {}).items():
        rr, spf, has_txt, timeout = [], [], False, False
        for it in items or []:
            if it == "TIMEOUT":
                timeout = True
                continue
            if not isinstance(it, dict):
                continue
            for t, v in it.items():
                t = t.upper()
                if t in ("TIMEOUT", "SERVFAIL"):
                    timeout = t
                    continue
                if t == "TXT":
                    has_txt = True
                    if v == "NONE":
                        continue
                if t in ("TXT", "SPF"):
                    v = [v] if isinstance(v, str) else list(v)
                    if t == "SPF":
                        spf.append(v)
                if t == "MX":
                    v = (int(v[0]), str(v[1]))
                rr.append((t, v) if not timeout else (t, v))
        if not has_txt:
            rr += [("TXT", v) for v in spf]
        zone[name] = {"rr": rr, "timeout": timeout}
    return zone


def load_openspf(path):
    scen = []
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if not doc:
                continue
            cases = []
            for cid, c in (doc.get("tests") or {}).items():
                res = c["result"]
                cases.append({
                    "id": cid,
                    "ip": c["host"],
                    "sender": c.get("mailfrom", ""),
                    "helo": c.get("helo", ""),
                    "result": res if isinstance(res, list) else [res],
                    "explanation": c.get("explanation"),
                    "receiver": c.get("receiver"),
                    "header": c.get("header"),
                })
            scen.append({"zone": _records_openspf(doc.get("zonedata")), "cases": cases,
                         "description": doc.get("description", "")})
    return scen


def load_mail_auth(path):
    """mail-auth's format (not standard YAML: repeated keys).  Read by lines
    as a little program: `records` set up zone data; in `tests`, sender,
    domain (HELO) and ip persist until changed, `spf: name record` replaces
    that name's record for the cases after it, and each `expect` is a case."""
    import copy
    scen = []
    text = open(path).read()
    for doc in re.split(r"^---\s*$", text, flags=re.M):
        zone, section = {}, None
        state = {"sender": "", "domain": "", "ip": ""}
        cur = None
        for line in doc.splitlines():
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            if re.match(r"^records:\s*$", line):
                section = "records"
                continue
            if re.match(r"^tests:\s*$", line):
                section = "tests"
                continue
            if section == "records" and line.startswith(" "):
                t, rest = s.split(":", 1)
                _ma_record(zone, t.strip().lower(), rest.strip())
                continue
            if section != "tests":
                continue
            m = re.match(r"^\s*(?:-\s*)?([\w-]+):\s*(.*)$", line)
            if not m:
                continue
            k, v = m.group(1), m.group(2).strip()
            if k in ("spf", "exp", "a", "aaaa", "mx", "ptr"):
                if cur is None or cur["cases"]:
                    z = copy.deepcopy(cur["zone"] if cur else zone)
                    cur = {"zone": z, "cases": [], "description": ""}
                    scen.append(cur)
                if k == "spf":
                    name, _, rec = v.partition(" ")
                    ent = cur["zone"].setdefault(name, {"rr": [], "timeout": False})
                    ent["rr"] = [r for r in ent["rr"] if r[0] != "TXT"]
                _ma_record(cur["zone"], k, v)
            elif k in ("sender", "domain", "ip"):
                state[k] = v
            elif k == "expect":
                if cur is None:
                    cur = {"zone": zone, "cases": [], "description": ""}
                    scen.append(cur)
                exp = v.split(None, 1)
                cur["cases"].append({
                    "id": str(sum(len(x["cases"]) for x in scen)),
                    "ip": state["ip"], "sender": state["sender"], "helo": state["domain"],
                    "result": [exp[0]], "explanation": exp[1] if len(exp) > 1 else None,
                    "receiver": None, "header": None, "helo_first": True,
                })
    errs = set(re.findall(r"[\w.-]*_dns_error\.[\w.-]*\w", text))
    for x in scen:
        for n in errs:
            x["zone"][n] = {"rr": [], "timeout": "SERVFAIL"}
    return [x for x in scen if x["cases"]]


def _ma_record(zone, t, rest):
    name, _, val = rest.partition(" ")
    vals = [x for x in re.split(r"[,\s]+", val.strip()) if x]
    ent = zone.setdefault(name, {"rr": [], "timeout": False})
    if t in ("spf", "exp"):
        ent["rr"].append(("TXT", [val.strip()]))
    elif t == "a":
        ent["rr"] += [("A", x) for x in vals]
    elif t == "aaaa":
        ent["rr"] += [("AAAA", x) for x in vals]
    elif t == "mx":
        for i, ip in enumerate(vals):
            host = f"mx{i}.{name}"
            ent["rr"].append(("MX", (10 + i, host)))
            h = zone.setdefault(host, {"rr": [], "timeout": False})
            h["rr"].append(("AAAA" if ":" in ip else "A", ip))
    elif t == "ptr":
        for x in vals:
            zone.setdefault(_rev(name), {"rr": [], "timeout": False})["rr"].append(("PTR", x))


def _rev(ip):
    import ipaddress
    return ipaddress.ip_address(ip).reverse_pointer


# ---- serving ------------------------------------------------------------

def dnsfixture_zone(zone):
    """Our zone structure -> DnsServer data (timeouts per name and type:
    a name listed as TIMEOUT answers the types it has records of and times
    out on the others, as pyspf's test driver does)."""
    out = {}
    for name, ent in zone.items():
        labels = name.rstrip(".").split(".")
        if any(len(x.encode()) > 63 or not x for x in labels) or len(name) > 253:
            continue            # cannot exist in the DNS (the cases expect none)
        # dnslib shows such bytes as \DDD in the names it compares
        name = "".join("\\%03d" % b if b <= 0x20 or b > 0x7e else chr(b) for b in name.encode())
        if "_dns_error." in name:
            out[name] = "SERVFAIL"
            continue
        rr = []
        for t, v in ent["rr"]:
            if t == "SPF":
                rr.append(("TYPE99", b"".join(bytes([len(s)]) + s for s in
                                              _split(v))))
            else:
                rr.append((t, v))
        if ent["timeout"]:
            have = {t for t, _ in ent["rr"]}
            kw = "SERVFAIL" if ent["timeout"] == "SERVFAIL" else "TIMEOUT"
            if not have:
                out[name] = kw
                continue
            for t in QTYPES:
                if t not in have:
                    out[(name, t)] = kw
        out[name] = rr
    return out


def add_odd_names(server, zone):
    """Names with spaces or other odd bytes: dnslib parses a name string at
    dots and would write "\\032" literally, so give it the labels as bytes."""
    from dnslib import RR, DNSLabel, QTYPE
    import dnsfixture
    for name, ent in zone.items():
        if not any(b <= 0x20 or b > 0x7e for b in name.encode()):
            continue
        label = DNSLabel([x.encode() for x in name.rstrip(".").split(".")])
        for t, v in ent["rr"]:
            rd = dnsfixture._make_rdata(t, v)
            server.zone.add_rr(RR(label, rtype=getattr(QTYPE, t), ttl=300, rdata=rd))


def _split(v):
    out = []
    for s in v:
        b = s.encode()
        out += [b[i:i + 255] for i in range(0, len(b), 255)] or [b""]
    return out


def _esc(s):
    out = []
    for b in s.encode():
        if b in (0x22, 0x5c) or b < 0x20 or b > 0x7e:
            out.append("\\%03d" % b)
        else:
            out.append(chr(b))
    return "".join(out)


def zonefile_text(zone):
    lines = []
    for name, ent in zone.items():
        name = "".join("\\%03d" % b if b <= 0x20 or b > 0x7e or b == 0x5c else chr(b)
                       for b in name.encode())
        if "_dns_error." in name:
            lines.append(f"{name} SERVFAIL")
            continue
        for t, v in ent["rr"]:
            if t in ("TXT", "SPF"):
                q = " ".join('"' + _esc(s) + '"' for s in v)
                lines.append(f"{name} {t} {q}")
            elif t == "MX":
                lines.append(f"{name} MX {v[0]} {v[1]}")
            else:
                lines.append(f"{name} {t} {v}")
        if ent["timeout"]:
            have = {t for t, _ in ent["rr"]}
            if not have:
                lines.append(f"{name} TIMEOUT")
            else:
                lines += [f"{name} {t} TIMEOUT" for t in QTYPES if t not in have]
    return "\n".join(lines) + "\n"


# ---- running ------------------------------------------------------------

def run_case(binp, dnsargs, c):
    if c.get("helo_first") and c["helo"]:
        # mail-auth's runner: the HELO identity first (RFC 7208 2.3); its
        # fail stands, otherwise the MAIL FROM result is the answer.
        got, p = run_case(binp, dnsargs + ["--helo-identity"], dict(c, helo_first=False))
        if got is None or got["result"] == "fail":
            return got, p
    args = [binp, "spf", "--json", "--ip", c["ip"], "--sender", c["sender"] or "",
            "--helo", c["helo"] or "", "--default-exp", "DEFAULT", "--now", NOW]
    if c.get("receiver"):
        args += ["--receiver", c["receiver"]]
    args += dnsargs
    p = run(args, timeout=60)
    try:
        return json.loads(p.stdout), p
    except ValueError:
        return None, p


def unfold(h):
    return re.sub(r"\s+", " ", h).strip()


def header_fields(h):
    """Received-SPF value -> (result, {key: value}) ignoring the comment."""
    h = unfold(h)
    if h.lower().startswith("received-spf:"):
        h = h.split(":", 1)[1].strip()
    res, _, rest = h.partition(" ")
    if rest.startswith("("):
        depth = 0
        for i, ch in enumerate(rest):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0:
                rest = rest[i + 1:]
                break
    kv = {}
    for m in re.finditer(r'([\w-]+)=("(?:[^"\\]|\\.)*"|[^;\s]*)', rest):
        v = m.group(2)
        if v.startswith('"'):
            v = v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        kv[m.group(1).lower()] = v
    return res.lower(), kv


def check(c, got):
    """None when the case passed, else a short reason."""
    if got is None:
        return "no JSON output"
    if got["result"] not in c["result"]:
        return f"result {got['result']} want {c['result']} ({got.get('problem')})"
    if c["explanation"] is not None and got["result"] == "fail" and c["result"][0] == "fail":
        if (got.get("explanation") or "") != c["explanation"]:
            return f"explanation [{got.get('explanation')}] want [{c['explanation']}]"
    if c.get("header"):
        wres, wkv = header_fields(c["header"])
        gres, gkv = header_fields(got["received_spf"])
        if gres != wres:
            return f"Received-SPF result {gres} want {wres}"
        for k in ("client-ip", "envelope-from", "helo", "receiver", "identity", "mechanism"):
            if k in wkv and gkv.get(k) != wkv[k]:
                return f"Received-SPF {k}={gkv.get(k)} want {wkv[k]}"
    return None


def run_suite(binp, name, scenarios, tmp_path):
    results = {}
    for si, sc in enumerate(scenarios):
        if ZONE_MODE:
            zf = tmp_path / f"{name.replace('/', '_')}-{si}.zone"
            zf.write_text(zonefile_text(sc["zone"]))
            dnsargs, server = ["--zone", str(zf)], None
        else:
            server = DnsServer(dnsfixture_zone(sc["zone"]))
            add_odd_names(server, sc["zone"])
            server.start()
            dnsargs = ["--dns", server.server, "--dns-timeout", "1", "--dns-retry", "0"]
        try:
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                futs = {ex.submit(run_case, binp, dnsargs, c): c for c in sc["cases"]}
                for f, c in futs.items():
                    got, p = f.result()
                    results[f"{name}:{si}:{c['id']}"] = check(c, got) if got is not None else \
                        f"no output (rc {p.returncode}): {p.stderr.strip()[:200]}"
        finally:
            if server:
                server.stop()
    return results


def report(name, results, capsys):
    passed = sum(1 for v in results.values() if v is None)
    bad = {k: v for k, v in results.items() if v is not None and k not in EXPECTED_FAIL}
    xfail = {k: v for k, v in results.items() if v is not None and k in EXPECTED_FAIL}
    fixed = [k for k in EXPECTED_FAIL if k.startswith(name + ":") and results.get(k, 1) is None]
    with capsys.disabled():
        print(f"\n[conformance] {name}: {passed}/{len(results)} passed"
              f" ({len(xfail)} expected failures)")
        for k, v in sorted(xfail.items()):
            print(f"    expected failure {k}: {EXPECTED_FAIL[k]}")
        for k, v in sorted(bad.items()):
            print(f"    FAILED {k}: {v}")
        for k in fixed:
            print(f"    now passes (remove from EXPECTED_FAIL): {k}")
    assert not bad, f"{len(bad)} unexpected failures in {name}"
    assert not fixed, f"expected failures that pass now: {fixed}"


SUITES = [
    ("openspf-7208", "spf-openspf/rfc7208-tests.yml", load_openspf, 203),
    ("openspf-4408", "spf-openspf/rfc4408-tests.yml", load_openspf, 191),
    ("spf-extra-blitiri", "spf-extra/blitirispf-tests.yml", load_openspf, 21),
    ("spf-extra-simta", "spf-extra/rfc7208-simta.yml", load_openspf, 5),
    ("pyspf-test", "spf-pyspf/test.yml", load_openspf, None),
]


@pytest.fixture(scope="module")
def spf_ready(postern_auth_bin, conformance_dir):
    if not ZONE_MODE and DnsServer is None:
        pytest.skip("dnsfixture not available")
    if not ZONE_MODE:
        p = run([postern_auth_bin, "spf", "--ip", "192.0.2.1", "--sender", "a@example.invalid",
                 "--dns", "127.0.0.1@9", "--dns-timeout", "1", "--dns-retry", "0"])
        if "built without a resolver" in p.stderr:
            pytest.skip("postern-auth built without the DNS resolver (src/dns/dns.c)")
    return postern_auth_bin


@pytest.mark.parametrize("name,path,loader,count", SUITES, ids=[s[0] for s in SUITES])
def test_spf_suite(spf_ready, conformance_dir, tmp_path, capsys, name, path, loader, count):
    f = conformance_dir / path
    if not f.exists():
        pytest.skip(f"{f} missing")
    scen = loader(f)
    n = sum(len(s["cases"]) for s in scen)
    if count is not None:
        assert n == count, f"{name}: loaded {n} cases, expected {count}"
    report(name, run_suite(spf_ready, name, scen, tmp_path), capsys)


def test_spf_mail_auth(spf_ready, conformance_dir, tmp_path, capsys):
    d = conformance_dir / "spf-mail-auth"
    if not d.is_dir():
        pytest.skip("spf-mail-auth missing")
    results = {}
    for f in sorted(d.glob("*.yml")):
        scen = load_mail_auth(f)
        r = run_suite(spf_ready, f"spf-mail-auth/{f.stem}", scen, tmp_path)
        results.update({k.replace(f"spf-mail-auth/{f.stem}", "spf-mail-auth") if False else k: v
                        for k, v in r.items()})
    # one report for the directory
    renamed = {"spf-mail-auth:" + k.split("/", 1)[1]: v for k, v in results.items()}
    assert len(renamed) == 163, f"loaded {len(renamed)} mail-auth cases, expected 163"
    report("spf-mail-auth", renamed, capsys)

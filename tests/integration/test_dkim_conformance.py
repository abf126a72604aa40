"""DKIM and DomainKeys conformance: the public suites in ../shared/conformance
(RFC 6376 and RFC 8463 examples, dkimpy's data, mail-auth's messages, the
Mail::DKIM corpus with its expected.tsv), with every key record served by a
real DNS server on loopback (dnsfixture) that postern-auth queries via --dns.

Each suite prints its pass count; every case not passed must be listed in
EXPECTED_FAILURES with the reason, and the test fails if a case regresses
(or if a listed case starts passing, so the list stays honest)."""
import base64
import hashlib
import pathlib
import re
import subprocess

import pytest

from dnsfixture import DnsServer

# case id -> why it does not pass
EXPECTED_FAILURES = EXPECTED = {
    **{f"dkim-mail-dkim/good_ietf00_{i}.txt":
       "draft-ietf-dkim-base-00 signature without v= and bh= (the draft before bh= "
       "existed, whose signature covered the body itself); no RFC defines it and "
       "Mail::DKIM's own test skips it too"
       for i in range(1, 6)},
    "dkim-mail-dkim/bad_dk_3.txt":
        "DomainKey-Signature without q=: we verify it (good), since q= is optional in "
        "practice and the corpus itself expects good_dk_2.txt (also without q=) to pass; "
        "Mail::DKIM's own test skips this file",
    "dkim-mail-dkim-strict/good_ietf01_1.txt":
        "768-bit RSA key: Exim (and so postern) reports a key below "
        "dkim_verify_min_keysizes as invalid (pubkey_too_short); Mail::DKIM's strict "
        "mode calls it fail",
}


# ---- helpers ------------------------------------------------------------

def crlf(data: bytes) -> bytes:
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def auth(binary, args, msg=b"", dns=None, now=None, check=False):
    cmd = [binary] + list(args)
    if dns is not None:
        cmd += ["--dns", dns.server]
    if now is not None:
        cmd += ["--now", str(now)]
    p = subprocess.run(cmd, input=msg, capture_output=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd}: rc={p.returncode} {p.stderr.decode()}")
    return p


def results(p):
    """First word of each output line."""
    return [ln.split()[0] for ln in p.stdout.decode().splitlines() if ln.strip()]


def txt_zone(pairs):
    """[(name, value)] -> dnsfixture data (TXT records, behaviours)."""
    zone = {}
    for name, value in pairs:
        name = name.rstrip(".")
        if value in ("NXDOMAIN", "SERVFAIL", "TIMEOUT"):
            zone[name] = value
            continue
        zone.setdefault(name, []).append(("TXT", value))
    return zone


def report(capsys, suite, passed, total, failures):
    with capsys.disabled():
        print(f"\n[conformance] {suite}: {passed}/{total} passed")
        for case, why in sorted(failures.items()):
            print(f"[conformance]   not passed: {case}: {why}")


def check_suite(capsys, suite, outcome, expected_failures=None):
    """outcome: {case: None if passed else description}."""
    EXPECTED_FAILURES = expected_failures if expected_failures is not None else EXPECTED

    failed = {c: d for c, d in outcome.items() if d is not None}
    report(capsys, suite, len(outcome) - len(failed), len(outcome),
           {c: EXPECTED_FAILURES.get(f"{suite}/{c}", "UNEXPECTED: " + d) for c, d in failed.items()})
    expected = {c.split("/", 1)[1] for c in EXPECTED_FAILURES if c.startswith(suite + "/")}
    unexpected = {c: d for c, d in failed.items() if c not in expected}
    fixed = expected - set(failed)
    assert not unexpected, f"{suite}: regressions: {unexpected}"
    assert not fixed, f"{suite}: now passing, remove from EXPECTED_FAILURES: {fixed}"


# ---- RFC 8463 -----------------------------------------------------------

def rfc8463_zone(d):
    pairs = []
    for line in (d / "A2-dns.txt").read_text().splitlines():
        m = re.match(r'(\S+)\s+IN\s+TXT\s+"(.*)"', line)
        if m:
            pairs.append((m.group(1), m.group(2)))
    return txt_zone(pairs)


def split_message(raw: bytes):
    """Leading DKIM-Signature fields and the rest of the message."""
    lines = raw.split(b"\r\n")
    sigs, i = [], 0
    while i < len(lines) and lines[i].lower().startswith(b"dkim-signature:"):
        field = [lines[i]]
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            field.append(lines[i])
            i += 1
        sigs.append(b"\r\n".join(field))
    return sigs, b"\r\n".join(lines[i:])


def tag(field: bytes, name: str) -> str:
    value = field.split(b":", 1)[1].decode()
    for part in value.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            if k.strip() == name:
                return re.sub(r"\s+", "", v)
    return None


def test_rfc8463(postern_auth_bin, conformance_dir, capsys):
    d = conformance_dir / "dkim-rfc8463"
    msg = crlf((d / "A3-signed.eml").read_bytes())
    out = {}
    with DnsServer(rfc8463_zone(d)) as dns:
        p = auth(postern_auth_bin, ["dkim-verify"], msg, dns)
        out["verify-both"] = None if results(p) == ["pass", "pass"] and p.returncode == 0 \
            else p.stdout.decode()
        sigs, rest = split_message(msg)
        for sig, key in ((sigs[0], "A1-ed25519.private-seed.b64"), (sigs[1], "A1-rsa.private")):
            args = ["dkim-sign", "--domain", tag(sig, "d"), "--selector", tag(sig, "s"),
                    "--key", str(d / key), "--identity", tag(sig, "i"),
                    "--timestamp", tag(sig, "t"), "--headers", tag(sig, "h"), "--hsep", " : "]
            p = auth(postern_auth_bin, args, rest, check=True)
            mine, _ = split_message(p.stdout)
            name = "sign-" + tag(sig, "a")
            got, want = tag(mine[0], "b"), tag(sig, "b")
            out[name] = None if got == want else f"b= {got} != {want}"
            p = auth(postern_auth_bin, ["dkim-verify"], p.stdout, dns)
            out[name + "-verify"] = None if results(p) == ["pass"] else p.stdout.decode()
    check_suite(capsys, "dkim-rfc8463", out)


# ---- RFC 6376 -----------------------------------------------------------

def test_rfc6376(postern_auth_bin, conformance_dir, capsys):
    import yaml
    d = conformance_dir / "dkim-rfc6376"
    out = {}
    ex = yaml.safe_load((d / "canonicalization-examples.yml").read_text())
    msg = (ex["input"]["headers"] + "\r\n" + ex["input"]["body"]).encode()
    for e in ex["examples"]:
        for part in ("headers", "body"):
            p = auth(postern_auth_bin, ["dkim-canon", "--canon", e["c"], "--part", part], msg,
                     check=True)
            out[f"{e['id']}-{part}"] = None if p.stdout == e[part].encode() \
                else f"{p.stdout!r} != {e[part]!r}"
    zone = DnsServer.from_zonefile(str(d / "C-dns.zone"), origin="_domainkey.example.org")
    with zone as dns:
        # A.2/A.3 carry d=example.com while the key is published under
        # example.org: no key, "invalid" (pubkey_unavailable).
        for f in ("A2-signed.eml", "A3-verified.eml"):
            p = auth(postern_auth_bin, ["dkim-verify"], crlf((d / f).read_bytes()), dns)
            ok = results(p) == ["invalid"] and "pubkey_unavailable" in p.stdout.decode()
            out[f + "-nokey"] = None if ok else p.stdout.decode()
        # With the key also under example.com the signature is still bad: the
        # RFC's bh= is the relaxed body hash although c=simple/simple.
        pub = "".join((d / "C-rsa.public").read_text().split("\n")[1:-2])
        dns.set("brisbane._domainkey.example.com", [("TXT", "v=DKIM1; p=" + pub)])
        p = auth(postern_auth_bin, ["dkim-verify"], crlf((d / "A2-signed.eml").read_bytes()), dns)
        ok = results(p) == ["fail"] and "bodyhash_mismatch" in p.stdout.decode()
        out["A2-signed.eml-bh-erratum"] = None if ok else p.stdout.decode()
        # Signing A.1 with simple/simple gives the simple body hash.
        p = auth(postern_auth_bin, ["dkim-sign", "--domain", "example.com", "--selector",
                                    "brisbane", "--key", str(d / "C-rsa.private"), "--canon",
                                    "simple/simple"],
                 crlf((d / "A1-composed.eml").read_bytes()), check=True)
        sigs, _ = split_message(p.stdout)
        out["A1-simple-bh"] = None if tag(sigs[0], "bh") == \
            "4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=" else tag(sigs[0], "bh")
        p = auth(postern_auth_bin, ["dkim-verify"], p.stdout, dns)
        out["A1-sign-verify"] = None if results(p) == ["pass"] else p.stdout.decode()
    check_suite(capsys, "dkim-rfc6376", out)


# ---- mail-auth (name value lines, blank line, message) --------------------

def name_value_file(raw: bytes):
    head, _, msg = raw.partition(b"\n\n")
    pairs = []
    for line in head.decode().splitlines():
        if line.strip():
            n, v = line.split(None, 1)
            pairs.append((n, v))
    return pairs, crlf(msg)


def test_mail_auth(postern_auth_bin, conformance_dir, capsys):
    d = conformance_dir / "dkim-mail-auth"
    out = {}
    for f in sorted(d.glob("00*.txt")):
        pairs, msg = name_value_file(f.read_bytes())
        with DnsServer(txt_zone(pairs)) as dns:
            p = auth(postern_auth_bin, ["dkim-verify"], msg, dns, now=1667843664)
        r = results(p)
        out[f.name] = None if r and r[-1] == "pass" else p.stdout.decode()
    check_suite(capsys, "dkim-mail-auth", out)


# ---- Mail::DKIM corpus ------------------------------------------------------

def fake_dns(path):
    pairs = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        n, v = line.split(None, 1)
        v = v.strip()
        v = {"~~Query timed out~~": "TIMEOUT", "~~SERVFAIL~~": "SERVFAIL", '""': ""}.get(v, v)
        pairs.append((n, v))
    return txt_zone(pairs)


RANK = {"pass": 3, "fail": 2, "invalid": 1, "temperror": 1, "none": 0}


def whole_message(binary, msg, dns):
    """Mail::DKIM's whole-message result: the best of all DKIM and
    DomainKeys signatures (pass > fail > invalid > none)."""
    # The corpus dates from 2006-2008: 512- and 768-bit RSA keys, which
    # Exim's default minimum (rsa=1024, RFC 8301) would reject.
    words = results(auth(binary, ["dkim-verify", "--min-rsa-bits", "512"], msg, dns))
    if b"\ndomainkey-signature:" in b"\n" + msg.lower().split(b"\r\n\r\n")[0]:
        dk = results(auth(binary, ["dk-verify"], msg, dns))
        words += [{"good": "pass", "bad": "fail", "no-signature": "none",
                   "non-participant": "none"}.get(w, "invalid") for w in dk]
    words = [w for w in words if w in RANK] or ["none"]
    return max(words, key=lambda w: RANK[w]).replace("temperror", "invalid")


def test_mail_dkim(postern_auth_bin, conformance_dir, capsys):
    d = conformance_dir / "dkim-mail-dkim"
    out = {}
    with DnsServer(fake_dns(d / "FAKE_DNS.dat")) as dns:
        for line in (d / "expected.tsv").read_text().splitlines()[1:]:
            f, want = line.split("\t")[:2]
            msg = crlf((d / "corpus" / f).read_bytes())
            got = whole_message(postern_auth_bin, msg, dns)
            out[f] = None if got == want else f"got {got}, want {want}"
    check_suite(capsys, "dkim-mail-dkim", out)


# Mail::DKIM's strict mode (t/verifier_strict.t): rsa-sha1 and short keys
# are not acceptable; postern's equivalent is --strict with the default
# minimum key size.
STRICT = {"good_1878523.txt": "invalid", "good_ietf01_1.txt": "fail",
          "good_qp_1.txt": "invalid", "mine_ietf01_3.txt": "pass"}


def test_mail_dkim_strict(postern_auth_bin, conformance_dir, capsys):
    d = conformance_dir / "dkim-mail-dkim"
    out = {}
    with DnsServer(fake_dns(d / "FAKE_DNS.dat")) as dns:
        for f, want in STRICT.items():
            msg = crlf((d / "corpus" / f).read_bytes())
            words = results(auth(postern_auth_bin, ["dkim-verify", "--strict"], msg, dns))
            got = max(words or ["none"], key=lambda w: RANK.get(w, 0))
            out[f] = None if got == want else f"got {got}, want {want}"
    check_suite(capsys, "dkim-mail-dkim-strict", out)


# ---- dkimpy data --------------------------------------------------------------

def test_dkimpy(postern_auth_bin, conformance_dir, capsys, tmp_path):
    d = conformance_dir / "dkim-dkimpy"
    out = {}
    rec = lambda f: (d / f).read_text().strip()
    zone = {
        "test._domainkey.example.com": [("TXT", rec("test.txt"))],
        "test2._domainkey.example.com": [("TXT", rec("test2.txt"))],
        "ed._domainkey.example.com": [("TXT", rec("ed25519test.dns"))],
        "badk._domainkey.example.com": [("TXT", rec("badk.txt"))],
        "badv._domainkey.example.com": [("TXT", rec("badversion.txt"))],
        "bad._domainkey.example.com": [("TXT", rec("test_bad.txt"))],
        "tlsrpt._domainkey.example.com": [("TXT", rec("test_tlsrpt.txt"))],
        "k1024._domainkey.example.com": [("TXT", rec("1024_testkey_wo_markers.pub.txt"))],
        "k1024rsa._domainkey.example.com": [("TXT", rec("1024_testkey_wo_markers.pub.rsa.txt"))],
        "k2048._domainkey.example.com": [("TXT", rec("2048_testkey_wo_markers.pub.txt"))],
        "k2048rsa._domainkey.example.com": [("TXT", rec("2048_testkey_wo_markers.pub.rsa.txt"))],
        "k2048p8._domainkey.example.com": [("TXT", rec("2048_testkey_PKCS8.key.pub.txt"))],
    }
    z8463 = rfc8463_zone(conformance_dir / "dkim-rfc8463")
    zone.update(z8463)
    msg = crlf((d / "test.message").read_bytes())
    # sign with each key, verify with the matching record; then break it
    cases = [
        ("test.private", "test", "pass"), ("test2.private", "test2", "pass"),
        ("ed25519test.key", "ed", "pass"), ("rfc8032_7_1.key", "brisbane", "pass"),
        ("1024_testkey.key", "k1024", "pass"), ("1024_testkey.key", "k1024rsa", "pass"),
        ("2048_testkey.key", "k2048", "pass"), ("2048_testkey.key", "k2048rsa", "pass"),
        ("2048_testkey_PKCS8.key", "k2048p8", "pass"),
        ("test.private", "badk", "invalid"), ("test.private", "badv", "invalid"),
        ("test.private", "bad", "invalid"), ("test.private", "tlsrpt", "invalid"),
        ("test.private", "nonexistent", "invalid"),
    ]
    with DnsServer(zone) as dns:
        for key, sel, want in cases:
            domain = "football.example.com" if sel == "brisbane" else "example.com"
            for canon in ("relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"):
                p = auth(postern_auth_bin, ["dkim-sign", "--domain", domain, "--selector", sel,
                                            "--key", str(d / key), "--canon", canon], msg,
                         check=True)
                r = results(auth(postern_auth_bin, ["dkim-verify"], p.stdout, dns))
                name = f"{key}@{sel}:{canon}"
                out[name] = None if r == [want] else f"got {r}, want {want}"
                if want == "pass":
                    bad = p.stdout.replace(b"This is a test message", b"This is a fake message")
                    r = results(auth(postern_auth_bin, ["dkim-verify"], bad, dns))
                    out[name + ":tampered"] = None if r == ["fail"] else f"got {r}"
        # the pre-RFC draft of the RFC 8463 example, signed simple/simple
        for f in ("rfc6376.signed.msg", "rfc6376.signed.rsa.msg"):
            p = auth(postern_auth_bin, ["dkim-verify"], crlf((d / f).read_bytes()), dns)
            r = results(p)
            out[f] = None if r and all(x == "pass" for x in r) else p.stdout.decode()
        # dkimpy's other messages (degenerate folding, extra headers, no From)
        for f in ("test2.message", "test_extra.message", "rfc6376.msg", "rfc6376.w1258.msg"):
            p = auth(postern_auth_bin, ["dkim-sign", "--domain", "example.com", "--selector",
                                        "test", "--key", str(d / "test.private")],
                     crlf((d / f).read_bytes()), check=True)
            r = results(auth(postern_auth_bin, ["dkim-verify"], p.stdout, dns))
            out[f + ":sign-verify"] = None if r[0] == "pass" else f"got {r}"
        p = auth(postern_auth_bin, ["dkim-sign", "--domain", "example.com", "--selector", "test",
                                    "--key", str(d / "test.private")],
                 crlf((d / "test_nofrom.message").read_bytes()))
        out["test_nofrom.message:refused"] = None if p.returncode == 1 else f"rc {p.returncode}"
        for f in ("test.message", "rfc6376.msg"):
            r = results(auth(postern_auth_bin, ["dkim-verify"], crlf((d / f).read_bytes()), dns))
            out[f + ":unsigned"] = None if r == ["none"] else f"got {r}"
    check_suite(capsys, "dkim-dkimpy", out)

"""ARC conformance: the ValiMail suite (validation 171, signing 17) and
mail-auth's two sealed messages, from ../shared/conformance, with the key
records served by a real DNS server on loopback (dnsfixture) and
postern-auth querying it via --dns.

Prints pass counts per suite; every case not passed is listed in
EXPECTED_FAILURES with its reason; the test fails on any other outcome."""
import re

import pytest

from dnsfixture import DnsServer
from test_dkim_conformance import auth, check_suite, crlf, name_value_file, results, txt_zone

yaml = pytest.importorskip("yaml")

EMPTY_CV = ("expected cv is empty (dkimpy, which generated the suite, returns no cv when "
            "a seal says cv=fail); postern reports 'fail' as RFC 8617 5.2 requires, like "
            "Mail::DKIM and mailauth: ")
EXPECTED_FAILURES = {
    "arc-validation/cv_fail_i1_as_cv_fail": EMPTY_CV + "the newest (only) seal says cv=fail",
    "arc-validation/cv_fail_i2_as2_fail": EMPTY_CV + "the newest seal says cv=fail",
    "arc-validation/cv_fail_i2_as1_fail": EMPTY_CV + "seal i=1 says cv=fail where only "
                                          "cv=none is valid",
}


def scenarios(path):
    with open(path) as f:
        return [s for s in yaml.safe_load_all(f) if s]


def zone_of(sc):
    recs = sc.get("txt-records") or sc.get("txt_records") or {}
    return txt_zone([(n, re.sub(r"\s+", "", str(v)).replace(";", "; ")) for n, v in recs.items()])


def test_arc_validation(postern_auth_bin, conformance_dir, capsys):
    out = {}
    for sc in scenarios(conformance_dir / "arc-valimail" / "arc-draft-validation-tests.yml"):
        with DnsServer(zone_of(sc)) as dns:
            for name, case in sc["tests"].items():
                msg = crlf((case.get("message") or "").encode())
                p = auth(postern_auth_bin, ["arc-verify"], msg, dns)
                got = results(p)[0] if results(p) else "?"
                want = (case.get("cv") or "").lower()
                out[name] = None if got == want else f"got {got} want '{want}': {p.stdout.decode().strip()}"
    check_suite(capsys, "arc-validation", out, EXPECTED_FAILURES)


def tags(value):
    """tag -> value with all whitespace removed (order ignored)."""
    v = re.sub(r"\s+", "", value or "")
    return dict(t.split("=", 1) for t in v.split(";") if "=" in t)


def top_fields(msg: bytes):
    """The first three header fields (name, value) of msg."""
    fields = []
    for line in msg.split(b"\r\n"):
        if not line:
            break
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1] += b"\r\n" + line
        else:
            n, _, v = line.partition(b":")
            fields.append([n.decode(), v])
        if len(fields) > 3:
            break
    return [(n, v.decode()) for n, v in fields[:3]]


def test_arc_signing(postern_auth_bin, conformance_dir, capsys, tmp_path):
    out = {}
    for sc in scenarios(conformance_dir / "arc-valimail" / "arc-draft-sign-tests.yml"):
        key = tmp_path / "arc.key"
        key.write_text(sc["privatekey"])
        with DnsServer(zone_of(sc)) as dns:
            for name, case in sc["tests"].items():
                msg = crlf(case["message"].encode())
                args = ["arc-sign", "--domain", sc["domain"], "--selector", sc["sel"],
                        "--key", str(key), "--srv-id", case["srv-id"],
                        "--headers", case["sig-headers"], "--timestamp", str(case["t"])]
                p = auth(postern_auth_bin, args, msg, dns)
                want = {k: case.get(k) or "" for k in ("AS", "AMS", "AAR")}
                if not want["AS"].strip():
                    ok = p.returncode == 1 and p.stdout == msg
                    out[name] = None if ok else f"sealed although the chain failed (rc {p.returncode})"
                    continue
                if p.returncode != 0:
                    out[name] = f"rc {p.returncode}: {p.stderr.decode()}"
                    continue
                got = dict(top_fields(p.stdout))
                problems = []
                for hdr, k in (("ARC-Seal", "AS"), ("ARC-Message-Signature", "AMS")):
                    if tags(got.get(hdr)) != tags(want[k]):
                        problems.append(f"{k}: {tags(got.get(hdr))} != {tags(want[k])}")
                g_aar = re.sub(r"\s+", "", got.get("ARC-Authentication-Results", ""))
                if g_aar != re.sub(r"\s+", "", want["AAR"]):
                    problems.append(f"AAR: {g_aar}")
                # and it validates
                r = results(auth(postern_auth_bin, ["arc-verify"], p.stdout, dns))
                cv = tags(want["AS"]).get("cv")
                if r != (["fail"] if cv == "fail" else ["pass"]):
                    problems.append(f"verify: {r}")
                out[name] = "; ".join(problems) or None
    check_suite(capsys, "arc-signing", out, EXPECTED_FAILURES)


def test_arc_mail_auth(postern_auth_bin, conformance_dir, capsys):
    out = {}
    for f in sorted((conformance_dir / "arc-mail-auth").glob("00*.txt")):
        pairs, msg = name_value_file(f.read_bytes())
        with DnsServer(txt_zone(pairs)) as dns:
            p = auth(postern_auth_bin, ["arc-verify"], msg, dns)
            d = auth(postern_auth_bin, ["dkim-verify"], msg, dns)
        ok = results(p) == ["pass"] and "pass" in results(d)
        out[f.name] = None if ok else f"arc {p.stdout.decode().strip()} dkim {results(d)}"
    check_suite(capsys, "arc-mail-auth", out, EXPECTED_FAILURES)


def test_arc_oldest_pass(postern_auth_bin, conformance_dir):
    """$arc_oldest_pass on the suite's chains: 1 when every AMS validates,
    2 when AMS(1) no longer does; the A-R field says 0 / 2 (RFC 8617)."""
    want = {"cv_pass_i2_1": ("oldest-pass=1", "header.oldest-pass=0"),
            "cv_pass_i2_1_ams1_invalid": ("oldest-pass=2", "header.oldest-pass=2")}
    seen = set()
    for sc in scenarios(conformance_dir / "arc-valimail" / "arc-draft-validation-tests.yml"):
        with DnsServer(zone_of(sc)) as dns:
            for name, case in sc["tests"].items():
                if name not in want:
                    continue
                p = auth(postern_auth_bin, ["arc-verify", "--srv-id", "mx.example"],
                         crlf(case["message"].encode()), dns)
                out = p.stdout.decode()
                assert out.startswith("pass ") and want[name][0] in out.split("\n")[0], out
                assert want[name][1] in out, out
                seen.add(name)
    assert seen == set(want)

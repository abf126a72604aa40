"""DMARC reporting: history records written by `postern-auth dmarc
--history`, aggregate reports built from them by `dmarc-report` (checked as
XML, against the element vocabulary of real reports in the conformance
data), and failure reports (RFC 6591) written by `dmarc --failure-report`,
read back with Python's email parser.  DNS comes from a loopback server."""
import email
import email.policy
import os
import re
import sys
import xml.etree.ElementTree as ET

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import run  # noqa: E402

try:
    from dnsfixture import DnsServer
except Exception:  # pragma: no cover
    DnsServer = None

ZONE = {
    "_dmarc.example.com": [("TXT", "v=DMARC1; p=reject; rua=mailto:agg@example.com; "
                                   "ruf=mailto:fail@example.com,mailto:fail2@example.net!10m; fo=1")],
    "_dmarc.example.org": [("TXT", "v=DMARC1; p=quarantine; sp=none; adkim=s")],
    "example.com": [("TXT", "v=spf1 ip4:192.0.2.0/24 -all"), ("A", "192.0.2.1")],
    "mail.example.org": [("TXT", "v=spf1 ip4:198.51.100.7 -all")],
    "example.org": [("TXT", "v=spf1 -all")],
}

MSG = ("From: Someone <someone@{dom}>\nTo: you@example.net\nSubject: hello\n"
       "Message-ID: <{n}@{dom}>\n\nbody {n}\n")


def ns(tag):
    return tag.split("}", 1)[-1]


def paths(elem, prefix=""):
    out = set()
    for ch in elem:
        p = f"{prefix}/{ns(ch.tag)}"
        out.add(p)
        out |= paths(ch, p)
    return out


@pytest.fixture(scope="module")
def dns():
    if DnsServer is None:
        pytest.skip("dnsfixture not available")
    with DnsServer(ZONE) as d:
        yield d


def dmarc(binp, dns, msg, *extra):
    return run([binp, "dmarc", "--dns", dns.server, "--dns-timeout", "1", "--receiver",
                "mx.receiver.example"] + list(extra), input=msg)


def test_history_and_aggregate(postern_auth_bin, dns, tmp_path, conformance_dir):
    hist = tmp_path / "history"
    t0 = 1700000000
    sends = [  # (ip, sender, from domain, expected outcome)
        ("192.0.2.5", "a@example.com", "example.com", "accept"),
        ("192.0.2.5", "b@example.com", "example.com", "accept"),
        ("203.0.113.9", "x@elsewhere.example", "example.com", "reject"),
        ("203.0.113.9", "y@mail.example.org", "example.org", "quarantine"),
        ("203.0.113.9", "z@nowhere.example", "no-dmarc.example", "norecord"),
    ]
    for i, (ip, snd, dom, want) in enumerate(sends):
        p = dmarc(postern_auth_bin, dns, MSG.format(dom=dom, n=i), "--ip", ip, "--sender", snd,
                  "--helo", "h.example", "--history", str(hist), "--job", f"J{i}",
                  "--now", str(t0 + i))
        assert p.stdout.split()[0] == want, (p.stdout, p.stderr)
    text = hist.read_text()
    assert text.count("job ") == 4          # no record for the domain without DMARC
    assert "pdomain example.com" in text and "policy 16" in text and "policy 15" in text
    assert "rua mailto:agg@example.com" in text

    out = tmp_path / "reports"
    out.mkdir()
    p = run([postern_auth_bin, "dmarc-report", "--history", str(hist), "--org", "Receiver Org",
             "--email", "dmarc@receiver.example", "--from", str(t0), "--to", str(t0 + 86400),
             "--outdir", str(out), "--mail"])
    assert p.returncode == 0, p.stderr
    files = sorted(f for f in out.iterdir() if f.name.endswith(".xml"))
    assert len(files) == 2
    # RFC 9990 file names: receiver!policy-domain!begin!end!unique-id.xml
    assert all(re.match(r"receiver\.example!example\.(com|org)!1700000000!1700086400!"
                        r"[A-Za-z0-9]+\.xml$", f.name) for f in files), files
    # the report mail for the domain with rua= (example.org has none)
    mails = sorted(out.glob("*.eml"))
    assert len(mails) == 1 and "example.com" in mails[0].name
    m = email.message_from_bytes(mails[0].read_bytes(), policy=email.policy.default)
    assert m["To"] == "agg@example.com" and m["From"] == "dmarc@receiver.example"
    assert re.match(r"Report Domain: example\.com Submitter: receiver\.example Report-ID: <.+>$",
                    re.sub(r"\s+", " ", m["Subject"]))
    att = [x for x in m.iter_attachments()]
    assert len(att) == 1 and att[0].get_content_type() == "text/xml"
    assert att[0].get_filename() == mails[0].name[:-4]
    assert att[0].get_payload(decode=True) == (out / att[0].get_filename()).read_bytes()
    com = ET.parse([f for f in files if "example.com" in f.name][0]).getroot()
    assert ns(com.tag) == "feedback"
    q = lambda e, p: e.find("/".join("{urn:ietf:params:xml:ns:dmarc-2.0}" + x for x in p.split("/")))
    assert q(com, "policy_published/domain").text == "example.com"
    assert q(com, "policy_published/p").text == "reject"
    rows = com.findall("{urn:ietf:params:xml:ns:dmarc-2.0}record")
    counts = sorted(int(q(r, "row/count").text) for r in rows)
    assert counts == [1, 2]                  # two identical passes grouped
    disp = {q(r, "row/source_ip").text: q(r, "row/policy_evaluated/disposition").text for r in rows}
    assert disp == {"192.0.2.5": "pass", "203.0.113.9": "reject"}

    # the period excludes everything: no report
    p = run([postern_auth_bin, "dmarc-report", "--history", str(hist), "--org", "R", "--email",
             "d@r.example", "--from", "1", "--to", "2", "--stdout"])
    assert p.returncode == 0 and p.stdout == ""

    xsd = os.environ.get("DMARC_XSD")        # RFC 9990's schema, when at hand
    if xsd:
        for f in files:
            v = run(["xmllint", "--noout", "--schema", xsd, str(f)])
            assert v.returncode == 0, v.stderr
    # every element path we write is one that real reports use (RFC 7489
    # appendix C vocabulary, as in the mail-auth sample reports), apart from
    # RFC 9990 additions
    samples = sorted((conformance_dir / "dmarc-reports-mail-auth" / "dmarc-feedback").glob("*.xml"))
    if samples:
        known = set()
        for s in samples:
            known |= paths(ET.parse(s).getroot())
        ours = paths(com)
        rfc9990_new = {"/policy_published/discovery_method", "/report_metadata/generator"}
        assert ours - known - rfc9990_new == set(), ours - known


def test_failure_report(postern_auth_bin, dns, tmp_path):
    rep = tmp_path / "fail.eml"
    msg = MSG.format(dom="example.com", n=7)
    p = dmarc(postern_auth_bin, dns, msg, "--ip", "203.0.113.9", "--sender", "x@elsewhere.example",
              "--helo", "h.example", "--failure-report", str(rep), "--forensic-sender",
              "dmarc-reports@receiver.example", "--now", "1700000000", "--json")
    import json
    got = json.loads(p.stdout)
    assert got["outcome"] == "reject" and got["failure_report"] is True
    m = email.message_from_bytes(rep.read_bytes(), policy=email.policy.default)
    assert m["From"] == "dmarc-reports@receiver.example"
    assert m["To"] == "fail@example.com, fail2@example.net"      # every ruf= mailto
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "feedback-report"
    parts = list(m.iter_parts())
    assert [x.get_content_type() for x in parts] == ["text/plain", "message/feedback-report",
                                                    "text/rfc822-headers"]
    fb = parts[1].get_payload()
    fbtext = fb if isinstance(fb, str) else "".join(str(x) for x in fb)
    for field in ("Feedback-Type: auth-failure", "Auth-Failure: dmarc", "Source-IP: 203.0.113.9",
                  "Reported-Domain: example.com", "Identity-Alignment: none"):
        assert field in fbtext, fbtext
    assert "Message-ID: <7@example.com>" in parts[2].get_content()
    # an aligned identifier that failed: Identity-Alignment names it, SPF-DNS
    # carries the record (RFC 9991)
    rep3 = tmp_path / "spf.eml"
    p = dmarc(postern_auth_bin, dns, msg, "--ip", "203.0.113.9", "--sender", "a@example.com",
              "--helo", "h.example", "--failure-report", str(rep3), "--dkim", "fail:example.com:sel")
    m3 = email.message_from_bytes(rep3.read_bytes(), policy=email.policy.default)
    fb3 = list(m3.iter_parts())[1].get_payload()
    fb3 = fb3 if isinstance(fb3, str) else "".join(str(x) for x in fb3)
    assert "Identity-Alignment: dkim, spf" in fb3, fb3
    assert "DKIM-Domain: example.com" in fb3 and "DKIM-Selector: sel" in fb3
    assert 'SPF-DNS: txt : example.com : "v=spf1 ip4:192.0.2.0/24 -all"' in fb3
    # a passing message gets no report
    rep2 = tmp_path / "none.eml"
    p = dmarc(postern_auth_bin, dns, msg, "--ip", "192.0.2.5", "--sender", "a@example.com",
              "--helo", "h.example", "--failure-report", str(rep2))
    assert p.stdout.startswith("accept") and not rep2.exists()


def test_outcomes_and_texts(postern_auth_bin, dns):
    """Exim's outcome words, $dmarc_used_domain and $dmarc_domain_policy."""
    cases = [
        ("example.org", "192.0.2.5", "q@example.com", "quarantine example.org quarantine"),
        ("sub.example.org", "192.0.2.5", "q@example.com", "none example.org none"),
        ("no-dmarc.example", "192.0.2.5", "q@example.com", "norecord - -"),
    ]
    for dom, ip, snd, want in cases:
        p = dmarc(postern_auth_bin, dns, MSG.format(dom=dom, n=1), "--ip", ip, "--sender", snd,
                  "--helo", "h.example", "--mode", "rfc7489")
        assert p.stdout.strip() == want, (dom, p.stdout, p.stderr)
    p = dmarc(postern_auth_bin, dns, "Subject: no from\n\nx\n", "--ip", "192.0.2.5",
              "--sender", "a@example.com", "--helo", "h.example")
    assert p.stdout.split()[0] == "nofrom" and p.returncode == 1
    # A-R injection: an Authentication-Results claiming dmarc=pass is not believed
    inj = ("Authentication-Results: mx.receiver.example; dmarc=pass header.from=example.com\n"
           + MSG.format(dom="example.com", n=2))
    p = dmarc(postern_auth_bin, dns, inj, "--ip", "203.0.113.9", "--sender", "x@elsewhere.example",
              "--helo", "h.example", "--ar")
    assert "dmarc=fail" in p.stdout and p.returncode == 1
    # multi-valued From: the strictest result stands
    multi = MSG.format(dom="example.com", n=3).replace(
        "From: Someone <someone@example.com>",
        "From: a@example.org, Someone <someone@example.com>")
    p = dmarc(postern_auth_bin, dns, multi, "--ip", "198.51.100.7", "--sender",
              "y@mail.example.org", "--helo", "h.example")
    assert p.stdout.split()[0] == "reject", p.stdout

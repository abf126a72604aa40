"""ACL conditions that need DNS (dnslists, verify = helo), compared with
Exim 4.96: both programs run `-bh` dialogues inside private mount and
network namespaces where /etc/resolv.conf names a dnslib server on
127.0.0.1:53 serving ZONE (dnsfixture.run_with_system_dns; needs root and
unshare, else the test is skipped)."""
import os
import shlex
import shutil
import tempfile

import pytest

from dnsfixture import SystemDnsUnavailable, run_with_system_dns
from test_acl_exim import COMMON, EXIM, comparable, replies

ZONE = {
    "2.2.0.192.bl.example": [("A", "127.0.0.2"), ("TXT", "listed: see http://bl.example/2")],
    "3.2.0.192.bl.example": [("A", "127.0.0.3")],
    "4.2.0.192.bl.example": "SERVFAIL",
    "5.2.0.192.bl.example": [("A", "10.0.0.1")],
    "spam.example.dbl.example": [("A", "127.0.1.2")],
    "good.example": [("A", "192.0.2.1")],
    "1.2.0.192.in-addr.arpa": [("PTR", "ptr.example")],
    "ptr.example": [("A", "192.0.2.1")],
    "bl.example": [("SOA", ("ns.bl.example", "h.bl.example", 1, 7200, 900, 1209600, 300))],
    "example": [("SOA", ("ns.example", "h.example", 1, 7200, 900, 1209600, 300))],
}

CONF = """acl_smtp_mail = acl_mail
acl_smtp_rcpt = acl_rcpt
begin acl
acl_mail:
  require message = helo $sender_helo_name not verified
          verify = helo
  accept
acl_rcpt:
  deny    message = listed with 127.0.0.2
          dnslists = bl.example=127.0.0.2
  deny    message = listed with something else
          dnslists = bl.example!=127.0.0.2
  deny    message = listed when unknown counts
          dnslists = +defer_unknown : bl.example
  deny    message = sender domain listed
          dnslists = dbl.example/$sender_address_domain
  accept
"""

POSTERN_ONLY = "dns_trust_anchor_file =\ndns_retrans = 1s\ndns_retry = 1\n"

# (client ip, dialogue)
DIALOGUES = [
    ("192.0.2.1", ["HELO good.example", "MAIL FROM:<a@ok.example>", "HELO PTR.example", "MAIL FROM:<a@x>",
                   "HELO other.example", "MAIL FROM:<a@x>", "HELO [192.0.2.1]", "MAIL FROM:<a@x>", "QUIT"]),
    ("192.0.2.1 sender domain", ["HELO good.example", "MAIL FROM:<a@ok.example>", "RCPT TO:<b@x>",
                                 "RSET", "MAIL FROM:<a@spam.example>", "RCPT TO:<b@x>", "QUIT"]),
    ("192.0.2.2", ["HELO [192.0.2.2]", "MAIL FROM:<a@x>", "RCPT TO:<b@x>", "QUIT"]),
    ("192.0.2.3", ["HELO [192.0.2.3]", "MAIL FROM:<a@x>", "RCPT TO:<b@x>", "QUIT"]),
    ("192.0.2.4", ["HELO [192.0.2.4]", "MAIL FROM:<a@x>", "RCPT TO:<b@x>", "QUIT"]),
    ("192.0.2.5", ["HELO [192.0.2.5]", "MAIL FROM:<a@x>", "RCPT TO:<b@x>", "QUIT"]),
]


@pytest.fixture(scope="module")
def runs(postern_bin):
    if not os.access(EXIM, os.X_OK):
        pytest.skip("exim4 is not installed")
    top = tempfile.mkdtemp(prefix="acl-dns-")
    os.chmod(top, 0o755)
    try:
        cmds = []
        for i, (name, lines) in enumerate(DIALOGUES):
            ip = name.split()[0]
            dlg = os.path.join(top, f"dialogue{i}")
            with open(dlg, "w") as f:
                f.write("".join(x + "\r\n" for x in lines))
            for prog, binary in (("exim", EXIM), ("postern", postern_bin)):
                spool = os.path.join(top, f"{prog}{i}")
                os.makedirs(os.path.join(spool, "log"))
                os.chmod(spool, 0o777)
                os.chmod(os.path.join(spool, "log"), 0o777)
                cfg = os.path.join(top, f"{prog}{i}.conf")
                with open(cfg, "w") as f:
                    f.write(COMMON.format(spool=spool) + (POSTERN_ONLY if prog == "postern" else "") + CONF)
                cmds.append(["sh", "-c", f"{shlex.quote(binary)} -C {shlex.quote(cfg)} -bh {ip} "
                                         f"< {shlex.quote(dlg)}"])
        try:
            res = run_with_system_dns(ZONE, cmds, timeout=600)
        except SystemDnsUnavailable as e:
            pytest.skip(str(e))
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return [(comparable(replies(res[2 * i].stdout)), comparable(replies(res[2 * i + 1].stdout)))
            for i in range(len(DIALOGUES))]


XFAIL = {}   # cases postern is known to answer differently (none now)


@pytest.mark.parametrize("idx", [
    pytest.param(i, marks=pytest.mark.xfail(reason=XFAIL[d[0]], strict=False)) if d[0] in XFAIL else i
    for i, d in enumerate(DIALOGUES)], ids=[d[0] for d in DIALOGUES])
def test_dns_acl_against_exim(idx, runs):
    exim, postern = runs[idx]
    assert exim, "exim4 gave no SMTP replies"
    assert postern == exim, f"{DIALOGUES[idx][0]}: replies differ\nexim:    {exim}\npostern: {postern}"

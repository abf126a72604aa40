"""Address rewriting ("begin rewrite"), compared with Debian's Exim 4.96.

1. -brw: for a corpus of rule sets and addresses, `postern -C conf -brw
   addr` must print exactly what `exim4 -C conf -brw addr` prints.
2. Reception: the same configuration and input through Exim and postern
   (-bs from a remote address, -bs locally, -bm, -t), queued; the envelope
   and the headers on the spool (-Mvh) must agree once message ids, dates
   and the Received: header (it names the program) are set aside, and so
   must the address_rewrite log lines.

Run alone:  POSTERN_BIN=build/postern /usr/bin/python3 -m pytest -q \
            tests/integration/test_rewrite.py
"""
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest

EXIM = shutil.which("exim4") or ("/usr/sbin/exim4" if os.path.exists("/usr/sbin/exim4") else None)
needs_exim = pytest.mark.skipif(EXIM is None, reason="exim4 not installed")

HEAD = """\
primary_hostname = test.example
qualify_domain = q.example
qualify_recipient = r.example
domainlist local_domains = a.example : b.example
addresslist special = x@a.example : ^y(.*)@b.example : +nested
addresslist nested = *@n.example
"""

# ---- rule sets and addresses for -brw ------------------------------------

RULES = {
    "empty": "",
    "basic": r"""
root@*.hitch.fict.example  *
*@*.hitch.fict.example  $1@hitch.fict.example
fp42@hitch.fict.example Ford.Prefect@hitch.fict.example bctfrF
""",
    # numeric variables and $local_part/$domain, shown in a quoted local part
    "vars": r"""
*queen@*.fict.example  "\"$0|$1|$2|$3|$local_part|$domain\"@x.example"
^(?i)(BOB)@(.*)  "\"$0|$1|$2|$3\"@y.example"
*@+local_domains  "\"$0|$1|$2|$3\"@z.example"
lsearch;DATA/whole.ls   "\"$0|$1|$2|$3|$value\"@w.example"
*@partial-lsearch;DATA/dom.ls   "\"$0|$1|$2|$3|$4\"@p.example"
*@lsearch*;DATA/star.ls "\"$0|$1|$2|$3\"@s.example"
\N^([^@]+)@(sub)\.(.+)$\N  "\"$0|$1|$2|$3\"@re.example"
exact@\N^(.*)\.rx\.example$\N "\"$0|$1|$2\"@dre.example"
*-x@\N^(.*)\.rx2\.example$\N "\"$0|$1|$2|$3\"@dre2.example"
sub.example  "\"$0|$1\"@dom.example"
*.wild.example  "\"$0|$1|$2\"@wdom.example"
""",
    "lists": r"""
+special   "\"$0|$1|$2\"@s.example"
!*@*.org  "\"$0|$1\"@neg.example" T
*@!*.net "\"$0|$1\"@negdom.example" F
@@lsearch;DATA/lp.ls  "\"$0|$1\"@split.example" f
joe@@  "host@x.example" s
*@+nosuchlist  "never@x.example" t
""",
    "flags": r"""
*@a.example  $1@b.example  q
*@b.example  $1@c.example
\N^(.*)x@r\.example$\N  $1@r.example  R
\N^(.*)y@rq\.example$\N  $1@rq.example  Rq
*@rq.example  $1@after-rq.example
*@w.example  "New Name <${local_part}@w2.example>"  w
*@w2.example  $1@w3.example
*@nw.example  "New Name <${local_part}@nw2.example>"
*@dots.example  "John Q. Smith <$1@w3.example> (c)"  w
*@quoted.example  "\"Already, quoted\" Smith <$1@w3.example>"  w
*@eight.example  "J\xc3\xb6rg <$1@w3.example>"  w
*@qq.example  local-$1   Q
*@uq.example  unq-$1
*@ff.example  "${if !eq{$1}{keep}{$1@gg.example}fail}"
*@ff.example  $1@hh.example
*@qf.example  "${if !eq{$1}{keep}{$1@gg.example}fail}" q
*@qf.example  $1@never.example
*@err.example ${lookup{x}nosuchlookup{y}}
*@bad.example  "not an <address"
*@null.example  <>  F
*@null2.example  <>
*@case.example  "$local_part.$domain@Case.Example"
*@spaced.example  $1@spaced2.example  f t  F
""",
    "smtp": r"""
\N^<([^!]+)!(.*)@your\.domain>$\N   <$2@$1>   S
\N^<(.*)@old\.example>$\N  $1@new.example  S
\N^<>$\N  <>  S
\N^<(.*)@loop\.example>$\N  <$1@loop.example>  S
""",
    "mixed": r"""
\N^<(.*)@old\.example>$\N  $1@new.example  S
*@old.example  $1@env.example  E
*@new.example  $1@hdr.example  h
""",
}

ADDRESSES = [
    "fp42@x.hitch.fict.example", "Ford <fp42@x.hitch.fict.example>", "fp42",
    "\"Ford Prefect\" <fp42@hitch.fict.example>", "fp42@hitch.fict.example (Ford)",
    "<fp42@HITCH.fict.example>", "root@x.hitch.fict.example", "a@b@c", "<>", "",
    "\"a b\"@c.com", "@route:u@x.hitch.fict.example", "<@r1,@r2:u@x.hitch.fict.example>",
    "Name <u@x.hitch.fict.example> (trailing)", "u@[1.2.3.4]", "u@-bad.example",
    "grp: u@x.hitch.fict.example;", "u.@x.example", ".u@x.example", "u..v@x.example",
    "hearts-queen@Wonderland.fict.example", "Bob@EXAMPLE.com", "x@a.example", "yes@b.example",
    "whole@D.example", "foo@bar.baz.example", "foo@baz.example", "foo@Exact.example",
    "any@else.example", "a@sub.thing.example", "exact@one.rx.example", "ab-x@two.rx2.example",
    "u@sub.example", "u@deep.wild.example", "who@n.example", "a@b.org", "a@b.net", "fred@split.example",
    "mary@split.example", "joe@test.example", "joe@TEST.example", "u@a.example", "u@b.example",
    "abcxxxxxxxxxxxxxxx@r.example", "abcx@r.example", "ayyy@rq.example", "u@w.example",
    "Old Name <u@w.example>", "u@nw.example", "Old <u@nw.example> (c)", "u@dots.example",
    "u@quoted.example", "u@eight.example", "u@qq.example", "u@uq.example", "keep@ff.example",
    "other@ff.example", "keep@qf.example", "u@err.example", "u@bad.example", "u@null.example",
    "u@null2.example", "Mixed.Case@case.example", "u@spaced.example", "<a!b@your.domain>",
    "<u@old.example>", "u@old.example", "<u@loop.example>", "u@loop.example",
    "To: u@x.example", "u@x.example, v@y.example", "\"unterminated@x.example",
    "u(comment)@(c2)x.hitch.fict.example", "  spaced@x.hitch.fict.example  ",
]


@pytest.fixture
def data_dir():
    """Lookup files Exim can read after dropping privilege (the pytest
    directory is private to root)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="rewrite-data-"))
    os.chmod(d, 0o755)
    write_data(d)
    for f in d.iterdir():
        os.chmod(f, 0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def write_data(d):
    (d / "whole.ls").write_text("whole@d.example: wv\n")
    (d / "dom.ls").write_text("*.baz.example: pv\nexact.example: ev\n")
    (d / "star.ls").write_text("*: sv\n")
    (d / "lp.ls").write_text("split.example: fred : ^m.*y : !bob\n")


def config_text(rules, data):
    return HEAD + "begin rewrite\n" + rules.replace("DATA", str(data)) if rules else HEAD


def brw(binary, conf, addr):
    r = subprocess.run([binary, "-C", conf, "-brw", addr], capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode("utf-8", "replace")


@needs_exim
@pytest.mark.parametrize("name", sorted(RULES))
def test_brw_matches_exim(postern_bin, tmp_path, data_dir, name):
    data = data_dir
    conf = tmp_path / "rw.conf"
    conf.write_text(config_text(RULES[name], data))
    bad, printed = [], 0
    for a in ADDRESSES:
        want = brw(EXIM, str(conf), a)
        assert want[0] == 0, f"exim refused the rules: {want}"
        printed += bool(want[1])
        got = brw(postern_bin, str(conf), a)
        if got != want:
            bad.append(f"-brw {a!r}\n--- exim (rc {want[0]})\n{want[1]}--- postern (rc {got[0]})\n{got[1]}")
    assert printed >= 3, "the corpus exercised nothing"
    assert not bad, f"{len(bad)} of {len(ADDRESSES)} differ:\n" + "\n".join(bad)


def test_brw_prints_each_place(postern_bin, tmp_path):
    """Independent of Exim: the documented example of the spec."""
    conf = tmp_path / "rw.conf"
    conf.write_text(HEAD + "begin rewrite\n"
                    "ph10@exim.workshop.example  Philip.Hazel@exim.workshop.example  sfrF\n")
    rc, out = brw(postern_bin, str(conf), "ph10@exim.workshop.example")
    assert rc == 0
    assert out == ("  sender: Philip.Hazel@exim.workshop.example\n"
                   "    from: Philip.Hazel@exim.workshop.example\n"
                   "      to: ph10@exim.workshop.example\n"
                   "      cc: ph10@exim.workshop.example\n"
                   "     bcc: ph10@exim.workshop.example\n"
                   "reply-to: Philip.Hazel@exim.workshop.example\n"
                   "env-from: Philip.Hazel@exim.workshop.example\n"
                   "  env-to: ph10@exim.workshop.example\n")


def test_bad_rules_are_config_errors(postern_bin, tmp_path):
    for rule, msg in [("a@b c@d x", "unknown rewrite flag character 'x'"),
                      ("a@b c@d S", "S flag but is not a regular expression"),
                      ("a@b", "missing replacement")]:
        conf = tmp_path / "bad.conf"
        conf.write_text(HEAD + "begin rewrite\n" + rule + "\n")
        r = subprocess.run([postern_bin, "-C", str(conf), "-brw", "a@b"], capture_output=True, text=True)
        assert r.returncode != 0 and msg in r.stderr, (rule, r.stderr)


# ---- reception: the spool ----------------------------------------------------

E2E_RULES = r"""
root@*.hitch.fict.example  *
*@*.hitch.fict.example  $1@hitch.fict.example
fp42@hitch.fict.example Ford.Prefect@hitch.fict.example fsF
^(?i)bob@(.*)  robert@$1  hE
*@whole.example  "Whole Person <$1@whole2.example>"  w
*@cc.example  $1@cc-only.example  c
*@bcc.example  $1@bcc-only.example  b
*@rt.example  $1@reply.example  r
*@to.example  "${if !eq{$1}{keep}{$1@to-longer-domain-name.example}fail}"  t
*@x.example  $1@T-only.example  T
\N^<([^!]+)!(.*)@your\.domain>$\N   <$2@$1>   S
*@q.example  $1@qualified.example
*@r.example  $1@rqualified.example
"""

SPOOL = """\
primary_hostname = test.example
qualify_domain = q.example
qualify_recipient = r.example
spool_directory = {d}/spool
log_file_path = {d}/%slog
exim_user = root
exim_group = root
keep_environment =
queue_only
acl_smtp_rcpt = accept
log_selector = +address_rewrite
{extra}
begin rewrite
{rules}
"""

HEADERS = (
    "From: Ford (the man) <fp42@a.hitch.fict.example>\r\n"
    "To: \"Bob B\" <bob@x.example>, arthur@earth.hitch.fict.example,\r\n"
    "  trillian, keep@to.example, a@to.example, someone.with.a.long.name@to.example, b@to.example\r\n"
    "Cc: group: a@b.hitch.fict.example, c@cc.example;, d@bcc.example\r\n"
    "Bcc: e@bcc.example, bad@@x\r\n"
    "Reply-To: f@rt.example (reply here)\r\n"
    "Sender: g@whole.example\r\n"
    "Resent-To: bob@y.example\r\n"
    "Resent-From: h@whole.example\r\n"
    "X-Other: bob@x.example\r\n"
    "Subject: hi\r\n"
)


def smtp_input(mail, rcpts, headers=HEADERS):
    s = "HELO x\r\nMAIL FROM:" + mail + "\r\n"
    for r in rcpts:
        s += "RCPT TO:" + r + "\r\n"
    s += "DATA\r\n" + headers + "\r\nbody\r\n.\r\nQUIT\r\n"
    return s


SCENARIOS = {
    # remote client: unqualified header addresses are left alone
    "smtp-remote": dict(args=["-bs", "-oMa", "1.2.3.4"],
                        input=smtp_input("<fp42@a.hitch.fict.example>",
                                         ["<Bob@b.example>", "<z@c.hitch.fict.example>", "<u@x.example>"])),
    # a remote client allowed to send unqualified addresses: they are qualified
    "smtp-unqualified-hosts": dict(args=["-bs", "-oMa", "1.2.3.4"],
                                   extra="sender_unqualified_hosts = 1.2.3.4\n"
                                         "recipient_unqualified_hosts = 1.2.3.0/24\n",
                                   input=smtp_input("<fp42@a.hitch.fict.example>", ["<bob@b.example>"],
                                                    "From: fp42\r\nTo: arthur, trillian@earth.hitch.fict.example\r\n"
                                                    "Reply-To: zaphod\r\nSubject: q\r\n")),
    # comments, quoted phrases, groups, folding, "w" inside a group
    "smtp-tricky": dict(args=["-bs", "-oMa", "1.2.3.4"],
                        input=smtp_input("<s@a.hitch.fict.example>", ["<r@b.example>"],
                                         "To: (lead) x@a.hitch.fict.example (c1),\r\n\t\"Quoted, Name\" <y@b.hitch.fict.example>,\r\n"
                                         "  none:;, grp: z@whole.example, w@whole.example;, last@c.hitch.fict.example\r\n"
                                         "Cc: a.very.long.local.part@a.hitch.fict.example, another.long.one@b.hitch.fict.example,"
                                         " short@cc.example, and.more@d.hitch.fict.example\r\n"
                                         "Bcc:\r\nReply-To: <>\r\nFrom: \"Bob\" <Bob@x.example>\r\n")),
    # SMTP-time rewriting of MAIL and RCPT
    "smtp-S": dict(args=["-bs", "-oMa", "1.2.3.4"],
                   input=smtp_input("<host!fp42@your.domain>", ["<earth!arthur@your.domain>", "<plain@b.example>"],
                                    "From: x@y.example\r\nSubject: s\r\n")),
    # local SMTP (-bs without a host): qualification allowed
    "smtp-local": dict(args=["-bs"],
                       input=smtp_input("<fp42@a.hitch.fict.example>", ["<bob@b.example>"],
                                        "From: fp42@a.hitch.fict.example\r\nTo: arthur, bob\r\n"
                                        "Message-Id: <m1@x>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n")),
    # local message, recipients on the command line
    "bm": dict(args=["-odq", "Bob@b.example", "root@x.hitch.fict.example", "u@x.example"],
               input="From: Ford <fp42@a.hitch.fict.example>\nTo: bob, \"Al\" <al>\n"
                     "Cc: Zaphod <z@earth.hitch.fict.example>\nSubject: x\n\nbody\n"),
    # local message without From:, Message-Id:, Date: (generated, then rewritten)
    "bm-fixups": dict(args=["-odq", "bob@b.example"], input="To: arthur@earth.hitch.fict.example\n\nbody\n"),
    # -t: recipients from the headers, then rewritten
    "t": dict(args=["-odq", "-t"],
              input="From: fp42@a.hitch.fict.example\nTo: bob@earth.hitch.fict.example, arthur\n"
                    "Bcc: e@bcc.example\nSubject: t\n\nbody\n"),
}

ID = re.compile(r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}\b")
DATE = re.compile(r"\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [-+]\d{4}")


def spooled(binary, conf, d):
    """(sender, recipients, headers) of the one queued message, from -Mvh."""
    ids = sorted(p.name[:-2] for p in (d / "spool" / "input").iterdir() if p.name.endswith("-H"))
    assert len(ids) == 1, ids
    out = subprocess.run([binary, "-C", conf, "-Mvh", ids[0]], capture_output=True, text=True).stdout
    lines = out.split("\n")
    if lines and lines[0].endswith("-H"):
        lines = lines[1:]             # Exim's -Mvh starts with the file name
    sender = lines[1]
    xx = lines.index("XX")
    n = int(lines[xx + 1])
    rcpts = lines[xx + 2:xx + 2 + n]
    blank = lines.index("", xx)
    headers, skip = [], False
    for line in lines[blank + 1:]:
        if re.match(r"^\d{3}P ", line):
            skip = True               # Received: names the program and version
            continue
        if skip and line[:1] in (" ", "\t"):
            continue
        skip = False
        headers.append(DATE.sub("DATE", ID.sub("ID", line)))
    return sender, rcpts, headers


def rewrite_log(d):
    log = (d / "mainlog").read_text() if (d / "mainlog").exists() else ""
    out = []
    for line in log.splitlines():
        if " rewritten " in line or "rewrite:" in line:
            out.append(ID.sub("ID", line.split(" ", 2)[2]))
    return out


def receive(binary, top, name, sc):
    d = top / name
    d.mkdir(parents=True)
    conf = d / "c.conf"
    conf.write_text(SPOOL.format(d=d, extra=sc.get("extra", ""), rules=E2E_RULES))
    r = subprocess.run([binary, "-C", str(conf)] + sc["args"], input=sc["input"].encode(),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return spooled(binary, str(conf), d), rewrite_log(d), r.stdout.decode()


@needs_exim
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_reception_matches_exim(postern_bin, tmp_path, name):
    sc = SCENARIOS[name]
    want, want_log, want_out = receive(EXIM, tmp_path / "exim", name, sc)
    got, got_log, got_out = receive(postern_bin, tmp_path / "postern", name, sc)
    assert got[0] == want[0], "envelope sender"
    assert got[1] == want[1], "recipients"
    assert got[2] == want[2], "headers:\n" + "\n".join(want[2]) + "\n--- postern:\n" + "\n".join(got[2])
    assert got_log == want_log
    if sc["args"][0] == "-bs":
        # replies, without the greeting lines that name the program
        norm = lambda t: [ID.sub("ID", l) for l in t.splitlines() if not l.startswith(("220 ", "250 test.example Hello"))]
        assert norm(got_out) == norm(want_out)


def test_rewritten_header_kept_as_deleted_copy(postern_bin, tmp_path):
    """Independent of Exim: the spool layout of a rewritten header."""
    sc = SCENARIOS["smtp-remote"]
    (sender, rcpts, headers), log, _ = receive(postern_bin, tmp_path, "p", sc)
    assert sender == "<Ford.Prefect@hitch.fict.example>"
    assert rcpts == ["robert@b.example", "z@hitch.fict.example", "u@T-only.example"]
    i = headers.index("049* From: Ford (the man) <fp42@a.hitch.fict.example>")
    assert headers[i + 1] == "055F From: Ford (the man) <Ford.Prefect@hitch.fict.example>"
    assert "044* X-rewrote-original-recipient: Bob@b.example" in headers
    assert "044* X-rewrote-sender: fp42@a.hitch.fict.example" in headers
    assert any(h.startswith("   X-Other: bob@x.example") or h.endswith(" X-Other: bob@x.example") for h in headers)

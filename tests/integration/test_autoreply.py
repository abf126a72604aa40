"""The autoreply transport end to end with the real daemon: a vacation
reply reaches the original sender with the empty envelope sender; once
(LMDB and Exim's fixed-size file), once_repeat, never_mail, file,
file_optional, file_expand, return_message, log, taint checks, expansion
failures; and a differential run of the same configuration through Exim."""
import email
import os
import pathlib
import shutil
import struct
import subprocess
import tempfile
import time

import pytest

from mta import Daemon
from test_deliver import EXIM, local_config, mail, send, wait_for  # noqa: F401  (mail is a fixture)

ORIGINAL = ("From: Sender <sender@a.example>\r\nTo: alice@a.example\r\nSubject: hello there\r\n"
            "Message-ID: <m1@a.example>\r\nReferences: <r0@a.example>\r\n\r\nOriginal body line\r\n")


def ar_config(mail, opts, main="", router=""):
    """alice is answered by the vacation transport (running as nobody);
    everyone else in a.example gets an mbox with Return-path:."""
    return local_config(
        mail, None,
        extra_routers=router + "vac:\n  driver = accept\n  local_parts = alice\n  transport = vacation\n",
        extra_transports="vacation:\n  driver = autoreply\n  user = nobody\n  group = nogroup\n" + opts,
        main=main)


def mbox_messages(path):
    """The messages of an mbox file (the "From " lines split them)."""
    text = pathlib.Path(path).read_text()
    parts = [p for p in ("\n" + text).split("\nFrom ") if p.strip()]
    # each message is followed by an empty line
    return [email.message_from_string(p.split("\n", 1)[1][:-1]) for p in parts]


def completed(d, n):
    return lambda: d.mainlog().count(" Completed") >= n


VACATION = """\
  from = Alice <alice@a.example>
  reply_to = alice-assistant@a.example
  to = $sender_address
  cc = bob@a.example
  bcc = carol@a.example
  subject = Re: $h_subject:
  headers = X-Vacation: yes
  text = Dear $h_from:, $local_part is away.\\nYour message "$h_subject:" will be read later.
"""


def test_vacation_reply_reaches_sender(postern_bin, tmp_path, mail):
    with Daemon(postern_bin, tmp_path, ar_config(mail, VACATION), queue_only=False) as d:
        send(d.port, "sender@a.example", ["alice@a.example"], ORIGINAL)
        assert wait_for(lambda: (mail / "sender").exists() and completed(d, 2)())
        orig_id = d.mainlog().split(" <= sender@a.example", 1)[0].split()[-1]
        log = d.mainlog()
        # the reply was queued by the delivery process with sender <>, as
        # Exim logs it, and delivered
        assert f" <= <> R={orig_id} U=nobody P=local S=" in log
        assert "=> alice <alice@a.example> R=vac T=vacation" in log
        text = (mail / "sender").read_text()
        assert text.startswith("From MAILER-DAEMON ")
        assert "\nReturn-path: <>\n" in text.split("\n\n", 1)[0] + "\n"
        [reply] = mbox_messages(mail / "sender")
        assert reply["From"] == "Alice <alice@a.example>"
        assert reply["Reply-To"] == "alice-assistant@a.example"
        assert reply["To"] == "sender@a.example"
        assert reply["Cc"] == "bob@a.example"
        assert reply["Bcc"] is None
        assert reply["Subject"] == "Re: hello there"
        assert reply["In-Reply-To"] == "<m1@a.example>"
        assert reply["References"] == "<r0@a.example> <m1@a.example>"
        assert reply["Auto-Submitted"] == "auto-replied"
        assert reply["X-Vacation"] == "yes"
        assert reply["Message-Id"] and reply["Date"]
        # nobody is not trusted and is not the From: address (local_from_check)
        assert reply["Sender"] == "nobody <nobody@test.example>"
        assert reply.get_payload() == ('Dear Sender <sender@a.example>, alice is away.\n'
                                       'Your message "hello there" will be read later.\n')
        # Cc: and Bcc: recipients got the same reply; Bcc: is not shown
        for who in ("bob", "carol"):
            [copy] = mbox_messages(mail / who)
            assert copy["Subject"] == "Re: hello there" and copy["Bcc"] is None
        assert not (mail / "alice").exists()
        assert d.queued() == []


def test_trusted_user_gets_no_sender_and_a_from(postern_bin, tmp_path, mail):
    opts = "  to = $sender_address\n  subject = auto\n  text = away\n"
    with Daemon(postern_bin, tmp_path, ar_config(mail, opts, main="trusted_users = nobody\n"),
                queue_only=False) as d:
        send(d.port, "sender@a.example", ["alice@a.example"], ORIGINAL)
        assert wait_for(lambda: (mail / "sender").exists())
        [reply] = mbox_messages(mail / "sender")
        assert reply["Sender"] is None
        assert reply["From"] == "nobody@test.example"      # made from the user's login


def test_reply_to_a_bounce_is_dropped(postern_bin, tmp_path, mail):
    """to = $sender_address for a message from <>: no recipients, and that
    is not an error (Exim ignores "no recipients" from its resubmission)."""
    opts = "  to = $sender_address\n  subject = auto\n  text = away\n"
    with Daemon(postern_bin, tmp_path, ar_config(mail, opts), queue_only=False) as d:
        send(d.port, "", ["alice@a.example"], ORIGINAL)
        assert wait_for(completed(d, 1))
        log = d.mainlog()
        assert "=> alice <alice@a.example> R=vac T=vacation" in log
        assert " <= <> R=" not in log
        panic = d.spool / "log" / "paniclog"
        assert not panic.exists() or panic.read_text() == ""


ONCE = "  to = $sender_address\n  subject = away\n  text = gone\n  once = {once}\n  log = {log}\n"


@pytest.mark.parametrize("size", [0, 200])
def test_once_sends_one_reply_per_sender(postern_bin, tmp_path, mail, size):
    once, logf = mail.parent / "once", mail.parent / "vacation.log"
    os.chmod(mail.parent, 0o1777)
    opts = ONCE.format(once=once, log=logf) + f"  once_file_size = {size}\n"
    with Daemon(postern_bin, tmp_path, ar_config(mail, opts), queue_only=False) as d:
        for i in range(2):
            send(d.port, "sender@a.example", ["alice@a.example"], ORIGINAL)
            assert wait_for(completed(d, 2 + i))
        assert len(mbox_messages(mail / "sender")) == 1
        log = d.mainlog()
        assert log.count("=> alice <alice@a.example> R=vac T=vacation") == 2
        assert log.count(" <= <> R=") == 1
    assert once.stat().st_uid == 65534 and (once.stat().st_mode & 0o777) == 0o600    # mode
    records = logf.read_text()
    assert "\n  To: sender@a.example\n  Subject: away\n" in records
    assert records.rstrip().endswith("\n  previously sent to sender@a.example")
    if size:
        # Exim's layout: a native time_t, the To: text, a NUL
        raw = once.read_bytes()
        (t,) = struct.unpack("=q", raw[:8])
        assert raw[8:] == b"sender@a.example\0" and abs(t - time.time()) < 600
    else:
        dump = subprocess.run(["mdb_dump", "-n", "-p", str(once)], capture_output=True, text=True).stdout
        assert "sender@a.example" in dump


def read_cyclic(path):
    raw, out = path.read_bytes(), []
    while raw:
        (t,) = struct.unpack("=q", raw[:8])
        addr, raw = raw[8:].split(b"\0", 1)
        out.append((addr.decode(), t))
    return out


def seed_cyclic(path, entries):
    path.write_bytes(b"".join(struct.pack("=q", int(t)) + a.encode() + b"\0" for a, t in entries))
    os.chown(path, 65534, 65534)


@pytest.mark.parametrize("repeat,replies", [("30m", 1), ("2h", 0), ("0s", 0)])
def test_once_repeat(postern_bin, tmp_path, mail, repeat, replies):
    """A reply was sent an hour ago (the record is made by hand): once_repeat
    shorter than that allows another; longer, or 0 (for ever), does not."""
    once = mail.parent / "once"
    os.chmod(mail.parent, 0o1777)
    seed_cyclic(once, [("old@a.example", time.time() - 7200), ("sender@a.example", time.time() - 3600)])
    opts = (f"  to = $sender_address\n  subject = away\n  text = gone\n  once = {once}\n"
            f"  once_file_size = 1000\n  once_repeat = {repeat}\n")
    with Daemon(postern_bin, tmp_path, ar_config(mail, opts), queue_only=False) as d:
        send(d.port, "sender@a.example", ["alice@a.example"], ORIGINAL)
        assert wait_for(completed(d, 1 + replies))
        assert "=> alice <alice@a.example> R=vac T=vacation" in d.mainlog()
        assert d.mainlog().count(" <= <> R=") == replies
        got = len(mbox_messages(mail / "sender")) if (mail / "sender").exists() else 0
        assert got == replies
    records = read_cyclic(once)
    assert [a for a, _ in records] == ["old@a.example", "sender@a.example"]
    assert (abs(records[1][1] - time.time()) < 600) == bool(replies)   # updated only when a reply went


def test_once_file_drops_oldest_records(postern_bin, tmp_path, mail):
    once = mail.parent / "once"
    os.chmod(mail.parent, 0o1777)
    old = [(f"u{i}@a.example", 1000 + i) for i in range(3)]        # 8 + 14 bytes each
    seed_cyclic(once, old)
    opts = (f"  to = $sender_address\n  subject = away\n  text = gone\n  once = {once}\n"
            f"  once_file_size = 60\n")
    with Daemon(postern_bin, tmp_path, ar_config(mail, opts), queue_only=False) as d:
        send(d.port, "sender@a.example", ["alice@a.example"], ORIGINAL)
        assert wait_for(lambda: (mail / "sender").exists())
        assert wait_for(completed(d, 2))
    raw = once.read_bytes()
    assert len(raw) <= 60
    assert b"u0@a.example" not in raw and b"u1@a.example" not in raw
    assert raw[:8] == struct.pack("=q", 1002) and raw.endswith(b"sender@a.example\0")


def test_never_mail(postern_bin, tmp_path, mail):
    opts = ("  to = $sender_address\n  cc = Bob <bob@a.example>, carol@a.example\n  subject = away\n"
            "  text = gone\n  never_mail = sender@a.example : ^carol@\n")
    with Daemon(postern_bin, tmp_path, ar_config(mail, opts), queue_only=False) as d:
        send(d.port, "sender@a.example", ["alice@a.example"], ORIGINAL)
        assert wait_for(lambda: (mail / "bob").exists() and completed(d, 2)())
        [reply] = mbox_messages(mail / "bob")
        assert reply["To"] is None                         # the only To: address was dropped
        assert reply["Cc"] == "Bob <bob@a.example>"
        assert not (mail / "sender").exists() and not (mail / "carol").exists()


def test_never_mail_drops_everyone(postern_bin, tmp_path, mail):
    logf = mail.parent / "vacation.log"
    os.chmod(mail.parent, 0o1777)
    opts = f"  to = $sender_address\n  subject = away\n  text = gone\n  never_mail = *@a.example\n  log = {logf}\n"
    with Daemon(postern_bin, tmp_path, ar_config(mail, opts), queue_only=False) as d:
        send(d.port, "sender@a.example", ["alice@a.example"], ORIGINAL)
        assert wait_for(completed(d, 1))
        log = d.mainlog()
        assert "=> alice <alice@a.example> R=vac T=vacation" in log
        assert " <= <> R=" not in log
        assert not logf.exists()                           # nothing was sent, nothing logged


def test_file_expand_and_file_optional(postern_bin, tmp_path, mail):
    body = mail.parent / "vacation.txt"
    body.write_text("I am $local_part.\nBack on Monday ${if eq{1}{2}{x}{(really)}}\n")
    opts = (f"  to = $sender_address\n  subject = away\n  text = First the text.\n"
            f"  file = ${{if eq{{$h_subject:}}{{hello there}}{{{body}}}{{{body}.missing}}}}\n  file_expand\n")
    # file_optional: a second transport has it, for dave
    extra = (f"vacopt:\n  driver = autoreply\n  user = nobody\n  group = nogroup\n  to = $sender_address\n"
             f"  subject = optional\n  text = Only the text.\n  file = {body}.missing\n  file_optional\n")
    router = "vacopt:\n  driver = accept\n  local_parts = dave\n  transport = vacopt\n"
    with Daemon(postern_bin, tmp_path, ar_config(mail, opts + extra, router=router), queue_only=False) as d:
        send(d.port, "sender@a.example", ["alice@a.example"], ORIGINAL)
        assert wait_for(lambda: (mail / "sender").exists() and completed(d, 2)())
        [reply] = mbox_messages(mail / "sender")
        assert reply.get_payload() == "First the text.\nI am alice.\nBack on Monday (really)\n"
        # a missing file defers the address (not file_optional)
        send(d.port, "sender@a.example", ["alice@a.example"], ORIGINAL.replace("hello there", "other"))
        assert wait_for(lambda: "== alice@a.example R=vac T=vacation" in d.mainlog())
        assert f"Failed to open file {body}.missing when sending message from vacation transport" in d.mainlog()
        # with file_optional the reply goes without it
        send(d.port, "sender@a.example", ["dave@a.example"], ORIGINAL)
        assert wait_for(lambda: len(mbox_messages(mail / "sender")) == 2)
        assert mbox_messages(mail / "sender")[1].get_payload() == "Only the text.\n"


def test_return_message(postern_bin, tmp_path, mail):
    opts = ("  to = $sender_address\n  subject = returned\n  text = Here is your message.\n"
            "  return_message\n  headers_add = X-Copy: yes\n")
    with Daemon(postern_bin, tmp_path, ar_config(mail, opts, main="bounce_return_size_limit = 10K\n"),
                queue_only=False) as d:
        send(d.port, "sender@a.example", ["alice@a.example"], ORIGINAL)
        assert wait_for(lambda: (mail / "sender").exists() and completed(d, 2)())
        [reply] = mbox_messages(mail / "sender")
        assert reply["X-Copy"] is None                     # header options apply to the copy only
        body = reply.get_payload()
        head, copy = body.split("------ This is a copy of the message, including all the headers.\n\n", 1)
        assert head == "Here is your message.\n\n"
        assert "\nSubject: hello there\n" in copy and "\nX-Copy: yes\n" in copy
        assert copy.endswith("\n\nOriginal body line\n")
        # a body over the limit is cut there, and the reply says so
        big = "".join(f"line {i:05d} " + "x" * 88 + "\r\n" for i in range(400))   # 40000 bytes
        send(d.port, "sender@a.example", ["alice@a.example"], ORIGINAL.replace("Original body line\r\n", big))
        assert wait_for(lambda: len(mbox_messages(mail / "sender")) == 2)
        body = mbox_messages(mail / "sender")[1].get_payload()
        assert "------ This is a copy of the message, including all the headers.\n------ The body of the message is" in body
        assert "characters long; only the first\n------ 16000 or so are included here.\n\n" in body
        copied = body.split("\n\n", 3)[3]                  # after the original's header lines
        assert copied.startswith("line 00000 ") and len(copied.rstrip("\n")) == 10240


def test_log_file(postern_bin, tmp_path, mail):
    logf = mail.parent / "vacation.log"
    os.chmod(mail.parent, 0o1777)
    opts = VACATION + f"  log = {logf}\n  mode = 0640\n"
    with Daemon(postern_bin, tmp_path, ar_config(mail, opts), queue_only=False) as d:
        send(d.port, "sender@a.example", ["alice@a.example"], ORIGINAL)
        assert wait_for(lambda: (mail / "sender").exists() and completed(d, 2)())
    lines = logf.read_text().split("\n")
    time.strptime(lines[0], "%Y-%m-%d %H:%M:%S")
    assert lines[1:] == ["  From: Alice <alice@a.example>", "  To: sender@a.example", "  Cc: bob@a.example",
                         "  Bcc: carol@a.example", "  Subject: Re: hello there", "  X-Vacation: yes", ""]
    assert logf.stat().st_mode & 0o777 == 0o640 and logf.stat().st_uid == 65534


@pytest.mark.parametrize("option,what", [("once", "once file"), ("log", "logfile"), ("file", "file")])
def test_tainted_file_names_are_refused(postern_bin, tmp_path, mail, option, what):
    os.chmod(mail.parent, 0o1777)
    opts = f"  to = $sender_address\n  subject = away\n  text = gone\n  {option} = {mail.parent}/x.$local_part\n"
    with Daemon(postern_bin, tmp_path, ar_config(mail, opts), queue_only=False) as d:
        send(d.port, "sender@a.example", ["alice@a.example"], ORIGINAL)
        assert wait_for(lambda: "== alice@a.example R=vac T=vacation" in d.mainlog())
        assert (f"Tainted '{mail.parent}/x.alice' ({what} for vacation transport) not permitted"
                in d.mainlog())
        assert " <= <> R=" not in d.mainlog()
        assert not (mail.parent / "x.alice").exists()
        assert len(d.queued()) == 1                        # deferred, kept


def test_expansion_failure_fails_the_address(postern_bin, tmp_path, mail):
    """As in Exim 4.96: a failed expansion of an autoreply option fails the
    address (it bounces), with the option text and the reason."""
    opts = "  to = $sender_address\n  subject = ${if bogus{x}}\n  text = gone\n"
    with Daemon(postern_bin, tmp_path, ar_config(mail, opts), queue_only=False) as d:
        send(d.port, "sender@a.example", ["alice@a.example"], ORIGINAL)
        assert wait_for(lambda: (mail / "sender").exists() and completed(d, 2)())
        log = d.mainlog()
        assert ('** alice@a.example R=vac T=vacation : Expansion of "${if bogus{x}}" failed in vacation '
                'transport: unknown condition "bogus"') in log
        [bounce] = mbox_messages(mail / "sender")
        assert bounce["Subject"].startswith("Mail delivery failed")


def test_non_printing_header_value_fails(postern_bin, tmp_path, mail):
    opts = "  to = $sender_address\n  subject = a\\x01b\n  text = gone\n"
    with Daemon(postern_bin, tmp_path, ar_config(mail, opts), queue_only=False) as d:
        send(d.port, "sender@a.example", ["alice@a.example"], ORIGINAL)
        assert wait_for(lambda: "** alice@a.example R=vac T=vacation" in d.mainlog())
        assert "in vacation transport contains non-printing character 1" in d.mainlog()


# ---- the same configuration through Exim ------------------------------------

DIFF_CONF = """\
primary_hostname = test.example
qualify_domain = a.example
spool_directory = {dir}/spool
log_file_path = {dir}/%slog
exim_user = nobody
exim_group = nogroup
trusted_users = nobody
domainlist local_domains = a.example
begin routers
vac:
  driver = accept
  local_parts = alice
  transport = vacation
local:
  driver = accept
  local_parts = sender : bob : carol
  transport = mbox
begin transports
vacation:
  driver = autoreply
  user = nobody
  group = nogroup
  from = Alice <alice@a.example>
  reply_to = helper@a.example
  to = $sender_address
  cc = bob@a.example, Ex Cluded <excluded@a.example>
  bcc = carol@a.example
  never_mail = excluded@a.example
  subject = Re: $h_subject:
  headers = X-Vacation: yes\\nX-Original-To: $local_part@$domain
  text = $local_part is away.
  file = {dir}/body.txt
  file_expand
  once = {dir}/once/db
  once_file_size = 500
  log = {dir}/once/log
  return_message
  headers_add = X-Copy: yes
mbox:
  driver = appendfile
  file = {dir}/mail/$local_part_data
  user = nobody
  group = nogroup
  return_path_add
"""

DIFF_MSG = ("From: sender@a.example\nTo: alice@a.example\nSubject: differential\n"
            "Message-ID: <d1@a.example>\nIn-Reply-To: <p1@a.example>\n"
            "References: <r0@a.example>\n <r1@a.example> (comment) <r2@a.example>\n\nthe original\n")

SKIP = {"received", "message-id", "date"}


def run_setup(binary, top):
    top.mkdir()
    os.chmod(top, 0o755)
    for sub in ("spool", "spool/input", "spool/msglog", "spool/db", "mail", "once"):
        (top / sub).mkdir()
        os.chmod(top / sub, 0o1777)     # Exim re-executed as nobody (-C drops privilege) writes here
    for name in ("mainlog", "paniclog", "rejectlog"):
        (top / name).touch()
        os.chmod(top / name, 0o666)
    (top / "body.txt").write_text("Back on ${substr_0_3:Monday}.\n")
    conf = top / "conf"
    conf.write_text(DIFF_CONF.format(dir=top))
    r = subprocess.run([binary, "-C", str(conf), "-odi", "-f", "sender@a.example", "alice@a.example"],
                       input=DIFF_MSG, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: all((top / "mail" / w).exists() for w in ("sender", "bob", "carol")), 30), \
        (top / "mainlog").read_text() + (top / "paniclog").read_text()
    time.sleep(0.5)
    return top


def reply_view(path):
    """The reply's header lines (in order, without per-run ones) and body,
    with the per-run lines of the returned copy removed."""
    text = path.read_text()
    head, body = text.split("\n", 1)[1].split("\n\n", 1)
    fields = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t"):
            fields[-1] += "\n" + line
        else:
            fields.append(line)
    kept = [f for f in fields if f.split(":", 1)[0].lower() not in SKIP]
    out, skipping = [], False
    for line in body.split("\n"):
        if line[:1] not in (" ", "\t"):
            skipping = line.split(":", 1)[0].lower() in SKIP
        if not skipping:
            out.append(line)
    return kept, "\n".join(out)


@pytest.mark.skipif(EXIM is None, reason="exim4 not installed")
def test_reply_matches_exim(postern_bin, tmp_path):
    top = pathlib.Path(tempfile.mkdtemp(prefix="postern-ar-"))
    os.chmod(top, 0o755)
    try:
        ours = run_setup(postern_bin, top / "postern")
        theirs = run_setup(EXIM, top / "exim")
        for who in ("sender", "bob", "carol"):
            assert reply_view(ours / "mail" / who) == reply_view(theirs / "mail" / who), who
        headers, _ = reply_view(ours / "mail" / "sender")
        assert "Return-path: <>" in headers and "X-Vacation: yes" in headers
        assert (ours / "once" / "db").read_bytes()[8:] == (theirs / "once" / "db").read_bytes()[8:]
        strip = lambda s: [l for l in s.split("\n") if not l[:1].isdigit()]      # noqa: E731
        assert strip((ours / "once" / "log").read_text()) == strip((theirs / "once" / "log").read_text())
        # the same message again: both leave it at one reply
        for binary, t in ((postern_bin, ours), (EXIM, theirs)):
            r = subprocess.run([binary, "-C", str(t / "conf"), "-odi", "-f", "sender@a.example", "alice@a.example"],
                               input=DIFF_MSG, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0
        time.sleep(1)
        for t in (ours, theirs):
            assert wait_for(lambda: "previously sent to sender@a.example" in (t / "once" / "log").read_text())
            assert (t / "mail" / "sender").read_text().count("\nFrom MAILER-DAEMON") == 0
    finally:
        shutil.rmtree(top, ignore_errors=True)

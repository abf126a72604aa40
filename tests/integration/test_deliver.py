"""Delivery end to end with real daemons on loopback: routers (accept,
manualroute, redirect), transports (appendfile mbox and maildir, pipe,
smtp, queuefile), bounces with DSN extra information, the queue runner,
-M, journal recovery, -bt compared with Exim, and Exim delivering a
message postern queued."""
import email
import os
import pathlib
import re
import shutil
import smtplib
import subprocess
import tempfile
import time

import pytest

from mta import Daemon, free_port

EXIM = shutil.which("exim4") or ("/usr/sbin/exim4" if os.path.exists("/usr/sbin/exim4") else None)


def wait_for(pred, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def mail():
    """A mailbox directory local deliveries (as nobody) can write: pytest's
    own temporary directories are private to root."""
    top = pathlib.Path(tempfile.mkdtemp(prefix="postern-mail-"))
    os.chmod(top, 0o755)
    d = top / "mail"
    d.mkdir()
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(top, ignore_errors=True)


def local_config(mail, remote_port=None, extra_routers="", extra_transports="", main=""):
    remote = ""
    if remote_port:
        remote = (f"remote:\n  driver = manualroute\n  domains = ! +local_domains\n"
                  f"  route_list = * 127.0.0.1\n  self = send\n  transport = remote_smtp\n")
    return f"""\
domainlist local_domains = a.example
acl_smtp_rcpt = accept
{main}
begin routers
{remote}{extra_routers}
local:
  driver = accept
  domains = +local_domains
  local_parts = alice : bob : sender : carol
  transport = mbox

begin transports
remote_smtp:
  driver = smtp
  port = {remote_port or 25}
mbox:
  driver = appendfile
  file = {mail}/$local_part_data
  user = nobody
  group = nogroup
  envelope_to_add
  return_path_add
{extra_transports}
begin retry
* * F,1h,10m
"""


PEER = """\
acl_smtp_rcpt = r
queue_only
begin acl
r:
  deny local_parts = nosuch
       message = 5.1.1 No such user here
  defer local_parts = later
       message = 4.2.0 try again later
  accept
"""


def send(port, sender, rcpts, text):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        return s.sendmail(sender, rcpts, text)


def test_local_remote_redirect_and_bounce(postern_bin, tmp_path, mail):
    (tmp_path / "b").mkdir()
    with Daemon(postern_bin, tmp_path / "b", PEER) as peer:
        cfg = local_config(mail, peer.port,
                           extra_routers="aliases:\n  driver = redirect\n"
                                         "  data = ${if eq{$local_part}{team}{alice@a.example, bob@a.example, x@b.example}}\n",
                           main="qualify_domain = q.example\nerrors_reply_to = helpdesk@a.example\n"
                                "bounce_message_text = Call the helpdesk on 555 0100.\n")
        (tmp_path / "a").mkdir()
        with Daemon(postern_bin, tmp_path / "a", cfg, queue_only=False) as d:
            refused = send(d.port, "sender@a.example", ["team@a.example", "nosuch@b.example"],
                           "Subject: e2e\r\nFrom: sender@a.example\r\nMessage-ID: <m1@a.example>\r\n"
                           "References: <r0@a.example>\r\n\r\nhello\r\nFrom me\r\n")
            assert refused == {}
            assert wait_for(lambda: (mail / "sender").exists() and d.mainlog().count("Completed") >= 2)
            log = d.mainlog()
            assert "=> x@b.example <team@a.example> R=remote T=remote_smtp H=127.0.0.1 [127.0.0.1]" in log
            assert "** nosuch@b.example R=remote T=remote_smtp H=127.0.0.1 [127.0.0.1]" in log
            # Exim's "local" log style (log_as_local, on for accept routers)
            assert "=> alice <team@a.example> R=local T=mbox" in log
            alice = (mail / "alice").read_text()
            assert alice.startswith("From sender@a.example ")
            assert "Return-path: <sender@a.example>\nEnvelope-to: team@a.example\n" in alice
            assert "\n>From me\n" in alice                 # mbox escaping
            assert d.queued() == []
            # the peer queued the relayed copy
            assert len(peer.queued()) == 1
            # the bounce, with DSN extra information
            bounce = email.message_from_string((mail / "sender").read_text().split("\n", 1)[1])
            assert bounce["Subject"].startswith("Mail delivery failed")
            assert bounce["Auto-Submitted"] == "auto-replied"
            assert bounce["X-Failed-Recipients"] == "nosuch@b.example"
            assert bounce["From"] == "Mail Delivery System <Mailer-Daemon@q.example>"   # dsn_from default
            assert bounce["Reply-To"] == "helpdesk@a.example"
            # bounce_message_text goes right after the first line (Exim's layout)
            assert ("This message was created automatically by mail delivery software.\n"
                    "Call the helpdesk on 555 0100.\nA message that you sent") in bounce.get_payload()[0].get_payload()
            assert bounce["References"].split() == ["<r0@a.example>", "<m1@a.example>"]
            parts = bounce.get_payload()
            assert parts[1].get_content_type() == "message/delivery-status"
            # (the extra-information fields are folded at 79 columns, as Exim does)
            assert all(len(l) <= 79 for l in parts[1].as_string().splitlines() if l.startswith(("X-", " ")))
            status = re.sub(r"\n[ \t]+", " ", parts[1].as_string())
            assert "Final-Recipient: rfc822;nosuch@b.example" in status
            assert "Status: 5.0.0" in status       # Exim always says 5.0.0 here
            assert "Diagnostic-Code: smtp; 550 5.1.1 No such user here" in status
            assert f"Remote-MTA: X-ip; [127.0.0.1]:{peer.port}" in status
            assert "X-Remote-MTA-smtp-greeting: X-str; 220 test.example ESMTP" in status
            assert "X-Remote-MTA-helo-response: X-str; 250-test.example Hello" in status
            assert ("X-Exim-Diagnostic: X-str; SMTP error from remote mail server after "
                    "RCPT TO:<nosuch@b.example>: 550 5.1.1 No such user here") in status
            assert "Diagnostic-Code: smtp; 550 5.1.1 No such user here" in status
            assert parts[2].get_content_type() == "message/rfc822"


def test_deferred_then_delivered_by_queue_run(postern_bin, tmp_path, mail):
    down = free_port()                            # nothing listens here yet
    cfg = local_config(mail, down)
    (tmp_path / "a").mkdir()
    with Daemon(postern_bin, tmp_path / "a", cfg, queue_only=False) as d:
        send(d.port, "sender@a.example", ["someone@b.example"], "Subject: later\r\n\r\nbody\r\n")
        assert wait_for(lambda: "== someone@b.example" in d.mainlog())
        assert "defer (111)" in d.mainlog() or "Connection refused" in d.mainlog()
        ids = d.queued()
        assert len(ids) == 1
        bp = subprocess.run([postern_bin, "-C", str(d.config), "-bp"], capture_output=True, text=True, timeout=30)
        assert ids[0] in bp.stdout
        # the peer comes up; a queue run delivers
        (tmp_path / "b").mkdir()
        with Daemon(postern_bin, tmp_path / "b", PEER, port=down) as peer:
            r = subprocess.run([postern_bin, "-C", str(d.config), "-qf"], capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            assert wait_for(lambda: d.queued() == [])
            assert f"{ids[0]} => someone@b.example" in d.mainlog()
            assert f"{ids[0]} Completed" in d.mainlog()
            assert len(peer.queued()) == 1


def test_temporary_rejection_keeps_message(postern_bin, tmp_path, mail):
    (tmp_path / "b").mkdir()
    with Daemon(postern_bin, tmp_path / "b", PEER) as peer:
        (tmp_path / "a").mkdir()
        with Daemon(postern_bin, tmp_path / "a", local_config(mail, peer.port), queue_only=False) as d:
            send(d.port, "sender@a.example", ["later@b.example", "ok@b.example"], "Subject: t\r\n\r\nx\r\n")
            assert wait_for(lambda: "=> ok@b.example" in d.mainlog())
            assert wait_for(lambda: "== later@b.example" in d.mainlog())
            ids = d.queued()
            assert len(ids) == 1
            # the delivered address goes into the non-recipients tree when the
            # delivery process rewrites -H (just after it logs)
            assert wait_for(lambda: "NN ok@b.example" in d.header_file(ids[0]))
            assert not (mail / "sender").exists()        # no bounce for a deferral
            bp = subprocess.run([postern_bin, "-C", str(d.config), "-bp"], capture_output=True, text=True,
                                timeout=30).stdout
            assert "        D ok@b.example\n" in bp and "          later@b.example\n" in bp
            if EXIM:
                ecfg = tmp_path / "exim.conf"
                ecfg.write_text(f"spool_directory = {d.spool}\nexim_user = root\nexim_group = root\n"
                                f"log_file_path = {tmp_path}/exim-%slog\n")
                ebp = subprocess.run([EXIM, "-C", str(ecfg), "-bp"], capture_output=True, text=True,
                                     timeout=30).stdout
                assert ebp == bp                          # Exim reads the rewritten -H the same way


def test_maildir_pipe_and_queuefile(postern_bin, tmp_path, mail):
    qdir = tmp_path / "scanner"
    qdir.mkdir()
    out = mail / "piped"
    extra_routers = ("special:\n  driver = accept\n  local_parts = md : pp : pf : qf : df\n"
                     "  transport = ${if eq{$local_part}{md}{maildir}{${if eq{$local_part}{qf}{scan}"
                     "{${if eq{$local_part}{df}{dirfile}{pipe}}}}}}\n")
    extra_transports = (f"maildir:\n  driver = appendfile\n  directory = {mail}/Maildir\n  maildir_format\n"
                        f"  create_directory\n  user = nobody\n  group = nogroup\n"
                        f"pipe:\n  driver = pipe\n  command = /bin/sh -c 'cat > {out}.$local_part_data; "
                        f"test $local_part_data = pp'\n  user = nobody\n  group = nogroup\n"
                        f"scan:\n  driver = queuefile\n  directory = {qdir}\n  user = root\n  group = root\n"
                        f"dirfile:\n  driver = appendfile\n  directory = {mail}/dir\n  create_directory\n"
                        f"  user = nobody\n  group = nogroup\n")
    cfg = local_config(mail, None, extra_routers=extra_routers, extra_transports=extra_transports,
                       main="never_users =\n")
    with Daemon(postern_bin, tmp_path, cfg, queue_only=False) as d:
        send(d.port, "sender@a.example", ["md@a.example", "pp@a.example", "pf@a.example", "qf@a.example", "df@a.example"],
             "Subject: multi\r\n\r\nbody line\r\n")
        assert wait_for(lambda: "Completed" in d.mainlog() or "** pf@a.example" in d.mainlog())
        assert wait_for(lambda: (mail / "sender").exists())
        log = d.mainlog()
        new = list((mail / "Maildir" / "new").iterdir())
        assert len(new) == 1 and "body line" in new[0].read_text()
        # the default message_suffix adds a blank line (as Exim's does)
        assert (pathlib.Path(str(out) + ".pp")).read_text().endswith("body line\n\n")
        files = list((mail / "dir").iterdir())
        assert len(files) == 1 and files[0].name.startswith("q") and "body line" in files[0].read_text()
        assert str(files[0].stat().st_ino) in files[0].name          # directory_file = q...-$inode
        assert "=> pp <pp@a.example> R=special T=pipe" in log
        assert "** pf@a.example R=special T=pipe : Child process of pipe transport returned 1" in log
        # queuefile: the spool files, in Exim's format, in the scanner's directory
        hfiles = list(qdir.glob("*-H"))
        assert len(hfiles) == 1
        msgid = hfiles[0].name[:-2]
        assert hfiles[0].read_text().startswith(f"{msgid}-H\n")
        assert (qdir / f"{msgid}-D").read_text() == f"{msgid}-D\nbody line\n"


def test_journal_prevents_a_second_delivery(postern_bin, tmp_path, mail):
    cfg = local_config(mail, None, main="queue_only\n")
    with Daemon(postern_bin, tmp_path, cfg) as d:
        send(d.port, "sender@a.example", ["alice@a.example", "bob@a.example"], "Subject: j\r\n\r\nx\r\n")
        msgid = d.queued()[0]
    # a delivery process crashed after delivering to alice: its journal says so
    (d.spool / "input" / f"{msgid}-J").write_text("alice@a.example\n")
    r = subprocess.run([postern_bin, "-C", str(d.config), "-M", msgid], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert not (mail / "alice").exists()
    assert (mail / "bob").exists()
    assert "journal file recovered" in d.mainlog()
    assert d.queued() == []


@pytest.mark.skipif(EXIM is None, reason="exim4 not installed")
def test_bt_matches_exim(postern_bin, tmp_path):
    cfg = tmp_path / "bt.conf"
    cfg.write_text("""\
primary_hostname = test.example
domainlist local_domains = test.example
begin routers
aliases:
  driver = redirect
  data = ${if eq{$local_part}{list}{a@test.example, b@test.example}{}}
smart:
  driver = manualroute
  domains = ! +local_domains
  route_list = * 192.0.2.25
  transport = remote
local:
  driver = accept
  local_parts = a : b
  transport = t
begin transports
remote:
  driver = smtp
t:
  driver = appendfile
  file = /tmp/x
""")
    args = ["-bt", "list@test.example", "x@other.example", "nobody@test.example", "a@test.example"]
    ours = subprocess.run([postern_bin, "-C", str(cfg)] + args, capture_output=True, text=True, timeout=30)
    theirs = subprocess.run([EXIM, "-C", str(cfg)] + args, capture_output=True, text=True, timeout=30)
    assert ours.stdout == theirs.stdout
    assert ours.returncode == theirs.returncode == 2


@pytest.mark.skipif(EXIM is None, reason="exim4 not installed")
def test_exim_delivers_a_message_postern_queued(postern_bin, tmp_path, mail):
    with Daemon(postern_bin, tmp_path, "acl_smtp_rcpt = accept\nqueue_only\n") as d:
        send(d.port, "sender@example.org", ["alice@test.example"], "Subject: to exim\r\n\r\nhanded over\r\n")
        msgid = d.queued()[0]
    cfg = tmp_path / "exim.conf"
    cfg.write_text(f"""\
primary_hostname = test.example
spool_directory = {d.spool}
exim_user = root
exim_group = root
log_file_path = {tmp_path}/exim-%slog
begin routers
all:
  driver = accept
  local_parts = alice
  transport = t
begin transports
t:
  driver = appendfile
  file = {mail}/$local_part_data
  user = nobody
  group = nogroup
""")
    r = subprocess.run([EXIM, "-C", str(cfg), "-M", msgid], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: (mail / "alice").exists())
    assert "handed over" in (mail / "alice").read_text()
    assert "Subject: to exim" in (mail / "alice").read_text()


def test_retry_times_are_kept_between_queue_runs(postern_bin, tmp_path, mail):
    down = free_port()
    (tmp_path / "a").mkdir()
    with Daemon(postern_bin, tmp_path / "a", local_config(mail, down), queue_only=False) as d:
        send(d.port, "sender@a.example", ["someone@b.example"], "Subject: r\r\n\r\nbody\r\n")
        assert wait_for(lambda: "== someone@b.example" in d.mainlog())
        assert (d.spool / "db" / "retry").is_file()
        # an ordinary queue run does not try before the next retry time
        r = subprocess.run([postern_bin, "-C", str(d.config), "-q"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0
        assert wait_for(lambda: "retry time not reached" in d.mainlog())
        tries = [l for l in d.mainlog().splitlines() if "== someone@b.example" in l]
        assert len(tries) == 2
        assert "defer (111)" in tries[0] and "Connection refused" in tries[0]
        assert "retry time not reached" in tries[1]
        assert len(d.queued()) == 1


def test_retry_timeout_bounces(postern_bin, tmp_path, mail):
    down = free_port()
    cfg = local_config(mail, down).replace("* * F,1h,10m", "* * F,2s,1s")
    (tmp_path / "a").mkdir()
    with Daemon(postern_bin, tmp_path / "a", cfg, queue_only=False) as d:
        send(d.port, "sender@a.example", ["someone@b.example"], "Subject: r\r\n\r\nbody\r\n")
        assert wait_for(lambda: "== someone@b.example" in d.mainlog())
        time.sleep(3)
        subprocess.run([postern_bin, "-C", str(d.config), "-q"], capture_output=True, text=True, timeout=60)
        assert wait_for(lambda: "retry timeout exceeded" in d.mainlog())
        assert wait_for(lambda: (mail / "sender").exists())
        assert "retry timeout exceeded" in (mail / "sender").read_text()
        assert wait_for(lambda: d.queued() == [])


def smtp_dsn(port, sender, rcpt, notify, text):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("client.example")
        s.mail(sender, ["RET=HDRS", "ENVID=id123"])
        code, _ = s.rcpt(rcpt, [f"NOTIFY={notify}"])
        assert code == 250
        code, _ = s.data(text)
        assert code == 250


def test_dsn_notify_never_and_success(postern_bin, tmp_path, mail):
    (tmp_path / "b").mkdir()
    with Daemon(postern_bin, tmp_path / "b", PEER) as peer:
        cfg = local_config(mail, peer.port, main="dsn_advertise_hosts = *\n")
        (tmp_path / "a").mkdir()
        with Daemon(postern_bin, tmp_path / "a", cfg, queue_only=False) as d:
            smtp_dsn(d.port, "sender@a.example", "nosuch@b.example", "NEVER", "Subject: n\r\n\r\nx\r\n")
            assert wait_for(lambda: "** nosuch@b.example" in d.mainlog() and "Completed" in d.mainlog())
            time.sleep(0.5)
            assert not (mail / "sender").exists()          # NOTIFY=NEVER: no bounce
            smtp_dsn(d.port, "sender@a.example", "carol@a.example", "SUCCESS", "Subject: s\r\n\r\nx\r\n")
            assert wait_for(lambda: (mail / "sender").exists() and "Delivery Status" in (mail / "sender").read_text())
            dsn = (mail / "sender").read_text()
            assert "Action: delivered" in dsn and "Final-Recipient: rfc822;carol@a.example" in dsn
            assert "Original-Envelope-ID: id123" in dsn
            assert "text/rfc822-headers" in dsn
            # queued as a bounce-style message about the original (Exim logs no more)
            assert re.search(r" <= <> R=\S+ U=\S+ P=local S=\d+", d.mainlog())
            assert "message sent to" not in d.mainlog()


def test_delay_warning(postern_bin, tmp_path, mail):
    down = free_port()
    cfg = local_config(mail, down, main="delay_warning = 2s\n")
    (tmp_path / "a").mkdir()
    with Daemon(postern_bin, tmp_path / "a", cfg, queue_only=False) as d:
        send(d.port, "sender@a.example", ["someone@b.example"], "Subject: slow one\r\n\r\nbody\r\n")
        assert wait_for(lambda: "== someone@b.example" in d.mainlog())
        time.sleep(2.5)
        subprocess.run([postern_bin, "-C", str(d.config), "-qf"], capture_output=True, text=True, timeout=60)
        assert wait_for(lambda: (mail / "sender").exists())
        warning = (mail / "sender").read_text()
        assert "Subject: Warning: message" in warning and "delayed" in warning
        assert "Action: delayed" in warning and "Final-Recipient: rfc822;someone@b.example" in warning
        msgid = d.queued()[0]
        assert "\n1\n" not in d.header_file(msgid).split("\n")[3] and d.header_file(msgid).split("\n")[3].endswith(" 1")


class LmtpServer:
    """A small LMTP server (RFC 2033) on a Unix socket: accepts every
    recipient except those whose local part is "full" (452 at end of
    data), and stores what it received."""

    def __init__(self, path):
        import socket as sk
        import threading
        self.path = str(path)
        self.srv = sk.socket(sk.AF_UNIX, sk.SOCK_STREAM)
        self.srv.bind(self.path)
        os.chmod(self.path, 0o777)
        self.srv.listen(5)
        self.srv.settimeout(30)
        self.messages = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self.session(conn)

    def session(self, conn):
        f = conn.makefile("rwb")

        def say(line):
            f.write(line.encode() + b"\r\n")
            f.flush()
        say("220 lmtp ready")
        rcpts = []
        while True:
            line = f.readline().decode().rstrip("\r\n")
            if not line:
                break
            verb = line[:4].upper()
            if verb == "LHLO":
                say("250-lmtp\r\n250 PIPELINING")
            elif verb == "MAIL":
                rcpts = []
                say("250 ok")
            elif verb == "RCPT":
                rcpts.append(line.split("<", 1)[1].rstrip(">"))
                say("250 ok")
            elif verb == "DATA":
                say("354 go")
                data = []
                while True:
                    l = f.readline()
                    if l in (b".\r\n", b""):
                        break
                    data.append(l)
                self.messages.append((rcpts, b"".join(data)))
                for r in rcpts:
                    say("452 4.2.2 mailbox full" if r.startswith("full@") else f"250 2.0.0 <{r}> delivered")
            elif verb == "QUIT":
                say("221 bye")
                break
        conn.close()

    def close(self):
        self.srv.close()


def test_lmtp_per_recipient_replies(postern_bin, tmp_path, mail):
    lm = LmtpServer(mail / "lmtp.sock")
    extra_routers = "tolmtp:\n  driver = accept\n  local_parts = lm1 : lm2 : full\n  transport = lmtp\n"
    extra_transports = f"lmtp:\n  driver = lmtp\n  socket = {mail}/lmtp.sock\n  user = nobody\n  group = nogroup\n  batch_max = 10\n"
    cfg = local_config(mail, None, extra_routers=extra_routers, extra_transports=extra_transports)
    with Daemon(postern_bin, tmp_path, cfg, queue_only=False) as d:
        send(d.port, "sender@a.example", ["lm1@a.example"], "Subject: lmtp\r\n\r\n.dot line\r\n")
        assert wait_for(lambda: "=> lm1 <lm1@a.example> R=tolmtp T=lmtp" in d.mainlog())
        assert lm.messages and lm.messages[0][0] == ["lm1@a.example"]
        assert b"\r\n..dot line\r\n" in lm.messages[0][1]       # dot-stuffed on the wire
        send(d.port, "sender@a.example", ["full@a.example"], "Subject: lmtp\r\n\r\nx\r\n")
        assert wait_for(lambda: "== full@a.example R=tolmtp T=lmtp" in d.mainlog())
        assert "defer (-46): LMTP error after end of data: 452 4.2.2 mailbox full" in d.mainlog()   # Exim's words
    lm.close()


def test_timeout_frozen_after(postern_bin, tmp_path, mail):
    cfg = local_config(mail, None, main="queue_only\ntimeout_frozen_after = 1s\n")
    with Daemon(postern_bin, tmp_path, cfg) as d:
        send(d.port, "sender@a.example", ["alice@a.example"], "Subject: f\r\n\r\nx\r\n")
        msgid = d.queued()[0]
        subprocess.run([postern_bin, "-C", str(d.config), "-Mf", msgid], capture_output=True, timeout=30)
        r = subprocess.run([postern_bin, "-C", str(d.config), "-q"], capture_output=True, text=True, timeout=60)
        assert msgid in d.queued()                       # frozen: not delivered
        assert not (mail / "alice").exists()
        time.sleep(2)
        subprocess.run([postern_bin, "-C", str(d.config), "-q"], capture_output=True, text=True, timeout=60)
        assert wait_for(lambda: msgid not in d.queued())
        assert f"{msgid} cancelled by timeout_frozen_after" in d.mainlog()
        # queue_only: the bounce waits for the next queue run
        subprocess.run([postern_bin, "-C", str(d.config), "-q"], capture_output=True, text=True, timeout=60)
        assert wait_for(lambda: (mail / "sender").exists())
        bounce = (mail / "sender").read_text()
        assert "X-Failed-Recipients: alice@a.example" in bounce
        # (no "**" line for it: Exim logs none)
        assert "** alice@a.example" not in d.mainlog()
        assert not (mail / "alice").exists()


def test_dnslookup_router_with_a_real_dns_server(postern_bin, tmp_path, mail):
    from dnsfixture import DnsServer
    (tmp_path / "b").mkdir()
    with Daemon(postern_bin, tmp_path / "b", PEER) as peer:
        zone = {
            "mx.test": [("MX", (20, "backup.mx.test")), ("MX", (10, "primary.mx.test"))],
            "primary.mx.test": [("A", "127.0.0.1")],
            "backup.mx.test": [("A", "203.0.113.2")],
            "nullmx.test": [("MX", (0, "."))],
            "broken.test": "SERVFAIL",
            "nomx.test": [("A", "127.0.0.1")],
        }
        with DnsServer(zone) as dns:
            cfg = f"""\
domainlist local_domains = a.example
acl_smtp_rcpt = accept
dns_servers = {dns.server}
dns_trust_anchor_file =
begin routers
dnslookup:
  driver = dnslookup
  domains = ! +local_domains
  transport = remote_smtp
  # the MX hosts are on loopback: deliver to them anyway
  self = send
  widen_domains = test
local:
  driver = accept
  local_parts = sender
  transport = mbox
begin transports
remote_smtp:
  driver = smtp
  port = {peer.port}
mbox:
  driver = appendfile
  file = {mail}/$local_part_data
  user = nobody
  group = nogroup
begin retry
* * F,1h,10m
"""
            cfgfile = tmp_path / "bt.conf"
            cfgfile.write_text(f"primary_hostname = a.example\n{cfg}")
            bt = subprocess.run([postern_bin, "-C", str(cfgfile), "-bt", "x@mx.test", "y@nullmx.test",
                                 "z@nonexistent.test", "w@broken.test", "v@nomx.test", "u@mx"],
                                capture_output=True, text=True, timeout=60)
            out = bt.stdout
            assert "x@mx.test\n  router = dnslookup, transport = remote_smtp\n" \
                   "  host primary.mx.test [127.0.0.1]   MX=10\n  host backup.mx.test  [203.0.113.2] MX=20\n" in out  # Exim pads
            assert "y@nullmx.test is undeliverable: Domain nullmx.test has a null MX" in out
            assert "z@nonexistent.test is undeliverable" in out
            assert "w@broken.test cannot be resolved at this time" in out
            assert "v@nomx.test\n  router = dnslookup, transport = remote_smtp\n  host nomx.test [127.0.0.1]\n" in out
            assert "u@mx.test\n  router = dnslookup, transport = remote_smtp\n  host primary.mx.test" in out  # widen_domains
            (tmp_path / "a").mkdir()
            with Daemon(postern_bin, tmp_path / "a", cfg, queue_only=False) as d:
                send(d.port, "sender@a.example", ["x@mx.test"], "Subject: via MX\r\n\r\nx\r\n")
                assert wait_for(lambda: "=> x@mx.test R=dnslookup T=remote_smtp H=primary.mx.test [127.0.0.1]"
                                in d.mainlog())
                assert wait_for(lambda: len(peer.queued()) == 1)


@pytest.mark.skipif(EXIM is None, reason="exim4 not installed")
def test_queuefile_output_is_read_by_exim(postern_bin, tmp_path, mail):
    scan = tmp_path / "scanner"
    (scan / "input").mkdir(parents=True)
    extra_routers = "scan:\n  driver = accept\n  transport = scan\n"
    extra_transports = f"scan:\n  driver = queuefile\n  directory = {scan}/input\n  user = root\n  group = root\n"
    cfg = local_config(mail, None, extra_routers=extra_routers, extra_transports=extra_transports,
                       main="never_users =\n")
    with Daemon(postern_bin, tmp_path, cfg, queue_only=False) as d:
        send(d.port, "sender@a.example", ["someone@scanned.example"], "Subject: to scan\r\n\r\nscan me\r\n")
        assert wait_for(lambda: list((scan / "input").glob("*-H")))
        msgid = list((scan / "input").glob("*-H"))[0].name[:-2]
    ecfg = tmp_path / "exim.conf"
    ecfg.write_text(f"spool_directory = {scan}\nexim_user = root\nexim_group = root\n"
                    f"log_file_path = {tmp_path}/exim-%slog\n")
    bp = subprocess.run([EXIM, "-C", str(ecfg), "-bp"], capture_output=True, text=True, timeout=30)
    assert msgid in bp.stdout and "someone@scanned.example" in bp.stdout and "<sender@a.example>" in bp.stdout
    vh = subprocess.run([EXIM, "-C", str(ecfg), "-Mvh", msgid], capture_output=True, text=True, timeout=30)
    assert "Subject: to scan" in vh.stdout


def test_kill_9_during_delivery(postern_bin, tmp_path, mail):
    """alice is delivered and journaled; the process dies while the slow
    pipe runs; the next attempt does not deliver to alice again."""
    extra_routers = "slow:\n  driver = accept\n  local_parts = slow\n  transport = slowpipe\n"
    extra_transports = (f"slowpipe:\n  driver = pipe\n  command = /bin/sh -c 'sleep 3; cat >> {mail}/slow'\n"
                        f"  user = nobody\n  group = nogroup\n")
    cfg = local_config(mail, None, extra_routers=extra_routers, extra_transports=extra_transports,
                       main="queue_only\n")
    with Daemon(postern_bin, tmp_path, cfg) as d:
        send(d.port, "sender@a.example", ["alice@a.example", "slow@a.example"], "Subject: k\r\n\r\nx\r\n")
        msgid = d.queued()[0]
    p = subprocess.Popen([postern_bin, "-C", str(d.config), "-M", msgid], start_new_session=True)
    assert wait_for(lambda: (mail / "alice").exists() and (d.spool / "input" / f"{msgid}-J").exists())
    os.killpg(p.pid, 9)
    p.wait(timeout=10)
    assert msgid in d.queued()                                 # nothing lost
    r = subprocess.run([postern_bin, "-C", str(d.config), "-M", msgid], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: msgid not in d.queued(), timeout=30)
    assert (mail / "alice").read_text().count("\nSubject: k\n") == 1   # not delivered twice
    assert (mail / "slow").read_text().count("Subject: k") >= 1


def test_daemon_queue_runs(postern_bin, tmp_path, mail):
    """-bd -q1s: queued messages are delivered by the daemon's queue runners."""
    cfg = local_config(mail, None, main="queue_only\n")
    d = Daemon(postern_bin, tmp_path, cfg)
    proc = subprocess.Popen([postern_bin, "-C", str(d.config), "-bdf", "-q1s", "-oX", f"127.0.0.1.{d.port}"])
    try:
        assert wait_for(lambda: "daemon started" in d.mainlog())
        assert "-q1s" in d.mainlog()
        send(d.port, "sender@a.example", ["alice@a.example"], "Subject: later\r\n\r\nx\r\n")
        assert wait_for(lambda: (mail / "alice").exists(), timeout=30)
        assert wait_for(lambda: d.queued() == [])
        assert "Start queue run" in d.mainlog()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_alias_file_pipe_and_taint(postern_bin, tmp_path, mail):
    """A pipe from an alias file (a lookup result: not tainted) runs; a
    transport whose file name is built from $local_part (tainted) is refused."""
    aliases = mail / "aliases"
    aliases.write_text(f"piper: |/bin/sh -c 'cat > {mail}/piped-alias'\nlist: alice@a.example, bob@a.example\n")
    extra_routers = (f"aliases:\n  driver = redirect\n  data = ${{lookup{{$local_part}}lsearch{{{aliases}}}}}\n"
                     f"  pipe_transport = address_pipe\n"
                     f"tainted:\n  driver = accept\n  local_parts = ^tainted\n  transport = badfile\n")
    extra_transports = ("address_pipe:\n  driver = pipe\n  user = nobody\n  group = nogroup\n"
                        f"badfile:\n  driver = appendfile\n  file = {mail}/$local_part\n  user = nobody\n  group = nogroup\n")
    cfg = local_config(mail, None, extra_routers=extra_routers, extra_transports=extra_transports)
    with Daemon(postern_bin, tmp_path, cfg, queue_only=False) as d:
        send(d.port, "sender@a.example", ["piper@a.example", "list@a.example", "tainted1@a.example"],
             "Subject: alias\r\n\r\nthrough the alias\r\n")
        assert wait_for(lambda: (mail / "piped-alias").exists() and (mail / "alice").exists() and (mail / "bob").exists())
        assert "through the alias" in (mail / "piped-alias").read_text()
        assert wait_for(lambda: "== tainted1@a.example" in d.mainlog())
        assert "Tainted '" in d.mainlog() and "not permitted" in d.mainlog()
        assert not (mail / "tainted1").exists()


def test_dnslookup_aaaa_and_dns_ipv4_lookup(postern_bin, tmp_path):
    """Hosts get their A and AAAA addresses; names in dns_ipv4_lookup (and
    everything under disable_ipv6) get A records only."""
    from dnsfixture import DnsServer
    zone = {"six.test": [("A", "192.0.2.6"), ("AAAA", "2001:db8::6")],
            "four.test": [("MX", (10, "six.test"))]}
    with DnsServer(zone) as dns:
        base = f"""primary_hostname = a.example
dns_servers = {dns.server}
dns_trust_anchor_file =
{{main}}
begin routers
dnslookup:
  driver = dnslookup
  transport = remote_smtp
begin transports
remote_smtp:
  driver = smtp
"""
        outs = {}
        for name, main in (("both", ""), ("v4list", "dns_ipv4_lookup = six.test"),
                           ("nov6", "disable_ipv6")):
            cfgfile = tmp_path / f"{name}.conf"
            cfgfile.write_text(base.replace("{main}", main))
            bt = subprocess.run([postern_bin, "-C", str(cfgfile), "-bt", "x@four.test", "y@six.test"],
                                capture_output=True, text=True, timeout=60)
            outs[name] = bt.stdout + bt.stderr
        assert "host six.test [192.0.2.6]   MX=10" in outs["both"], outs["both"]   # Exim pads to the longest
        assert "host six.test [2001:db8::6] MX=10" in outs["both"], outs["both"]
        assert "host six.test [2001:db8::6]\n" in outs["both"], outs["both"]
        for name in ("v4list", "nov6"):
            assert "host six.test [192.0.2.6] MX=10" in outs[name], outs[name]
            assert "2001:db8::6" not in outs[name], outs[name]


def test_dnslookup_check_srv(postern_bin, tmp_path):
    """check_srv: SRV records give hosts and ports (by priority), a "."
    target refuses the domain, no SRV falls back to MX; a message is
    delivered to the port the SRV record names."""
    from dnsfixture import DnsServer
    (tmp_path / "peer").mkdir()
    with Daemon(postern_bin, tmp_path / "peer", PEER) as peer:
        zone = {
            "_smtp._tcp.srv.test": [("SRV", (20, 0, 2525, "backup.srv.test")),
                                    ("SRV", (10, 5, peer.port, "main.srv.test"))],
            "main.srv.test": [("A", "127.0.0.1")],
            "backup.srv.test": [("A", "203.0.113.2")],
            "_smtp._tcp.none.test": [("SRV", (0, 0, 0, "."))],
            "none.test": [("MX", (10, "main.srv.test"))],
            "mxonly.test": [("MX", (10, "main.srv.test"))],
        }
        with DnsServer(zone) as dns:
            cfg = f"""\
acl_smtp_rcpt = accept
dns_servers = {dns.server}
dns_trust_anchor_file =
begin routers
dnslookup:
  driver = dnslookup
  check_srv = smtp
  transport = remote_smtp
  self = send
begin transports
remote_smtp:
  driver = smtp
  port = 1
begin retry
* * F,1h,10m
"""
            cfgfile = tmp_path / "bt.conf"
            cfgfile.write_text(f"primary_hostname = a.example\n{cfg}")
            bt = subprocess.run([postern_bin, "-C", str(cfgfile), "-bt", "x@srv.test", "y@none.test",
                                 "z@mxonly.test"], capture_output=True, text=True, timeout=60)
            out = bt.stdout
            assert (f"x@srv.test\n  router = dnslookup, transport = remote_smtp\n"
                    f"  host main.srv.test   [127.0.0.1]   MX=10 port={peer.port}\n"
                    f"  host backup.srv.test [203.0.113.2] MX=20 port=2525\n") in out, out
            assert "y@none.test is undeliverable: SRV record for _smtp._tcp.none.test says the service is not offered" \
                in out, out
            assert "z@mxonly.test\n  router = dnslookup, transport = remote_smtp\n" \
                   "  host main.srv.test [127.0.0.1] MX=10\n" in out, out
            (tmp_path / "a").mkdir()
            with Daemon(postern_bin, tmp_path / "a", cfg, queue_only=False) as d:
                send(d.port, "sender@a.example", ["x@srv.test"], "Subject: via SRV\r\n\r\nx\r\n")
                assert wait_for(lambda: "=> x@srv.test R=dnslookup T=remote_smtp H=main.srv.test [127.0.0.1]"
                                in d.mainlog()), d.mainlog()
                assert wait_for(lambda: len(peer.queued()) == 1)


def test_dnslookup_self_is_an_interface_address_not_a_substring(postern_bin, tmp_path):
    """The MX host is "this host" only when its address is one of the
    machine's interface addresses: 27.0.0.1 is not 127.0.0.1."""
    from dnsfixture import DnsServer
    zone = {"far.test": [("MX", (10, "mx.far.test"))], "mx.far.test": [("A", "27.0.0.1")],
            "near.test": [("MX", (10, "mx.near.test"))], "mx.near.test": [("A", "127.0.0.1")]}
    with DnsServer(zone) as dns:
        cfgfile = tmp_path / "bt.conf"
        cfgfile.write_text(f"""primary_hostname = a.example
local_interfaces = <; 127.0.0.1 ; 0.0.0.0
dns_servers = {dns.server}
dns_trust_anchor_file =
begin routers
dnslookup:
  driver = dnslookup
  transport = remote_smtp
begin transports
remote_smtp:
  driver = smtp
""")
        bt = subprocess.run([postern_bin, "-C", str(cfgfile), "-bt", "x@far.test", "y@near.test"],
                            capture_output=True, text=True, timeout=60)
        out = bt.stdout + bt.stderr
        assert "x@far.test\n  router = dnslookup, transport = remote_smtp\n  host mx.far.test [27.0.0.1] MX=10\n" \
            in out, out
        assert "y@near.test cannot be resolved at this time" in out and "points to local host" in out, out

"""The SMTP server through the real daemon on loopback: real clients
(smtplib, swaks, raw sockets), spool files Exim can read, limits, timeouts,
concurrency, durability and SMTP smuggling probes."""
import os
import shutil
import signal
import smtplib
import subprocess
import threading
import time

import pytest

from mta import Client, Daemon

EXIM = shutil.which("exim4") or ("/usr/sbin/exim4" if os.path.exists("/usr/sbin/exim4") else None)
SWAKS = shutil.which("swaks")

MSG = "From: a@example.org\r\nTo: b@example.net\r\nSubject: test\r\n\r\nhello\r\n"


def session(d):
    c = Client(d.port)
    code, text = c.reply()
    assert code == 220 and "test.example" in text
    code, _ = c.cmd("EHLO client.example")
    assert code == 250
    return c


def test_smtplib_message_is_queued_in_exim_format(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path) as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
            code, resp = s.ehlo("client.example")
            assert code == 250
            for ext in ("size", "8bitmime", "pipelining", "chunking"):
                assert s.has_extn(ext), ext
            s.sendmail("alice@example.org", ["bob@example.net", "carol@example.net"], MSG)
        ids = d.queued()
        assert len(ids) == 1
        h = d.header_file(ids[0])
        assert h.startswith(f"{ids[0]}-H\n")
        assert "<alice@example.org>\n" in h
        assert "\n2\nbob@example.net\ncarol@example.net\n\n" in h
        assert "P Received: from [127.0.0.1] (helo=client.example)\n" in h
        assert d.data_file(ids[0]) == f"{ids[0]}-D\nhello\n".encode()
        assert f"{ids[0]} <= alice@example.org H=(client.example) [127.0.0.1] P=esmtp" in d.mainlog()


@pytest.mark.skipif(EXIM is None, reason="exim4 not installed (tests/deps.sh installs it)")
def test_exim_reads_the_spool(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path) as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
            s.sendmail("alice@example.org", ["bob@example.net"], MSG)
        msgid = d.queued()[0]
        cfg = tmp_path / "exim.conf"
        cfg.write_text(f"spool_directory = {d.spool}\nexim_user = root\nexim_group = root\n"
                       f"log_file_path = {tmp_path}/exim-%slog\n")
        bp = subprocess.run([EXIM, "-C", str(cfg), "-bp"], capture_output=True, text=True, timeout=30)
        assert msgid in bp.stdout and "<alice@example.org>" in bp.stdout and "bob@example.net" in bp.stdout
        vb = subprocess.run([EXIM, "-C", str(cfg), "-Mvb", msgid], capture_output=True, text=True, timeout=30)
        assert vb.stdout == f"{msgid}-D\nhello\n"
        vh = subprocess.run([EXIM, "-C", str(cfg), "-Mvh", msgid], capture_output=True, text=True, timeout=30)
        assert "Subject: test" in vh.stdout


@pytest.mark.skipif(SWAKS is None, reason="swaks not installed")
def test_swaks_pipelined(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path) as d:
        r = subprocess.run([SWAKS, "--server", f"127.0.0.1:{d.port}", "--pipeline",
                            "--from", "a@example.org", "--to", "b@example.net,c@example.net",
                            "--helo", "client.example"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "250 OK id=" in r.stdout
        assert len(d.queued()) == 1


def test_pipelined_commands_in_one_packet(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path) as d:
        c = session(d)
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n")
        assert [c.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
        c.send("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        assert c.reply()[0] == 250
        assert c.reply()[0] == 221
        assert len(d.queued()) == 1


def test_bdat(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path) as d:
        c = session(d)
        assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<b@example.net>")[0] == 250
        part1 = b"Subject: bdat\r\n\r\nline one\r\n."
        part2 = b"\r\nline three\r\n"
        c.send(b"BDAT %d\r\n" % len(part1) + part1)
        assert c.reply()[0] == 250
        c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        code, text = c.reply()
        assert code == 250 and "id=" in text
        msgid = d.queued()[0]
        # a "." line inside BDAT data is data, not an end marker
        assert d.data_file(msgid) == f"{msgid}-D\nline one\n.\nline three\n".encode()


def test_message_size_limit(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path, "acl_smtp_rcpt = accept\nmessage_size_limit = 1K\n") as d:
        c = session(d)
        assert c.cmd("MAIL FROM:<a@example.org> SIZE=5000")[0] == 552
        assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<b@example.net>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: big\r\n\r\n" + ("x" * 100 + "\r\n") * 50 + ".\r\n")
        assert c.reply()[0] == 552
        assert c.cmd("QUIT")[0] == 221
        assert d.queued() == []
        assert "message too big" in d.mainlog()


def test_overlong_command_line(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path) as d:
        c = session(d)
        c.send("NOOP " + "x" * 20000 + "\r\n")
        assert c.reply()[0] == 500
        assert c.cmd("NOOP")[0] == 250


def test_protocol_errors(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path, "acl_smtp_rcpt = accept\nsmtp_max_synprot_errors = 10\n") as d:
        c = Client(d.port)
        c.reply()
        assert c.cmd("MAIL FROM:<a@example.org>")[0] == 503      # HELO first
        assert c.cmd("EHLO bad_host!name")[0] == 501
        assert c.cmd("EHLO client.example")[0] == 250
        assert c.cmd("RCPT TO:<b@example.net>")[0] == 503        # no MAIL
        assert c.cmd("MAIL FROM:<a@example.org> BOGUS=1")[0] == 501
        assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
        assert c.cmd("DATA")[0] == 503                            # no RCPT
        assert c.cmd("RCPT TO:<nodomain>")[0] == 501
        assert c.cmd("VRFY postmaster")[0] == 252
        assert c.cmd("HELP")[0] == 214
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("QUIT")[0] == 221


def test_too_many_protocol_errors_drop_the_connection(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path) as d:     # smtp_max_synprot_errors = 3
        c = session(d)
        assert [c.cmd("RCPT TO:<b@example.net>")[0] for _ in range(3)] == [503, 503, 503]
        code, text = c.cmd("RCPT TO:<b@example.net>")
        assert code == 503 and text.endswith("Too many syntax or protocol errors")
        with pytest.raises(ConnectionError):
            c.cmd("NOOP")


def test_unknown_commands_drop_the_connection(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path) as d:
        c = session(d)
        codes = [c.cmd("FOO")[0] for _ in range(4)]
        assert codes == [500, 500, 500, 500]
        with pytest.raises(ConnectionError):
            c.cmd("NOOP")
        assert "too many unrecognized commands" in d.mainlog()


def test_synchronization_error_before_banner(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path, "pipelining_connect_advertise_hosts =\n") as d:
        c = Client(d.port)
        c.send("EHLO early.example\r\n")
        time.sleep(0.3)
        code, _ = c.reply()
        assert code == 554
        assert "synchronization error" in d.mainlog()


def test_pipeconnect_early_ehlo_and_pipelined_commands(postern_bin, tmp_path):
    """pipelining_connect_advertise_hosts (default *): EHLO and what follows
    it may come before the banner; EHLO advertises PIPECONNECT."""
    with Daemon(postern_bin, tmp_path, "acl_smtp_rcpt = accept\n") as d:
        c = Client(d.port)
        c.send("EHLO early.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
        time.sleep(0.3)
        assert c.reply()[0] == 220
        code, text = c.reply()
        assert code == 250 and "PIPECONNECT" in text.split("\n")
        assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
        c.send("Subject: early\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        assert c.reply()[0] == 250
        assert "synchronization error" not in d.mainlog()


def test_command_timeout(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path, "acl_smtp_rcpt = accept\nsmtp_receive_timeout = 1s\n") as d:
        c = session(d)
        time.sleep(2.5)
        code, text = c.reply()
        assert code == 421 and "timeout" in text


def test_data_timeout_loses_the_partial_message(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path, "acl_smtp_rcpt = accept\nsmtp_receive_timeout = 1s\n") as d:
        c = session(d)
        c.cmd("MAIL FROM:<a@example.org>")
        c.cmd("RCPT TO:<b@example.net>")
        assert c.cmd("DATA")[0] == 354
        c.send("Subject: slow\r\n\r\nhalf")
        time.sleep(2.5)
        assert c.reply()[0] == 421
        assert d.queued() == []
        assert not any((d.spool / "input").iterdir())


def test_concurrent_connections(postern_bin, tmp_path):
    # a deep listen queue: the sanitizer build forks slowly, and 100 clients
    # connect at once
    cfg = "acl_smtp_rcpt = accept\nsmtp_accept_max = 200\nsmtp_connect_backlog = 256\n"
    with Daemon(postern_bin, tmp_path, cfg) as d:
        errors = []

        def send(i):
            try:
                with smtplib.SMTP("127.0.0.1", d.port, timeout=60) as s:
                    s.sendmail(f"a{i}@example.org", [f"b{i}@example.net"], MSG)
            except Exception as e:  # collected and asserted below
                errors.append(repr(e))
        threads = [threading.Thread(target=send, args=(i,)) for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []
        assert len(d.queued()) == 100


def test_smtp_accept_max(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path, "acl_smtp_rcpt = accept\nsmtp_accept_max = 1\n") as d:
        first = session(d)
        second = Client(d.port)
        code, text = second.reply()
        assert code == 421 and "Too many concurrent SMTP connections" in text
        assert first.cmd("NOOP")[0] == 250


# Fake end-of-data sequences.  None of them may end the message: the
# "MAIL FROM" after them must never be seen as a command.
PROBES = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r", b"\r.\r\n", b"\n..\n", b"\r\n.\x00\r\n"]


@pytest.mark.parametrize("probe", PROBES, ids=[repr(p) for p in PROBES])
def test_smuggling_probe_refused(postern_bin, tmp_path, probe):
    with Daemon(postern_bin, tmp_path) as d:
        c = session(d)
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
        assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
        c.send(b"Subject: x\r\n\r\nbody" + probe +
               b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nsmuggled\r\n.\r\n")
        code, text = c.reply()
        # the whole thing was one message; it is refused if it held a bare CR/LF
        assert c.cmd("QUIT")[0] == 221
        ids = d.queued()
        if probe == b"\r\n.\x00\r\n":
            assert code == 250                # ".\0" is an ordinary data line
            assert len(ids) == 1
            assert "victim" not in d.header_file(ids[0])
        else:
            assert code == 550 and "bare" in text
            assert ids == []
        assert "<= evil@example.org" not in d.mainlog()


@pytest.mark.parametrize("probe", PROBES[:6], ids=[repr(p) for p in PROBES[:6]])
def test_smuggling_probe_normalized_for_listed_hosts(postern_bin, tmp_path, probe):
    cfg = "acl_smtp_rcpt = accept\nsmtp_accept_bare_newline_hosts = 127.0.0.1\n"
    with Daemon(postern_bin, tmp_path, cfg) as d:
        c = session(d)
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
        assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
        c.send(b"Subject: x\r\n\r\nbody" + probe +
               b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nsmuggled\r\n.\r\n")
        code, _ = c.reply()
        assert code == 250
        assert c.cmd("QUIT")[0] == 221
        ids = d.queued()
        assert len(ids) == 1                      # one message, not two
        body = d.data_file(ids[0])
        assert b"MAIL FROM:<evil@example.org>" in body
        assert b"smuggled" in body
        assert b"\r" not in body                  # normalized to Unix line ends on the spool
        assert "victim" not in d.header_file(ids[0])


def test_kill_9_loses_no_accepted_message(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path) as d:
        got = []
        for i in range(5):
            with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
                s.sendmail("a@example.org", ["b@example.net"], MSG + f"number {i}\r\n")
                got.append(i)
        # kill the daemon and every child without warning
        subprocess.run(["pkill", "-9", "-f", str(d.config)], timeout=10)
        d.proc.wait(timeout=10)
        ids = d.queued()
        assert len(ids) == len(got) == 5
        bodies = sorted(d.data_file(i).split(b"\n", 1)[1] for i in ids)
        assert bodies == sorted(f"hello\nnumber {i}\n".encode() for i in range(5))


def test_bh_runs_the_dialogue_without_queueing(postern_bin, tmp_path):
    d = Daemon(postern_bin, tmp_path)
    dialogue = ("EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
                "DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n")
    r = subprocess.run([postern_bin, "-C", str(d.config), "-bh", "192.0.2.7"], input=dialogue,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "250 OK id=" in r.stdout
    assert "**** SMTP testing: that is not a real message id!" in r.stdout
    assert d.queued() == []


def test_bs_local_submission(postern_bin, tmp_path):
    d = Daemon(postern_bin, tmp_path)
    dialogue = ("HELO localhost\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
                "DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n")
    r = subprocess.run([postern_bin, "-C", str(d.config), "-bs"], input=dialogue,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "250 OK id=" in r.stdout
    ids = d.queued()
    assert len(ids) == 1
    # root is a trusted caller: not "locally submitted" (Exim writes no -local)
    assert "-local\n" not in d.header_file(ids[0])


def test_log_selector_fields(postern_bin, tmp_path):
    cfg = ("acl_smtp_rcpt = accept\n"
           "log_selector = +incoming_port +subject +received_recipients +smtp_connection "
           "+receive_time -msg_id +pid\n")
    with Daemon(postern_bin, tmp_path, cfg) as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
            s.ehlo("client.example")
            s.sendmail("a@example.org", ["b@example.net", "c@example.net"],
                       "Subject: hello \"log\"\r\nMessage-ID: <x@y>\r\n\r\nbody\r\n")
        time.sleep(0.2)
        log = d.mainlog()
        line = [l for l in log.splitlines() if " <= " in l][0]
        assert " [" in line.split(" <= ")[0]                  # +pid puts [pid] after the time
        assert "H=(client.example) [127.0.0.1]:" in line     # +incoming_port
        assert 'T="hello \\"log\\""' in line                 # +subject
        assert line.endswith(" for b@example.net c@example.net")
        assert " RT=" in line and " id=" not in line          # +receive_time -msg_id
        assert "SMTP connection from [127.0.0.1]:" in log
        assert "closed by QUIT" in log


def test_unknown_log_selector_is_a_config_error(postern_bin, tmp_path):
    d = Daemon(postern_bin, tmp_path, "log_selector = +subject +no_such_thing\n")
    r = subprocess.run([postern_bin, "-C", str(d.config), "-bV"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    lines = d.config.read_text().splitlines()
    line = next(i for i, l in enumerate(lines, 1) if l.startswith("log_selector"))
    assert f"line {line} of" in r.stderr and "+no_such_thing" in r.stderr


def test_sighup_rereads_configuration(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path, "acl_smtp_rcpt = accept\nsmtp_banner = first banner\n") as d:
        c = Client(d.port)
        assert c.reply() == (220, "first banner")
        c.close()
        text = d.config.read_text().replace("first banner", "second banner")
        d.config.write_text(text)
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "configuration re-read" not in d.mainlog() and time.time() < deadline:
            time.sleep(0.05)
        c = Client(d.port)
        assert c.reply() == (220, "second banner")


def test_sighup_with_a_broken_configuration_keeps_the_old_one(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path, "acl_smtp_rcpt = accept\nsmtp_banner = kept banner\n") as d:
        d.config.write_text(d.config.read_text() + "no_such_option = 1\n")
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while "not re-read" not in d.mainlog() and time.time() < deadline:
            time.sleep(0.05)
        assert "no_such_option" in d.mainlog()
        c = Client(d.port)
        assert c.reply() == (220, "kept banner")


def test_pid_file_and_sigterm(postern_bin, tmp_path):
    d = Daemon(postern_bin, tmp_path)
    pidfile = tmp_path / "postern.pid"
    proc = subprocess.Popen([postern_bin, "-C", str(d.config), "-bdf", "-oX", f"127.0.0.1.{d.port}",
                             "-oP", str(pidfile)])
    try:
        deadline = time.time() + 20
        while not pidfile.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert int(pidfile.read_text()) == proc.pid
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not pidfile.exists()
        assert "daemon terminating" in d.mainlog()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_smtp_accept_max_per_host(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path, "acl_smtp_rcpt = accept\nsmtp_accept_max_per_host = 2\n") as d:
        a, b = session(d), session(d)
        c = Client(d.port)
        code, text = c.reply()
        assert code == 421 and "from this IP address" in text
        assert a.cmd("NOOP")[0] == 250 and b.cmd("NOOP")[0] == 250


def bs_dialogue(postern_bin, d, *lines):
    (d.spool / "log").mkdir(parents=True, exist_ok=True)
    return subprocess.run([postern_bin, "-C", str(d.config), "-bs"], input="".join(l + "\r\n" for l in lines),
                          capture_output=True, text=True, timeout=30)


def test_bs_names_the_caller_and_counts_protocol_errors_as_exim(postern_bin, tmp_path):
    """-bs: the caller (root) is greeted and logged by its login; the fourth
    syntax or protocol error drops the session (exit 1) with the commands'
    history in the log line."""
    d = Daemon(postern_bin, tmp_path, "dsn_advertise_hosts = *\n")
    r = bs_dialogue(postern_bin, d, "HELO", "FOO bar", "RCPT TO:<a@test.example>", "EHLO client.example", "DATA",
                    "NOOP")
    assert r.returncode == 1
    out = [l.rstrip("\r") for l in r.stdout.splitlines()]
    assert out[1:4] == ["501 Syntactically invalid HELO argument(s)", "500 unrecognized command",
                        "503 sender not yet given"]
    assert out[4] == "250-test.example Hello root at client.example"
    assert out[5:8] == ["250-SIZE 52428800", "250-8BITMIME", "250-DSN"]
    assert out[-2:] == ["503-valid RCPT command must precede DATA", "503 Too many syntax or protocol errors"]
    log = (d.spool / "log" / "mainlog").read_text()
    assert "rejected HELO from root: syntactically invalid argument(s): (no argument given)" in log
    assert ('SMTP call from root dropped: too many syntax or protocol errors (last command was "DATA",  '
            'C=HELO,RCPT,EHLO,DATA)') in log


def test_bs_data_repeats_the_refusal_of_every_rcpt(postern_bin, tmp_path):
    """No acl_smtp_rcpt: every RCPT is refused; DATA after them (pipelined)
    repeats the refusal, is no protocol error, and the session ends well."""
    d = Daemon(postern_bin, tmp_path, "")
    r = bs_dialogue(postern_bin, d, "EHLO client.example", "MAIL FROM:<s@test.example>", "RCPT TO:<a@test.example>",
                    "RCPT TO:<b@test.example>", "DATA", "QUIT")
    assert r.returncode == 0
    out = [l.rstrip("\r") for l in r.stdout.splitlines()]
    assert out[-6:] == ["550 Administrative prohibition", "550 Administrative prohibition",
                        "503-All RCPT commands were rejected with this error:", "503-Administrative prohibition",
                        "503 Valid RCPT command must precede DATA", "221 test.example closing connection"]
    log = (d.spool / "log" / "rejectlog").read_text()
    assert "U=root F=<s@test.example> rejected RCPT <a@test.example>" in log


def test_bh_commentary_on_stderr(postern_bin, tmp_path):
    d = Daemon(postern_bin, tmp_path, "acl_smtp_rcpt = rcpt_acl\nbegin acl\nrcpt_acl:\n  deny domains = evil.example\n  accept\n")
    dialogue = "EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<x@evil.example>\r\nQUIT\r\n"
    (d.spool / "log").mkdir(parents=True)
    r = subprocess.run([postern_bin, "-C", str(d.config), "-bh", "192.0.2.9"], input=dialogue,
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.startswith("\n**** SMTP testing session as if from host 192.0.2.9\n")   # stdout, as Exim
    assert "LOG: H=(c.example) [192.0.2.9] F=<a@example.org> rejected RCPT <x@evil.example>" in r.stderr
    assert list((d.spool / "log").iterdir()) == []      # -bh writes no log file
    assert '>>> using ACL "rcpt_acl"' in r.stderr
    assert '>>> end of ACL "rcpt_acl": DENY' in r.stderr
    assert "550 Administrative prohibition" in r.stdout


def test_rejectlog_gets_the_headers_of_a_refused_message(postern_bin, tmp_path):
    cfg = ("acl_smtp_rcpt = accept\nacl_smtp_data = d\nbegin acl\n"
           "d:\n  deny message = no spam please\n       condition = ${if match{$h_subject:}{spam}}\n  accept\n")
    with Daemon(postern_bin, tmp_path, cfg) as d:
        c = session(d)
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
        assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
        c.send("Subject: cheap spam\r\nX-Test: 1\r\n\r\nbody\r\n.\r\n")
        code, text = c.reply()
        assert code == 550 and text == "no spam please"
        reject = (d.spool / "log" / "rejectlog").read_text()
        assert "F=<a@example.org> rejected after DATA: no spam please" in reject
        assert "Envelope-from: <a@example.org>\nEnvelope-to: <b@example.net>\n" in reject
        assert "P Received: from [127.0.0.1]" in reject
        assert "  Subject: cheap spam\n" in reject
        assert "Envelope-from" not in d.mainlog()
        assert d.queued() == []


def test_received_header_text(postern_bin, tmp_path):
    cfg = ("acl_smtp_rcpt = accept\n"
           "received_header_text = Received: from $sender_rcvhost by $primary_hostname "
           "with $received_protocol id $message_id${if def:received_for {\\n\\tfor $received_for}}\n")
    with Daemon(postern_bin, tmp_path, cfg) as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
            s.ehlo("client.example")
            s.sendmail("a@example.org", ["b@example.net"], "Subject: r\r\n\r\nx\r\n")
        msgid = d.queued()[0]
        h = d.header_file(msgid)
        assert (f"P Received: from [127.0.0.1] (helo=client.example) by test.example with esmtp id {msgid}\n"
                f"\tfor b@example.net;\n\t") in h


def test_host_lookup_and_host_reject_connection(postern_bin, tmp_path):
    from dnsfixture import DnsServer
    zone = {"1.0.0.127.in-addr.arpa": [("PTR", "client.test")],
            "client.test": [("A", "127.0.0.1")]}
    with DnsServer(zone) as dns:
        cfg = (f"acl_smtp_rcpt = accept\nhost_lookup = *\ndns_servers = {dns.server}\n"
               f"dns_trust_anchor_file =\n")
        (tmp_path / "a").mkdir()
        with Daemon(postern_bin, tmp_path / "a", cfg) as d:
            with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
                s.ehlo("helo.test")
                s.sendmail("a@example.org", ["b@example.net"], "Subject: ptr\r\n\r\nx\r\n")
            # libunbound answers 127.in-addr.arpa itself (localhost); either
            # name shows that the PTR + forward check ran
            import re
            m = re.search(r"H=(\S+) \(helo\.test\) \[127\.0\.0\.1\]", d.mainlog())
            assert m and m.group(1) in ("client.test", "localhost"), d.mainlog()
            assert f"P Received: from {m.group(1)} ([127.0.0.1] helo=helo.test)\n" in d.header_file(d.queued()[0])
    (tmp_path / "b").mkdir()
    with Daemon(postern_bin, tmp_path / "b", "acl_smtp_rcpt = accept\nhost_reject_connection = 127.0.0.1\n") as d:
        c = Client(d.port)
        assert c.reply() == (554, "SMTP service not available")
        assert "refused connection from [127.0.0.1] (host_reject_connection)" in d.mainlog()


def test_unprivileged_sessions_can_log(postern_bin):
    """The daemon keeps root, its connection processes run as exim_user:
    they must still be able to write the log and the spool."""
    import pathlib
    import tempfile
    top = pathlib.Path(tempfile.mkdtemp(prefix="postern-priv-"))
    os.chmod(top, 0o755)
    try:
        from mta import free_port
        port = free_port()
        cfg = top / "postern.conf"
        cfg.write_text(f"primary_hostname = test.example\nspool_directory = {top}/spool\n"
                       f"exim_user = nobody\nacl_smtp_rcpt = accept\nqueue_only\n")
        p = subprocess.Popen([postern_bin, "-C", str(cfg), "-bdf", "-oX", f"127.0.0.1.{port}"])
        log = top / "spool" / "log" / "mainlog"
        deadline = time.time() + 20
        while not (log.exists() and "daemon started" in log.read_text()) and time.time() < deadline:
            time.sleep(0.05)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            s.sendmail("a@example.org", ["b@example.net"], "Subject: priv\r\n\r\nx\r\n")
        deadline = time.time() + 10
        while " <= a@example.org" not in log.read_text() and time.time() < deadline:
            time.sleep(0.05)
        assert " <= a@example.org" in log.read_text()
        assert len(list((top / "spool" / "input").glob("*-H"))) == 1
        p.terminate()
        p.wait(timeout=10)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_helo_lookup_domains(postern_bin, tmp_path):
    """A client calling itself by our name or address (helo_lookup_domains,
    default "@ : @[]") gets its real name looked up; other names do not."""
    from dnsfixture import DnsServer
    import re
    zone = {"1.0.0.127.in-addr.arpa": [("PTR", "client.test")],
            "client.test": [("A", "127.0.0.1")]}
    with DnsServer(zone) as dns:
        cfg = f"acl_smtp_rcpt = accept\ndns_servers = {dns.server}\ndns_trust_anchor_file =\n"
        with Daemon(postern_bin, tmp_path, cfg) as d:
            for i, helo in enumerate(("other.example", "test.example", "[127.0.0.1]")):
                with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
                    s.ehlo(helo)
                    s.sendmail(f"a{i}@example.org", ["b@example.net"], "Subject: h\r\n\r\nx\r\n")
            deadline = time.time() + 10
            while d.mainlog().count(" <= ") < 3 and time.time() < deadline:
                time.sleep(0.05)
            log = d.mainlog()
            assert " <= a0@example.org H=(other.example) [127.0.0.1]" in log, log
            for i, helo in ((1, "test.example"), (2, "[127.0.0.1]")):
                m = re.search(rf" <= a{i}@example\.org H=(\S+) \({re.escape(helo)}\) \[127\.0\.0\.1\]", log)
                assert m and m.group(1) in ("client.test", "localhost"), log

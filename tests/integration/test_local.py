"""Non-SMTP input: -bm/-t/-i/-f/-F, sendmail and mailq by name, the local
fix-ups (Message-Id, From, Date, Sender), acl_not_smtp."""
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

from mta import Daemon


def submit(binary, cfg, args, text, user=None):
    cmd = [binary, "-C", str(cfg)] + args
    if user:
        cmd = ["su", user, "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in cmd)]
    return subprocess.run(cmd, input=text, capture_output=True, text=True, timeout=30)


def only_message(d):
    ids = d.queued()
    assert len(ids) == 1, ids
    return ids[0], d.header_file(ids[0]), d.data_file(ids[0])


def test_t_extracts_recipients_and_removes_bcc(postern_bin, tmp_path):
    d = Daemon(postern_bin, tmp_path)
    r = submit(postern_bin, d.config, ["-t"],
               "Subject: t\nTo: a@example.net, \"B\" <b@example.net>\nCc: c@example.net\n"
               "Bcc: hidden@example.net\n\nbody\n")
    assert r.returncode == 0, r.stderr
    msgid, h, body = only_message(d)
    rcpts = h.split("\n\n")[0].splitlines()
    i = rcpts.index("4")
    assert sorted(rcpts[i + 1:i + 5]) == ["a@example.net", "b@example.net", "c@example.net", "hidden@example.net"]
    assert "* Bcc: hidden@example.net" in h          # deleted from the message
    assert f"I Message-Id: <E{msgid}@test.example>" in h
    assert "F From: " in h and "@test.example" in h
    assert "  Date: " in h
    assert "with local (postern" in h
    assert body == f"{msgid}-D\nbody\n".encode()
    assert f"{msgid} <= root@test.example U=root P=local" in d.mainlog()


def test_dot_ends_message_unless_i(postern_bin, tmp_path):
    d = Daemon(postern_bin, tmp_path)
    r = submit(postern_bin, d.config, ["a@example.net"], "Subject: x\n\none\n.\ntwo\n")
    assert r.returncode == 0, r.stderr
    msgid, _, body = only_message(d)
    assert body == f"{msgid}-D\none\n".encode()
    (tmp_path / "i").mkdir()
    d2 = Daemon(postern_bin, tmp_path / "i")
    r = submit(postern_bin, d2.config, ["-i", "a@example.net"], "Subject: x\n\none\n.\ntwo\n")
    msgid, _, body = only_message(d2)
    assert body == f"{msgid}-D\none\n.\ntwo\n".encode()


def test_f_and_F_for_a_trusted_caller(postern_bin, tmp_path):
    d = Daemon(postern_bin, tmp_path)
    r = submit(postern_bin, d.config, ["-f", "list-bounces@example.org", "-F", "The List", "a@example.net"],
               "Subject: x\n\nhi\n")
    assert r.returncode == 0, r.stderr
    _, h, _ = only_message(d)
    assert "\n<list-bounces@example.org>\n" in h
    # Exim: a missing From: names the envelope sender, with the -F name
    assert "From: The List <list-bounces@example.org>" in h
    assert "Sender:" not in h                  # root is trusted


def test_untrusted_caller_gets_sender_and_no_forged_envelope(postern_bin):
    # pytest's own temporary directories are private to root
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="postern-untrusted-"))
    os.chmod(tmp_path, 0o755)
    d = Daemon(postern_bin, tmp_path)
    d.spool.mkdir(parents=True)
    (d.spool / "input").mkdir()
    (d.spool / "log").mkdir()
    for p in (d.spool, d.spool / "input", d.spool / "log"):
        os.chmod(p, 0o1777)
    os.chmod(d.config, 0o644)
    r = submit(postern_bin, d.config, ["-f", "forged@example.org", "a@example.net"],
               "From: someone@else.example\nSubject: x\n\nhi\n", user="nobody")
    assert r.returncode == 0, r.stderr
    _, h, _ = only_message(d)
    assert "\n<nobody@test.example>\n" in h         # -f ignored for untrusted callers
    assert "S Sender: nobody@test.example" in h     # From: is not the caller
    shutil.rmtree(tmp_path)


def test_acl_not_smtp_can_refuse(postern_bin, tmp_path):
    cfg = 'acl_not_smtp = nsmtp\nbegin acl\nnsmtp:\n  deny message = no local mail about $h_subject:\n' \
          '       condition = ${if match{$h_subject:}{spam}}\n  accept\n'
    d = Daemon(postern_bin, tmp_path, cfg)
    r = submit(postern_bin, d.config, ["a@example.net"], "Subject: buy spam now\n\nx\n")
    assert r.returncode == 1
    assert "no local mail about buy spam now" in r.stderr
    assert d.queued() == []
    r = submit(postern_bin, d.config, ["a@example.net"], "Subject: fine\n\nx\n")
    assert r.returncode == 0, r.stderr
    assert len(d.queued()) == 1


def test_sendmail_and_mailq_names(postern_bin, tmp_path):
    d = Daemon(postern_bin, tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sendmail").symlink_to(postern_bin)
    (bindir / "mailq").symlink_to(postern_bin)
    r = subprocess.run([str(bindir / "sendmail"), "-C", str(d.config), "-t", "-i"],
                       input="To: a@example.net\nSubject: via sendmail\n\n.\nkept\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    msgid, _, body = only_message(d)
    assert body.endswith(b"\n.\nkept\n")
    q = subprocess.run([str(bindir / "mailq"), "-C", str(d.config)], capture_output=True, text=True, timeout=30)
    assert msgid in q.stdout and "a@example.net" in q.stdout


def test_no_recipients_is_an_error(postern_bin, tmp_path):
    """-t and no recipient in the headers: refused (logged, also to the
    panic log and stderr) and reported to the sender in a message of its
    own, which quotes the refused one; -oep: only stderr."""
    d = Daemon(postern_bin, tmp_path)
    r = submit(postern_bin, d.config, ["-oep", "-t"], "Subject: nobody\n\nx\n")
    assert r.returncode == 1 and "no recipients in message" in r.stderr
    assert d.queued() == []
    r = submit(postern_bin, d.config, ["-t", "-f", "someone@example.org"], "Subject: nobody\n\nquoted line\n")
    assert r.returncode == 1 and "no recipients found in headers" in r.stderr
    [report] = d.queued()
    h = d.header_file(report)
    assert "<>\n" in h and "someone@example.org" in h
    assert "Subject: Mail failure - no recipient addresses" in h
    assert b"quoted line" in d.data_file(report)
    log = d.mainlog()
    assert " no recipients found in headers" in log and f"{report} <= <> R=" in log
    assert "no recipients found in headers" in (d.spool / "log" / "paniclog").read_text()

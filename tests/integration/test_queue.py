"""Queue inspection: -bp/-bpc/-bpu and -M actions, compared with what
Debian's Exim prints for the same spool."""
import os
import shutil
import smtplib
import subprocess

import pytest

from mta import Daemon

EXIM = shutil.which("exim4") or ("/usr/sbin/exim4" if os.path.exists("/usr/sbin/exim4") else None)
MSG = "Subject: q\r\n\r\nhello\r\n"


def run(args):
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


@pytest.fixture
def queued(postern_bin, tmp_path):
    with Daemon(postern_bin, tmp_path) as d:
        for i in range(3):
            with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
                s.sendmail(f"s{i}@example.org", [f"r{i}@example.net", "x@example.net"], MSG)
    cfg = tmp_path / "exim.conf"
    cfg.write_text(f"spool_directory = {d.spool}\nexim_user = root\nexim_group = root\n"
                   f"log_file_path = {tmp_path}/exim-%slog\n")
    return d, str(cfg)


def test_bp_lists_every_message(postern_bin, queued):
    d, _ = queued
    out = run([postern_bin, "-C", str(d.config), "-bp"]).stdout
    ids = d.queued()
    assert len(ids) == 3
    for i, msgid in enumerate(ids):
        assert f"{msgid} <s{i}@example.org>" in out
    assert out.count("x@example.net") == 3
    assert run([postern_bin, "-C", str(d.config), "-bpc"]).stdout == "3\n"


@pytest.mark.skipif(EXIM is None, reason="exim4 not installed")
def test_bp_matches_exim(postern_bin, queued):
    d, exim_cfg = queued
    ours = run([postern_bin, "-C", str(d.config), "-bp"]).stdout
    theirs = run([EXIM, "-C", exim_cfg, "-bp"]).stdout
    assert ours == theirs


@pytest.mark.skipif(EXIM is None, reason="exim4 not installed")
def test_freeze_thaw_seen_by_exim(postern_bin, queued):
    d, exim_cfg = queued
    msgid = d.queued()[0]
    r = run([postern_bin, "-C", str(d.config), "-Mf", msgid])
    assert r.stdout == f"Message {msgid} is now frozen\n"          # Exim's words
    assert "*** frozen ***" in run([EXIM, "-C", exim_cfg, "-bp"]).stdout
    r = run([postern_bin, "-C", str(d.config), "-Mt", msgid])
    assert r.stdout == f"Message {msgid} is no longer frozen\n"
    assert "frozen" not in run([EXIM, "-C", exim_cfg, "-bp"]).stdout


def test_mvh_mvb_mrm(postern_bin, queued):
    d, _ = queued
    msgid = d.queued()[1]
    h = run([postern_bin, "-C", str(d.config), "-Mvh", msgid]).stdout
    assert h == d.header_file(msgid)
    b = run([postern_bin, "-C", str(d.config), "-Mvb", msgid]).stdout
    assert b == f"{msgid}-D\nhello\n"
    r = run([postern_bin, "-C", str(d.config), "-Mrm", msgid])
    assert r.stdout == f"Message {msgid} has been removed\n"
    assert msgid not in d.queued() and len(d.queued()) == 2
    r = run([postern_bin, "-C", str(d.config), "-Mrm", msgid])
    assert r.returncode != 0
    r = run([postern_bin, "-C", str(d.config), "-Mvh", "not-an-id"])
    assert r.returncode != 0 and "not a valid message id" in r.stdout


def test_msglog_and_acl_variables_on_the_spool(postern_bin, tmp_path):
    cfg = ("acl_smtp_rcpt = r\nacl_smtp_data = d\nbegin acl\n"
           "r:\n  accept set acl_c_conn = from $sender_host_address\n"
           "d:\n  accept set acl_m_score = 42\n           set acl_m_multi = line1\\nline2\n")
    with Daemon(postern_bin, tmp_path, cfg) as d:
        with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
            s.sendmail("a@example.org", ["b@example.net"], MSG)
    msgid = d.queued()[0]
    h = d.header_file(msgid)
    assert "-aclm _score 2\n42\n" in h
    assert "-aclm _multi 11\nline1\nline2\n" in h
    assert "-aclc _conn 14\nfrom 127.0.0.1\n" in h or "--aclc _conn 14\nfrom 127.0.0.1\n" in h
    vl = run([postern_bin, "-C", str(d.config), "-Mvl", msgid])
    assert vl.returncode == 0 and "Received from a@example.org" in vl.stdout
    if EXIM:
        cfgx = tmp_path / "exim.conf"
        cfgx.write_text(f"spool_directory = {d.spool}\nexim_user = root\nexim_group = root\n"
                        f"log_file_path = {tmp_path}/exim-%slog\n")
        bp = run([EXIM, "-C", str(cfgx), "-bp"])
        assert msgid in bp.stdout        # Exim still reads a -H with ACL variables

"""The configuration reader through the real binary: errors name file,
line and word and exit non-zero; -bP prints what Exim prints for the same
configuration; -D overrides; the built-in default is used when no file is
given."""
import os
import shutil
import subprocess

import pytest

from conftest import run

EXIM = shutil.which("exim4") or ("/usr/sbin/exim4" if os.path.exists("/usr/sbin/exim4") else None)


@pytest.mark.parametrize("text,line,word", [
    ("primary_hostname = a\nfoo_bar = 1\n", 2, '"foo_bar"'),
    ("begin routers\nr1:\n  driver = accept\n  frob = 1\n", 4, '"frob"'),
    ("begin acl\na:\n  accept\n  frobnicate = 1\n", 4, '"frobnicate"'),
    ("begin transports\nt:\n  driver = nosuch\n", 3, '"nosuch"'),
    ("smtp_accept_max = lots\n", 1, '"lots"'),
    ("begin wrong\n", 1, '"wrong"'),
    ("X = 1\n.ifdef X\nqueue_only\n", 3, ".endif missing"),
])
def test_errors_name_file_line_and_word(postern_bin, write_config, text, line, word):
    path = write_config(text)
    r = run([postern_bin, "-C", path, "-bP", "primary_hostname"])
    assert r.returncode != 0
    assert f"line {line} of {path}" in r.stderr
    assert word in r.stderr
    assert r.stdout == ""


def test_missing_config_file_is_an_error(postern_bin, tmp_path):
    r = run([postern_bin, "-C", str(tmp_path / "none.conf"), "-bV"])
    assert r.returncode != 0
    assert "none.conf" in r.stderr


CFG = """\
MAC = mac.example
primary_hostname = MAC
message_size_limit = 20M
smtp_accept_max = 7
retry_interval_max = 90m
delay_warning = 1h:2d
no_accept_8bitmime
queue_only
hide qualify_domain = q.example
domainlist local_domains = @ : example.org
begin routers
r1:
  driver = accept
  transport = t1
begin transports
t1:
  driver = appendfile
  file = /tmp/mbox
"""

OPTIONS = ["primary_hostname", "message_size_limit", "smtp_accept_max",
           "retry_interval_max", "delay_warning", "accept_8bitmime", "queue_only",
           "qualify_domain", "ignore_bounce_errors_after", "smtp_receive_timeout",
           "bounce_return_size_limit", "dns_retry", "received_headers_max",
           "smtp_max_unknown_commands", "timeout_frozen_after", "+local_domains",
           "router_list", "transport_list", "macro", "MAC", "config_file"]


def test_bP_values(postern_bin, write_config):
    path = write_config(CFG)
    r = run([postern_bin, "-C", path, "-bP"] + OPTIONS)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "primary_hostname = mac.example" in lines
    assert "message_size_limit = 20M" in lines
    assert "retry_interval_max = 1h30m" in lines
    assert "delay_warning = 1h:2d" in lines
    assert "no_accept_8bitmime" in lines
    assert "queue_only" in lines
    assert "domainlist local_domains = @ : example.org" in lines
    assert "MAC=mac.example" in lines
    assert lines[-1] == path


@pytest.mark.skipif(EXIM is None, reason="exim4 not installed (tests/deps.sh installs it)")
def test_bP_agrees_with_exim(postern_bin, write_config):
    path = write_config(CFG)
    ours = run([postern_bin, "-C", path, "-bP"] + OPTIONS)
    theirs = run([EXIM, "-C", path, "-bP"] + OPTIONS)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.stdout.splitlines() == theirs.stdout.splitlines()


@pytest.mark.skipif(EXIM is None, reason="exim4 not installed")
def test_bP_driver_options_agree_with_exim(postern_bin, write_config):
    """Every generic and private option of an accept router and an appendfile
    transport, with Exim's names, defaults and print format."""
    path = write_config(CFG)
    for kind, name in (("router", "r1"), ("transport", "t1")):
        ours = run([postern_bin, "-C", path, "-bP", kind, name]).stdout.splitlines()
        theirs = run([EXIM, "-C", path, "-bP", kind, name]).stdout.splitlines()
        # options that Exim prints from its compile-time settings or
        # build-specific extras are compared by name only
        def names(ls):
            return sorted(l.split(" =")[0].removeprefix("no_") for l in ls
                          if not l.startswith("*"))  # Exim-internal entries
        missing = set(names(theirs)) - set(names(ours))
        assert not missing, f"{kind} options Exim has and postern lacks: {sorted(missing)}"
        common = set(ours) & set(theirs)
        assert len(common) >= 0.8 * len(theirs), (sorted(set(theirs) - set(ours)))


def test_D_overrides_macro(postern_bin, write_config):
    path = write_config(CFG)
    r = run([postern_bin, "-C", path, "-DMAC=cmdline.example", "-bP", "primary_hostname"])
    assert r.stdout == "primary_hostname = cmdline.example\n"
    r = run([postern_bin, "-C", path, "-D", "MAC=two.example", "-bP", "primary_hostname"])
    assert r.stdout == "primary_hostname = two.example\n"


def test_builtin_default_when_no_config(postern_bin):
    if os.path.exists("/etc/postern/postern.conf"):
        pytest.skip("a system configuration exists")
    r = run([postern_bin, "-bP", "config_file", "acl_smtp_rcpt", "+relay_from_hosts"])
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "(built-in default configuration)"
    assert out[1] == "acl_smtp_rcpt = acl_check_rcpt"
    assert out[2].startswith("hostlist relay_from_hosts = ") and "127.0.0.1" in out[2]


def test_bV(postern_bin, write_config):
    r = run([postern_bin, "-C", write_config(CFG), "-bV"])
    assert r.returncode == 0
    assert r.stdout.startswith("postern version ")
    assert "Configuration file is" in r.stdout


def test_unimplemented_option_is_reported(postern_bin):
    r = run([postern_bin, "-bi"])
    assert r.returncode != 0
    assert "-bi" in r.stderr and "not implemented" in r.stderr

"""The configuration reader through the real binary: errors name file,
line and word and exit non-zero; -bP prints what Exim prints for the same
configuration; -D overrides; the built-in default is used when no file is
given."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import TOP, run

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


# ---- options postern does not implement yet -----------------------------------
# Such options are marked OF_UNIMPL in src/config/main_opts.def and
# src/config/drivers_tab.c: a value other than the default (or, with
# OF_OFFOK, the "off" value) is a configuration error, never ignored.

ROUTERS = "begin routers\nr:\n  driver = redirect\n  data = x@example.org\n"
SMTP = "begin routers\nr:\n  driver = accept\n  transport = t\nbegin transports\nt:\n  driver = smtp\n"
LOCAL = "begin routers\nr:\n  driver = accept\n  transport = t\nbegin transports\nt:\n  driver = appendfile\n" \
        "  file = /tmp/mbox\n"
AUTH = "begin authenticators\na:\n  driver = plaintext\n"

REFUSED = [
    # text, line, option, what the message says may be set
    ("primary_hostname = a\ntls_crl = /etc/ssl/crl.pem\n", 2, "main option \"tls_crl\"",
     "left unset or empty"),
    ("tls_ocsp_file = /etc/ssl/ocsp.der\n", 1, "main option \"tls_ocsp_file\"", "left unset"),
    ("strict_acl_vars\n", 1, "main option \"strict_acl_vars\"", "false (its default)"),
    ("check_rfc2047_length = false\n", 1, "main option \"check_rfc2047_length\"", "true (its default)"),
    ("smtp_accept_max_per_connection = 5\n", 1, "main option \"smtp_accept_max_per_connection\"",
     "its default (\"1000\")"),
    ("system_filter = /etc/postern/filter\n", 1, "main option \"system_filter\"", "left unset"),
    (SMTP + "  tls_crl = /etc/ssl/crl.pem\n", 8, "option \"tls_crl\" (transport \"t\", driver smtp)",
     "left unset"),
    (SMTP + "  tls_dh_min_bits = 2048\n", 8, "option \"tls_dh_min_bits\"", "its default (\"1024\")"),
    (SMTP + "  dkim_domain = example.org\n", 8, "option \"dkim_domain\"", "left unset"),
    (SMTP + "  hosts_try_dane = +some\n", 8, "option \"hosts_try_dane\"", "or left empty"),
    (LOCAL + "  transport_filter = /bin/cat\n", 9, "option \"transport_filter\" (transport \"t\", driver appendfile)",
     "left unset"),
    (LOCAL + "  headers_rewrite = a@b c@d\n", 9, "option \"headers_rewrite\"", "left unset"),
    (ROUTERS + "  translate_ip_address = ${lookup{$host_address}lsearch{/x}}\n", 5,
     "option \"translate_ip_address\" (router \"r\", driver redirect)", "left unset"),
    (ROUTERS + "  include_directory = /etc/lists\n", 5, "option \"include_directory\"", "left unset"),
    # forbid_smtp_code matters only where :fail: or :defer: is allowed
    (ROUTERS + "  forbid_smtp_code = true\n  allow_fail\n", 5, "option \"forbid_smtp_code\"", "false (its default)"),
    (AUTH + "  client_condition = ${if def:tls_out_cipher}\n", 4,
     "option \"client_condition\" (authenticator \"a\", driver plaintext)", "left unset"),
]


@pytest.mark.parametrize("text,line,option,allowed", REFUSED)
def test_unimplemented_option_refused(postern_bin, write_config, text, line, option, allowed):
    path = write_config(text)
    r = run([postern_bin, "-C", path, "-bP", "primary_hostname"])
    assert r.returncode == 1
    assert r.stdout == ""
    assert f"configuration error in line {line} of {path}:" in r.stderr
    assert option in r.stderr and "is not implemented by postern yet" in r.stderr
    assert allowed in r.stderr


ACCEPTED = [
    # defaults spelt out, in any list spacing
    "tls_advertise_hosts = *\n",
    "tls_verify_certificates = system\n",
    "dkim_verify_hashes = sha256:sha512\n",
    "no_strict_acl_vars\n",
    "check_rfc2047_length = yes\n",
    "header_maxsize = 1M\n",
    "acl_smtp_data_prdr = accept\n",
    # the "off" value where that is what postern does
    "tls_advertise_hosts =\nsmtputf8_advertise_hosts =\nauth_advertise_hosts =\n",
    "smtp_accept_max_nonmail = 0\n",
    # unset and empty are alike
    "tls_certificate =\n",
    # accepted, no effect (see the comments in the tables)
    "prdr_enable = true\nsplit_spool_directory\nfreeze_tell = postmaster\ngecos_pattern = ^([^,:]*)\ngecos_name = $1\n",
    SMTP + "  hosts_try_dane = *\n  hosts_require_tls =\n  tls_tempfail_tryclear = true\n  dkim_hash = sha256\n"
           "  hosts_avoid_tls = *\n  debug_print = T: $local_part\n",
    # Debian's userforward: no :fail:/:defer:, so no SMTP code to forbid
    ROUTERS + "  forbid_smtp_code = true\n  no_expn\n  skip_syntax_errors\n  syntax_errors_to = real-$local_part\n",
    LOCAL + "  transport_filter_timeout = 5m\n  max_parallel =\n",
    AUTH + "  server_condition =\n",
    # implemented options load as before
    "smtp_accept_max = 7\nqueue_only\nhelo_accept_junk_hosts = *\n" + LOCAL + "  delivery_date_add\n",
]


@pytest.mark.parametrize("text", ACCEPTED)
def test_default_or_off_values_of_unimplemented_options_load(postern_bin, write_config, text):
    r = run([postern_bin, "-C", write_config(text), "-bP", "primary_hostname"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("primary_hostname = ")


def test_unimplemented_options_still_printed(postern_bin, write_config):
    path = write_config("tls_advertise_hosts =\n" + SMTP)
    r = run([postern_bin, "-C", path, "-bP", "tls_certificate", "tls_advertise_hosts", "strict_acl_vars"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["tls_certificate = ", "tls_advertise_hosts = ", "no_strict_acl_vars"]
    r = run([postern_bin, "-C", path, "-bP", "transport", "t"])
    assert "hosts_require_tls = " in r.stdout.splitlines()


def test_no_OPT_macro_for_unimplemented_options(postern_bin, write_config):
    """As in an Exim built without the feature: configurations that test
    for the option skip it."""
    path = write_config(".ifdef _OPT_MAIN_TLS_CRL\ntls_crl = /x.pem\n.endif\n"
                        ".ifdef _OPT_MAIN_QUEUE_ONLY\nqueue_only\n.endif\n")
    r = run([postern_bin, "-C", path, "-bP", "queue_only", "tls_crl"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["queue_only", "tls_crl = "]


def _marked(text, pattern):
    return set(re.findall(pattern, text))


def test_unimplemented_marks_match_the_code():
    """An option marked OF_UNIMPL is read by no code outside src/config: who
    implements one removes its mark (and the refusal with it)."""
    src = TOP / "src"
    code = {p: p.read_text(errors="replace") for p in src.rglob("*.[ch]") if "config" not in p.parts}
    main = _marked((src / "config/main_opts.def").read_text(), r"(?m)^MAINOPT\((\w+),[^)]*OF_UNIMPL")
    drv = _marked((src / "config/drivers_tab.c").read_text(), r'\{"(\w+)", \w+, [^,]*OF_UNIMPL')
    drv -= {"authenticated_sender"}     # also the name of a variable
    used = {n for n in main if any(re.search(rf"\bMO_{n}\b", t) for t in code.values())}
    # a driver option is read by name through the option getters (tp_opt, route_opt_str, driver_opt, ...)
    used |= {n for n in drv if any(re.search(rf'\b\w*opt\w*\([^()]*"{n}"', t) for t in code.values())}
    assert not used, f"marked OF_UNIMPL but read by the code: {sorted(used)}"

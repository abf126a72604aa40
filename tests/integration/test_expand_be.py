"""postern -be: Exim's output format for arguments and for standard input
(a "> " prompt per line, continuation lines, trailing white space dropped),
configuration macros, Exim 4.97+ macro definitions and "set" lines (a line whose first word is
a macro is expanded, never a definition), and
the length limit on arguments."""
import shutil

from conftest import run

CONF = "primary_hostname = test.example\nqualify_domain = example.org\nMAC = macroval\n"


def be(postern_bin, cfg, *args, input=None):
    return run([postern_bin, "-C", cfg, "-be", *args], input=input)


def test_arguments(postern_bin, write_config):
    cfg = write_config(CONF)
    r = be(postern_bin, cfg, "abc", "${if eq{a}{b}{y}{n}}", "${fail", "$primary_hostname MAC")
    assert r.returncode == 0
    assert r.stdout == ("abc\nn\nFailed: \"${fail\" is not a known operator (or a } is missing "
                        "in a variable reference)\ntest.example macroval\n")


def test_stdin_prompts_and_continuations(postern_bin, write_config):
    cfg = write_config(CONF)
    r = be(postern_bin, cfg, input="a\n\nb \\\n  c\nx   \nMAC ${uc:x}\n${lookup\n")
    assert r.returncode == 0
    assert r.stdout == "> a\n> \n> b c\n> x\n> macroval X\n> Failed: missing lookup type\n> \n"


def test_same_as_exim_on_stdin(postern_bin, write_config):
    exim = shutil.which("exim4") or "/usr/sbin/exim4"
    if not shutil.os.access(exim, shutil.os.X_OK):
        import pytest
        pytest.skip("exim4 not installed")
    cfg = write_config(CONF)
    text = "a\n\nb \\\n  c\nx   \nmac MAC ${uc:x}\n${lookup\n${if eq{a}{a}{yes}\n"
    got = be(postern_bin, cfg, input=text)
    want = run([exim, "-C", cfg, "-be"], input=text)
    assert got.stdout == want.stdout


def test_macro_definitions_and_set(postern_bin, write_config):
    cfg = write_config(CONF)
    r = be(postern_bin, cfg, input="NEW = v1\nx NEW\nset acl_m_x = ${uc:abc}\n$acl_m_x\n"
                                 "NEW == v2\nx NEW\nset foo = 1\nHello world\n")
    assert r.returncode == 0
    assert r.stdout == ("> Defined macro 'NEW'\n> x v1\n> variable m_x set\n> ABC\n"
                        "> v1 == v2\n> x v1\n"
                        "> invalid variable name after \"set\" in ACL modifier \"set foo = 1\" "
                        "(must start \"acl_c\" or \"acl_m\")\n> > \n")
    assert "malformed macro definition" in r.stderr


def test_long_argument_refused(postern_bin, write_config):
    cfg = write_config(CONF)
    r = be(postern_bin, cfg, "first", "a" * 300, "never")
    assert r.returncode != 0
    assert r.stdout == "first\n"
    assert "length limit exceeded (300 > 256)" in r.stderr

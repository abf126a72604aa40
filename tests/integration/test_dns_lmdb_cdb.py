"""The lmdb and cdb lookups through `postern -be` (issue 4).

lmdb databases are made with mdb_load (lmdb-utils), cdb files with
`cdb -c` (tinycdb).  Debian's exim4 has no lmdb lookup, so lmdb results are
checked against the data; cdb results are compared with `exim4 -be`."""
import hashlib
import os
import re
import pathlib
import shutil
import subprocess

import pytest

TOP = pathlib.Path(__file__).resolve().parents[2]
EXIM = shutil.which("exim4") or "/usr/sbin/exim4"


@pytest.fixture(scope="module")
def postern():
    for c in [os.environ.get("POSTERN_BIN")] + [str(TOP / d / "postern")
                                                 for d in ("build-asan", "build", "build-dns")]:
        if c and os.access(c, os.X_OK):
            r = subprocess.run([c, "-C", "/dev/null", "-be", "${lookup{x}lmdb{/nonexistent}{y}{n}}"],
                               capture_output=True, text=True)
            if "unknown lookup type" in r.stdout + r.stderr:
                pytest.skip(f"{c} has no lmdb lookup yet")
            return c
    pytest.skip("postern not built")


def be(binary, expr, conf="/dev/null"):
    r = subprocess.run([binary, "-C", conf, "-be", expr], capture_output=True, timeout=60)
    return r.returncode, r.stdout.decode("latin-1")


def mdb(tmp_path, pairs, name="db.mdb"):
    """An LMDB single-file environment holding pairs (bytes/str)."""
    def esc(b):
        b = b.encode() if isinstance(b, str) else b
        return "".join(chr(c) if 32 <= c < 127 and c != 92 else "\\%02x" % c for c in b)
    text = "VERSION=3\nformat=print\ntype=btree\nHEADER=END\n"
    for k, v in pairs:
        text += " " + esc(k) + "\n " + esc(v) + "\n"
    text += "DATA=END\n"
    p = tmp_path / name
    subprocess.run(["mdb_load", "-n", "-f", "/dev/stdin", str(p)], input=text.encode(),
                   check=True, capture_output=True)
    return str(p)


PAGE_FILL = 4096 - 16       # one overflow page exactly: the value ends with the file


@pytest.fixture(scope="module")
def lmdbfile(tmp_path_factory):
    d = tmp_path_factory.mktemp("lmdb")
    return mdb(d, [
        ("example.com", "relay"),
        ("Mixed.Case", "caseful"),
        ("empty", ""),
        ("spaces key", "value with spaces"),
        ("colon:key", "a:b:c"),
        ("zz-big", "B" * PAGE_FILL),       # last key: its value is the last page
    ])


@pytest.mark.parametrize("key,want", [
    ("example.com", "<relay>"),
    ("Mixed.Case", "<caseful>"),
    ("mixed.case", "NF"),              # keys are exact
    ("empty", "<>"),
    ("spaces key", "<value with spaces>"),
    ("colon:key", "<a:b:c>"),
    ("missing", "NF"),
])
def test_lmdb_values(postern, lmdbfile, key, want):
    rc, out = be(postern, "${lookup{%s}lmdb{%s}{<$value>}{NF}}" % (key, lmdbfile))
    assert (rc, out) == (0, want + "\n")


def test_lmdb_value_ending_at_end_of_map(postern, lmdbfile):
    """The value fills the last page of the file and has no NUL after it:
    read by length (Exim reads a C string here and dies with SIGBUS)."""
    assert os.path.getsize(lmdbfile) % 4096 == 0
    rc, out = be(postern, "${strlen:${lookup{zz-big}lmdb{%s}}}" % lmdbfile)
    assert (rc, out) == (0, f"{PAGE_FILL}\n")
    # (command-line arguments are limited in length, as Exim's: compare digests)
    rc, out = be(postern, "${md5:${lookup{zz-big}lmdb{%s}}}" % lmdbfile)
    assert out == hashlib.md5(b"B" * PAGE_FILL).hexdigest() + "\n"


def test_lmdb_many_sizes(postern, tmp_path):
    pairs = [(f"k{n:05d}", "v" * n) for n in (1, 15, 16, 17, 255, 256, 2000, 4080, 4081, 9000)]
    f = mdb(tmp_path, pairs)
    for k, v in pairs:
        rc, out = be(postern, "${strlen:${lookup{%s}lmdb{%s}}}" % (k, f))
        assert out == f"{len(v)}\n", k


def test_lmdb_errors(postern, tmp_path):
    rc, out = be(postern, "${lookup{x}lmdb{%s}{<$value>}{NF}}" % (tmp_path / "none.mdb"))
    assert out.startswith("Failed: LMDB: Unable to open environment with") and \
        "No such file or directory" in out
    notdb = tmp_path / "notdb"
    notdb.write_bytes(b"\0" * 8192)
    rc, out = be(postern, "${lookup{x}lmdb{%s}{<$value>}{NF}}" % notdb)
    assert out.startswith("Failed: LMDB: Unable to open environment with"), out
    f = mdb(tmp_path, [("a", "b")], "x.mdb")
    rc, out = be(postern, "${lookup{}lmdb{%s}{<$value>}{NF}}" % f)   # empty key: 4.99
    assert out == "NF\n", out


def test_lmdb_directory_environment_is_refused(postern, tmp_path):
    """Exim opens the lookup file as a one-file environment (mdb_load -n);
    a directory environment (plain mdb_load) is an error there too."""
    d = tmp_path / "envdir"
    d.mkdir()
    subprocess.run(["mdb_load", "-T", "-f", "/dev/stdin", str(d)], input=b"k\nv\n",
                   check=True, capture_output=True)
    rc, out = be(postern, "${lookup{k}lmdb{%s}{<$value>}{NF}}" % d)
    assert out.startswith("Failed: LMDB: Unable to open environment with %s: " % d), out


def test_lmdb_read_only_directory(postern, tmp_path):
    """A reader that cannot create the lock file still reads the map."""
    import tempfile
    top = pathlib.Path(tempfile.mkdtemp(prefix="lmdbro"))
    top.chmod(0o755)
    d = top / "ro"
    d.mkdir()
    f = mdb(d, [("k", "v")])
    if os.path.exists(f + "-lock"):
        os.unlink(f + "-lock")
    os.chmod(f, 0o644)
    d.chmod(0o555)
    if os.geteuid() != 0:
        pytest.skip("needs root to run the reader as nobody")
    try:
        env = dict(os.environ)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            postern, "-C", "/dev/null", "-be", "${lookup{k}lmdb{%s}}" % f],
                           capture_output=True, text=True, env=env)
        if "setpriv" in r.stderr or "Permission denied" in r.stderr and "postern" in r.stderr:
            pytest.skip("cannot run as nobody here")
        assert r.stdout == "v\n", r.stdout + r.stderr
    finally:
        d.chmod(0o755)
        shutil.rmtree(top, ignore_errors=True)


def test_lmdb_in_list(postern, lmdbfile):
    rc, out = be(postern, "${if match_domain{example.com}{lmdb;%s}{yes}{no}}" % lmdbfile)
    assert out == "yes\n"
    rc, out = be(postern, "${if match_domain{other.example}{lmdb;%s}{yes}{no}}" % lmdbfile)
    assert out == "no\n"


# --- cdb, compared with exim4 --------------------------------------------------

def exim499(out):
    """Exim 4.96's lookup-defer line in 4.99's form (both texts quoted)."""
    m = re.match(r'^Failed: lookup of "(.*)" gave DEFER: (.*)$', out.rstrip("\n"))
    if m and not m.group(2).startswith('"'):
        return 'Failed: lookup of "%s" gave DEFER: "%s"\n' % m.groups()
    return out

@pytest.fixture(scope="module")
def cdbfile(tmp_path_factory):
    d = tmp_path_factory.mktemp("cdb")
    recs = [(b"one", b"first"), (b"two", b"second"), (b"one", b"again"), (b"empty", b""),
            (b"Key", b"upper"), (b"long", b"L" * 5000), (b"sp ace", b"x y"),
            (b"colon:k", b"a:b")]
    data = b"".join(b"+%d,%d:%s->%s\n" % (len(k), len(v), k, v) for k, v in recs) + b"\n"
    p = d / "t.cdb"
    subprocess.run(["cdb", "-c", str(p)], input=data, check=True)
    short = d / "short.cdb"
    short.write_bytes(b"+1,1:a->b\n\n")
    return p, short, d


CDB_EXPRS = [
    "${lookup{one}cdb{%(f)s}{<$value>}{NF}}",
    "${lookup{two}cdb{%(f)s}{<$value>}{NF}}",
    "${lookup{empty}cdb{%(f)s}{<$value>}{NF}}",
    "${lookup{key}cdb{%(f)s}{<$value>}{NF}}",
    "${lookup{Key}cdb{%(f)s}{<$value>}{NF}}",
    "${strlen:${lookup{long}cdb{%(f)s}}}",
    "${lookup{sp ace}cdb{%(f)s}{<$value>}{NF}}",
    "${lookup{colon:k}cdb{%(f)s}{<$value>}{NF}}",
    "${lookup{missing}cdb{%(f)s}{<$value>}{NF}}",
    "${lookup{}cdb{%(f)s}{<$value>}{NF}}",
    "${lookup{one}cdb{%(d)s/none.cdb}{<$value>}{NF}}",
    "${lookup{one}cdb{%(short)s}{<$value>}{NF}}",
    "${lookup{one}cdb{%(d)s}{<$value>}{NF}}",
    "${if match_domain{two}{cdb;%(f)s}{yes}{no}}",
    "${lookup{one}partial-cdb{%(f)s}{<$value>}{NF}}",
]


@pytest.mark.parametrize("expr", CDB_EXPRS)
def test_cdb_matches_exim(postern, cdbfile, tmp_path, expr):
    if not os.access(EXIM, os.X_OK):
        pytest.skip("exim4 not installed")
    f, short, d = cdbfile
    e = expr % {"f": f, "short": short, "d": d}
    conf = tmp_path / "exim.conf"
    conf.write_text("primary_hostname = test.example\n")
    want = be(EXIM, e, str(conf))
    got = be(postern, e, str(conf))
    assert got == (want[0], exim499(want[1]))

"""Differential test of string expansion: every line of
data/expand_differential.txt is expanded by `postern -be` and by Debian's
Exim (`exim4 -be`) with the same configuration, and the results must agree.

Many expressions go to one process: they are passed as arguments with a
marker argument between them (a marker expands to itself), so multi-line
results and failures stay aligned.

Run alone:  POSTERN_BIN=build/postern /usr/bin/python3 -m pytest -q \
            tests/integration/test_expand_differential.py
Or as a script, to print every disagreement:
            /usr/bin/python3 tests/integration/test_expand_differential.py build/postern
"""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE / "data"
MARK = "@@sep@@"
CHUNK = 150

# Intended differences: expression -> reason.  postern targets Exim 4.99;
# the reference here is Debian 12's Exim 4.96.
INTENDED = {
}
Q499 = "4.99 quotes the lookup's error text with %q in \"lookup of <key> gave DEFER: <error>\""
for _e in ["${lookup{x}iplsearch{DATA/ipf}}", "${lookup{a/b}dsearch{DATA/dd}}"]:
    INTENDED[_e] = Q499
INTENDED["${lookup{a.wild.com}partial-lsearch{DATA/f1}{$value|$0|$1|$2}}"] = (
    "after a partial-match lookup 4.99 sets $0 empty, $1 to the wild part and $2 to the rest "
    "(Exim test 0387); 4.96 shows stale values")
INTENDED["${readsocket{/nonexistent/sock}{x}}"] = (
    "4.99 reports the failed connect (\"failed to connect to socket ...\"); 4.96 went on "
    "to write to the unconnected socket and reported \"Bad file descriptor\"")
BE497 = ("Exim 4.97+ -be: 'set acl_...' lines set variables and lines starting with an "
         "upper-case letter (not a macro) define macros; 4.96 expanded them as text")
for _e in ["set acl_m_dt = ${uc:hello}", "[$acl_m_dt]", "Hello world", "NEWMACRO = new value",
           "x NEWMACRO"]:
    INTENDED[_e] = BE497
# Lines where only failure is compared (both must fail; messages differ).
FAIL_ONLY = {
    "${nhash{0}{abc}}": "Exim divides by zero (undefined); postern reports an error",
}
VERSION_DEPENDENT = {
    "$version_number", "$exim_version", "$compile_number", "$compile_date",
}


def expressions():
    out = []
    for line in (DATA / "expand_differential.txt").read_text().splitlines():
        if line.startswith("#") or line == "":
            continue
        out.append(line)
    return out


def write_config(tmpdir):
    cfg = pathlib.Path(tmpdir) / "expand_differential.conf"
    cfg.write_text(f"DATA = {DATA / 'expand'}\n" + (DATA / "expand_differential.conf").read_text())
    return str(cfg)


def run_be(binary, cfg, exprs):
    results = []
    for i in range(0, len(exprs), CHUNK):
        chunk = exprs[i:i + CHUNK]
        args = []
        for e in chunk:
            args += [e, MARK]
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL": "C"}
        p = subprocess.run([binary, "-C", cfg, "-be"] + args, capture_output=True,
                           timeout=120, env=env)
        assert p.returncode == 0, f"{binary} exited {p.returncode}: {p.stderr[-2000:]!r}"
        text = p.stdout.decode("utf-8", "surrogateescape")
        parts = text.split(MARK + "\n")
        assert parts[-1] == "", f"trailing output from {binary}: {parts[-1]!r}"
        parts = parts[:-1]
        assert len(parts) == len(chunk), f"{binary}: {len(parts)} results for {len(chunk)} expressions"
        results += [p_[:-1] if p_.endswith("\n") else p_ for p_ in parts]
    return results


def compare(postern, exim, cfg):
    exprs = expressions()
    got = run_be(postern, cfg, exprs)
    want = run_be(exim, cfg, exprs)
    agree, intended, bad = 0, 0, []
    for e, g, w in zip(exprs, got, want):
        if e in INTENDED or e in VERSION_DEPENDENT:
            intended += 1
            continue
        if e in FAIL_ONLY:
            if g.startswith("Failed:") and (w.startswith("Failed:") or w == ""):
                intended += 1
                continue
        if g == w:
            agree += 1
        else:
            bad.append((e, g, w))
    return len(exprs), agree, intended, bad


def exim_bin():
    return shutil.which("exim4") or (os.access("/usr/sbin/exim4", os.X_OK) and "/usr/sbin/exim4")


def test_expand_differential(postern_bin, tmp_path):
    exim = exim_bin()
    if not exim:
        pytest.skip("exim4 not installed (tests/deps.sh installs exim4-daemon-heavy)")
    cfg = write_config(tmp_path)
    probe = subprocess.run([exim, "-C", cfg, "-be", "ok"], capture_output=True, timeout=60)
    if probe.returncode != 0 or probe.stdout != b"ok\n":
        pytest.skip(f"exim4 cannot be run with -C here: {probe.stderr[-300:]!r}")
    n, agree, intended, bad = compare(postern_bin, exim, cfg)
    assert n >= 300
    msg = "\n".join(f"  {e}\n    postern: {g!r}\n    exim:    {w!r}" for e, g, w in bad)
    print(f"expansion differential: {agree} agree, {intended} intended differences, {len(bad)} disagree")
    assert not bad, f"{len(bad)} of {n} expansions disagree with Exim:\n{msg}"


if __name__ == "__main__":
    import tempfile
    postern = sys.argv[1] if len(sys.argv) > 1 else "build/postern"
    with tempfile.TemporaryDirectory() as d:
        n, agree, intended, bad = compare(postern, exim_bin(), write_config(d))
    for e, g, w in bad:
        print(f"{e}\n    postern: {g!r}\n    exim:    {w!r}")
    print(f"{n} expressions: {agree} agree, {intended} intended, {len(bad)} disagree")

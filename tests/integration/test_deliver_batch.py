"""Batched local deliveries (batch_max, batch_id, $pipe_addresses), Exim's
delivery order and its "local" log style, checked against fixed
expectations and against Debian's Exim run on the same configuration."""
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest

EXIM = shutil.which("exim4") or ("/usr/sbin/exim4" if os.path.exists("/usr/sbin/exim4") else None)

RCPTS = ["team@x.example", "c@x.example", "d@y.example", "e@y.example", "p1@x.example", "p2@x.example",
         "g1@z.example", "g2@z.example", "h1@z.example"]


def config(d):
    return f"""\
primary_hostname = test.example
spool_directory = {d}/spool
log_file_path = {d}/%slog
exim_user = root
exim_group = root
keep_environment =
begin routers
al:
  driver = redirect
  local_parts = team
  data = a@x.example, b@x.example
pp:
  driver = accept
  local_parts = p1 : p2
  transport = batchpipe
perlp:
  driver = accept
  domains = y.example
  local_parts = d : e
  transport = t2
byid:
  driver = accept
  domains = z.example
  address_data = ${{substr_0_1:$local_part}}
  transport = t3
r:
  driver = accept
  transport = t
begin transports
t:
  driver = appendfile
  file = {d}/mail/box
  batch_max = 10
  envelope_to_add
  user = nobody
  group = nogroup
t2:
  driver = appendfile
  file = {d}/mail/$local_part_data
  batch_max = 10
  envelope_to_add
  user = nobody
  group = nogroup
t3:
  driver = appendfile
  file = {d}/mail/z
  batch_max = 10
  batch_id = $address_data
  envelope_to_add
  user = nobody
  group = nogroup
batchpipe:
  driver = pipe
  command = {d}/rec.sh $pipe_addresses
  batch_max = 10
  user = nobody
  group = nogroup
"""


def run(binary, d):
    (d / "mail").mkdir(parents=True)
    os.chmod(d, 0o755)
    os.chmod(d / "mail", 0o1777)
    (d / "rec.sh").write_text(f"#!/bin/sh\necho \"$#: $@\" >> {d}/mail/pipe.out\ncat >/dev/null\n")
    os.chmod(d / "rec.sh", 0o755)
    (d / "c.conf").write_text(config(d))
    r = subprocess.run([binary, "-C", str(d / "c.conf"), "-odi", "-f", "s@x.example"] + RCPTS,
                       input=b"Subject: batch\n\nhi\n", capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    log = (d / "mainlog").read_text()
    lines = [re.sub(r"^\S+ \S+ \S+ ", "", l) for l in log.splitlines() if re.search(r" (=>|->|\*\*|==) ", l)]
    mail = {}
    for f in sorted((d / "mail").iterdir()):
        text = f.read_text()
        mail[f.name] = [h for h in re.findall(r"^Envelope-to: .*(?:\n .*)*", text, re.M)] or text
    return lines, mail


EXPECTED_LINES = [
    "=> a <team@x.example> R=r T=t",
    "-> b <team@x.example> R=r T=t",
    "-> c <c@x.example> R=r T=t",
    "=> d <d@y.example> R=perlp T=t2",       # $local_part_data in file: one run per local part
    "=> e <e@y.example> R=perlp T=t2",
    "=> p1 <p1@x.example> R=pp T=batchpipe",
    "-> p2 <p2@x.example> R=pp T=batchpipe",
    "=> g1 <g1@z.example> R=byid T=t3",      # batch_id: same $address_data
    "-> g2 <g2@z.example> R=byid T=t3",
    "=> h1 <h1@z.example> R=byid T=t3",
]


@pytest.fixture
def top():
    """A directory local deliveries (as nobody) can reach: pytest's own
    temporary directories are private to root."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="postern-batch-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_batched_local_deliveries(postern_bin, top):
    lines, mail = run(postern_bin, top / "postern")
    assert lines == EXPECTED_LINES
    # one copy per batch, every address of the batch in Envelope-to:
    assert mail["box"] == ["Envelope-to: team@x.example,\n c@x.example"]
    assert mail["d"] == ["Envelope-to: d@y.example"] and mail["e"] == ["Envelope-to: e@y.example"]
    assert mail["z"] == ["Envelope-to: g1@z.example,\n g2@z.example", "Envelope-to: h1@z.example"]
    # $pipe_addresses: one argument per address
    assert mail["pipe.out"] == "2: p1@x.example p2@x.example\n"


@pytest.mark.skipif(EXIM is None, reason="exim4 not installed")
def test_batched_local_deliveries_match_exim(postern_bin, top):
    ours = run(postern_bin, top / "postern")
    theirs = run(EXIM, top / "exim")
    theirs_text = repr(theirs).replace(str(top / "exim"), "D")
    ours_text = repr(ours).replace(str(top / "postern"), "D")
    assert ours_text == theirs_text

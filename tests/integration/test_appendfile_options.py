"""The appendfile transport's options, with real deliveries.

Each scenario is a set of transports (one per local part: the router
sends x@test.example to the transport called x), files made beforehand,
and messages injected with -odi.  It runs with postern, and its results
are checked directly (the main log, the files and their modes and
owners); where Debian's Exim 4.96 is installed the same scenario also
runs with Exim and everything is compared: the main and panic logs and
every file under the scenario's directory.

Only what must differ is normalised: message ids, dates, times and pids
(in maildir, mailstore and lock file names), the version string, S= of
the arrival lines and Received: headers (a fixed received_header_text
keeps sizes equal between the two; the messages postern generates
itself do not use it yet).  Known differences that are not the
transport's are listed in KNOWN below and undone before comparing.

Run one scenario:
    POSTERN_BIN=build-lasan/postern /usr/bin/python3 -m pytest -q \\
        tests/integration/test_appendfile_options.py -k locking
"""
import difflib
import grp
import os
import pathlib
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

EXIM = shutil.which("exim4") or ("/usr/sbin/exim4" if os.path.exists("/usr/sbin/exim4") else None)


def _nobody():
    try:
        return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    except KeyError:
        return None


NOBODY = _nobody()
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or NOBODY is None,
                                reason="needs root (deliveries run as nobody:nogroup)")

HEAD = """\
primary_hostname = test.example
qualify_domain = test.example
spool_directory = %D%/spool
log_file_path = %D%/%slog
exim_user = root
exim_group = nogroup
keep_environment =
never_users =
received_header_text = Received: by test.example id $message_exim_id
"""

ROUTERS = """\
begin routers
{routers}\
t:
  driver = accept
  domains = test.example
  local_parts = {names}
  transport = $local_part_data
inbox:
  driver = accept
  domains = test.example
  local_parts = s : alice : postmaster
  transport = inbox
begin transports
inbox:
  driver = appendfile
  file = %D%/mail/inbox-$local_part_data
  user = nobody
  group = nogroup
"""

RETRY = "begin retry\n* * F,1h,10m\n"

MSG = ("From: s@test.example\nTo: someone@test.example\nSubject: test\n\n"
       "body line\nFrom the start of a line\n.\n>From quoted\nlast line\n")


def transports(text):
    """Transport definitions; each gets user = nobody and group = nogroup
    unless it names a user."""
    out = []
    for block in re.split(r"\n(?=\w+:\n)", text.strip("\n")):
        if "\n  user =" not in block:
            block += "\n  user = nobody\n  group = nogroup"
        out.append(block + "\n")
    return "".join(out)


def config(tps, main="", routers="", retry=True):
    names = " : ".join(re.findall(r"^(\w+):\n", tps, re.M))
    return HEAD + main + ROUTERS.format(routers=routers, names=names) + transports(tps) + (RETRY if retry else "")


def send(*rcpts, msg=MSG, sender="s@test.example"):
    return ("send", list(rcpts), msg, sender)


def pause(seconds):
    return ("sleep", seconds)


def hold(path, kind="fcntl", mode="write"):
    """A process holding a lock on path (fcntl, flock) until the end."""
    return ("hold", path, kind, mode)


def fifo_reader(path, out):
    return ("reader", path, out)


# --------------------------------------------------------------------------
# running a scenario


def owner(st):
    try:
        u = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        u = str(st.st_uid)
    try:
        g = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        g = str(st.st_gid)
    return f"{u}:{g}"


def make(d, files):
    """files: path -> text, or (text, mode[, owner]); None: a directory
    (mode 0755 nobody-owned), or ("dir", mode[, "root"]); ("->", target[, "root"]): a symbolic link
    owned by nobody (or root); ("fifo", mode): a named pipe owned by nobody; ("link", other):
    a hard link."""
    for path, spec in files.items():
        p = d / path
        p.parent.mkdir(parents=True, exist_ok=True)
        if spec is None or (isinstance(spec, tuple) and spec[0] == "dir"):
            p.mkdir(parents=True, exist_ok=True)
            os.chown(p, *(NOBODY if spec is None or spec[2:] != ("root",) else (0, 0)))
            os.chmod(p, 0o755 if spec is None else spec[1])
            continue
        if isinstance(spec, tuple) and spec[0] == "->":
            os.symlink(str(spec[1]).replace("%D%", str(d)), p)
            if spec[2:] != ("root",):
                os.lchown(p, *NOBODY)
            continue
        if isinstance(spec, tuple) and spec[0] == "fifo":
            os.mkfifo(p)
            os.chown(p, *NOBODY)
            os.chmod(p, spec[1])
            continue
        if isinstance(spec, tuple) and spec[0] == "link":
            os.link(d / spec[1], p)
            continue
        text, mode, who = (spec + ("nobody",))[:3] if isinstance(spec, tuple) else (spec, 0o600, "nobody")
        p.write_bytes(text.encode() if isinstance(text, str) else text)
        os.chmod(p, mode)
        if who == "nobody":
            os.chown(p, *NOBODY)
        elif who:
            u, _, g = who.partition(":")
            shutil.chown(p, u, g or None)


HOLDER = r"""
import fcntl, os, sys, time
path, kind, mode = sys.argv[1:4]
f = open(path, "r+")
if kind == "fcntl":
    fcntl.lockf(f, fcntl.LOCK_EX if mode == "write" else fcntl.LOCK_SH)
else:
    fcntl.flock(f, fcntl.LOCK_EX if mode == "write" else fcntl.LOCK_SH)
print("locked", flush=True)
time.sleep(120)
"""

READER = r"""
import os, sys, time
src, out = sys.argv[1:3]
fd = os.open(src, os.O_RDONLY | os.O_NONBLOCK)      # open now, read what comes
print("reading", flush=True)
data, deadline = b"", time.time() + 60
while time.time() < deadline:
    try:
        chunk = os.read(fd, 65536)
    except BlockingIOError:
        chunk = None
    if chunk:
        data += chunk
    elif chunk == b"" and data:
        break                                       # the writer has closed it
    else:
        time.sleep(0.01)
with open(out, "wb") as o:
    o.write(data)
"""


def settle(d, quiet=0.4, limit=15):
    """Wait until the main log has been quiet for a while and nothing is
    left being delivered (generated messages have their own process)."""
    p = d / "mainlog"
    last, since, deadline = None, time.time(), time.time() + limit
    while time.time() < deadline:
        cur = p.stat().st_size if p.exists() else -1
        if cur != last:
            last, since = cur, time.time()
        elif time.time() - since >= quiet:
            return
        time.sleep(0.05)


def run(binary, conf, steps, files=None):
    """Run a scenario with one MTA; its results, normalised."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="apf-"))
    os.chmod(d, 0o755)
    (d / "mail").mkdir()
    os.chmod(d / "mail", 0o1777)
    procs = []
    try:
        make(d, files or {})
        (d / "c.conf").write_text(conf.replace("%D%", str(d)))
        outs = []
        for step in steps:
            if step[0] == "send":
                _, rcpts, msg, sender = step
                r = subprocess.run([binary, "-C", str(d / "c.conf"), "-odi", "-i", "-f", sender] + rcpts,
                                   input=msg.replace("%D%", str(d)).encode(), capture_output=True, timeout=120)
                outs.append(f"exit {r.returncode} {r.stderr.decode(errors='replace')}")
                settle(d)
            elif step[0] == "sleep":
                time.sleep(step[1])
            elif step[0] == "make":
                make(d, {step[1]: ""})
            elif step[0] == "hold":
                p = subprocess.Popen([sys.executable, "-c", HOLDER, str(d / step[1]), step[2], step[3]],
                                     stdout=subprocess.PIPE)
                procs.append(p)
                assert p.stdout.readline().strip() == b"locked"
            elif step[0] == "reader":
                p = subprocess.Popen([sys.executable, "-c", READER, str(d / step[1]), str(d / step[2])],
                                     stdout=subprocess.PIPE)
                procs.append(p)
                assert p.stdout.readline().strip() == b"reading"
        return collect(d, outs)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(d, ignore_errors=True)


ID = r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}"


class Norm:
    def __init__(self, d):
        self.d = str(d)
        self.ids = {}
        self.names = {}

    def name(self, kind, real):
        key = (kind, real)
        if key not in self.names:
            self.names[key] = f"{kind}#{sum(1 for k in self.names if k[0] == kind) + 1}"
        return self.names[key]

    def __call__(self, text):
        text = text.replace(self.d, "D")
        for m in re.finditer(rf"(?<![0-9A-Za-z])E?({ID})(?![0-9A-Za-z])", text):
            self.ids.setdefault(m.group(1), f"ID{len(self.ids)}")
        text = re.sub(rf"(?<![0-9A-Za-z])(E?)({ID})(-[0-9A-Za-z]{{6}})?(?![0-9A-Za-z])",
                      lambda m: m.group(1) + self.ids[m.group(2)] + ("-PID" if m.group(3) else ""), text)
        text = re.sub(r"\bExim \d+\.\d+(\.\d+)?( #\d+)?|\bpostern \d+(\.\d+)+", "VERSION", text)
        text = re.sub(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun), ?\d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}", "DATE", text)
        text = re.sub(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}", "DATE", text)
        text = re.sub(r"\b\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d [+-]\d{4},", "MBXDATE,", text)
        text = re.sub(r"(\*mbx\*\r\n)[0-9a-f]{8}", r"\1TIME", text)
        text = re.sub(r"(\.lock\.test\.example)\.[0-9a-f]{8}\.[0-9a-f]{8}\b", r"\1.HITCH", text)
        text = re.sub(r"\btemp\.\d+\.test\.example", "temp.PID.test.example", text)
        text = re.sub(r"\b\d{9,}\.M\d+P\d+\.test\.example", lambda m: self.name("MD", m.group(0)), text)
        text = re.sub(r"/tmp/\.[0-9a-f]+\.[0-9a-f]+", "/tmp/.DEV.INO", text)
        return text


def collect(d, outs):
    n = Norm(d)
    res = {}
    for lg in ("mainlog", "paniclog"):
        p = d / lg
        text = p.read_text(errors="replace") if p.exists() else ""
        res[lg] = re.sub(r"( <= .* P=\w+) S=\d+", r"\1 S=n",
                         n("".join(re.sub(r"^\S+ \S+ ", "", l) + "\n" for l in text.splitlines())))
    res["commands"] = n("\n".join(outs))
    listing = []
    # directory_file's default names (q<time>-<inode>) are numbered in the
    # order the files were written: inode numbers are not comparable
    for p in sorted(d.rglob("q*"), key=lambda p: p.lstat().st_mtime_ns):
        if re.match(r"q[0-9A-Za-z]+-\d+$", p.name):
            n.name("DF", str(p.relative_to(d)))
    # maildir names likewise, by their time (the microseconds are not padded)
    md = [m for m in (re.match(r"(\d{9,})\.M(\d+)P\d+\.test\.example", p.name) for p in d.rglob("*")) if m]
    for m in sorted(md, key=lambda m: (int(m[1]), int(m[2]))):
        n.name("MD", m[0])
    for p in sorted(d.rglob("*")):
        rel = p.relative_to(d)
        if rel.parts[0] not in ("mail", "home"):
            continue
        st = p.lstat()
        name = n(str(rel))
        if re.match(r"q[0-9A-Za-z]+-\d+$", p.name):       # directory_file's default name
            name = f"{n(str(rel.parent))}/{n.name('DF', str(rel))}"
        if stat.S_ISLNK(st.st_mode):
            listing.append(f"{name} -> {n(os.readlink(p))}")
        elif stat.S_ISDIR(st.st_mode):
            listing.append(f"{name}/ {oct(st.st_mode & 0o7777)} {owner(st)}")
        elif stat.S_ISFIFO(st.st_mode):
            listing.append(f"{name} fifo {oct(st.st_mode & 0o7777)} {owner(st)}")
        else:
            listing.append(f"{name} {oct(st.st_mode & 0o7777)} {owner(st)} links={st.st_nlink}")
            res.setdefault("_raw", {})[str(rel)] = p.read_bytes()
            # an MBX lock file left behind (a reader still has the
            # mailbox): noted, and removed
            lock = pathlib.Path("/tmp/.%x.%x" % (st.st_dev, st.st_ino))
            if lock.exists() and not lock.is_symlink():
                ls = lock.lstat()
                res.setdefault("_mbxlock", {})[str(rel)] = (stat.S_IMODE(ls.st_mode), ls.st_uid)
                lock.unlink()
            body = p.read_bytes().decode("latin-1")
            body = re.sub(r"^Received: .*\r?\n(?:[ \t].*\r?\n)*", "", body, flags=re.M)
            res[name] = n(body)
    res["files"] = "\n".join(sorted(listing))
    return res


# Differences that are not the transport's: the delivery process logs a
# redirect's "/path" even when the transport wrote to its own "file" (Exim
# logs that file: its local delivery process sends it back).  Failures
# Exim calls "panic" also go to the panic log (and to stderr).
KNOWN = [
    ("mainlog", r"=> D/mail/fixed <tofixed@", r"=> D/mail/ignored <tofixed@"),
    ("paniclog", r"^ID\d+ == .* defer \(-1\): .*\n", ""),
    ("commands", r"^(exit \d+ )?\S+ \S+ ID\d+ == .* defer \(-1\): .*(\n|$)", r"\1"),
]


def compare(exim, ours):
    exim = dict(exim)
    for key, pat, rep in KNOWN:
        if key in exim:
            exim[key] = re.sub(pat, rep, exim[key], flags=re.M)
    out = []
    for k in sorted(k for k in set(exim) | set(ours) if not k.startswith("_")):
        a, b = exim.get(k), ours.get(k)
        if a != b:
            out.append(f"=== {k}")
            out.extend(difflib.unified_diff((a or "(absent)").splitlines(), (b or "(absent)").splitlines(),
                                            "exim", "postern", lineterm="", n=2))
    return "\n".join(out)


def scenario(postern_bin, tps, steps, files=None, main="", routers=""):
    """Run with postern (and with Exim when there is one, comparing);
    return postern's results."""
    conf = config(tps, main, routers)
    if EXIM:
        with ThreadPoolExecutor(2) as ex:
            fe = ex.submit(run, EXIM, conf, steps, files)
            fp = ex.submit(run, postern_bin, conf, steps, files)
            exim, ours = fe.result(), fp.result()
        diff = compare(exim, ours)
        assert diff == "", "postern differs from Exim:\n" + diff
        return ours
    return run(postern_bin, conf, steps, files)


def log_has(res, *lines):
    for line in lines:
        assert re.search(line, res["mainlog"], re.M), f"{line!r} not in the main log:\n{res['mainlog']}"


# ==========================================================================
# a single file: the mbox defaults and the options that change them


def test_mbox_prefix_suffix_and_escaping(postern_bin):
    """The default message_prefix ("From <sender> <date>", MAILER-DAEMON
    for <>), message_suffix (an empty line) and "From " escaping; set
    empty; MMDF-style affixes with a check string that spans the line end;
    use_crlf (the affixes are written as given); headers_only, body_only;
    notify_comsat is accepted (postern notifies no comsat daemon)."""
    res = scenario(postern_bin, r"""
plain:
  driver = appendfile
  file = %D%/mail/plain
  return_path_add
  envelope_to_add
  delivery_date_add
  notify_comsat
bare:
  driver = appendfile
  file = %D%/mail/bare
  message_prefix =
  message_suffix =
  check_string =
mmdf:
  driver = appendfile
  file = %D%/mail/mmdf
  check_string = "\1\1\1\1\n"
  escape_string = "\1\1\1\1 \n"
  message_prefix = "\1\1\1\1\n"
  message_suffix = "\1\1\1\1\n"
crlf:
  driver = appendfile
  file = %D%/mail/crlf
  use_crlf
hdronly:
  driver = appendfile
  file = %D%/mail/hdronly
  headers_only
bodyonly:
  driver = appendfile
  file = %D%/mail/bodyonly
  body_only
""", [send("plain@test.example", "bare@test.example", "crlf@test.example", "hdronly@test.example",
           "bodyonly@test.example"),
      send("plain@test.example", sender="<>"),
      send("mmdf@test.example", msg="From: s@test.example\nSubject: m\n\nbefore\n\x01\x01\x01\x01\nafter\nFrom x\n")])
    assert res["mail/plain"].startswith("From s@test.example DATE\nReturn-path: <s@test.example>\n"
                                        "Envelope-to: plain@test.example\nDelivery-date: DATE\n")
    assert "\nFrom MAILER-DAEMON DATE\n" in res["mail/plain"]
    assert "\n>From the start of a line\n.\n>From quoted\n" in res["mail/plain"]
    assert res["mail/plain"].endswith("last line\n\n")
    assert res["mail/bare"].startswith("From: s@test.example") and "\nFrom the start" in res["mail/bare"]
    assert res["mail/bare"].endswith("last line\n")
    mmdf = "\x01\x01\x01\x01\n"
    assert res["mail/mmdf"].startswith(mmdf + "From: s@test.example\nSubject: m\n")
    assert res["mail/mmdf"].endswith("\n\nbefore\n\x01\x01\x01\x01 \nafter\nFrom x\n" + mmdf)
    assert res["mail/crlf"].startswith("From s@test.example DATE\nFrom: s@test.example\r\n")
    assert res["mail/crlf"].endswith(">From quoted\r\nlast line\r\n\n")
    assert "body line" not in res["mail/hdronly"] and res["mail/hdronly"].endswith("Date: DATE\n\n\n")
    assert res["mail/bodyonly"].startswith("From s@test.example DATE\nbody line\n>From the start")


def test_file_must_exist_create_directory_and_create_file(postern_bin):
    """file_must_exist; create_directory with directory_mode, and without;
    create_file: inhome (only directly in the home directory), belowhome
    (anywhere under it, no "/../"; a name from outside data is accepted
    there), an absolute path; for "directory" too.
    (Exim 4.96 crashes checking "belowhome" for a file name without any
    expansion in it: the names here have one.)"""
    home = "  home_directory = %D%/home/h\n"
    res = scenario(postern_bin, """
absent:
  driver = appendfile
  file = %D%/mail/absent
  file_must_exist
present:
  driver = appendfile
  file = %D%/mail/present
  file_must_exist
nodirs:
  driver = appendfile
  file = %D%/mail/no/such/box
  create_directory = false
mkdirs:
  driver = appendfile
  file = %D%/mail/made/deeper/box
  directory_mode = 0750
inhome:
  driver = appendfile
  file = %D%/home/h/box
  create_file = inhome
""" + home + """\
inhomedeep:
  driver = appendfile
  file = %D%/home/h/sub/box
  create_file = inhome
""" + home + """\
belowhome:
  driver = appendfile
  file = %D%/home/h/sub2/$local_part_data
  create_file = belowhome
""" + home + """\
belowtaint:
  driver = appendfile
  file = %D%/home/h/sub/$local_part
  create_file = belowhome
""" + home + """\
dotdot:
  driver = appendfile
  file = %D%/home/h/../escaped
  create_file = belowhome
""" + home + """\
outside:
  driver = appendfile
  file = %D%/mail/outside
  create_file = belowhome
""" + home + """\
area:
  driver = appendfile
  file = %D%/mail/area/x/$local_part_data
  create_file = %D%/mail/area
notarea:
  driver = appendfile
  file = %D%/mail/notarea
  create_file = %D%/mail/area
dirout:
  driver = appendfile
  directory = %D%/mail/dirout
  create_file = %D%/mail/area
dirin:
  driver = appendfile
  directory = %D%/mail/area/dirin
  create_file = %D%/mail/area
""", [send("absent@test.example", "present@test.example", "nodirs@test.example", "mkdirs@test.example",
           "inhome@test.example", "inhomedeep@test.example", "belowhome@test.example", "belowtaint@test.example",
           "dotdot@test.example",
           "outside@test.example", "area@test.example", "notarea@test.example", "dirout@test.example",
           "dirin@test.example")],
        files={"mail/present": "", "home/": None, "home/h/": None, "home/h/sub/": None, "mail/area/": None})
    log_has(res,
            r"^ID0 == absent@test.example R=t T=absent defer \(2\): No such file or directory: mailbox D/mail/absent "
            r"does not exist, but file_must_exist is set$",
            r"^ID0 => present <present@test.example> R=t T=present$",
            r"^ID0 == nodirs@test.example R=t T=nodirs defer \(2\): No such file or directory: creating lock file "
            r"hitching post D/mail/no/such/box.lock.test.example.HITCH \(euid=65534 egid=65534\)$",
            r"^ID0 => inhome ", r"^ID0 => belowhome ", r"^ID0 => area ", r"^ID0 => dirin ", r"^ID0 => belowtaint ",
            r"^ID0 == inhomedeep@test.example R=t T=inhomedeep defer \(-34\): mailbox D/home/h/sub/box does not "
            r"exist, but creation outside the home directory is not permitted$",
            r"^ID0 == dotdot@test.example .* defer \(-34\)", r"^ID0 == outside@test.example .* defer \(-34\)",
            r"^ID0 == notarea@test.example .* defer \(-34\)",
            r"^ID0 == dirout@test.example R=t T=dirout defer \(-34\): tried to create file in D/mail/dirout, but "
            r"file creation outside the home directory is not permitted$")
    assert "mail/made/ 0o750 nobody:nogroup\nmail/made/deeper/ 0o750 nobody:nogroup" in res["files"]
    assert "home/h/sub2/belowhome 0o600 nobody:nogroup" in res["files"]
    assert "mail/area/x/area 0o600 nobody:nogroup" in res["files"]
    assert "mail/absent" not in res["files"] and "mail/outside " not in res["files"]


def test_modes_and_owners(postern_bin):
    """mode: a new file gets it exactly (no umask); a wider existing mode
    is narrowed; a narrower one defers (mode_fail_narrower) or stays;
    check_owner, check_group."""
    res = scenario(postern_bin, """
newmode:
  driver = appendfile
  file = %D%/mail/newmode
  mode = 0664
wide:
  driver = appendfile
  file = %D%/mail/wide
narrow:
  driver = appendfile
  file = %D%/mail/narrow
  mode = 0640
narrowok:
  driver = appendfile
  file = %D%/mail/narrowok
  mode = 0640
  mode_fail_narrower = false
rootowned:
  driver = appendfile
  file = %D%/mail/rootowned
  mode = 0666
noowner:
  driver = appendfile
  file = %D%/mail/noowner
  mode = 0666
  check_owner = false
group:
  driver = appendfile
  file = %D%/mail/group
  check_group
nogroupcheck:
  driver = appendfile
  file = %D%/mail/nogroupcheck
""", [send("newmode@test.example", "wide@test.example", "narrow@test.example", "narrowok@test.example",
           "rootowned@test.example", "noowner@test.example", "group@test.example", "nogroupcheck@test.example")],
        files={"mail/wide": ("", 0o666), "mail/narrow": ("", 0o600), "mail/narrowok": ("", 0o600),
               "mail/rootowned": ("", 0o666, "root"), "mail/noowner": ("", 0o666, "root"),
               "mail/group": ("", 0o600, "nobody:root"), "mail/nogroupcheck": ("", 0o600, "nobody:root")})
    log_has(res, r"^ID0 => newmode ", r"^ID0 => wide ", r"^ID0 => narrowok ", r"^ID0 => noowner ",
            r"^ID0 => nogroupcheck ",
            r"^ID0 == narrow@test.example R=t T=narrow defer \(-7\): mailbox D/mail/narrow has the wrong mode 600 "
            r"\(640 expected\)$",
            r"^ID0 == rootowned@test.example R=t T=rootowned defer \(-6\): mailbox D/mail/rootowned has wrong uid "
            r"\(0 != 65534\)$",
            r"^ID0 == group@test.example R=t T=group defer \(-6\): mailbox D/mail/group has wrong gid \(0 != 65534\)$")
    for line in ("mail/newmode 0o664 nobody:nogroup", "mail/wide 0o600 nobody:nogroup",
                 "mail/narrowok 0o600 nobody:nogroup", "mail/noowner 0o666 root:root"):
        assert line in res["files"]


def test_links_and_fifos(postern_bin):
    """A symbolic link: refused (its owner checked first), followed with
    allow_symlink; a file with two links is refused; a FIFO only with
    allow_fifo, and without a reader the delivery defers."""
    res = scenario(postern_bin, """
sym:
  driver = appendfile
  file = %D%/mail/sym
symok:
  driver = appendfile
  file = %D%/mail/symok
  allow_symlink
rootsym:
  driver = appendfile
  file = %D%/mail/rootsym
  allow_symlink
hard:
  driver = appendfile
  file = %D%/mail/hard
fifo:
  driver = appendfile
  file = %D%/mail/fifo
fifook:
  driver = appendfile
  file = %D%/mail/fifook
  allow_fifo
""", [send("sym@test.example", "symok@test.example", "rootsym@test.example", "hard@test.example",
           "fifo@test.example", "fifook@test.example")],
        files={"mail/target": "", "mail/target2": "", "mail/sym": ("->", "%D%/mail/target"),
               "mail/symok": ("->", "%D%/mail/target2"), "mail/rootsym": ("->", "%D%/mail/target", "root"),
               "mail/hard": "", "mail/hard2": ("link", "mail/hard"), "mail/fifo": ("fifo", 0o600),
               "mail/fifook": ("fifo", 0o600)})
    log_has(res, r"^ID0 => symok ",
            r"^ID0 == sym@test.example R=t T=sym defer \(-4\): mailbox D/mail/sym is not a regular file$",
            r"^ID0 == rootsym@test.example R=t T=rootsym defer \(-6\): mailbox D/mail/rootsym \(symlink\) has wrong "
            r"uid \(0 != 65534\)$",
            r"^ID0 == hard@test.example R=t T=hard defer \(-4\): mailbox D/mail/hard has too many links \(2\)$",
            r"^ID0 == fifo@test.example R=t T=fifo defer \(-4\): mailbox D/mail/fifo is not a regular file$",
            r"^ID0 == fifook@test.example R=t T=fifook defer \(6\): No such device or address: while opening named "
            r"pipe D/mail/fifook \(could mean no process is reading it\)$")
    assert "body line" in res["mail/target2"] and "body line" not in res.get("mail/target", "")


def test_locking(postern_bin):
    """Lock files (a fresh one is waited for, lock_retries times
    lock_interval apart; one older than lockfile_timeout is removed;
    lockfile_mode, seen while the delivery runs); fcntl locks held by
    another process, without and with lock_fcntl_timeout; flock
    (use_flock_lock, which turns the fcntl default off, and
    lock_flock_timeout); no_use_lockfile."""
    fast = "  lock_retries = 2\n  lock_interval = 0s\n"
    res = scenario(postern_bin, """
fresh:
  driver = appendfile
  file = %D%/mail/fresh
  lockfile_timeout = 1h
""" + fast + """\
stale:
  driver = appendfile
  file = %D%/mail/stale
  lockfile_timeout = 1s
""" + fast + """\
lockmode:
  driver = appendfile
  file = %D%/mail/lockmode
  lockfile_mode = 0640
  message_prefix = lock ${run{/usr/bin/stat -c %a %D%/mail/lockmode.lock}}
fcntl:
  driver = appendfile
  file = %D%/mail/fcntl
""" + fast + """\
fcntlwait:
  driver = appendfile
  file = %D%/mail/fcntlwait
  lock_fcntl_timeout = 1s
  lock_retries = 1
flock:
  driver = appendfile
  file = %D%/mail/flock
  use_flock_lock
  lock_flock_timeout = 1s
  lock_retries = 1
flockonly:
  driver = appendfile
  file = %D%/mail/flockonly
  use_flock_lock
""" + fast + """\
fcntlnotflock:
  driver = appendfile
  file = %D%/mail/fcntlnotflock
nolockfile:
  driver = appendfile
  file = %D%/mail/nolockfile
  no_use_lockfile
  message_prefix = lockfile ${if exists{%D%/mail/nolockfile.lock}{yes}{no}}\\n
""", [pause(2.2), hold("mail/fcntl"), hold("mail/fcntlwait"), hold("mail/flock", "flock"),
      hold("mail/flockonly", "flock"), hold("mail/fcntlnotflock", "flock"),
      send("fresh@test.example", "stale@test.example", "lockmode@test.example", "fcntl@test.example",
           "fcntlwait@test.example", "flock@test.example", "flockonly@test.example",
           "fcntlnotflock@test.example", "nolockfile@test.example")],
        files={"mail/fresh.lock": "", "mail/stale.lock": "", "mail/fcntl": "", "mail/fcntlwait": "",
               "mail/flock": "", "mail/flockonly": "", "mail/fcntlnotflock": ""})
    log_has(res, r"^ID0 == fresh@test.example R=t T=fresh defer \(-9\): failed to lock mailbox D/mail/fresh "
                 r"\(lock file\)$",
            r"^ID0 => stale ", r"^ID0 => lockmode ", r"^ID0 => fcntlnotflock ", r"^ID0 => nolockfile ",
            r"^ID0 == fcntl@test.example R=t T=fcntl defer \(-9\): failed to lock mailbox D/mail/fcntl "
            r"\(fcntl/flock\)$",
            r"^ID0 == fcntlwait@test.example .* defer \(-9\): failed to lock mailbox D/mail/fcntlwait \(fcntl/flock\)$",
            r"^ID0 == flock@test.example .* defer \(-9\): failed to lock mailbox D/mail/flock \(fcntl/flock\)$",
            r"^ID0 == flockonly@test.example .* defer \(-9\)")
    assert res["mail/lockmode"].startswith("lock 640\nFrom: s@test.example\n")
    assert res["mail/nolockfile"].startswith("lockfile no\nFrom: s@test.example\n")
    assert "mail/stale.lock" not in res["files"] and "mail/fresh.lock 0o600" in res["files"]


def test_file_format(postern_bin):
    """file_format: an existing file's first bytes choose the transport
    (an empty or missing file is this one's); an unknown start, or a
    transport that does not exist, defers."""
    fmt = '  file_format = "From : fmt : \\1\\1\\1\\1 : mmdfbox : ZZ : nosuch"\n'
    res = scenario(postern_bin, """
fmt:
  driver = appendfile
  file = %D%/mail/mmdf
""" + fmt + """\
mmdfbox:
  driver = appendfile
  file = %D%/mail/mmdf
  check_string = "\\1\\1\\1\\1\\n"
  escape_string = "\\1\\1\\1\\1 \\n"
  message_prefix = "\\1\\1\\1\\1\\n"
  message_suffix = "\\1\\1\\1\\1\\n"
unknown:
  driver = appendfile
  file = %D%/mail/unknown
""" + fmt + """\
missing:
  driver = appendfile
  file = %D%/mail/missing
""" + fmt + """\
empty:
  driver = appendfile
  file = %D%/mail/empty
""" + fmt, [send("fmt@test.example", "unknown@test.example", "missing@test.example", "empty@test.example")],
        files={"mail/mmdf": "\x01\x01\x01\x01\nold\n\x01\x01\x01\x01\n", "mail/unknown": "XX\n",
               "mail/missing": "ZZ\n", "mail/empty": ""})
    # the delivery is logged with the transport file_format chose (as Exim)
    log_has(res, r"^ID0 => fmt <fmt@test.example> R=t T=mmdfbox$", r"^ID0 => empty ",
            r"^ID0 == unknown@test.example R=t T=unknown defer \(-33\): mailbox file format unrecognized$",
            r"^ID0 == missing@test.example R=t T=missing defer \(-30\): nosuch transport \(for ZZ format\) not found$")
    assert res["mail/mmdf"].startswith("\x01\x01\x01\x01\nold\n\x01\x01\x01\x01\n\x01\x01\x01\x01\nFrom: ")
    assert res["mail/empty"].startswith("From s@test.example DATE\n")


WARN = "  quota_warn_message = To: alice@test.example\\nSubject: mailbox of $local_part\\n\\nIt is $message_size.\\n\n"


def test_mbox_quota_and_warning(postern_bin):
    """quota with the message counted (quota_is_inclusive) or not,
    "/no_check", mailbox_size in place of the file's size, quota = 0, a
    malformed quota; quota_warn_threshold (absolute, a share of quota,
    ignored as a share without quota, out of range) sends
    quota_warn_message (Reply-To: errors_reply_to, From: dsn_from)."""
    k = "x" * 999 + "\n"
    res = scenario(postern_bin, """
qfull:
  driver = appendfile
  file = %D%/mail/qfull
  quota = 1100
qexcl:
  driver = appendfile
  file = %D%/mail/qexcl
  quota = 1100
  quota_is_inclusive = false
qover:
  driver = appendfile
  file = %D%/mail/qover
  quota = 1100
  quota_is_inclusive = false
qnocheck:
  driver = appendfile
  file = %D%/mail/qnocheck
  quota = 1100/no_check
mbsize:
  driver = appendfile
  file = %D%/mail/mbsize
  quota = 1.5K
  mailbox_size = ${if eq{1}{1}{1400}}
qzero:
  driver = appendfile
  file = %D%/mail/qzero
  quota = 0
badquota:
  driver = appendfile
  file = %D%/mail/badquota
  quota = 1X
warn:
  driver = appendfile
  file = %D%/mail/warn
  quota = 1K
  quota_warn_threshold = 40%
""" + WARN + """\
warnabs:
  driver = appendfile
  file = %D%/mail/warnabs
  quota_warn_threshold = 300
""" + WARN + """\
warnpct:
  driver = appendfile
  file = %D%/mail/warnpct
  quota_warn_threshold = 50%
""" + WARN + """\
badpct:
  driver = appendfile
  file = %D%/mail/badpct
  quota = 1K
  quota_warn_threshold = 150%
""", [send("qfull@test.example", "qexcl@test.example", "qover@test.example", "qnocheck@test.example",
           "mbsize@test.example", "qzero@test.example", "badquota@test.example", "warn@test.example",
           "warnabs@test.example", "warnpct@test.example", "badpct@test.example")],
        files={"mail/qfull": k, "mail/qexcl": k, "mail/qover": k + "y" * 200, "mail/qnocheck": k,
               "mail/mbsize": "", "mail/warn": "z" * 199 + "\n", "mail/warnabs": "z" * 199 + "\n"},
        main="errors_reply_to = admin@test.example\n")
    log_has(res, r"^ID0 == qfull@test.example R=t T=qfull defer \(-22\): mailbox is full \(MTA-imposed quota "
                 r"exceeded while writing to D/mail/qfull\)$",
            r"^ID0 => qexcl ", r"^ID0 => qnocheck ", r"^ID0 => qzero ", r"^ID0 => warn ", r"^ID0 => warnabs ",
            r"^ID0 => warnpct ",
            r"^ID0 == qover@test.example .* defer \(-22\)", r"^ID0 == mbsize@test.example .* defer \(-22\)",
            r"^ID0 == badquota@test.example R=t T=badquota defer \(-1\): Malformed value \"1X\" \(expansion of "
            r"\"1X\"\) in badquota transport$",
            r"^ID0 == badpct@test.example R=t T=badpct defer \(-1\): Invalid quota_warn_threshold percentage \(150\) "
            r"for badpct transport$",
            r"^ID1 <= <> R=ID0 U=\w+ P=local S=n$", r"^ID2 <= <> R=ID0 ", r"^ID1 => alice <alice@test.example> ")
    assert "ID3 <=" not in res["mainlog"]          # warnpct: a share of no quota is no threshold
    warning = res["mail/inbox-alice"].split("\n\n")
    assert warning[0].splitlines()[1:] == ["Reply-To: admin@test.example", "Auto-Submitted: auto-replied",
                                           "From: Mail Delivery System <Mailer-Daemon@test.example>",
                                           "To: alice@test.example", "Subject: mailbox of warn",
                                           "Message-Id: <EID1@test.example>", "Date: DATE"]
    assert re.fullmatch(r"It is \d+\.", warning[1])
    assert res["mail/qfull"] == k                   # untouched


# ==========================================================================
# a new file per message


def test_maildir(postern_bin):
    """maildir_format: tmp/, new/, cur/ made; maildir_tag (after writing,
    with $message_size; a forced failure drops it, another defers);
    quota by scanning, with sizes from quota_size_regex; quota_filecount;
    maildirfolder_create_regex and the quota of the parent maildir;
    quota_directory; maildir_retries; a delivery directory that is a file;
    create_directory = false."""
    md = "  maildir_format\n"
    res = scenario(postern_bin, r"""
md:
  driver = appendfile
  directory = %D%/mail/md
  maildir_tag = ,S=$message_size
  quota = 700
  quota_size_regex = ,S=(\d+)
""" + md + """\
mdcount:
  driver = appendfile
  directory = %D%/mail/mdcount
  quota = 1M
  quota_filecount = 4
""" + md + r"""\
mdfolder:
  driver = appendfile
  directory = %D%/mail/mdf/.Sent
  maildirfolder_create_regex = /\.[^/]+$
  quota = 700
  quota_size_regex = ,S=(\d+)
""" + md + """\
mdqdir:
  driver = appendfile
  directory = %D%/mail/mdq/sub
  quota_directory = %D%/mail/mdq
  quota = 600
""" + md + """\
mdretry:
  driver = appendfile
  directory = %D%/mail/mdr
  maildir_retries = 1
""" + md + """\
mdnotag:
  driver = appendfile
  directory = %D%/mail/mdnotag
  maildir_tag = ${if eq{1}{2}{x}fail}
""" + md + """\
mdbadtag:
  driver = appendfile
  directory = %D%/mail/mdbadtag
  maildir_tag = ${if eq{1}
""" + md + """\
notdir:
  driver = appendfile
  directory = %D%/mail/notdir
""" + md + """\
nocreate:
  driver = appendfile
  directory = %D%/mail/nocreate
  create_directory = false
""" + md, [send(*(f"{t}@test.example" for t in ("md", "mdcount", "mdfolder", "mdqdir", "mdretry", "mdnotag",
                                                 "mdbadtag", "notdir", "nocreate"))),
           send("md@test.example", "mdcount@test.example"), send("md@test.example")],
        files={"mail/mdf/": None, "mail/mdf/new/": None, "mail/mdf/new/1.x,S=500": "x\n",
               "mail/mdq/": None, "mail/mdq/old": "o" * 399 + "\n",
               "mail/mdr/": None, "mail/mdr/tmp/": ("dir", 0o755, "root"), "mail/mdr/new/": None, "mail/mdr/cur/": None,
               "mail/notdir": ""})
    log_has(res, r"^ID0 => md ", r"^ID1 => md ", r"^ID0 => mdcount ", r"^ID0 => mdnotag ",
            r"^ID2 == md@test.example R=t T=md defer \(-22\): mailbox is full \(MTA-imposed quota exceeded while "
            r"writing to tmp/MD#\d+\)$",
            r"^ID1 == mdcount@test.example R=t T=mdcount defer \(-22\): mailbox is full \(MTA-imposed filecount "
            r"quota exceeded while writing to tmp/MD#\d+\)$",
            r"^ID0 == mdfolder@test.example .* defer \(-22\)", r"^ID0 == mdqdir@test.example .* defer \(-22\)",
            r"^ID0 == mdretry@test.example R=t T=mdretry defer \(13\): Permission denied: failed to open "
            r"tmp/MD#\d+ \(1 try\)$",
            r"^ID0 == mdbadtag@test.example R=t T=mdbadtag defer \(-1\): Expansion of \"\$\{if eq\{1\}\" "
            r"\(maildir_tag for mdbadtag transport\) failed: ",
            r"^ID0 == notdir@test.example R=t T=notdir defer \(-5\): D/mail/notdir is not a directory$",
            r"^ID0 == nocreate@test.example R=t T=nocreate defer \(2\): No such file or directory: stat\(\) error "
            r"for D/mail/nocreate: No such file or directory$")
    files = res["files"]
    assert re.search(r"^mail/md/new/MD#\d+,S=\d+ 0o600 nobody:nogroup", files, re.M)
    assert "mail/mdf/.Sent/maildirfolder 0o600" in files and "mail/mdf/.Sent/tmp/ 0o700" in files
    assert re.search(r"^mail/mdnotag/new/MD#\d+ 0o600", files, re.M)
    assert "mail/nocreate" not in files


def test_maildirsize_file(postern_bin):
    """maildir_use_size_file: the maildirsize file is made from a scan
    (quota and file count quota, then size and count), then one line per
    delivery; a changed quota makes it again; a folder that
    maildir_quota_directory_regex leaves out has no quota and no record;
    mailbox_size and mailbox_filecount from the configuration."""
    common = "  maildir_format\n  maildir_use_size_file\n  maildirfolder_create_regex = /\\.[^/]+$\n"
    res = scenario(postern_bin, """
mds:
  driver = appendfile
  directory = %D%/mail/mds
  quota = ${if exists{%D%/mail/bigger}{5K}{2K}}
""" + common + """\
trash:
  driver = appendfile
  directory = %D%/mail/mds/.Trash
  quota = 10
  maildir_quota_directory_regex = ^(?:cur|new|\\.(?!Trash).*)$
""" + common + """\
counted:
  driver = appendfile
  directory = %D%/mail/mds/.Sent
  quota = 2K
""" + common + """\
fresh:
  driver = appendfile
  directory = %D%/mail/fresh
  quota = 2K
""" + common + """\
given:
  driver = appendfile
  directory = %D%/mail/given
  quota = 1M
  quota_filecount = 10
  mailbox_size = 100
  mailbox_filecount = 10
  maildir_format
""", [send("mds@test.example", "trash@test.example", "fresh@test.example"),
      send("mds@test.example", "counted@test.example"),
      send("given@test.example"), ("make", "mail/bigger"), send("mds@test.example", "trash@test.example"),
      send("mds@test.example")],
        files={"mail/mds/": None, "mail/mds/cur/": None, "mail/mds/cur/1.old": "o" * 99 + "\n"})
    log_has(res, r"^ID0 => mds ", r"^ID0 => trash ", r"^ID1 => mds ", r"^ID1 => counted ",
            r"^ID2 == given@test.example R=t T=given defer \(-22\): mailbox is full \(MTA-imposed filecount quota "
            r"exceeded while writing to tmp/MD#\d+\)$",
            r"^ID0 => trash ", r"^ID3 => mds ", r"^ID3 => trash ", r"^ID4 => mds ")
    # made at the first delivery (the old message), one line per delivery,
    # made again when the quota changed (the default directory regex
    # counts .Trash, which the trash transport's leaves out)
    lines = res["mail/mds/maildirsize"].splitlines()
    size = int(lines[2].split()[0])
    assert lines == ["5120S,0C", f"{100 + 4 * size} 5", f"{size} 1", f"{size} 1"]
    assert res["mail/fresh/maildirsize"] == f"2048S,0C\n0 0\n{size} 1\n"
    assert "mail/mds/.Trash/maildirsize" not in res["files"]


def test_mailstore_directory_file_and_bsmtp(postern_bin):
    """mailstore_format (.env with mailstore_prefix/suffix, a forced
    failure leaving one out, and .msg; quota_filecount); "directory" (a
    quota by adding up the files) with directory_file
    (the default with $inode, and a fixed name that is taken the second
    time); use_bsmtp (MAIL/RCPT/DATA, "." escaped, headers too, with
    message_prefix and use_crlf, a batch in one envelope, into a
    directory)."""
    res = scenario(postern_bin, r"""
ms:
  driver = appendfile
  directory = %D%/mail/ms
  mailstore_format
  mailstore_prefix = PREFIX for $local_part
  mailstore_suffix = ${if eq{1}{2}{x}fail}
ms2:
  driver = appendfile
  directory = %D%/mail/ms2
  mailstore_format
  mailstore_suffix = SUFFIX\n
dirdefault:
  driver = appendfile
  directory = %D%/mail/dirdefault
dirfixed:
  driver = appendfile
  directory = %D%/mail/dirfixed
  directory_file = fixed-$local_part_data
dirquota:
  driver = appendfile
  directory = %D%/mail/dirquota
  quota = 500
msquota:
  driver = appendfile
  directory = %D%/mail/msquota
  mailstore_format
  quota = 1M
  quota_filecount = 1
bs:
  driver = appendfile
  file = %D%/mail/bs
  use_bsmtp
  message_prefix = HELO test.example\r\n
  use_crlf
bsbatch:
  driver = appendfile
  file = %D%/mail/bsbatch
  use_bsmtp
  batch_max = 10
bsdir:
  driver = appendfile
  directory = %D%/mail/bsdir
  use_bsmtp
""", [send("ms@test.example", "ms2@test.example", "dirdefault@test.example", "dirfixed@test.example",
           "bs@test.example", "bsdir@test.example", "a@batch.example", "b@batch.example", "dirquota@test.example",
           "msquota@test.example", msg=MSG + ".dot line\n"),
      send("dirdefault@test.example", "dirfixed@test.example", "dirquota@test.example", "msquota@test.example",
           msg="Subject: two\nFrom: s@test.example\n\n2\n" + "x" * 250 + "\n")],
        routers="batch:\n  driver = accept\n  domains = batch.example\n  transport = bsbatch\n")
    log_has(res, r"^ID0 => ms ", r"^ID0 => ms2 ", r"^ID0 => dirdefault ", r"^ID0 => dirfixed ", r"^ID0 => bs ",
            r"^ID0 => bsdir ", r"^ID0 => a <a@batch.example> R=batch T=bsbatch$",
            r"^ID0 -> b <b@batch.example> R=batch T=bsbatch$", r"^ID1 => dirdefault ",
            r"^ID1 == dirfixed@test.example R=t T=dirfixed defer \(17\): File exists: while renaming "
            r"D/mail/dirfixed/temp.PID.test.example as D/mail/dirfixed/fixed-dirfixed$",
            r"^ID0 => dirquota ", r"^ID0 => msquota ",
            r"^ID1 == dirquota@test.example R=t T=dirquota defer \(-22\): mailbox is full \(MTA-imposed quota "
            r"exceeded while writing to D/mail/dirquota/temp.PID.test.example\)$",
            r"^ID1 == msquota@test.example R=t T=msquota defer \(-22\): mailbox is full \(MTA-imposed filecount "
            r"quota exceeded while writing to D/mail/msquota/ID1-PID.msg\)$")
    assert res["mail/ms/ID0-PID.env"] == "PREFIX for ms\ns@test.example\nms@test.example\n"
    assert res["mail/ms2/ID0-PID.env"] == "s@test.example\nms2@test.example\nSUFFIX\n"
    assert res["mail/ms/ID0-PID.msg"].startswith("From: s@test.example\n")
    assert len(re.findall(r"^mail/dirdefault/DF#\d+ 0o600", res["files"], re.M)) == 2
    assert res["mail/bs"].startswith("HELO test.example\r\nMAIL FROM:<s@test.example>\r\n"
                                     "RCPT TO:<bs@test.example>\r\nDATA\r\nFrom: s@test.example\r\n")
    assert res["mail/bs"].endswith("\r\n..\r\n>From quoted\r\nlast line\r\n..dot line\r\n.\r\n")
    assert res["mail/bsbatch"].startswith("MAIL FROM:<s@test.example>\nRCPT TO:<a@batch.example>\n"
                                          "RCPT TO:<b@batch.example>\nDATA\n")
    assert re.search(r"^mail/bsdir/DF#\d+ 0o600", res["files"], re.M)


def test_mbx(postern_bin):
    """mbx_format: the MBX header block for an empty mailbox, a separator
    line with the date and size per message, CRLF lines; MBX locking by
    default (a shared lock on the mailbox and an exclusive one on
    /tmp/.<dev>.<inode>): a reader's shared lock does not stop it, an
    exclusive lock does; with another locking option mentioned, the
    normal locks; use_mbx_lock on an ordinary mailbox."""
    fast = "  lock_retries = 2\n  lock_interval = 0s\n"
    mbx = "  mbx_format\n  message_prefix =\n  message_suffix =\n"
    res = scenario(postern_bin, """
mbx:
  driver = appendfile
  file = %D%/mail/mbx
""" + mbx + """\
shared:
  driver = appendfile
  file = %D%/mail/shared
""" + mbx + fast + """\
excl:
  driver = appendfile
  file = %D%/mail/excl
""" + mbx + fast + """\
normal:
  driver = appendfile
  file = %D%/mail/normal
  use_lockfile
  message_prefix = lockfile ${if exists{%D%/mail/normal.lock}{yes}{no}}\\r\\n
  mbx_format
mbxlock:
  driver = appendfile
  file = %D%/mail/mbxlock
  use_mbx_lock
  message_prefix = lockfile ${if exists{%D%/mail/mbxlock.lock}{yes}{no}}\\n
""", [hold("mail/shared", mode="read"), hold("mail/excl"),
      send("mbx@test.example", "shared@test.example", "excl@test.example", "normal@test.example",
           "mbxlock@test.example"),
      send("mbx@test.example")],
        files={"mail/shared": "", "mail/excl": ""})
    log_has(res, r"^ID0 => mbx ", r"^ID1 => mbx ", r"^ID0 => shared ", r"^ID0 => normal ", r"^ID0 => mbxlock ",
            r"^ID0 == excl@test.example R=t T=excl defer \(-9\): failed to lock mailbox D/mail/excl \(fcntl/flock\)$")
    box = res["mail/mbx"]
    block = 2048 - len("12345678") + len("TIME")     # the header block, its hex time normalised
    header = "*mbx*\r\nTIME00000000\r\n" + "\r\n" * 30
    assert box.startswith(header) and box[len(header):block] == "\0" * (block - len(header))
    seps = re.findall(r"MBXDATE,(\d+);000000000000-00000000\r\n", box)
    assert len(seps) == 2 and box[block:].startswith("MBXDATE,")
    first = box[block:].split("\r\n", 1)[1]
    assert first.startswith("From: s@test.example\r\n") and "\r\n>From quoted\r\n" in first
    assert res["mail/normal"].startswith("*mbx*") and "lockfile yes\r\nFrom: " in res["mail/normal"]
    assert res["mail/mbxlock"].startswith("lockfile yes\nFrom: s@test.example\n")
    assert res["_mbxlock"] == {"mail/shared": (0o600, NOBODY[0])}


def test_errors_in_names_and_options(postern_bin):
    """File and directory names: an expansion failure, a relative name, a
    tainted name ($local_part), neither option, maildir_format with
    "file"; quota_directory not absolute; a bad quota_size_regex; a
    failing message_suffix expansion; a /dev/null mailbox."""
    res = scenario(postern_bin, r"""
badexp:
  driver = appendfile
  file = %D%/mail/${lookup{x}lsearch{%D%/nonexistent}}
relative:
  driver = appendfile
  file = mail/relative
tainted:
  driver = appendfile
  file = %D%/mail/$local_part
neither:
  driver = appendfile
mdfile:
  driver = appendfile
  file = %D%/mail/mdfile
  maildir_format
qdir:
  driver = appendfile
  directory = %D%/mail/qdir
  quota = 1M
  quota_directory = relative/dir
badregex:
  driver = appendfile
  directory = %D%/mail/badregex
  quota = 1M
  quota_size_regex = ,S=(\d+
badsuffix:
  driver = appendfile
  file = %D%/mail/badsuffix
  message_suffix = ${if
devnull:
  driver = appendfile
  file = /dev/null
""", [send(*(f"{t}@test.example" for t in ("badexp", "relative", "tainted", "neither", "mdfile", "qdir",
                                            "badregex", "badsuffix", "devnull")))])
    log_has(res, r"^ID0 == badexp@test.example R=t T=badexp defer \(-1\): Expansion of \"D/mail/\$\{lookup",
            r"^ID0 == relative@test.example R=t T=relative defer \(-21\): appendfile: file or directory name "
            r"\"mail/relative\" is not absolute$",
            r"^ID0 == tainted@test.example R=t T=tainted defer \(-1\): Tainted 'D/mail/tainted' \(file or directory "
            r"name for tainted transport\) not permitted$",
            r"^ID0 == neither@test.example R=t T=neither defer \(-1\): Mandatory file or directory option missing "
            r"from neither transport$",
            r"^ID0 == mdfile@test.example R=t T=mdfile defer \(-1\): maildir_format requires \"directory\" to be "
            r"specified for the mdfile transport$",
            r"^ID0 == qdir@test.example R=t T=qdir defer \(-21\): appendfile: quota_directory name \"relative/dir\" "
            r"is not absolute$",
            r"^ID0 == badregex@test.example R=t T=badregex defer \(-1\): appendfile: regular expression error: "
            r".* while compiling ,S=\(\\d\+$",
            r"^ID0 == badsuffix@test.example R=t T=badsuffix defer \(-27\): Expansion of \"\$\{if\" \(suffix for "
            r"badsuffix transport\) failed$",
            r"^ID0 => devnull ")
    assert "mail/badsuffix 0o600 nobody:nogroup links=1" in res["files"] and res["mail/badsuffix"] == ""


def test_files_from_redirection(postern_bin):
    """A "/path" from a redirect router: a file, or a directory when it
    ends in "/"; maildir_format makes any path a directory; a transport
    that sets "file" uses it instead of the path."""
    res = scenario(postern_bin, """
address_file:
  driver = appendfile
address_dir:
  driver = appendfile
address_md:
  driver = appendfile
  maildir_format
fixedfile:
  driver = appendfile
  file = %D%/mail/fixed
""", [send("tofile@test.example", "todir@test.example", "tomd@test.example", "tofixed@test.example")],
        routers="".join(f"{name}:\n  driver = redirect\n  domains = test.example\n  local_parts = {lp}\n"
                        f"  data = %D%/mail/{path}\n  {kind}_transport = {tp}\n"
                        for name, lp, path, kind, tp in (
                            ("fw1", "tofile", "fw-file", "file", "address_file"),
                            ("fw2", "todir", "fw-dir/", "directory", "address_dir"),
                            ("fw3", "tomd", "fw-md", "file", "address_md"),
                            ("fw4", "tofixed", "ignored", "file", "fixedfile"))))
    log_has(res, r"^ID0 => D/mail/fw-file <tofile@test.example> R=fw1 T=address_file$",
            r"^ID0 => D/mail/fw-dir/ <todir@test.example> R=fw2 T=address_dir$",
            r"^ID0 => D/mail/fw-md <tomd@test.example> R=fw3 T=address_md$",
            r"=> D/mail/ignored <tofixed@test.example> R=fw4 T=fixedfile$")
    files = res["files"]
    assert "mail/fw-file 0o600" in files and "mail/fixed 0o600" in files and "mail/ignored" not in files
    assert re.search(r"^mail/fw-dir/DF#\d+ 0o600", files, re.M)
    assert re.search(r"^mail/fw-md/new/MD#\d+ 0o600", files, re.M)


# ==========================================================================
# postern alone: what cannot be compared with Exim


def ours(postern_bin, tps, steps, files=None, main="", routers=""):
    return run(postern_bin, config(tps, main, routers), steps, files)


def test_inconsistent_options_defer_with_the_reason(postern_bin):
    """Combinations Exim refuses when it reads the configuration; postern
    defers the delivery with Exim's reason (the configuration reader does
    not call the transport's check yet)."""
    res = ours(postern_bin, """
both:
  driver = appendfile
  file = %D%/mail/both
  directory = %D%/mail/bothdir
nolock:
  driver = appendfile
  file = %D%/mail/nolock
  no_use_lockfile
  no_use_fcntl_lock
fcount:
  driver = appendfile
  file = %D%/mail/fcount
  quota_filecount = 10
twoformats:
  driver = appendfile
  directory = %D%/mail/twoformats
  maildir_format
  mailstore_format
noquota:
  driver = appendfile
  directory = %D%/mail/noquota
  quota_directory = %D%/mail
badcreate:
  driver = appendfile
  file = %D%/mail/badcreate
  create_file = nowhere
""", [send(*(f"{t}@test.example" for t in ("both", "nolock", "fcount", "twoformats", "noquota", "badcreate")))])
    log_has(res,
            r"^ID0 == both@test.example R=t T=both defer \(-1\): both transport: only one of \"file\" or "
            r"\"directory\" can be specified$",
            r"^ID0 == nolock@test.example .* defer \(-1\): nolock transport: no locking configured$",
            r"^ID0 == fcount@test.example .* defer \(-1\): fcount transport: quota_filecount must not be set without "
            r"\"directory\"$",
            r"^ID0 == twoformats@test.example .* defer \(-1\): twoformats transport: only one of maildir and "
            r"mailstore may be specified$",
            r"^ID0 == noquota@test.example .* defer \(-1\): noquota transport: quota must be set if quota_directory "
            r"is set$",
            r"^ID0 == badcreate@test.example .* defer \(-1\): invalid value given for \"create_file\" for the "
            r"badcreate transport: 'nowhere'$")
    assert res["files"] == "mail/ 0o1777 root:root"


def test_fifo_with_a_reader(postern_bin):
    """allow_fifo: a FIFO with a process reading it gets the message (and
    is not fsynced or truncated)."""
    res = ours(postern_bin, """
fifo:
  driver = appendfile
  file = %D%/mail/fifo
  allow_fifo
""", [fifo_reader("mail/fifo", "mail/read.out"), send("fifo@test.example")],
        files={"mail/fifo": ("fifo", 0o600)})
    log_has(res, r"^ID0 => fifo <fifo@test.example> R=t T=fifo$")
    assert res["mail/read.out"].startswith("From s@test.example DATE\nFrom: s@test.example\n")
    assert res["mail/read.out"].endswith("last line\n\n")


def test_default_quota_warning_and_batches(postern_bin):
    """quota_warn_message's default (To: the address, Subject: Your
    mailbox); a batch shares one delivery and its error numbers."""
    res = ours(postern_bin, """
warnme:
  driver = appendfile
  file = %D%/mail/warnme
  quota_warn_threshold = 10
batched:
  driver = appendfile
  file = %D%/mail/batched
  quota = 10
  batch_max = 5
""", [send("warnme@test.example"), send("a@batch.example", "b@batch.example")],
        routers="batch:\n  driver = accept\n  domains = batch.example\n  transport = batched\n")
    log_has(res, r"^ID1 <= <> R=ID0 ", r"^ID1 => warnme <warnme@test.example> R=t T=warnme$",
            r"^ID2 == a@batch.example R=batch T=batched defer \(-22\): mailbox is full \(MTA-imposed quota exceeded "
            r"while writing to D/mail/batched\)$",
            r"^ID2 == b@batch.example R=batch T=batched defer \(-22\): mailbox is full ")
    warning = res["mail/warnme"].split("From MAILER-DAEMON DATE\n")[1]
    assert "\nTo: warnme@test.example\nSubject: Your mailbox\n" in warning
    assert warning.endswith("\n\nThis message is automatically created by mail delivery software.\n\n"
                            "The size of your mailbox has exceeded a warning threshold that is\n"
                            "set by the system administrator.\n\n")


def test_mbx_separator_size_and_lock_file(postern_bin):
    """The MBX separator gives the exact size of the message after it; a
    reader with a shared lock keeps the /tmp lock file (lockfile_mode)."""
    res = ours(postern_bin, """
mbx:
  driver = appendfile
  file = %D%/mail/mbx
  mbx_format
  message_prefix =
  message_suffix =
  lockfile_mode = 0640
""", [hold("mail/mbx", mode="read"), send("mbx@test.example"), send("mbx@test.example")],
        files={"mail/mbx": ""})
    log_has(res, r"^ID0 => mbx ", r"^ID1 => mbx ")
    raw = res["_raw"]["mail/mbx"]
    assert len(raw) > 2048 and raw.startswith(b"*mbx*\r\n")
    rest = raw[2048:]
    for _ in range(2):
        line, rest = rest.split(b"\r\n", 1)
        size = int(re.fullmatch(rb"\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d [+-]\d{4},(\d+);000000000000-00000000", line)[1])
        assert rest[:size].startswith(b"Received: ") and rest[:size].endswith(b"last line\r\n")
        rest = rest[size:]
    assert rest == b""
    assert res["_mbxlock"] == {"mail/mbx": (0o640, NOBODY[0])}


def test_quota_bounce_says_mailbox_is_full(postern_bin):
    """Without a retry rule an over-quota address fails at once: the log
    has Exim's error number and text, and the bounce gives the user
    message "mailbox is full" (not the file's name)."""
    conf = config("""
full:
  driver = appendfile
  file = %D%/mail/full
  quota = 10
""", retry=False)
    steps = [send("full@test.example")]
    ours_res = run(postern_bin, conf, steps)
    results = [ours_res] + ([run(EXIM, conf, steps)] if EXIM else [])
    for res in results:
        log_has(res, r"^ID0 == full@test.example R=t T=full defer \(-22\): mailbox is full \(MTA-imposed quota "
                     r"exceeded while writing to D/mail/full\)$",
                r"^ID0 \*\* full@test.example: retry timeout exceeded$", r"^ID1 <= <> R=ID0 ")
        assert "\n  full@test.example\n    mailbox is full: retry timeout exceeded\n" in res["mail/inbox-s"]
        assert "D/mail/full" not in res["mail/inbox-s"]
    if EXIM:
        assert results[0]["mainlog"] == results[1]["mainlog"]

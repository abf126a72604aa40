"""The pipe transport's options, run for real (-odi deliveries of messages
submitted on the command line, pipes under "nobody"), against fixed
expectations taken from Exim's specification and from running Debian's
Exim 4.96, and side by side with that Exim on one configuration.

Known gap, deliberately not asserted here: the
"transport output" log line is written by the transport process, so these
tests make the main log writable for the pipe's user."""
import os
import pathlib
import re
import resource
import shutil
import subprocess
import tempfile

import pytest

EXIM = shutil.which("exim4") or ("/usr/sbin/exim4" if os.path.exists("/usr/sbin/exim4") else None)

ID = re.compile(r"\b[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}\b")
BSD_DATE = re.compile(r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \d{4}")
USER = "  user = nobody\n  group = nogroup\n"
FAIL_SEP = re.compile(r"^(\*\* .*?(?: [RT]=\S+)+) : ")


def config(d, transports, main="", routers=""):
    """A configuration whose router "r" sends local part N to transport N
    (for every transport named in transports, a list of (name, options)),
    everything else to the mailbox D/o/mbox (where bounces land)."""
    names = " : ".join(n for n, _ in transports)
    text = (f"primary_hostname = test.example\nspool_directory = D/spool\nlog_file_path = D/%slog\n"
            f"exim_user = root\nexim_group = root\nkeep_environment =\n{main}\n"
            f"begin routers\n{routers}"
            f"r:\n  driver = accept\n  local_parts = {names}\n  transport = $local_part_data\n"
            f"mb:\n  driver = accept\n  transport = mb\n"
            f"begin transports\n")
    for name, opts in transports:
        text += f"{name}:\n  driver = pipe\n{opts}"
        if "  user =" not in opts:
            text += USER
    text += "mb:\n  driver = appendfile\n  file = D/o/mbox\n" + USER
    text += "begin retry\n* * F,1h,10m\n"
    return text.replace("D/", f"{d}/")


class Result:
    def __init__(self, d, proc):
        self.d = d
        self.proc = proc
        self.raw_log = (d / "mainlog").read_text(errors="replace")
        # the delivery lines, without time stamps and with message ids as "ID"
        self.lines = [ID.sub("ID", l[20:]) for l in self.raw_log.splitlines()]

    def line(self, addr):
        """The delivery line (=>, **, ==) for addr, without the message id."""
        for l in self.lines:
            if re.match(r"ID (=>|->|\*\*|==) ", l) and (l.split()[2] == addr or f" <{addr}> " in l):
                # (Exim 4.96 writes "T=name: reason" on failures; that
                # separator belongs to the delivery process, not to pipes)
                return FAIL_SEP.sub(r"\1: ", l[3:])
        return None

    def outputs(self):
        return [l[3:] for l in self.lines if " transport output: " in l]

    def file(self, name):
        p = self.d / "o" / name
        return p.read_bytes() if p.exists() else None

    def bounce(self):
        """The text/plain part of the (first) bounce in the mailbox."""
        box = self.file("mbox")
        if box is None:
            return None
        text = box.decode(errors="replace")
        m = re.search(r"\n\nThis message was created automatically.*?(?=\n--\S+\nContent-type: message/delivery-status)",
                      text, re.S)
        return m.group(0).strip("\n") if m else None


def deliver(binary, d, conf, rcpts, sender="s@x.example", message=b"Subject: t\n\nbody\n"):
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    (d / "o").mkdir(exist_ok=True)
    os.chmod(d / "o", 0o1777)
    # the pipes run as nobody; the "transport output" line is written by
    # the transport process in postern (by the delivery process in Exim)
    (d / "mainlog").touch()
    os.chmod(d / "mainlog", 0o666)
    (d / "c.conf").write_text(conf)
    proc = subprocess.run([binary, "-C", str(d / "c.conf"), "-odi", "-f", sender] + rcpts,
                          input=message, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert b"runtime error:" not in proc.stderr and b"AddressSanitizer" not in proc.stderr, proc.stderr
    return Result(d, proc)


@pytest.fixture
def top():
    """A directory the pipes (as nobody) can reach: pytest's own temporary
    directories are private to root."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="postern-pipe-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def script(d, name, body):
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    p = d / name
    p.write_text("#!/bin/sh\n" + body)
    os.chmod(p, 0o755)
    return p


def dump_script(d):
    """D/dump.sh NAME ARGS...: the environment (sorted, without the shell's
    PWD), the arguments, umask, core limit and standard input, to D/o/NAME."""
    return script(d, "dump.sh", f"""f={d}/o/$1; shift
{{ env | LC_ALL=C sort | grep -v '^PWD='; echo "args: $#"; for a in "$@"; do echo "[$a]"; done
  echo "umask: $(umask)"; echo "core: $(ulimit -c)"; echo "cwd: $(pwd)"; echo "--- stdin"; cat; }} > $f
""")


# ---- exit status, signals, exec failure --------------------------------------------------------

STATUS = [
    ("exit3", "  command = /bin/sh -c 'exit 3'\n"),
    ("exit75", "  command = /bin/sh -c 'exit 75'\n"),
    ("te3", "  command = /bin/sh -c 'exit 3'\n  temp_errors = 3 : 4\n"),
    ("testar", "  command = /bin/sh -c 'exit 9'\n  temp_errors = *\n"),
    ("ign", "  command = /bin/sh -c 'exit 5'\n  ignore_status\n"),
    ("sig", "  command = /bin/sh -c 'kill -KILL \\$\\$'\n"),
    ("ignsig", "  command = /bin/sh -c 'kill -KILL \\$\\$'\n  ignore_status\n"),
    ("fsig", "  command = /bin/sh -c 'kill -KILL \\$\\$'\n  freeze_signal\n"),
    ("sig130", "  command = /bin/sh -c 'exit 130'\n"),
    ("noexec", "  command = /nonexistent/prog arg\n"),
    ("ignx", "  command = /nonexistent/prog arg\n  ignore_status\n"),
    ("fef", "  command = /nonexistent/prog arg\n  freeze_exec_fail\n"),
    ("fefign", "  command = /nonexistent/prog arg\n  freeze_exec_fail\n  ignore_status\n"),
    ("spaced", "  command = '/no such/prog' x\n"),
]


def test_exit_status_signals_and_exec_failure(postern_bin, top):
    r = deliver(postern_bin, top, config(top, STATUS), [f"{n}@x.example" for n, _ in STATUS])
    want = {
        "exit3": "** exit3@x.example R=r T=exit3: Child process of exit3 transport returned 3 from command: /bin/sh",
        "exit75": "== exit75@x.example R=r T=exit75 defer (0): Child process of exit75 transport returned 75 "
                  "(could mean temporary error) from command: /bin/sh",
        "te3": "== te3@x.example R=r T=te3 defer (0): Child process of te3 transport returned 3 from command: /bin/sh",
        "testar": "== testar@x.example R=r T=testar defer (0): Child process of testar transport returned 9 "
                  "from command: /bin/sh",
        "ign": "=> ign <ign@x.example> R=r T=ign",
        "sig": "** sig@x.example R=r T=sig: Child process of sig transport (running command "
               "\"/bin/sh -c 'kill -KILL \\$\\$'\") was terminated by signal 9 (Killed)",
        "ignsig": "=> ignsig <ignsig@x.example> R=r T=ignsig",
        "fsig": "== fsig@x.example R=r T=fsig defer (0): Child process of fsig transport (running command "
                "\"/bin/sh -c 'kill -KILL \\$\\$'\") was terminated by signal 9 (Killed)",
        "sig130": "** sig130@x.example R=r T=sig130: Child process of sig130 transport returned 130 (could mean "
                  "shell command ended by signal 2 (Interrupt)) from command: /bin/sh",
        "noexec": "** noexec@x.example R=r T=noexec: Child process of noexec transport returned 127 (could mean "
                  "unable to exec or command does not exist) from command: /nonexistent/prog",
        "ignx": "=> ignx <ignx@x.example> R=r T=ignx",
        "fef": "== fef@x.example R=r T=fef defer (0): pipe process failed to exec \"/nonexistent/prog arg\"",
        "fefign": "== fefign@x.example R=r T=fefign defer (0): pipe process failed to exec \"/nonexistent/prog arg\"",
        "spaced": "** spaced@x.example R=r T=spaced: Child process of spaced transport returned 127 (could mean "
                  "unable to exec or command does not exist) from command: \"/no such/prog\"",
    }
    for name, line in want.items():
        assert r.line(f"{name}@x.example") == line, name
    # freeze_exec_fail and freeze_signal freeze the message, as Exim
    assert re.search(r"^\S+ \S+ \S+ Frozen$", r.raw_log, re.M), r.raw_log
    # the bounce says only "local delivery failed" for the pipes that ran
    b = r.bounce()
    assert "  exit3@x.example\n    local delivery failed" in b
    assert "Child process" not in b


# ---- timeouts and writing ---------------------------------------------------------------------

def test_timeouts_and_writing(postern_bin, top):
    tps = [
        ("to", "  command = /bin/sh -c 'cat >/dev/null; sleep 5'\n  timeout = 1s\n"),
        ("tod", "  command = /bin/sh -c 'cat >/dev/null; sleep 5'\n  timeout = 1s\n  timeout_defer\n"),
        # does not read its input: writing a large message times out first
        ("wto", "  command = /bin/sleep 5\n  timeout = 1s\n"),
        # exits without reading: EPIPE is not an error
        ("epipe", "  command = /bin/true\n"),
        ("notimeout", "  command = /bin/sh -c 'cat >/dev/null'\n  timeout = 0s\n"),
    ]
    big = b"Subject: big\n\n" + b"x" * 70 + b"\n" * 1 + (b"y" * 70 + b"\n") * 20000
    r = deliver(postern_bin, top, config(top, tps), [f"{n}@x.example" for n, _ in tps], message=big)
    assert r.line("to@x.example") == "** to@x.example R=r T=to: pipe delivery process timed out"
    assert r.line("tod@x.example") == "== tod@x.example R=r T=tod defer (0): pipe delivery process timed out"
    assert r.line("wto@x.example") == ("** wto@x.example R=r T=wto: pipe delivery process timed out "
                                       "(preceded by timeout while writing to pipe)")
    assert r.line("epipe@x.example") == "=> epipe <epipe@x.example> R=r T=epipe"
    assert r.line("notimeout@x.example") == "=> notimeout <notimeout@x.example> R=r T=notimeout"


# ---- which command runs ------------------------------------------------------------------------

def test_command_checks_and_path(postern_bin, top):
    many = " ".join(f"a{i}" for i in range(70))
    tps = [
        ("ac1", "  command = /bin/true x\n  allow_commands = /bin/echo : true\n"),
        ("ac2", "  command = true x\n  allow_commands = /bin/echo : true\n  path = /nonexistent : /usr/bin\n"),
        ("ac3", "  command = /bin/true\n  allow_commands = $nosuchvar\n"),
        ("rp1", "  command = /bin/true x\n  restrict_to_path\n"),
        ("rp2", "  command = nosuchcmd x\n  restrict_to_path\n"),
        ("rp3", "  command = /bin/true x\n  restrict_to_path\n  allow_commands = /bin/true\n"),
        ("rp4", "  command = true x\n  restrict_to_path\n  path = /usr/bin\n"),
        ("rel", "  command = true\n"),
        ("taint", "  command = /bin/echo $local_part\n"),
        ("badexp", "  command = /bin/echo $nosuchvar\n"),
        ("toomany", f"  command = /bin/echo {many}\n"),
        ("nocmd", ""),
    ]
    r = deliver(postern_bin, top, config(top, tps), [f"{n}@x.example" for n, _ in tps])
    want = {
        "ac1": "** ac1@x.example R=r T=ac1: \"/bin/true\" command not permitted by ac1 transport",
        "ac2": "=> ac2 <ac2@x.example> R=r T=ac2",
        "rp1": "** rp1@x.example R=r T=rp1: \"/\" found in \"/bin/true x\" (command for rp1 transport) - failed "
               "for security reasons",
        "rp2": "** rp2@x.example R=r T=rp2: \"nosuchcmd\" command not found for rp2 transport",
        "rp3": "=> rp3 <rp3@x.example> R=r T=rp3",
        "rp4": "=> rp4 <rp4@x.example> R=r T=rp4",
        "rel": "=> rel <rel@x.example> R=r T=rel",
        "taint": "** taint@x.example R=r T=taint: Tainted arg 1 for taint transport command: 'taint'",
        "toomany": f"** toomany@x.example R=r T=toomany: Too many arguments in command \"/bin/echo {many}\" in "
                   "toomany transport",
        "nocmd": "== nocmd@x.example R=r T=nocmd defer (0): no command specified for nocmd transport",
    }
    for name, line in want.items():
        assert r.line(f"{name}@x.example") == line, name
    assert r.line("ac3@x.example").startswith(
        "== ac3@x.example R=r T=ac3 defer (0): failed to expand string \"$nosuchvar\" for ac3 transport: ")
    assert r.line("badexp@x.example").startswith(
        "== badexp@x.example R=r T=badexp defer (0): Expansion of \"$nosuchvar\" from command "
        "\"/bin/echo $nosuchvar\" in badexp transport failed: ")
    # set-up failures are not the command's: the bounce gives no reason
    assert re.search(r"\n  rp1@x.example\n(?!    local delivery failed)", r.bounce())


def test_use_shell(postern_bin, top):
    tps = [
        ("sh1", "  command = echo \"x y\" | tr x z > D/o/sh1.out; exit 0\n  use_shell\n"),
        ("sh2", "  command = exit 4\n  use_shell\n"),
        # $pipe_addresses is put in before the expansion: addresses are
        # outside data, and outside data is never expanded (Exim: the same)
        ("sh3", "  command = echo $pipe_addresses\n  use_shell\n"),
        # a tainted result for the shell: Exim runs it; postern refuses
        # (DESIGN.md section 8: no outside data in command lines)
        ("sh4", "  command = echo $local_part\n  use_shell\n"),
    ]
    r = deliver(postern_bin, top, config(top, tps), [f"{n}@x.example" for n, _ in tps])
    assert r.line("sh1@x.example") == "=> sh1 <sh1@x.example> R=r T=sh1"
    assert r.file("sh1.out") == b"z y\n"
    assert r.line("sh2@x.example") == "** sh2@x.example R=r T=sh2: Child process of sh2 transport returned 4 from command: /bin/sh"
    assert r.line("sh3@x.example") == ("== sh3@x.example R=r T=sh3 defer (0): Expansion of command \"echo sh3@x.example\" "
                                       "in sh3 transport failed: attempt to expand tainted string 'echo sh3@x.example'")
    assert r.line("sh4@x.example") == "** sh4@x.example R=r T=sh4: Tainted arg 2 for sh4 transport command: 'echo sh4'"


def test_option_combinations_exim_refuses(postern_bin, top):
    """Exim refuses these configurations when it starts; postern defers the
    delivery with Exim's words."""
    tps = [
        ("c1", "  command = /bin/true\n  return_output\n  return_fail_output\n"),
        ("c2", "  command = /bin/true\n  log_output\n  log_fail_output\n"),
        ("c3", "  command = /bin/true\n  use_shell\n  restrict_to_path\n"),
        ("c4", "  command = /bin/true\n  use_shell\n  allow_commands = /bin/true\n"),
        ("c5", "  command = /bin/true\n  temp_errors = 1:x\n"),
        ("c6", "  command = /bin/true\n  pipe_as_creator\n  user = nobody\n"),
        ("c7", "  command = /bin/true\n  user = 65534\n"),
    ]
    r = deliver(postern_bin, top, config(top, tps), [f"{n}@x.example" for n, _ in tps])
    want = {
        "c1": "both return_output and return_fail_output set for c1 transport",
        "c2": "both log_output and log_fail_output set for the c2 transport",
        "c3": "both restrict_to_path and use_shell set for c3 transport",
        "c4": "both allow_commands and use_shell set for c4 transport",
        "c5": "temp_errors must be a list of numbers or an asterisk for the c5 transport",
        "c6": "both pipe_as_creator and an explicit uid/gid are set for the c6 transport",
        "c7": "user set without group for the c7 transport",
    }
    for name, text in want.items():
        assert r.line(f"{name}@x.example") == f"== {name}@x.example R=r T={name} defer (0): {text}"
    if EXIM:
        for name, opts in tps:
            (top / "one.conf").write_text(f"primary_hostname = t.example\nbegin transports\n{name}:\n"
                                          f"  driver = pipe\n{opts}")
            e = subprocess.run([EXIM, "-C", str(top / "one.conf"), "-bV"], capture_output=True, text=True, timeout=30)
            assert e.returncode != 0 and want[name] in e.stderr + e.stdout, name


# ---- the environment and the process ------------------------------------------------------------

def env_of(dump):
    text = dump.decode()
    head = text.split("--- stdin\n")[0]
    return dict(l.split("=", 1) for l in head.splitlines() if re.match(r"^[A-Z_]+=", l)), head


def test_environment(postern_bin, top):
    dump_script(top)
    routers = ("pre:\n  driver = accept\n  local_part_prefix = pre-\n  local_part_suffix = -suf\n"
               "  local_parts = single\n  transport = one\n"
               "al:\n  driver = redirect\n  local_part_prefix = pre-\n  local_parts = alias\n"
               "  data = \"|D/dump.sh redirected x\"\n  pipe_transport = ap\n" + USER +
               "hr:\n  driver = manualroute\n  local_parts = hosty\n  route_list = * 192.0.2.1\n  transport = one\n"
               "bat:\n  driver = accept\n  local_parts = b1 : b2\n  transport = batch\n")
    tps = [
        ("one", "  command = D/dump.sh $local_part_data\n"
                "  environment = FOO=bar : DOM=${domain} : EMPTY=\n  home_directory = /tmp\n"),
        ("batch", "  command = D/dump.sh batch $pipe_addresses\n  batch_max = 5\n"),
        ("ap", ""),
        ("many", "  command = /bin/true\n  environment = " + " : ".join(f"V{i}=x" for i in range(40)) + "\n"),
        ("badenv", "  command = /bin/true\n  environment = $nosuchvar\n"),
    ]
    conf = config(top, tps, main="timezone = Europe/London\nqualify_domain = q.example", routers=routers)
    r = deliver(postern_bin, top, conf, ["pre-single-suf@x.example", "pre-alias@x.example", "hosty@x.example",
                                         "b1@x.example", "b2@y.example", "many@x.example", "badenv@x.example"])
    env, _ = env_of(r.file("single"))
    mid = env["MESSAGE_ID"]
    assert ID.fullmatch(mid)
    assert env == {"LOCAL_PART": "single", "LOGNAME": "single", "USER": "single", "LOCAL_PART_PREFIX": "pre-",
                   "LOCAL_PART_SUFFIX": "-suf", "DOMAIN": "x.example", "HOME": "/tmp", "MESSAGE_ID": mid,
                   "PATH": "/bin:/usr/bin", "RECIPIENT": "pre-single-suf@x.example", "QUALIFY_DOMAIN": "q.example",
                   "SENDER": "s@x.example", "SHELL": "/bin/sh", "TZ": "Europe/London", "FOO": "bar",
                   "DOM": "x.example", "EMPTY": ""}
    # a redirected pipe: the redirected address's local part and affixes
    env, head = env_of(r.file("redirected"))
    assert env["LOCAL_PART"] == "alias" and env["LOCAL_PART_PREFIX"] == "pre-" and env["LOCAL_PART_SUFFIX"] == ""
    assert env["RECIPIENT"] == "pre-alias@x.example" and env["HOME"] == "" and "FOO" not in env
    assert "args: 1\n[x]\n" in head
    # hosts from the router: HOST
    env, _ = env_of(r.file("hosty"))
    assert env["HOST"] == "192.0.2.1" and env["LOCAL_PART"] == "hosty"
    # a batch: no local part (Exim writes NULL), the domain only when shared
    env, head = env_of(r.file("batch"))
    assert (env["LOCAL_PART"], env["USER"], env["LOGNAME"]) == ("NULL", "NULL", "NULL")
    assert (env["DOMAIN"], env["RECIPIENT"], env["LOCAL_PART_PREFIX"]) == ("NULL", "@", "")
    assert "args: 2\n[b1@x.example]\n[b2@y.example]\n" in head
    assert r.line("many@x.example") == ("== many@x.example R=r T=many defer (7): Argument list too long: "
                                        "too many environment settings for many transport")
    assert r.line("badenv@x.example").startswith("== badenv@x.example R=r T=badenv defer (0): failed to expand "
                                                 "string \"$nosuchvar\" for badenv transport: ")


def test_umask_and_core_dumps(postern_bin, top):
    dump_script(top)
    tps = [
        ("um", "  command = D/dump.sh um\n  umask = 077\n"),
        ("plain", "  command = D/dump.sh plain\n"),
        ("core", "  command = D/dump.sh core\n  permit_coredump\n  use_classresources\n"),
    ]
    r = deliver(postern_bin, top, config(top, tps), ["um@x.example", "plain@x.example", "core@x.example"])
    assert b"umask: 0077\n" in r.file("um") and b"umask: 0022\n" in r.file("plain")
    assert b"core: 0\n" in r.file("plain")                      # core dumps off during delivery
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    want = "unlimited" if hard == resource.RLIM_INFINITY else str(hard // 1024)
    assert f"core: {want}\n".encode() in r.file("core")
    assert b"cwd: /\n" in r.file("plain")


# ---- what the command reads ---------------------------------------------------------------------

def framing(data):
    """The message as the command got it, with the header block and dates
    replaced by placeholders."""
    text = data.decode()
    text = BSD_DATE.sub("DATE", text)
    return re.sub(r"Received: .*?\r?\n\r?\n", "HEADERS\n\n", text, count=1, flags=re.S)


def test_message_framing(postern_bin, top):
    cat = "  command = /bin/sh -c 'cat > D/o/$local_part_data'\n"
    tps = [
        ("dflt", cat),
        ("bare", cat + "  message_prefix =\n  message_suffix =\n"),
        ("crlf", cat + "  use_crlf\n  message_prefix = P\\n\n  message_suffix = S\\r\\n\n"),
        ("esc", cat + "  message_prefix =\n  message_suffix =\n  check_string = Sub\n  escape_string = >>\n"),
        ("only1", cat + "  message_prefix =\n  message_suffix =\n  check_string = Sub\n"),
        ("bodyonly", cat + "  message_prefix =\n  message_suffix =\n  body_only\n  check_string = Sub\n"
                           "  escape_string = ~\n"),
        ("hdronly", cat + "  message_prefix =\n  message_suffix =\n  headers_only\n"),
        ("bs", "  command = /bin/sh -c 'cat > D/o/bs'\n  use_bsmtp\n  batch_max = 5\n"),
        ("bscrlf", cat + "  use_bsmtp\n  use_crlf\n  message_prefix = HELO me\\r\\n\n"
                         "  check_string = Sub\n  escape_string = X\n"),
    ]
    routers = "bsr:\n  driver = accept\n  local_parts = bs1 : bs2\n  transport = bs\n"
    msg = b"Subject: t\n\nSubway\nFrom me\n.dot\n..two\nlast"
    r = deliver(postern_bin, top, config(top, tps, routers=routers),
                [f"{n}@x.example" for n, _ in tps if n != "bs"] + ["bs1@x.example", "bs2@y.example"], message=msg)
    body = "Subway\nFrom me\n.dot\n..two\nlast\n"
    assert framing(r.file("dflt")) == "From s@x.example DATE\nHEADERS\n\n" + body + "\n"
    assert framing(r.file("bare")) == "HEADERS\n\n" + body
    # use_crlf: the message's lines end in CRLF; prefix and suffix as written
    assert framing(r.file("crlf")) == "P\nHEADERS\n\n" + body.replace("\n", "\r\n") + "S\r\n"
    # check_string and escape_string: body lines only, from the first
    esc = r.file("esc").decode()
    assert "\nSubject: t\n" in esc and esc.endswith("\n\n>>way\nFrom me\n.dot\n..two\nlast\n")
    assert r.file("only1").decode().endswith("\n\nSubway\nFrom me\n.dot\n..two\nlast\n")   # both needed
    assert r.file("bodyonly") == b"~way\nFrom me\n.dot\n..two\nlast\n"
    hdr = r.file("hdronly").decode()
    assert hdr.startswith("Received: ") and "\nSubject: t\n" in hdr and hdr.endswith("\n\n") and "Subway" not in hdr
    # BSMTP: envelope commands, dot-stuffing (check_string ignored), final dot; no default prefix/suffix
    assert framing(r.file("bs")) == ("MAIL FROM:<s@x.example>\nRCPT TO:<bs1@x.example>\nRCPT TO:<bs2@y.example>\n"
                                     "DATA\nHEADERS\n\nSubway\nFrom me\n..dot\n...two\nlast\n.\n")
    assert framing(r.file("bscrlf")) == ("HELO me\r\nMAIL FROM:<s@x.example>\r\nRCPT TO:<bscrlf@x.example>\r\n"
                                         "DATA\r\nHEADERS\n\nSubway\r\nFrom me\r\n..dot\r\n...two\r\n"
                                         "last\r\n.\r\n")
    assert r.line("bs1@x.example") == "=> bs1 <bs1@x.example> R=bsr T=bs"
    assert r.line("bs2@y.example") == "-> bs2 <bs2@y.example> R=bsr T=bs"


# ---- what the command writes ---------------------------------------------------------------------

OUTPUT = [
    ("lo", "  command = /bin/sh -c 'printf \"  first\\\\t \\\\001h\\\\303\\\\251  \\\\nsecond\\\\n\"'\n  log_output\n"),
    ("lfo_ok", "  command = /bin/sh -c 'echo fine'\n  log_fail_output\n"),
    ("lfo", "  command = /bin/sh -c 'echo broken; exit 1'\n  log_fail_output\n  return_fail_output\n"),
    ("ldo", "  command = /bin/sh -c 'echo later; exit 75'\n  log_defer_output\n  return_fail_output\n"),
    ("ldo_fail", "  command = /bin/sh -c 'echo nolog; exit 1'\n  log_defer_output\n"),
    ("ro", "  command = /bin/sh -c 'echo said something'\n  return_output\n"),
    ("ro_quiet", "  command = /bin/true\n  return_output\n"),
    ("ro75", "  command = /bin/sh -c 'echo temp; exit 75'\n  return_output\n"),
    ("rfo_ok", "  command = /bin/sh -c 'echo fine'\n  return_fail_output\n"),
    ("mo", "  command = /bin/sh -c 'yes 0123456789abcdef | head -c 200000'\n  max_output = 1K\n"
           "  return_output\n"),
    ("mo_quiet", "  command = /bin/sh -c 'yes 0123456789abcdef | head -c 200000'\n  max_output = 1K\n"),
]


def test_output_options(postern_bin, top):
    r = deliver(postern_bin, top, config(top, OUTPUT), [f"{n}@x.example" for n, _ in OUTPUT])
    assert sorted(r.outputs()) == sorted([
        "<lo@x.example>: lo transport output:   first\t \\001h\\303\\251",
        "<lfo@x.example>: lfo transport output: broken",
        "<ldo@x.example>: ldo transport output: later",
    ])
    # the output line comes before the delivery line
    assert r.lines.index(next(l for l in r.lines if "<lfo@" in l)) < r.lines.index(next(l for l in r.lines if "** lfo@" in l))
    assert r.line("lo@x.example") == "=> lo <lo@x.example> R=r T=lo"
    assert r.line("lfo_ok@x.example") == "=> lfo_ok <lfo_ok@x.example> R=r T=lfo_ok"
    assert r.line("ro@x.example") == "** ro@x.example R=r T=ro: return message generated"
    assert r.line("ro_quiet@x.example") == "=> ro_quiet <ro_quiet@x.example> R=r T=ro_quiet"
    assert r.line("ro75@x.example") == ("** ro75@x.example R=r T=ro75: Child process of ro75 transport returned 75 "
                                        "(could mean temporary error) from command: /bin/sh")
    assert r.line("ldo@x.example").startswith("== ldo@x.example")
    assert r.line("rfo_ok@x.example") == "=> rfo_ok <rfo_ok@x.example> R=r T=rfo_ok"
    killed = "was terminated by signal 9 (Killed)"
    assert r.line("mo@x.example").endswith(killed) and r.line("mo_quiet@x.example").endswith(killed)
    b = r.bounce()
    assert re.search(r"\n------ ro@x.example ------\n\nsaid something(\n|$)", b)
    assert re.search(r"\n------ lfo@x.example ------\n\nbroken(\n|$)", b)
    assert re.search(r"\n------ ro75@x.example ------\n\ntemp(\n|$)", b)
    assert "later" not in b and "fine" not in b and "nolog" not in b
    assert re.search(r"\n------ mo@x\.example ------\n\n(0123456789abcdef\n)+[0-9a-f]*\n\n"
                     r"\*\*\* Too much output - remainder discarded \*\*\*\n", b)
    # "return message generated" is not for the sender's eyes: no reason under the address
    assert re.search(r"\n  ro@x.example\n(?!    )", b)


def test_output_not_returned_to_null_sender(postern_bin, top):
    r = deliver(postern_bin, top, config(top, OUTPUT), ["ro@x.example", "ro75@x.example"], sender="<>")
    assert r.line("ro@x.example") == "=> ro <ro@x.example> R=r T=ro"
    assert r.line("ro75@x.example").startswith("== ro75@x.example R=r T=ro75 defer (0): Child process")


# ---- redirected pipes and force_command ------------------------------------------------------------

def test_redirected_pipes_and_force_command(postern_bin, top):
    script(top, "args.sh", f'f={top}/o/$1; shift; {{ echo "$#"; for a in "$@"; do echo "[$a]"; done; }} > $f\n')
    routers = "".join(f"{lp}:\n  driver = redirect\n  local_parts = {lp}\n"
                      f"  data = \"|D/args.sh $local_part_data 'a b' c\"\n  pipe_transport = {tp}\n" + USER
                      for lp, tp in (("plain", "ap"), ("forced", "fc"), ("restricted", "rp")))
    tps = [
        ("ap", "  umask = 027\n"),
        ("fc", "  force_command\n  command = D/args.sh fc first $address_pipe last\n"),
        ("rp", "  restrict_to_path\n"),
    ]
    r = deliver(postern_bin, top, config(top, tps, routers=routers),
                ["plain@x.example", "forced@x.example", "restricted@x.example"])
    cmd = f"{top}/args.sh"
    # the redirected command, split as Exim splits, not expanded
    assert r.line("plain@x.example") == f"=> |{cmd} plain 'a b' c <plain@x.example> R=plain T=ap"
    assert r.file("plain") == b"2\n[a b]\n[c]\n"
    # force_command: the transport's command, with $address_pipe standing
    # for the pipe's words (the documented "$@"-like behaviour; Exim 4.96
    # misplaces words that were in single quotes)
    assert r.line("forced@x.example") == f"=> |{cmd} forced 'a b' c <forced@x.example> R=forced T=fc"
    assert r.file("forced") is None
    assert r.file("fc").decode().splitlines() == ["6", "[first]", f"[{cmd}]", "[forced]", "[a b]", "[c]", "[last]"]
    # restrict_to_path applies to redirected pipes (what it is for)
    assert r.line("restricted@x.example") == (f"** |{cmd} restricted 'a b' c <restricted@x.example> R=restricted T=rp: "
                                              f"\"/\" found in \"{cmd} restricted 'a b' c\" (command for rp transport) "
                                              "- failed for security reasons")


# ---- side by side with Exim -------------------------------------------------------------------------

DIFF = STATUS + [
    ("to", "  command = /bin/sh -c 'cat >/dev/null; sleep 5'\n  timeout = 1s\n"),
    ("tod", "  command = /bin/sh -c 'cat >/dev/null; sleep 5'\n  timeout = 1s\n  timeout_defer\n"),
    ("ac1", "  command = /bin/true x\n  allow_commands = /bin/echo : true\n"),
    ("ac2", "  command = true x\n  allow_commands = /bin/echo : true\n  path = /usr/bin\n"),
    ("rp1", "  command = /bin/true x\n  restrict_to_path\n"),
    ("rp2", "  command = nosuchcmd x\n  restrict_to_path\n"),
    ("shell", "  command = exit 4\n  use_shell\n"),
    ("bs", "  command = /bin/sh -c 'cat > D/o/bs'\n  use_bsmtp\n  use_crlf\n"),
    ("esc", "  command = /bin/sh -c 'cat > D/o/esc'\n  check_string = Sub\n  escape_string = >>\n  use_crlf\n"
            "  message_suffix = END\\n\n"),
    # (not permit_coredump: Exim raises the hard limit as root, which
    # fails where CAP_SYS_RESOURCE is missing, as in some containers)
    ("env", "  command = D/dump.sh env $local_part_data\n  environment = A=1 : B=${domain}\n  umask = 027\n"),
    ("many", "  command = /bin/true\n  environment = " + " : ".join(f"V{i}=x" for i in range(40)) + "\n"),
] + [n_o for n_o in OUTPUT if n_o[0] != "lo"]


@pytest.mark.skipif(EXIM is None, reason="exim4 not installed")
def test_pipe_options_match_exim(postern_bin, top):
    dump_script(top / "postern")
    dump_script(top / "exim")
    rcpts = [f"{n}@x.example" for n, _ in DIFF]
    msg = b"Subject: t\n\nSubway\n.dot\nlast\n"
    got = {}
    for name, binary in (("postern", postern_bin), ("exim", EXIM)):
        d = top / name
        r = deliver(binary, d, config(d, DIFF, main="timezone = UTC"), rcpts, message=msg)
        lines = {n: r.line(f"{n}@x.example") for n, _ in DIFF}
        files = {}
        for f in ("bs", "esc", "env"):
            data = r.file(f)
            files[f] = data and ID.sub("ID", framing(data.replace(str(d).encode(), b"D")))
        got[name] = {"lines": lines, "outputs": sorted(r.outputs()), "bounce": r.bounce(), "files": files}
    assert got["postern"]["lines"] == got["exim"]["lines"]
    assert got["postern"]["outputs"] == got["exim"]["outputs"]
    assert got["postern"]["files"] == got["exim"]["files"]
    # the bounce's text part: the failed addresses, their reasons and the output
    # (max_output keeps what was read before the kill: that varies, so compare
    # up to the first line of it)
    def cut(b):
        return re.sub(r"(------ mo@x\.example ------\n\n).*?(\n\n\*\*\* Too much)", r"\1...\2", b, flags=re.S)
    assert cut(got["postern"]["bounce"]) == cut(got["exim"]["bounce"])

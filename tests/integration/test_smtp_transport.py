"""The smtp transport's options, run through postern and, where the
behaviour can be compared, through Exim 4.96 with the same configuration
against the same scriptable SMTP/LMTP sinks on loopback addresses
(127.0.0.x: never this machine's own address).  Compared: what the sink
saw (commands, recipients, data) and the delivery log lines."""
import os
import pathlib
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

EXIM = shutil.which("exim4") or ("/usr/sbin/exim4" if os.path.exists("/usr/sbin/exim4") else None)
BOTH = ["postern", "exim"]


class Sink:
    """A scriptable SMTP (or LMTP) server on one loopback address.

    caps: EHLO keywords after the greeting line; replies: {verb: reply}
    overrides (verb is MAIL, RCPT, DATA, DOT, BDAT, EHLO, HELO, LHLO, or
    "RCPT <addr>" for one recipient, "DOT <addr>" for one LMTP recipient's
    reply after the data); hang: verbs after which the sink stops
    answering (the connection stays open); read_data: False stops reading
    during DATA (the client's writes block); gates: {"GREETING" or "DOT":
    threading.Event} holds that reply until the event is set.  It records
    every command line, the messages (with their recipients and bytes),
    the number of connections and the most it had open at once."""

    def __init__(self, host="127.0.0.2", port=0, caps=("PIPELINING", "8BITMIME"), replies=None,
                 lmtp=False, hang=(), read_data=True, hold=0.0, rcvbuf=None, gates=None):
        self.host = host
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.srv.bind((host, port))
        self.port = self.srv.getsockname()[1]
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.caps = list(caps)
        self.replies = dict(replies or {})
        self.lmtp = lmtp
        self.hang = set(hang)
        self.read_data = read_data
        self.hold = hold
        self.gates = dict(gates or {})
        self.connections = 0
        self.open = 0
        self.max_open = 0
        self.lock = threading.Lock()
        self.messages = []          # (connection number, [rcpts], data bytes)
        self.lines = []             # (connection number, command line)
        self.stop = False
        self.conns = []
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def verbs(self, n=None):
        return [l.split(":")[0].split(" ")[0].upper() for c, l in self.lines if n is None or c == n]

    def loop(self):
        while not self.stop:
            try:
                conn, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.open += 1
                self.max_open = max(self.max_open, self.open)
                n = self.connections
            self.conns.append(conn)
            threading.Thread(target=self.serve, args=(conn, n), daemon=True).start()

    def reply(self, key, default):
        return self.replies.get(key, default)

    def serve(self, conn, n):
        conn.settimeout(60)
        f = conn.makefile("rb")

        def say(text):
            conn.sendall(text.replace("\n", "\r\n").encode() + b"\r\n")

        def wait_forever():
            while not self.stop:
                time.sleep(0.1)

        try:
            if "GREETING" in self.gates:
                self.gates["GREETING"].wait(60)
            say(self.reply("GREETING", "220 sink.example ESMTP"))
            rcpts, good = [], []
            while True:
                line = f.readline()
                if not line:
                    break
                cmd = line.decode(errors="replace").rstrip("\r\n")
                self.lines.append((n, cmd))
                verb = cmd.split(" ")[0].split(":")[0].upper()
                if verb in ("EHLO", "LHLO"):
                    if self.lmtp != (verb == "LHLO"):
                        say("500 wrong greeting command")
                        continue
                    r = self.reply(verb, None)
                    if r:
                        say(r)
                    else:
                        say("\n".join([f"250-sink.example"] + [f"250-{c}" for c in self.caps[:-1]] +
                                      [f"250 {c}" for c in self.caps[-1:]]) if self.caps else "250 sink.example")
                elif verb == "HELO":
                    say(self.reply("HELO", "250 sink.example"))
                elif verb == "MAIL":
                    rcpts, good = [], []
                    say(self.reply("MAIL", "250 OK"))
                elif verb == "RCPT":
                    addr = re.search(r"<(.*?)>", cmd).group(1)
                    rcpts.append(addr)
                    r = self.reply("RCPT " + addr, self.reply("RCPT", "250 Accepted"))
                    if r.startswith("2"):
                        good.append(addr)
                    say(r)
                elif verb == "DATA":
                    if "DATA" in self.hang:
                        wait_forever()
                        break
                    r = self.reply("DATA", "354 go ahead" if good else "554 5.5.1 No valid recipients")
                    say(r)
                    if not r.startswith("3"):
                        continue
                    if not self.read_data:
                        self.messages.append((n, list(good), b""))
                        wait_forever()
                        break
                    data = b""
                    while True:
                        l = f.readline()
                        if l in (b".\r\n", b""):
                            break
                        data += l
                    self.finish(n, good, data, say, wait_forever)
                    if "DOT" in self.hang:
                        break
                elif verb == "BDAT":
                    parts = cmd.split()
                    size = int(parts[1])
                    chunk = f.read(size)
                    if not hasattr(self, "_bdat"):
                        self._bdat = {}
                    self._bdat[n] = self._bdat.get(n, b"") + chunk
                    if not good:
                        self._bdat.pop(n, None)
                        say("554 5.5.1 No valid recipients")
                        continue
                    if len(parts) > 2 and parts[2].upper() == "LAST":
                        data = self._bdat.pop(n)
                        self.finish(n, good, data, say, wait_forever, verb="BDAT")
                        if "DOT" in self.hang:
                            break
                    else:
                        say(self.reply("BDAT", f"250 {size} bytes"))
                elif verb == "RSET":
                    rcpts, good = [], []
                    say("250 Reset OK")
                elif verb == "QUIT":
                    say("221 bye")
                    break
                elif verb == "NOOP":
                    say("250 OK")
                else:
                    say("500 unknown")
        except OSError:
            pass
        finally:
            if self.hold:
                time.sleep(self.hold)
            with self.lock:
                self.open -= 1
            try:
                conn.close()
            except OSError:
                pass

    def finish(self, n, good, data, say, wait_forever, verb="DATA"):
        self.messages.append((n, list(good), data))
        if "DOT" in self.gates:
            self.gates["DOT"].wait(60)
        if "DOT" in self.hang:
            wait_forever()
            return
        if self.lmtp:
            for a in good:
                say(self.reply("DOT " + a, self.reply("DOT", f"250 OK {a}")))
        else:
            say(self.reply("DOT", f"250 OK id={len(self.messages)}"))

    def close(self):
        self.stop = True
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.srv.close()
        self.t.join(timeout=5)


CONFIG = """\
primary_hostname = test.example
spool_directory = {d}/spool
log_file_path = {d}/%slog
exim_user = root
exim_group = root
keep_environment =
{main}
begin routers
{routers}
begin transports
t:
  driver = smtp
  user = nobody
{transport}
begin retry
* * F,1h,10m
"""

MANUAL = """\
r:
  driver = manualroute
  route_list = * {hosts} byname
  self = send
  transport = t
"""

VIA_TRANSPORT = """\
r:
  driver = accept
  transport = t
"""


def tmpdir(name):
    top = pathlib.Path(tempfile.mkdtemp(prefix=f"postern-smtp-{name}-"))
    os.chmod(top, 0o777)     # the transport runs as nobody
    return top


def exe(binary, postern_bin):
    if binary == "postern":
        return postern_bin
    if EXIM is None:
        pytest.skip("exim4 not installed")
    return EXIM


def deliver(binary, d, routers, transport, rcpts, body="Subject: t\n\nhello\n", main="",
            sender="s@a.example", extra_args=(), timeout=120):
    """Write the configuration under d, submit one message with -odi and
    return the delivery log lines without timestamps and message ids."""
    d.mkdir(exist_ok=True)
    os.chmod(d, 0o777)
    # Exim runs the smtp transport as nobody (never as root): its hints
    # databases must be writable for it
    (d / "spool" / "db").mkdir(parents=True, exist_ok=True)
    os.chmod(d / "spool", 0o755)
    os.chmod(d / "spool" / "db", 0o1777)
    for lock in ("retry", "wait-t", "misc"):
        (d / "spool" / "db" / f"{lock}.lockfile").touch()
        os.chmod(d / "spool" / "db" / f"{lock}.lockfile", 0o666)
    conf = d / "c.conf"
    conf.write_text(CONFIG.format(d=d, main=main, routers=routers, transport=transport))
    r = subprocess.run([binary, "-C", str(conf), "-odi", "-f", sender, *extra_args, *rcpts],
                       input=body.encode() if isinstance(body, str) else body,
                       capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return loglines(d)


def loglines(d):
    p = d / "mainlog"
    if not p.exists():
        return []
    out = []
    for l in p.read_text().splitlines():
        l = re.sub(r"^\S+ \S+ (\[\d+\] )?", "", l)
        l = re.sub(r"^\w{6}-\w{6}-\w{2}(?:\w{2})? ", "", l)
        if l.startswith("<="):
            continue
        out.append(l)
    return out


def deliveries(lines):
    """The delivery lines (=> -> ** ==) without C=..., DT= and similar."""
    out = []
    for l in lines:
        if re.match(r"(=>|->|\*\*|==) ", l):
            out.append(re.sub(r" (C|DT|K|S)=.*$", "", l) if l[:2] in ("=>", "->") else l)
    return out


def as499(lines):
    """Exim 4.96's failure lines in the form postern writes (4.99's)."""
    from mta import exim_log_as_499
    return [exim_log_as_499(l) for l in lines]


def hostlines(lines):
    return [l for l in lines if l.startswith("H=")]


def both(binary, postern_bin):
    return exe(binary, postern_bin)


@pytest.fixture
def top():
    d = tmpdir("t")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def free_port_on(host):
    s = socket.socket()
    s.bind((host, 0))
    p = s.getsockname()[1]
    s.close()
    return p


# --------------------------------------------------------------------------
# hosts: fallback_hosts, hosts_randomize, hosts_max_try(_hardlimit), local host

@pytest.mark.parametrize("binary", BOTH)
def test_fallback_hosts_of_the_transport(postern_bin, binary, top):
    """The router's host refuses the connection: the deferred addresses go
    to the transport's fallback hosts, in one transaction; the first host's
    failure is a host line of its own, the addresses have no '==' line."""
    sink = Sink("127.0.0.3")
    try:
        lines = deliver(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n  fallback_hosts = 127.0.0.3\n", ["x@b.example", "y@b.example"])
    finally:
        sink.close()
    assert hostlines(lines) == ["H=127.0.0.2 [127.0.0.2] Connection refused"]
    got = sorted(deliveries(lines))
    assert got == ["-> x@b.example R=r T=t H=127.0.0.3 [127.0.0.3]", "=> y@b.example R=r T=t H=127.0.0.3 [127.0.0.3]"] or \
        got == ["-> y@b.example R=r T=t H=127.0.0.3 [127.0.0.3]", "=> x@b.example R=r T=t H=127.0.0.3 [127.0.0.3]"]
    assert [sorted(m[1]) for m in sink.messages] == [["x@b.example", "y@b.example"]]


@pytest.mark.parametrize("binary", BOTH)
def test_router_fallback_hosts_come_before_the_transports(postern_bin, binary, top):
    sink = Sink("127.0.0.3")
    try:
        lines = deliver(both(binary, postern_bin), top / "d",
                        MANUAL.format(hosts="127.0.0.2") + "  fallback_hosts = 127.0.0.3\n",
                        f"  port = {sink.port}\n  fallback_hosts = 127.0.0.4\n", ["x@b.example"])
    finally:
        sink.close()
    assert hostlines(lines) == ["H=127.0.0.2 [127.0.0.2] Connection refused"]
    assert deliveries(lines) == ["=> x@b.example R=r T=t H=127.0.0.3 [127.0.0.3]"]


@pytest.mark.parametrize("binary", BOTH)
def test_fallback_hosts_not_for_refused_addresses_and_failing_too(postern_bin, binary, top):
    """A 5xx to RCPT is final (no fallback); a 4xx goes to the fallback
    host, which is down as well: the address's line has the last error."""
    sink = Sink("127.0.0.2", replies={"RCPT bad@b.example": "550 5.1.1 unknown",
                                      "RCPT later@b.example": "451 4.3.0 later"})
    try:
        lines = deliver(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n  fallback_hosts = 127.0.0.3\n",
                        ["ok@b.example", "bad@b.example", "later@b.example"],
                        sender="<>")
    finally:
        sink.close()
    d = deliveries(as499(lines) if binary == "exim" else lines)
    assert "=> ok@b.example R=r T=t H=127.0.0.2 [127.0.0.2]" in d
    assert ("** bad@b.example R=r T=t H=127.0.0.2 [127.0.0.2] : SMTP error from remote mail server after "
            "RCPT TO:<bad@b.example>: 550 5.1.1 unknown") in d
    # the address still names the host that answered for it (as in Exim)
    assert "== later@b.example R=r T=t defer (111): Connection refused H=127.0.0.2 [127.0.0.2]" in d
    assert "H=127.0.0.3 [127.0.0.3] Connection refused" in hostlines(lines)
    assert [m[1] for m in sink.messages][0] == ["ok@b.example"]


@pytest.mark.parametrize("binary", BOTH)
def test_rcpt_4xx_tries_the_next_host(postern_bin, binary, top):
    """A 4xx to RCPT at a host with more hosts after it: a host line, and
    the address goes to the next host."""
    port = free_port_on("127.0.0.2")
    first = Sink("127.0.0.2", port=port, replies={"RCPT": "451 4.3.0 greylisted"})
    second = Sink("127.0.0.3", port=port)
    try:
        lines = deliver(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2:127.0.0.3"),
                        f"  port = {port}\n", ["x@b.example"])
    finally:
        first.close()
        second.close()
    assert hostlines(lines) == ["H=127.0.0.2 [127.0.0.2]: SMTP error from remote mail server after "
                                "RCPT TO:<x@b.example>: 451 4.3.0 greylisted"]
    assert deliveries(lines) == ["=> x@b.example R=r T=t H=127.0.0.3 [127.0.0.3]"]
    assert [m[1] for m in second.messages] == [["x@b.example"]] and first.messages == []


def order_of_tries(lines):
    return [re.match(r"H=(\S+) ", l).group(1) for l in hostlines(lines)]


@pytest.mark.parametrize("binary", BOTH)
def test_hosts_randomize_with_groups(postern_bin, binary, top):
    """hosts_randomize shuffles each '+' group of the transport's hosts on
    every run, the groups staying in order; without it the order is the
    list's and '+' is ignored."""
    port = free_port_on("127.0.0.5")
    hosts = "127.0.0.2 : 127.0.0.3 : 127.0.0.4 : + : 127.0.0.5"
    b = both(binary, postern_bin)
    orders = set()
    for i in range(8):
        lines = deliver(b, top / f"r{i}", VIA_TRANSPORT,
                        f"  hosts = {hosts}\n  port = {port}\n  hosts_randomize\n", ["x@b.example"])
        tried = order_of_tries(lines)
        assert sorted(tried[:3]) == ["127.0.0.2", "127.0.0.3", "127.0.0.4"] and tried[3:] == ["127.0.0.5"], lines
        orders.add(tuple(tried))
    assert len(orders) > 1
    lines = deliver(b, top / "plain", VIA_TRANSPORT, f"  hosts = {hosts}\n  port = {port}\n", ["x@b.example"])
    assert order_of_tries(lines) == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]


@pytest.mark.parametrize("binary", BOTH)
def test_hosts_randomize_applies_to_router_hosts_not_from_mx(postern_bin, binary, top):
    port = free_port_on("127.0.0.2")
    b = both(binary, postern_bin)
    orders = set()
    for i in range(8):
        lines = deliver(b, top / f"r{i}", MANUAL.format(hosts="127.0.0.2:127.0.0.3:127.0.0.4"),
                        f"  port = {port}\n  hosts_randomize\n", ["x@b.example"])
        orders.add(tuple(order_of_tries(lines)))
    assert len(orders) > 1 and all(sorted(o) == ["127.0.0.2", "127.0.0.3", "127.0.0.4"] for o in orders)


@pytest.mark.parametrize("binary", BOTH)
@pytest.mark.parametrize("opts,want", [("", 5), ("  hosts_max_try = 2\n", 2),
                                       ("  hosts_max_try_hardlimit = 3\n", 3)])
def test_hosts_max_try_and_hardlimit(postern_bin, binary, top, opts, want):
    port = free_port_on("127.0.0.2")
    hosts = " : ".join(f"127.0.0.{i}" for i in range(2, 9))
    lines = deliver(both(binary, postern_bin), top / "d", VIA_TRANSPORT,
                    f"  hosts = {hosts}\n  port = {port}\n{opts}", ["x@b.example"])
    assert order_of_tries(lines) == [f"127.0.0.{i}" for i in range(2, 2 + want)]
    assert deliveries(lines) == ["== x@b.example R=r T=t defer (111): Connection refused"]


@pytest.mark.parametrize("binary", BOTH)
def test_local_host_needs_allow_localhost(postern_bin, binary, top):
    """A host the transport looks up (hosts, fallback_hosts) that is this
    machine defers the delivery; allow_localhost lets it through."""
    sink = Sink("127.0.0.1")
    b = both(binary, postern_bin)
    try:
        lines = deliver(b, top / "no", VIA_TRANSPORT, f"  hosts = 127.0.0.1\n  port = {sink.port}\n", ["x@b.example"])
        assert deliveries(lines) == ["== x@b.example R=r T=t defer (-50): t transport found host 127.0.0.1 to be local"]
        assert sink.connections == 0
        lines = deliver(b, top / "yes", VIA_TRANSPORT,
                        f"  hosts = 127.0.0.1\n  port = {sink.port}\n  allow_localhost\n", ["x@b.example"])
        assert deliveries(lines) == ["=> x@b.example R=r T=t H=127.0.0.1 [127.0.0.1]"]
        # a fallback host is checked the same way
        lines = deliver(b, top / "fb", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n  fallback_hosts = 127.0.0.1\n", ["x@b.example"])
        assert deliveries(lines) == ["== x@b.example R=r T=t defer (-50): t transport found host 127.0.0.1 to be local"]
    finally:
        sink.close()


@pytest.mark.parametrize("binary", BOTH)
def test_gethostbyname_for_transport_hosts(postern_bin, binary, top):
    """gethostbyname: the transport's host names come from the system's
    resolver (/etc/hosts): localhost, tried at every address it has."""
    sink = Sink("127.0.0.1")
    try:
        lines = deliver(both(binary, postern_bin), top / "d", VIA_TRANSPORT,
                        f"  hosts = localhost\n  port = {sink.port}\n  gethostbyname\n  allow_localhost\n",
                        ["x@b.example"])
    finally:
        sink.close()
    assert deliveries(lines) == ["=> x@b.example R=r T=t H=localhost [127.0.0.1]"]
    assert all(re.match(r"H=localhost \[::1\] Connection refused", l) for l in hostlines(lines))


# --------------------------------------------------------------------------
# the SMTP session: extensions, pipelining, chunking, LMTP

@pytest.mark.parametrize("binary", BOTH)
def test_hosts_avoid_esmtp_sends_helo(postern_bin, binary, top):
    sink = Sink(caps=("PIPELINING", "SIZE", "CHUNKING", "DSN"))
    try:
        lines = deliver(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n  hosts_avoid_esmtp = 127.0.0.2\n", ["x@b.example"])
    finally:
        sink.close()
    assert [l for _, l in sink.lines] == ["HELO test.example", "MAIL FROM:<s@a.example>", "RCPT TO:<x@b.example>",
                                          "DATA", "QUIT"]
    assert deliveries(lines) == ["=> x@b.example R=r T=t H=127.0.0.2 [127.0.0.2]"]


@pytest.mark.parametrize("binary", BOTH)
@pytest.mark.parametrize("avoid", [False, True])
def test_pipelining_and_hosts_avoid_pipelining(postern_bin, binary, top, avoid):
    """With PIPELINING the DATA goes with MAIL and the RCPTs, so it is sent
    although every recipient is refused (and a refused MAIL is 'pipelined
    MAIL FROM'); hosts_avoid_pipelining waits for each reply."""
    sink = Sink(replies={"RCPT": "550 5.1.1 unknown"})
    opt = "  hosts_avoid_pipelining = *\n" if avoid else ""
    try:
        lines = deliver(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n{opt}", ["x@b.example"], sender="<>")
    finally:
        sink.close()
    assert ("DATA" in sink.verbs()) != avoid
    assert deliveries(as499(lines) if binary == "exim" else lines) == [
        "** x@b.example R=r T=t H=127.0.0.2 [127.0.0.2] : SMTP error from remote mail server after "
        "RCPT TO:<x@b.example>: 550 5.1.1 unknown"]


@pytest.mark.parametrize("binary", BOTH)
@pytest.mark.parametrize("pipelining", [True, False])
def test_refused_mail_command(postern_bin, binary, top, pipelining):
    sink = Sink(caps=("PIPELINING",) if pipelining else ("8BITMIME",), replies={"MAIL": "550 5.7.1 go away"})
    try:
        lines = deliver(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n", ["x@b.example"], sender="<>")
    finally:
        sink.close()
    pl = "pipelined " if pipelining else ""
    assert deliveries(as499(lines) if binary == "exim" else lines) == [
        f"** x@b.example R=r T=t H=127.0.0.2 [127.0.0.2] : SMTP error from remote mail server after "
        f"{pl}MAIL FROM:<>: 550 5.7.1 go away"]
    assert hostlines(lines) == []


@pytest.mark.parametrize("binary", BOTH)
@pytest.mark.parametrize("reply,result", [("421 4.3.2 busy", "defer"), ("554 5.3.2 go away", "fail")])
def test_refused_greeting(postern_bin, binary, top, reply, result):
    """A greeting refused: the host line, then a 4xx defers and a 5xx (last
    host) fails the address."""
    sink = Sink(replies={"GREETING": reply})
    try:
        lines = deliver(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n", ["x@b.example"], sender="<>")
    finally:
        sink.close()
    msg = f"SMTP error from remote mail server after initial connection: {reply}"
    assert hostlines(lines) == [f"H=127.0.0.2 [127.0.0.2]: {msg}"]
    want = (f"== x@b.example R=r T=t defer (0) H=127.0.0.2 [127.0.0.2]: {msg}" if result == "defer"
            else f"** x@b.example R=r T=t H=127.0.0.2 [127.0.0.2] : {msg}")
    assert deliveries(as499(lines) if binary == "exim" else lines) == [want]


def bdat_sizes(sink):
    return [l for _, l in sink.lines if l.startswith("BDAT")]


@pytest.mark.parametrize("binary", BOTH)
@pytest.mark.parametrize("pipelining", [True, False])
def test_chunking(postern_bin, binary, top, pipelining):
    """A server offering CHUNKING gets BDAT (hosts_try_chunking defaults to
    '*'): a small message in one 'BDAT n LAST', a larger one with its
    headers first; the bytes arrive intact, undotted."""
    caps = ("PIPELINING", "CHUNKING") if pipelining else ("CHUNKING",)
    sink = Sink(caps=caps)
    b = both(binary, postern_bin)
    body = "Subject: c\n\n.leading dot\n" + "".join(f"line {i:05d} " + "x" * 60 + "\n" for i in range(300))
    try:
        lines = deliver(b, top / "small", MANUAL.format(hosts="127.0.0.2"), f"  port = {sink.port}\n",
                        ["x@b.example"], body="Subject: c\n\n.hi\n")
        # Exim marks the line " K"; postern's address has AF_CHUNKING for
        # src/deliver to do the same
        assert [l.replace(" K", "") for l in deliveries(lines)] == ["=> x@b.example R=r T=t H=127.0.0.2 [127.0.0.2]"]
        assert binary != "exim" or deliveries(lines)[0].endswith(" K")
        assert [v for v in sink.verbs()] == ["EHLO", "MAIL", "RCPT", "BDAT", "QUIT"]
        assert re.fullmatch(r"BDAT \d+ LAST", bdat_sizes(sink)[0])
        data = sink.messages[0][2]
        assert int(bdat_sizes(sink)[0].split()[1]) == len(data) and data.endswith(b"\r\n\r\n.hi\r\n")
        lines = deliver(b, top / "big", MANUAL.format(hosts="127.0.0.2"), f"  port = {sink.port}\n",
                        ["x@b.example"], body=body)
        sizes = bdat_sizes(sink)[1:]
        assert len(sizes) == 2 and re.fullmatch(r"BDAT \d+", sizes[0]) and re.fullmatch(r"BDAT \d+ LAST", sizes[1])
        data = sink.messages[1][2]
        head, _, rest = data.partition(b"\r\n\r\n")
        assert int(sizes[0].split()[1]) == len(head) + 4 and int(sizes[1].split()[1]) == len(rest)
        assert rest == body.split("\n\n", 1)[1].replace("\n", "\r\n").encode()
    finally:
        sink.close()


@pytest.mark.parametrize("binary", BOTH)
def test_hosts_try_chunking_empty_means_data(postern_bin, binary, top):
    sink = Sink(caps=("PIPELINING", "CHUNKING"))
    try:
        lines = deliver(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n  hosts_try_chunking =\n", ["x@b.example"], body="Subject: c\n\n.hi\n")
    finally:
        sink.close()
    assert "BDAT" not in sink.verbs() and "DATA" in sink.verbs()
    assert sink.messages[0][2].endswith(b"\r\n\r\n..hi\r\n")     # dot-stuffed on the wire
    assert deliveries(lines) == ["=> x@b.example R=r T=t H=127.0.0.2 [127.0.0.2]"]


@pytest.mark.parametrize("binary", BOTH)
@pytest.mark.parametrize("pipelining", [True, False])
def test_chunking_refused_at_the_end(postern_bin, binary, top, pipelining):
    caps = ("PIPELINING", "CHUNKING") if pipelining else ("CHUNKING",)
    sink = Sink(caps=caps, replies={"DOT": "451 4.7.1 later"})
    try:
        lines = deliver(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n", ["x@b.example"])
    finally:
        sink.close()
    pl = "pipelined " if pipelining else ""
    msg = f"SMTP error from remote mail server after {pl}end of data: 451 4.7.1 later"
    assert hostlines(lines) == [f"H=127.0.0.2 [127.0.0.2]: {msg}"]
    assert deliveries(lines) == [f"== x@b.example R=r T=t defer (-46) H=127.0.0.2 [127.0.0.2]: {msg}"]


@pytest.mark.parametrize("binary", BOTH)
@pytest.mark.parametrize("ignore_quota", [True, False])
def test_protocol_lmtp(postern_bin, binary, top, ignore_quota):
    """protocol = lmtp: LHLO, and after the data one reply per accepted
    recipient; IGNOREQUOTA on RCPT with lmtp_ignore_quota when offered."""
    sink = Sink(lmtp=True, caps=("PIPELINING", "IGNOREQUOTA"),
                replies={"DOT y@b.example": "452 4.2.2 over quota", "DOT z@b.example": "552 5.2.2 too big",
                         "RCPT w@b.example": "550 5.1.1 no such user"})
    opt = "  lmtp_ignore_quota\n" if ignore_quota else ""
    try:
        lines = deliver(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n  protocol = lmtp\n{opt}",
                        ["x@b.example", "y@b.example", "z@b.example", "w@b.example"], sender="<>")
    finally:
        sink.close()
    iq = " IGNOREQUOTA" if ignore_quota else ""
    assert [l for _, l in sink.lines][:7] == ["LHLO test.example", "MAIL FROM:<>", f"RCPT TO:<x@b.example>{iq}",
                                              f"RCPT TO:<y@b.example>{iq}", f"RCPT TO:<z@b.example>{iq}",
                                              f"RCPT TO:<w@b.example>{iq}", "DATA"]
    assert sorted(deliveries(as499(lines) if binary == "exim" else lines)) == sorted([
        "=> x@b.example R=r T=t H=127.0.0.2 [127.0.0.2]",
        "== y@b.example R=r T=t defer (0) H=127.0.0.2 [127.0.0.2]: LMTP error after DATA: 452 4.2.2 over quota",
        "** z@b.example R=r T=t H=127.0.0.2 [127.0.0.2] : LMTP error after DATA: 552 5.2.2 too big",
        "** w@b.example R=r T=t H=127.0.0.2 [127.0.0.2] : SMTP error from remote mail server after "
        "RCPT TO:<w@b.example>: 550 5.1.1 no such user"])


def test_protocol_smtps_is_not_supported_yet(postern_bin, top):
    sink = Sink()
    try:
        lines = deliver(postern_bin, top / "d", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n  protocol = smtps\n", ["x@b.example"])
    finally:
        sink.close()
    assert sink.connections == 0
    assert deliveries(lines) == ["== x@b.example R=r T=t defer (0): t transport: protocol = smtps (TLS on connect) "
                                 "is not supported by this postern"]


# --------------------------------------------------------------------------
# the message: size, line length, timeouts

@pytest.mark.parametrize("binary", BOTH)
@pytest.mark.parametrize("addition", [None, 2048])
def test_size_addition(postern_bin, binary, top, addition):
    """SIZE= is the spooled size plus one byte per line (CRLF) plus
    size_addition: what arrives plus size_addition less one (the blank
    line after the headers is not counted)."""
    sink = Sink(caps=("PIPELINING", "SIZE 10000000"))
    opt = f"  size_addition = {addition}\n" if addition is not None else ""
    try:
        deliver(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2"), f"  port = {sink.port}\n{opt}",
                ["x@b.example"], body="Subject: s\n\nline one\nline two\n")
    finally:
        sink.close()
    mail = [l for _, l in sink.lines if l.startswith("MAIL")][0]
    size = int(re.search(r" SIZE=(\d+)", mail).group(1))
    assert size - len(sink.messages[0][2]) == (addition if addition is not None else 1024) - 1


def test_negative_size_addition_sends_no_size(postern_bin, top):
    """As Exim's specification says (Exim 4.96 itself still sends SIZE)."""
    sink = Sink(caps=("PIPELINING", "SIZE 10000000"))
    try:
        deliver(postern_bin, top / "d", MANUAL.format(hosts="127.0.0.2"),
                f"  port = {sink.port}\n  size_addition = -1\n", ["x@b.example"])
    finally:
        sink.close()
    assert [l for _, l in sink.lines if l.startswith("MAIL")] == ["MAIL FROM:<s@a.example>"]


@pytest.mark.parametrize("binary", BOTH)
def test_message_linelength_limit(postern_bin, binary, top):
    sink = Sink()
    b = both(binary, postern_bin)
    try:
        lines = deliver(b, top / "long", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n  message_linelength_limit = 50\n", ["x@b.example"],
                        body="Subject: t\n\n" + "x" * 60 + "\n", sender="<>")
        assert sink.connections == 0
        assert deliveries(as499(lines) if binary == "exim" else lines) == [
            "** x@b.example R=r T=t : message has lines too long for transport"]
        lines = deliver(b, top / "short", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n  message_linelength_limit = 50\n", ["x@b.example"],
                        body="Subject: t\n\n" + "x" * 40 + "\n", sender="<>")
        assert deliveries(lines) == ["=> x@b.example R=r T=t H=127.0.0.2 [127.0.0.2]"]
    finally:
        sink.close()


def timeout_lines(lines):
    return [re.sub(r"\(\d+ bytes written\)", "(N bytes written)", l) for l in lines]


@pytest.mark.parametrize("binary", BOTH)
def test_final_timeout(postern_bin, binary, top):
    """No reply to the final dot within final_timeout: a message error (the
    host line and a deferral with the bytes written)."""
    sink = Sink(hang=("DOT",))
    try:
        lines = deliver(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n  final_timeout = 1s\n", ["x@b.example"])
    finally:
        sink.close()
    msg = "SMTP timeout after end of data (N bytes written)"
    assert timeout_lines(hostlines(lines)) == [f"H=127.0.0.2 [127.0.0.2]: {msg}: Connection timed out"]
    assert timeout_lines(deliveries(lines)) == [
        f"== x@b.example R=r T=t defer (110): Connection timed out H=127.0.0.2 [127.0.0.2]: {msg}"]
    n = int(re.search(r"\((\d+) bytes written\)", hostlines(lines)[0]).group(1))
    assert n == len(sink.messages[0][2]) + 3          # the message and ".\r\n"


@pytest.mark.parametrize("binary", BOTH)
def test_data_timeout(postern_bin, binary, top):
    """The server stops reading in the middle of the message: each block
    may take data_timeout; then the host is to blame."""
    sink = Sink(read_data=False, rcvbuf=4096)
    body = "Subject: big\n\n" + ("z" * 99 + "\n") * 80000
    try:
        lines = deliver(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n  data_timeout = 1s\n", ["x@b.example"], body=body)
    finally:
        sink.close()
    msg = "SMTP timeout after sending data block (N bytes written)"
    assert timeout_lines(hostlines(lines)) == [f"H=127.0.0.2 [127.0.0.2]: {msg}: Connection timed out"]
    assert timeout_lines(deliveries(lines)) == [
        f"== x@b.example R=r T=t defer (110): Connection timed out H=127.0.0.2 [127.0.0.2]: {msg}"]


# --------------------------------------------------------------------------
# batches: multi_domain and $domain

HELO_VARS = "  helo_data = ${if def:domain{d-$domain}{nodomain}}-${if def:local_part{$local_part}{nolp}}\n"


@pytest.mark.parametrize("binary", BOTH)
@pytest.mark.parametrize("multi", [True, False])
def test_multi_domain_and_domain_variable(postern_bin, binary, top, multi):
    """multi_domain (default true) sends several domains in one transaction,
    with $domain unset; false sends one domain per transaction, $domain
    set.  $local_part is set only for a single address."""
    sink = Sink()
    opt = "" if multi else "  multi_domain = false\n"
    try:
        lines = deliver(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2"),
                        f"  port = {sink.port}\n{opt}{HELO_VARS}", ["x@b.example", "y@c.example", "w@b.example"],
                        main="remote_max_parallel = 1\n")
    finally:
        sink.close()
    if multi:
        assert [sorted(m[1]) for m in sink.messages] == [["w@b.example", "x@b.example", "y@c.example"]]
        assert [l for _, l in sink.lines if l.startswith("EHLO")] == ["EHLO nodomain-nolp"]
    else:
        assert sorted(sorted(m[1]) for m in sink.messages) == [["w@b.example", "x@b.example"], ["y@c.example"]]
        # each transaction on a connection that greeted with its domain (a
        # reused connection keeps its greeting)
        ehlo = [l for _, l in sink.lines if l.startswith("EHLO")]
        assert ehlo[0] in ("EHLO d-b.example-nolp", "EHLO d-c.example-y")
    assert sorted(l.split(" ")[1] for l in deliveries(lines)) == ["w@b.example", "x@b.example", "y@c.example"]


# --------------------------------------------------------------------------
# serialize_hosts, keepalive, dscp

def run_bg(binary, d, routers, transport, rcpt):
    d.mkdir(exist_ok=True)
    os.chmod(d, 0o777)
    (d / "spool" / "db").mkdir(parents=True, exist_ok=True)
    os.chmod(d / "spool", 0o755)
    os.chmod(d / "spool" / "db", 0o1777)
    for lock in ("retry", "wait-t", "misc"):
        (d / "spool" / "db" / f"{lock}.lockfile").touch()
        os.chmod(d / "spool" / "db" / f"{lock}.lockfile", 0o666)
    conf = d / "c.conf"
    if not conf.exists():
        conf.write_text(CONFIG.format(d=d, main="", routers=routers, transport=transport))
    p = subprocess.Popen([binary, "-C", str(conf), "-odi", "-f", "s@a.example", rcpt],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(b"Subject: s\n\nhi\n")
    p.stdin.close()
    return p


def wait_until(pred, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("binary", BOTH)
@pytest.mark.parametrize("serialize", [True, False])
def test_serialize_hosts(postern_bin, binary, top, serialize):
    """Two deliveries to one host at once: with serialize_hosts the second
    finds the host busy and defers ('connection limit reached'); a later
    queue run delivers it.  Without it the host gets two connections."""
    dot = threading.Event()
    sink = Sink(gates={"DOT": dot})
    b = both(binary, postern_bin)
    opt = "  serialize_hosts = 127.0.0.2\n" if serialize else ""
    d = top / "d"
    try:
        first = run_bg(b, d, MANUAL.format(hosts="127.0.0.2"), f"  port = {sink.port}\n{opt}", "x@b.example")
        assert wait_until(lambda: len(sink.messages) == 1)
        second = run_bg(b, d, "", "", "y@b.example")
        if serialize:
            assert second.wait(60) == 0
            assert sink.connections == 1
        else:
            assert wait_until(lambda: len(sink.messages) == 2)
            assert sink.max_open == 2
        dot.set()
        assert first.wait(60) == 0 and second.wait(60) == 0
        lines = loglines(d)
        if serialize:
            assert "== y@b.example R=r T=t defer (-54): connection limit reached for all hosts for 'b.example'" in lines
            assert sink.max_open == 1
            # the serialization record is gone: a queue run gets through
            r = subprocess.run([b, "-C", str(d / "c.conf"), "-qf"], capture_output=True, timeout=120)
            assert r.returncode == 0, r.stderr
            assert wait_until(lambda: len(sink.messages) == 2)
            lines = loglines(d)
    finally:
        dot.set()
        sink.close()
    assert sorted(m[1][0] for m in sink.messages) == ["x@b.example", "y@b.example"]
    assert sorted(deliveries(lines))[-2:] == ["=> x@b.example R=r T=t H=127.0.0.2 [127.0.0.2]",
                                              "=> y@b.example R=r T=t H=127.0.0.2 [127.0.0.2]"]


def tcp_timer_to(host, port):
    """The timer_active field of this machine's TCP socket connected to
    host:port (2: a keepalive (or other) timer; 0: none)."""
    want = "%08X:%04X" % (int.from_bytes(socket.inet_aton(host), "little"), port)
    for l in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = l.split()
        if f[2] == want and f[3] == "01":
            return int(f[5].split(":")[0], 16)
    return None


@pytest.mark.parametrize("binary", BOTH)
@pytest.mark.parametrize("keepalive", [True, False])
def test_keepalive(postern_bin, binary, top, keepalive):
    """keepalive (default true) sets SO_KEEPALIVE: an idle connection has
    the kernel's keepalive timer running."""
    greet = threading.Event()
    sink = Sink(gates={"GREETING": greet})
    opt = "" if keepalive else "  no_keepalive\n"
    try:
        p = run_bg(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2"),
                   f"  port = {sink.port}\n{opt}", "x@b.example")
        assert wait_until(lambda: sink.connections == 1)
        time.sleep(0.5)                         # the delayed ACK is gone
        timer = tcp_timer_to("127.0.0.2", sink.port)
        greet.set()
        assert p.wait(60) == 0
    finally:
        greet.set()
        sink.close()
    assert timer == (2 if keepalive else 0)


def tos_seen(binary, top, name, dscp):
    """Run one delivery to a server that reads the IP TOS byte of the
    client's first command; returns it."""
    srv = socket.socket()
    srv.bind(("127.0.0.2", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    seen = []

    def serve():
        c, _ = srv.accept()
        c.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
        c.sendall(b"220 tos.example ESMTP\r\n")
        c.recv(1024)
        # TCP keeps the last packet's control messages for IP_PKTOPTIONS (9)
        raw = c.getsockopt(socket.IPPROTO_IP, 9, 256)
        while len(raw) >= 16:
            n, level, kind = struct.unpack("Qii", raw[:16])
            if level == socket.IPPROTO_IP and kind == socket.IP_TOS:
                seen.append(raw[16])
            raw = raw[(n + 7) & ~7:]
        c.sendall(b"421 4.3.2 bye\r\n")
        c.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    opt = f"  dscp = {dscp}\n" if dscp is not None else ""
    deliver(binary, top / name, MANUAL.format(hosts="127.0.0.2"), f"  port = {port}\n{opt}", ["x@b.example"])
    t.join(10)
    srv.close()
    return seen[0] if seen else None


@pytest.mark.parametrize("binary", BOTH)
def test_dscp(postern_bin, binary, top):
    b = both(binary, postern_bin)
    assert tos_seen(b, top, "none", None) == 0
    assert tos_seen(b, top, "ef", "ef") == 0xB8
    assert tos_seen(b, top, "num", "0x0a") == 0x28
    assert tos_seen(b, top, "unknown", "nonesuch") == 0


@pytest.mark.parametrize("binary", BOTH)
@pytest.mark.parametrize("max_rcpt,want", [(None, [100, 50]), (0, [150]), (60, [60, 60, 30])])
def test_max_rcpt(postern_bin, binary, top, max_rcpt, want):
    """max_rcpt (default 100; 0: no limit) splits a message's recipients
    into transactions, all down one connection."""
    sink = Sink()
    opt = f"  max_rcpt = {max_rcpt}\n" if max_rcpt is not None else ""
    try:
        deliver(both(binary, postern_bin), top / "d", MANUAL.format(hosts="127.0.0.2"), f"  port = {sink.port}\n{opt}",
                [f"r{i:03d}@b.example" for i in range(150)], main="remote_max_parallel = 1\n")
    finally:
        sink.close()
    assert sorted(len(m[1]) for m in sink.messages) == sorted(want)
    assert sink.connections == 1


def test_protocol_lmtp_default_port(postern_bin, top):
    """protocol = lmtp without port: the "lmtp" service, 24 when
    /etc/services lacks it (Exim then defers: 'TCP port "lmtp" is not
    defined for t transport')."""
    try:
        sink = Sink(port=24, lmtp=True)
    except OSError:
        pytest.skip("cannot listen on port 24")
    try:
        lines = deliver(postern_bin, top / "d", MANUAL.format(hosts="127.0.0.2"), "  protocol = lmtp\n", ["x@b.example"])
    finally:
        sink.close()
    assert deliveries(lines) == ["=> x@b.example R=r T=t H=127.0.0.2 [127.0.0.2]"]
    assert sink.verbs()[0] == "LHLO"

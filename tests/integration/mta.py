"""A real postern daemon on a loopback port, for integration tests.

    with Daemon(postern_bin, tmp_path, extra_config="...") as d:
        smtplib.SMTP("127.0.0.1", d.port)
        d.queued()          # message ids on the spool
        d.mainlog()         # text of the main log

Messages stay queued (queue_only) unless queue_only=False is given.
The daemon runs in the foreground (-bdf) with its own spool and logs under
tmp_path, and is stopped with SIGTERM (then SIGKILL) when the block ends.
"""
import os
import pathlib
import signal
import socket
import subprocess
import time

BASE_CONFIG = """\
primary_hostname = test.example
spool_directory = {spool}
log_file_path = {spool}/log/%slog
exim_user = root
"""


def send_through_smtp_transport(binary, directory, port, transport_opts="", host="localhost", sender="a@sender.example",
                                tail=""):
    """Deliver one message at once (-odi) from a postern whose only router
    sends everything with an smtp transport (options transport_opts) to
    host:port; tail is added after the retry section (authenticators).
    Returns that postern's main log."""
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "c.conf").write_text(f"""\
primary_hostname = sender.example
spool_directory = {d}/spool
log_file_path = {d}/%slog
exim_user = root
begin routers
out:
  driver = manualroute
  route_list = * {host} byname
  transport = t
  self = send
begin transports
t:
  driver = smtp
  port = {port}
  allow_localhost
{transport_opts}begin retry
* * F,1h,10m
{tail}""")
    r = subprocess.run([binary, "-C", str(d / "c.conf"), "-odi", "-f", sender, "u@remote.example"],
                       input="Subject: out\n\nhello\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return (d / "mainlog").read_text()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    def __init__(self, binary, tmp_path, extra_config="acl_smtp_rcpt = accept\n", port=None, queue_only=True):
        self.binary = binary
        self.dir = pathlib.Path(tmp_path)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.spool = self.dir / "spool"
        self.port = port or free_port()
        self.config = self.dir / "postern.conf"
        # receiving tests look at the queue: nothing is delivered unless asked
        self.config.write_text(BASE_CONFIG.format(spool=self.spool) + ("queue_only\n" if queue_only and "queue_only" not in extra_config else "")
                               + extra_config)
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(
            [self.binary, "-C", str(self.config), "-bdf", "-oX", f"127.0.0.1.{self.port}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited: " + self.proc.stderr.read().decode())
            # the log line is written after the sockets are listening; probing
            # with a connection would occupy a slot the test may count
            if "daemon started" in self.mainlog():
                return self
            time.sleep(0.05)
        raise RuntimeError("daemon did not start listening")

    def __exit__(self, *exc):
        self.stop()

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def queued(self):
        d = self.spool / "input"
        if not d.is_dir():
            return []
        return sorted(p.name[:-2] for p in d.iterdir() if p.name.endswith("-H"))

    def header_file(self, msgid):
        return (self.spool / "input" / f"{msgid}-H").read_text(errors="replace")

    def data_file(self, msgid):
        return (self.spool / "input" / f"{msgid}-D").read_bytes()

    def wait_log(self, text, limit=10):
        """Wait (at most limit seconds) until the main log holds text."""
        deadline = time.time() + limit
        while time.time() < deadline:
            if text in self.mainlog():
                return True
            time.sleep(0.05)
        return False

    def mainlog(self):
        p = self.spool / "log" / "mainlog"
        return p.read_text(errors="replace") if p.exists() else ""


class Client:
    """A raw SMTP client that sends exact bytes (for probes smtplib refuses)."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def reply(self):
        """One complete (possibly multi-line) reply, as (code, text)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed; got " + repr(self.buf))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode(errors="replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(lines[-1][:3]), "\n".join(l[4:] for l in lines)

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def close(self):
        self.sock.close()


def exim_log_as_499(line):
    """Debian's Exim is 4.96; Exim 4.99 (what postern follows) writes a
    failure line's reason after " : " instead of ": ".  Convert a 4.96
    "**" line (not the retry-timeout form, which did not change), the
    "no recipients found in headers" line that 4.96 gave its id twice, and
    the client of a failed AUTH, which 4.99 gives its H= or U= flag."""
    import re
    # 4.96 wrote the message id twice in "ID ID no recipients found in headers"
    d = re.match(r"^(.*?)(\S+) \2 ((?:no recipients|bad addresses) found in headers)$", line)
    if d:
        return d.group(1) + d.group(2) + " " + d.group(3)
    # 4.99 names the client of a failed AUTH with its H=/U= flag
    a = re.match(r"^(.*? authenticator failed for )(?!H=|U=)(.*?)(: \d{3} .*)$", line)
    if a:
        return a.group(1) + ("H=" if "[" in a.group(2) else "U=") + a.group(2) + a.group(3)
    m = re.match(r"^(.*?\*\* )(.*)$", line)
    if not m or line.endswith(": retry timeout exceeded") or ": " not in m.group(2):
        return line
    head, rest = m.group(1), m.group(2)
    i = rest.index(": ")
    if i > 0 and rest[i - 1] == " ":
        return line                     # already in 4.99's form
    return head + rest[:i] + " : " + rest[i + 2:]

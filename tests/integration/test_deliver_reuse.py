"""SMTP connection reuse: several transactions of one message down one
connection (max_rcpt), connection_max_messages, and messages waiting for
a host (the wait-<transport> hints database) sent down the connection a
queue run opened to it, logged with Exim's "*" after the host."""
import os
import pathlib
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from mta import Daemon, exim_log_as_499, free_port
from test_deliver import local_config, mail, send, wait_for  # noqa: F401  (mail is a fixture)

EXIM = shutil.which("exim4") or ("/usr/sbin/exim4" if os.path.exists("/usr/sbin/exim4") else None)


class Sink:
    """A small SMTP server on loopback: counts connections and the
    messages (with their recipients) it accepted."""

    def __init__(self, port=None):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", port or 0))
        self.port = self.srv.getsockname()[1]
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.connections = 0
        self.messages = []          # (connection number, [rcpts])
        self.commands = []
        self.stop = False
        self.hangup_after_data = False   # close the connection after each message, no QUIT
        self.hangup_delay = 0.0          # ... this long after the reply to the message
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop:
            try:
                conn, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.serve, args=(conn, self.connections), daemon=True).start()

    def serve(self, conn, n):
        conn.settimeout(30)
        f = conn.makefile("rb")

        def say(line):
            conn.sendall(line.encode() + b"\r\n")
        say("220 sink.example ESMTP")
        rcpts = []
        try:
            while True:
                line = f.readline()
                if not line:
                    break
                cmd = line.decode().strip()
                self.commands.append((n, cmd.split(":")[0].split(" ")[0].upper()))
                verb = cmd[:4].upper()
                if verb == "EHLO":
                    say("250-sink.example\r\n250-PIPELINING\r\n250 8BITMIME")
                elif verb == "MAIL":
                    rcpts = []
                    say("250 OK")
                elif verb == "RCPT":
                    rcpts.append(re.search(r"<(.*)>", cmd).group(1))
                    say("250 Accepted")
                elif verb == "DATA":
                    say("354 go ahead")
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    self.messages.append((n, rcpts))
                    say(f"250 OK id={len(self.messages)}")
                    if self.hangup_after_data:
                        time.sleep(self.hangup_delay)
                        break
                elif verb == "RSET":
                    rcpts = []
                    say("250 Reset OK")
                elif verb == "QUIT":
                    say("221 bye")
                    break
                else:
                    say("500 unknown")
        except OSError:
            pass
        conn.close()

    def close(self):
        self.stop = True
        self.srv.close()
        self.t.join(timeout=5)


def remote_only(mail, port, transport_opts=""):
    """local_config's set-up, with options added to its remote_smtp transport."""
    head = f"remote_smtp:\n  driver = smtp\n  port = {port}\n"
    cfg = local_config(mail, port)
    assert head in cfg
    return cfg.replace(head, head + transport_opts, 1)


def test_one_message_several_transactions_one_connection(postern_bin, tmp_path, mail):
    sink = Sink()
    try:
        cfg = remote_only(mail, sink.port, "  max_rcpt = 1\n")
        with Daemon(postern_bin, tmp_path, cfg, queue_only=False) as d:
            send(d.port, "sender@a.example", ["x1@b.example", "x2@b.example", "x3@b.example"], "Subject: r\r\n\r\nhi\r\n")
            assert wait_for(lambda: "Completed" in d.mainlog())
            log = d.mainlog()
        assert len(sink.messages) == 3
        assert sink.connections == 1
        assert [m[1] for m in sink.messages] == [["x1@b.example"], ["x2@b.example"], ["x3@b.example"]]
        # the first transaction on a fresh connection, the others marked "*"
        hosts = re.findall(r"=> (x\d)@b\.example R=remote T=remote_smtp H=127\.0\.0\.1 \[127\.0\.0\.1\](\*?) ", log)
        assert hosts == [("x1", ""), ("x2", "*"), ("x3", "*")]
        # after a completed transaction the next MAIL follows at once (no RSET, as Exim)
        assert [c for _, c in sink.commands].count("RSET") == 0
        assert [c for _, c in sink.commands].count("QUIT") == 1
    finally:
        sink.close()


def test_connection_max_messages(postern_bin, tmp_path, mail):
    sink = Sink()
    try:
        cfg = remote_only(mail, sink.port, "  max_rcpt = 1\n  connection_max_messages = 2\n")
        with Daemon(postern_bin, tmp_path, cfg, queue_only=False) as d:
            send(d.port, "sender@a.example", ["x1@b.example", "x2@b.example", "x3@b.example"], "Subject: r\r\n\r\nhi\r\n")
            assert wait_for(lambda: "Completed" in d.mainlog())
        assert len(sink.messages) == 3
        assert sink.connections == 2
        assert [m[0] for m in sink.messages] == [1, 1, 2]
    finally:
        sink.close()


@pytest.mark.parametrize("delay", [0.0, 0.5])
def test_a_kept_connection_the_peer_closed_is_not_used(postern_bin, tmp_path, mail, delay):
    """The peer hangs up after each message.  At once: postern notices
    before the next transaction (without sending anything) and opens a new
    connection.  Half a second later: the connection still looks open when
    the next transaction starts, the MAIL meets a closed connection, and the
    transaction goes over a new one instead of being deferred."""
    sink = Sink()
    sink.hangup_after_data = True
    sink.hangup_delay = delay
    try:
        cfg = remote_only(mail, sink.port, "  max_rcpt = 1\n")
        with Daemon(postern_bin, tmp_path, cfg, queue_only=False) as d:
            send(d.port, "sender@a.example", ["x1@b.example", "x2@b.example"], "Subject: r\r\n\r\nhi\r\n")
            assert wait_for(lambda: "Completed" in d.mainlog())
            log = d.mainlog()
        assert [m[1] for m in sink.messages] == [["x1@b.example"], ["x2@b.example"]]
        assert sink.connections == 2
        assert "==" not in log and "**" not in log
        # the second delivery is logged as a fresh connection's (no "*")
        assert re.search(r"=> x2@b\.example R=remote T=remote_smtp H=127\.0\.0\.1 \[127\.0\.0\.1\] ", log)
    finally:
        sink.close()


def test_waiting_messages_go_down_the_connection_a_queue_run_opens(postern_bin, tmp_path, mail):
    port = free_port()
    cfg = remote_only(mail, port)
    with Daemon(postern_bin, tmp_path, cfg, queue_only=False) as d:
        # the host is down: each message is deferred and listed as waiting for it
        for i in range(4):
            send(d.port, "sender@a.example", [f"w{i}@b.example"], f"Subject: w{i}\r\n\r\nhi\r\n")
        assert wait_for(lambda: d.mainlog().count(" == w") == 4)
        assert len(d.queued()) == 4
        assert (d.spool / "db" / "wait-remote_smtp").exists()
        sink = Sink(port)
        try:
            r = subprocess.run([postern_bin, "-C", str(d.config), "-qf"], capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stderr
            assert wait_for(lambda: d.queued() == [])
            log = d.mainlog()
            assert len(sink.messages) == 4
            # one connection carried all four (the queue runner's first
            # delivery opened it; the others were waiting for the host)
            assert sink.connections == 1
            assert sorted(m[1][0] for m in sink.messages) == [f"w{i}@b.example" for i in range(4)]
            assert len(re.findall(r"=> w\d@b\.example R=remote T=remote_smtp H=127\.0\.0\.1 \[127\.0\.0\.1\]\* ", log)) == 3
            assert log.count("Completed") == 4
        finally:
            sink.close()


def test_connection_max_messages_one_keeps_no_wait_list(postern_bin, tmp_path, mail):
    port = free_port()
    cfg = remote_only(mail, port, "  connection_max_messages = 1\n")
    with Daemon(postern_bin, tmp_path, cfg, queue_only=False) as d:
        for i in range(2):
            send(d.port, "sender@a.example", [f"w{i}@b.example"], f"Subject: w{i}\r\n\r\nhi\r\n")
        assert wait_for(lambda: d.mainlog().count(" == w") == 2)
        assert not (d.spool / "db" / "wait-remote_smtp").exists()
        sink = Sink(port)
        try:
            r = subprocess.run([postern_bin, "-C", str(d.config), "-qf"], capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stderr
            assert wait_for(lambda: d.queued() == [])
            assert len(sink.messages) == 2 and sink.connections == 2
        finally:
            sink.close()


SAME_DOMAIN = """\
primary_hostname = test.example
spool_directory = {d}/spool
log_file_path = {d}/%slog
exim_user = root
exim_group = root
keep_environment =
begin routers
smart:
  driver = manualroute
  domains = b.example
  local_parts = r2
  route_list = * 127.0.0.1 byname
  self = send
  same_domain_copy_routing = {copy}
  transport = remote
begin transports
remote:
  driver = smtp
  port = {port}
  user = nobody
"""


def run_same_domain(binary, d, port, copy):
    d.mkdir()
    os.chmod(d, 0o777)      # Exim's remote transport runs as nobody here
    (d / "c.conf").write_text(SAME_DOMAIN.format(d=d, port=port, copy=copy))
    r = subprocess.run([binary, "-C", str(d / "c.conf"), "-odi", "-f", "s@a.example", "r1@b.example", "r2@b.example"],
                       input=b"Subject: copy\n\nhi\n", capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [re.sub(r"^\S+ \S+ \S+ ", "", l) for l in (d / "mainlog").read_text().splitlines()
            if re.search(r" (=>|->|\*\*|==) ", l)]


@pytest.mark.parametrize("binary", ["postern", "exim"])
def test_same_domain_copy_routing(postern_bin, binary):
    """The router accepts only r2; with same_domain_copy_routing r1 (same
    domain, not yet routed: Exim routes the recipients last to first) gets
    r2's routing, as Exim documents; without it, r1 is unrouteable."""
    exe = postern_bin if binary == "postern" else EXIM
    if exe is None:
        pytest.skip("exim4 not installed")
    sink = Sink()
    top = pathlib.Path(tempfile.mkdtemp(prefix="postern-copy-"))
    os.chmod(top, 0o755)
    try:
        lines = run_same_domain(exe, top / "copy", sink.port, "true")
        assert sink.messages and sink.messages[0][1] == ["r1@b.example", "r2@b.example"]
        assert [l.split(" C=")[0] for l in lines] == [
            "=> r1@b.example R=smart T=remote H=127.0.0.1 [127.0.0.1]",
            "-> r2@b.example R=smart T=remote H=127.0.0.1 [127.0.0.1]"]
        lines = run_same_domain(exe, top / "nocopy", sink.port, "false")
        assert len(sink.messages) == 2 and sink.messages[1][1] == ["r2@b.example"]
        assert any(exim_log_as_499(l).startswith("** r1@b.example : Unrouteable address") for l in lines)
    finally:
        sink.close()
        shutil.rmtree(top, ignore_errors=True)

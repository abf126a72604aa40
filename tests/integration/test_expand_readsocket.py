"""${readsocket} against real sockets: a Unix-domain and a TCP server on
loopback answer with the request they got; eol replacement, the failure
string and connection errors are checked through `postern -be`."""
import os
import socket
import threading

from conftest import run


def _serve(sock, count):
    def loop():
        for _ in range(count):
            try:
                c, _ = sock.accept()
            except OSError:
                return
            data = b""
            c.settimeout(5)
            try:
                while True:
                    d = c.recv(4096)
                    if not d:
                        break
                    data += d
            except OSError:
                pass
            c.sendall(b"got:" + data + b"\nline2\n")
            c.close()
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def _be(postern_bin, cfg, *exprs):
    r = run([postern_bin, "-C", cfg, "-be", *exprs])
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_readsocket_unix_and_inet(postern_bin, write_config, tmp_path):
    cfg = write_config("primary_hostname = test.example\n")
    path = str(tmp_path / "sock")
    us = socket.socket(socket.AF_UNIX)
    us.bind(path)
    us.listen(5)
    _serve(us, 2)
    ts = socket.socket(socket.AF_INET)
    ts.bind(("127.0.0.1", 0))
    ts.listen(5)
    port = ts.getsockname()[1]
    _serve(ts, 1)
    out = _be(postern_bin, cfg,
              "${readsocket{%s}{hello}}" % path,
              "[${readsocket{%s}{req}{5s}{|}}]" % path,
              "[${readsocket{inet:127.0.0.1:%d}{tcp}{5s}{,}}]" % port)
    assert out == "got:hello\nline2\n\n[got:req|line2|]\n[got:tcp,line2,]\n"
    us.close()
    ts.close()


def test_readsocket_failures(postern_bin, write_config, tmp_path):
    cfg = write_config("primary_hostname = test.example\n")
    missing = str(tmp_path / "nosock")
    out = _be(postern_bin, cfg,
              "${readsocket{%s}{x}{1s}{}{FAILED}}" % missing,
              "${readsocket{%s}{x}}" % missing,
              "${readsocket{inet:127.0.0.1}{x}}",
              "${if eq{a}{b}{${readsocket{%s}{x}}}{skipped}}" % missing)
    lines = out.splitlines()
    assert lines[0] == "FAILED"
    assert lines[1] == "Failed: failed to connect to socket %s: No such file or directory" % missing
    assert lines[2] == "Failed: missing port for readsocket inet:127.0.0.1"
    assert lines[3] == "skipped"

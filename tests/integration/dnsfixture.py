"""Real DNS servers on loopback for tests (DESIGN.md section 6, issue 4).

Two fixtures, both binding 127.0.0.1 on a free port and stopping by
themselves after `lifetime` seconds (default 600) if nobody stops them:

1. DnsServer: a python3-dnslib server answering from a Python structure or a
   zone file, with broken behaviours on demand.  Runs in threads of the test
   process, or in a subprocess (`spawn=True`, or the command line below).

2. NsdServer: NSD serving zones signed at test time with ldns-keygen and
   ldns-signzone, plus a trust-anchor file, to observe DNSSEC secure,
   insecure and bogus answers.

Run python with /usr/bin/python3 (Debian's python3-dnslib).

DnsServer
---------
    from dnsfixture import DnsServer

    zone = {
        "example.com": [
            ("A", "192.0.2.1"),
            ("AAAA", "2001:db8::1"),
            ("MX", (10, "mx.example.com")),         # or "10 mx.example.com"
            ("TXT", "v=spf1 -all"),                # one logical string: split
                                                   # into 255-byte strings
            ("TXT", ["first", "second"]),          # explicit strings
            ("NS", "ns1.example.com"),
            ("SOA", ("ns1.example.com", "hostmaster.example.com",
                     1, 3600, 600, 86400, 60)),
        ],
        "www.example.com": [("CNAME", "example.com")],
        "_25._tcp.mx.example.com": [("TLSA", (3, 1, 1, "ab12..."))],
        "_sip._tcp.example.com": [("SRV", (10, 5, 5060, "sip.example.com"))],
        "2.0.0.127.bl.example": [("A", "127.0.0.2", 60)],  # third item: TTL
        "*.wild.example": [("A", "192.0.2.9")],            # wildcard
        "odd.example": [("TYPE65280", b"\\x01\\x02")],      # raw rdata
        # behaviours, for the whole name or for one (name, type):
        "broken.example": "SERVFAIL",
        ("slow.example.com", "A"): "TIMEOUT",
        "big.example": ["TRUNCATE", ("TXT", "x" * 2000)],
    }
    with DnsServer(zone) as dns:      # or DnsServer(zone).start() ... .stop()
        dns.port                      # the port (UDP and TCP)
        dns.server                    # "127.0.0.1@<port>": dns_servers / forwarder
        dns.queries                   # [(name, type, "udp"|"tcp"), ...] received
        dns.set("new.example", [("A", "192.0.2.7")])   # change data live
        dns.remove("new.example")

Point postern (or a dns_options) at it with `dns_servers = <dns.server>` and
`dns_trust_anchor_file =` (empty): the data is unsigned.  (Left unset, the
default root key is dropped by src/dns once the server proves unable to give
the root DNSKEY; a trust anchor file that is named is never dropped, and then
every answer from this server is bogus.)

Names are case-insensitive; a trailing dot is optional.  Unknown names get
NXDOMAIN; a name that exists (or has names below it) but lacks the type gets
NOERROR with no answer (NODATA).  CNAMEs are followed inside the data as an
authoritative server does.  A negative answer carries the SOA of the closest
enclosing name that has one (add an SOA if you need negative caching).  UDP
answers larger than the client's EDNS size (512 without EDNS) come back
truncated with TC set, so the resolver retries over TCP.

Behaviour keywords (a whole name's value, an item in its list, or the value
of a (name, type) key; type "ANY" in the key matches every type):
    SERVFAIL  REFUSED  NXDOMAIN  NOTIMP  FORMERR   that rcode, no records
    TIMEOUT        never answer (UDP nor TCP)
    TRUNCATE       UDP: TC bit set, no records; TCP: the full answer
    TRUNCATE_ALL   UDP: TC bit set; TCP: connection closed without an answer
    EMPTY          NOERROR with an empty answer even if records exist
    GARBAGE        a reply whose records are cut short (malformed packet)

Values: A/AAAA text; NS/CNAME/PTR/DNAME a name; MX (pref, name);
SRV (priority, weight, port, target); TLSA (usage, selector, mtype, hex or
bytes); SOA (mname, rname, serial, refresh, retry, expire, minimum);
TXT/SPF str/bytes (split into 255-byte strings) or a list of strings (each
one split if longer than 255); any type as a zone-file rdata string
("10 mx.example.com"); "TYPEnnn" with bytes for raw rdata.

From a zone file (standard master-file syntax: $ORIGIN, $TTL, @, relative
names, parentheses, quoted strings; TXT strings over 255 bytes are split),
with the extra directive `$BEHAVIOUR name [type] KEYWORD`:
    dns = DnsServer.from_zonefile("tests/data/x.zone", origin="example.com")

In a subprocess (data given as a Python literal, or a zone file):
    dns = DnsServer(zone, spawn=True).start()
    /usr/bin/python3 tests/integration/dnsfixture.py serve ZONEFILE|PYFILE \\
        [--origin O] [--port 0] [--lifetime 600]     # prints "PORT <n>"

With the system resolver pointed at the zone (to compare with programs that
only use /etc/resolv.conf, such as exim4): as root, in private mount and
network namespaces, serve the zone on 127.0.0.1:53 and run commands there:
    outs = run_with_system_dns(zone, [["exim4", "-C", conf, "-be", expr], ...])
    # -> list of CompletedProcess (text); raises SystemDnsUnavailable when
    #    namespaces cannot be made (not root, no unshare)

pytest fixtures (import them into a test module or conftest):
    dns_server(zone) factory -> started DnsServer, stopped at teardown
    nsd_server(zones...) factory -> started NsdServer, stopped at teardown

NsdServer
---------
    from dnsfixture import NsdServer, default_dnssec_zones

    with NsdServer(default_dnssec_zones(), tmpdir) as nsd:
        nsd.server              # "127.0.0.1@<port>" (forwarder for postern)
        nsd.trust_anchor_file   # DS records of the signed zones' KSKs
        nsd.zones               # names of the zones served
    # postern: dns_servers = <nsd.server>
    #          dns_trust_anchor_file = <nsd.trust_anchor_file>
    # (libunbound forwards to NSD, which answers authoritatively, and
    # validates from the anchor; signatures are valid for 30 days from now)

NsdServer(zones, workdir) takes {zone_name: {"records": {...same structure
as DnsServer, without behaviours...}, "sign": "ok" | "expired" | "none",
"tamper": {name: [(type, value)]}, "parent_ds": bool}}.  "ok" signs the zone
normally; "expired" signs it with signatures that expired in 2020;
"none" leaves it unsigned; "tamper" replaces the given RRsets after signing
(their signatures no longer match: bogus).  A child zone whose parent is
also served gets NS records in the parent, and a DS there when it is signed
and "parent_ds" is not False.  The trust anchor file holds the DS of every
signed zone that has no signed parent among the zones.

default_dnssec_zones() gives, under "dnssec.test":
    ok.dnssec.test              A 192.0.2.1, TXT, MX        -> secure
    tampered.dnssec.test        A changed after signing      -> bogus
    *.insecure.dnssec.test      unsigned child zone (no DS)  -> insecure
    *.expired.dnssec.test       child signed, RRSIGs expired -> bogus
    *.nods.dnssec.test          signed child without DS      -> insecure
"""

import argparse
import ast
import binascii
import os
import pathlib
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time

from dnslib import (AAAA, CNAME, DNAME, MX, NS, PTR, QTYPE, RCODE, RD, RR,
                    SOA, SRV, TLSA, TXT, A, DNSLabel, DNSRecord)
from dnslib import dns as _dnslib_dns

__all__ = ["DnsServer", "NsdServer", "default_dnssec_zones", "split_txt",
           "dns_server", "nsd_server", "run_with_system_dns", "SystemDnsUnavailable"]

BEHAVIOURS = {"SERVFAIL", "REFUSED", "NXDOMAIN", "NOTIMP", "FORMERR",
              "TIMEOUT", "TRUNCATE", "TRUNCATE_ALL", "EMPTY", "GARBAGE"}
RCODE_BEHAVIOURS = {"SERVFAIL": RCODE.SERVFAIL, "REFUSED": RCODE.REFUSED,
                    "NXDOMAIN": RCODE.NXDOMAIN, "NOTIMP": RCODE.NOTIMP,
                    "FORMERR": RCODE.FORMERR}
DEFAULT_TTL = 300
MAX_CNAME_CHAIN = 16


def _norm(name):
    name = str(name).strip().lower()
    return name[:-1] if name.endswith(".") and name != "." else name


def _qtype_num(t):
    if isinstance(t, int):
        return t
    t = t.upper()
    if t.startswith("TYPE") and t[4:].isdigit():
        return int(t[4:])
    return int(getattr(QTYPE, t))


def _qtype_name(n):
    try:
        return QTYPE.get(n) if n in QTYPE.forward else f"TYPE{n}"
    except Exception:
        return f"TYPE{n}"


def split_txt(value):
    """A TXT value -> list of byte strings of at most 255 bytes each."""
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for it in items:
        b = it.encode() if isinstance(it, str) else bytes(it)
        if not b:
            out.append(b"")
        for i in range(0, len(b), 255):
            out.append(b[i:i + 255])
    return out or [b""]


class _Raw(RD):
    """Raw rdata for any type."""

    def __init__(self, data):
        self.data = bytes(data)

    def pack(self, buffer):
        buffer.append(self.data)

    def __repr__(self):
        return "\\# %d %s" % (len(self.data), binascii.hexlify(self.data).decode())


def _make_rdata(rtype, value, origin=""):
    """Build a dnslib RD for type name rtype from the structure's value."""
    t = rtype.upper()
    if t.startswith("TYPE") and t[4:].isdigit() and isinstance(value, (bytes, bytearray)):
        return _Raw(value)
    if t in ("TXT", "SPF"):
        if isinstance(value, str) and value.startswith('"'):
            value = _zone_tokens(value)
        return TXT(split_txt(value))
    if isinstance(value, str) and t not in ("A", "AAAA", "NS", "CNAME", "PTR", "DNAME"):
        toks = _zone_tokens(value)
        if t in _dnslib_dns.RDMAP:
            return _dnslib_dns.RDMAP[t].fromZone(toks, DNSLabel(origin) if origin else None)
        raise ValueError(f"cannot build {t} rdata from text {value!r}")
    if t == "A":
        return A(value)
    if t == "AAAA":   # via inet_pton: dnslib alone rejects ::ffff:a.b.c.d
        return AAAA(list(socket.inet_pton(socket.AF_INET6, value)))
    if t in ("NS", "CNAME", "PTR", "DNAME"):
        return {"NS": NS, "CNAME": CNAME, "PTR": PTR, "DNAME": DNAME}[t](_abs(value, origin))
    if t == "MX":
        pref, name = value
        return MX(_abs(name, origin), int(pref))
    if t == "SRV":
        prio, weight, port, target = value
        return SRV(int(prio), int(weight), int(port), _abs(target, origin))
    if t == "TLSA":
        u, s, m, data = value
        if isinstance(data, str):
            data = binascii.unhexlify(data.replace(" ", ""))
        return TLSA(int(u), int(s), int(m), data)
    if t == "SOA":
        mname, rname, *times = value
        times = [int(x) for x in times] or [1, 3600, 600, 86400, 60]
        return SOA(_abs(mname, origin), _abs(rname, origin), times)
    if isinstance(value, (bytes, bytearray)):
        return _Raw(value)
    raise ValueError(f"unsupported record {t} {value!r}")


def _abs(name, origin):
    name = str(name)
    if name == "@":
        return origin + "." if origin else "."
    if name.endswith("."):
        return name
    if origin and origin != ".":
        return name + "." + origin.rstrip(".") + "."
    return name + "."


def _zone_tokens(text):
    """Split rdata text into tokens, honouring double quotes and escapes."""
    toks, cur, i, inq, had = [], [], 0, False, False
    while i < len(text):
        c = text[i]
        if inq:
            if c == "\\" and i + 1 < len(text):
                if text[i + 1:i + 4].isdigit() and len(text[i + 1:i + 4]) == 3:
                    cur.append(chr(int(text[i + 1:i + 4])))
                    i += 4
                    continue
                cur.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                inq = False
                toks.append("".join(cur))
                cur, had = [], False
            else:
                cur.append(c)
        elif c == '"':
            if had:
                toks.append("".join(cur))
                cur, had = [], False
            inq = True
        elif c.isspace():
            if had:
                toks.append("".join(cur))
                cur, had = [], False
        else:
            cur.append(c)
            had = True
        i += 1
    if had or inq:
        toks.append("".join(cur))
    return toks


class _Zone:
    """The data a DnsServer answers from: {name: [RR]}, behaviours."""

    def __init__(self):
        self.rrs = {}            # name -> [RR]
        self.behaviour = {}      # (name, qtype or None) -> keyword
        self.lock = threading.Lock()

    def load(self, data, origin=""):
        for key, val in data.items():
            if isinstance(key, tuple):
                name, t = key
                t = None if str(t).upper() == "ANY" else _qtype_num(t)
                self._set_behaviour(_norm(name), t, val)
                continue
            self.set(key, val, origin)

    def _set_behaviour(self, name, t, kw):
        kw = str(kw).upper()
        if kw not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {kw!r}")
        self.behaviour[(name, t)] = kw

    def set(self, name, val, origin=""):
        name = _norm(name)
        with self.lock:
            self.rrs.pop(name, None)
            self.behaviour.pop((name, None), None)
            if isinstance(val, str):
                self._set_behaviour(name, None, val)
                return
            rrs = []
            for item in val:
                if isinstance(item, str):
                    self._set_behaviour(name, None, item)
                    continue
                rtype, value = item[0], item[1]
                ttl = int(item[2]) if len(item) > 2 else DEFAULT_TTL
                rd = _make_rdata(rtype, value, origin)
                rrs.append(RR(name + ".", rtype=_qtype_num(rtype), ttl=ttl, rdata=rd))
            self.rrs[name] = rrs

    def add_rr(self, rr):
        name = _norm(str(rr.rname))
        self.rrs.setdefault(name, []).append(rr)

    def remove(self, name):
        name = _norm(name)
        with self.lock:
            self.rrs.pop(name, None)
            for k in [k for k in self.behaviour if k[0] == name]:
                del self.behaviour[k]

    def exists(self, name):
        if name in self.rrs:
            return True
        suffix = "." + name
        return any(n.endswith(suffix) for n in self.rrs)

    def find(self, name):
        """Records for name, with wildcard expansion; None if no such name."""
        if name in self.rrs:
            return self.rrs[name]
        if self.exists(name):
            return []
        labels = name.split(".")
        for i in range(1, len(labels)):
            wild = "*." + ".".join(labels[i:])
            if wild in self.rrs:
                return [RR(name + ".", rtype=r.rtype, rclass=r.rclass, ttl=r.ttl, rdata=r.rdata)
                        for r in self.rrs[wild]]
            if self.exists(".".join(labels[i:])):
                break
        return None

    def soa_for(self, name):
        labels = name.split(".")
        for i in range(len(labels)):
            n = ".".join(labels[i:])
            for r in self.rrs.get(n, []):
                if r.rtype == QTYPE.SOA:
                    return r
        return None

    def behaviour_for(self, name, qtype):
        return (self.behaviour.get((name, qtype)) or self.behaviour.get((name, None)))

    def answer(self, request, proto):
        """-> (kind, reply) with kind in 'drop', 'close', 'bytes', 'reply'."""
        q = request.q
        name, qtype = _norm(str(q.qname)), q.qtype
        reply = request.reply()
        reply.header.ra = 1
        with self.lock:
            kw = self.behaviour_for(name, qtype)
            if kw == "TIMEOUT":
                return "drop", None
            if kw in RCODE_BEHAVIOURS:
                reply.header.rcode = RCODE_BEHAVIOURS[kw]
                return "reply", reply
            if kw == "TRUNCATE_ALL" or (kw == "TRUNCATE" and proto == "udp"):
                if proto == "tcp":
                    return "close", None
                reply.header.tc = 1
                return "reply", reply
            if kw == "EMPTY":
                return "reply", reply
            self._fill(reply, name, qtype)
            if kw == "GARBAGE":
                data = reply.pack()
                # claim one more answer than present, and cut the last bytes
                data = bytearray(data)
                an = struct.unpack("!H", data[6:8])[0]
                data[6:8] = struct.pack("!H", an + 1)
                return "bytes", bytes(data[:-2] if an else data) + b"\xc0"
            return "reply", reply

    def _fill(self, reply, name, qtype):
        seen = set()
        cur = name
        for _ in range(MAX_CNAME_CHAIN):
            rrs = self.find(cur)
            if rrs is None:
                if cur == name or self._in_zone(cur):
                    reply.header.rcode = RCODE.NXDOMAIN
                self._add_soa(reply, cur)
                return
            matching = [r for r in rrs if r.rtype == qtype or qtype == QTYPE.ANY]
            if matching:
                for r in matching:
                    reply.add_answer(r)
                return
            cn = [r for r in rrs if r.rtype == QTYPE.CNAME]
            if not cn:
                self._add_soa(reply, cur)
                return
            reply.add_answer(cn[0])
            cur = _norm(str(cn[0].rdata.label))
            if cur in seen:
                return
            seen.add(cur)

    def _in_zone(self, name):
        return self.soa_for(name) is not None

    def _add_soa(self, reply, name):
        soa = self.soa_for(name)
        if soa is not None:
            reply.add_auth(soa)


class _UDPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        resp = self.server.owner._respond(data, "udp")
        if resp is not None:
            sock.sendto(resp, self.client_address)


class _TCPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(10)
        try:
            while True:
                hdr = self._read(2)
                if not hdr:
                    return
                data = self._read(struct.unpack("!H", hdr)[0])
                if data is None:
                    return
                resp = self.server.owner._respond(data, "tcp")
                if resp is None:
                    return
                self.request.sendall(struct.pack("!H", len(resp)) + resp)
        except OSError:
            return

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.request.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf


class _ThreadingUDP(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True
    allow_reuse_address = False


class _ThreadingTCP(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


class DnsServer:
    """A dnslib DNS server on 127.0.0.1 (UDP and TCP on one free port)."""

    def __init__(self, data=None, origin="", lifetime=600, spawn=False,
                 zonefile=None, port=0):
        self.zone = _Zone()
        self.origin = origin
        self.lifetime = lifetime
        self.spawn = spawn
        self._zonefile = zonefile
        self._data = data or {}
        self._want_port = port
        self.queries = []
        self.port = None
        self._udp = self._tcp = None
        self._proc = None
        self._timer = None
        if not spawn:
            self.zone.load(self._data, origin)
            if zonefile:
                _load_zonefile(self.zone, zonefile, origin)

    @classmethod
    def from_zonefile(cls, path, origin="", **kw):
        return cls(zonefile=str(path), origin=origin, **kw)

    @property
    def server(self):
        return f"127.0.0.1@{self.port}"

    @property
    def addr(self):
        return ("127.0.0.1", self.port)

    def set(self, name, records):
        if self.spawn:
            raise RuntimeError("set() needs an in-process server")
        self.zone.set(name, records, self.origin)

    def remove(self, name):
        if self.spawn:
            raise RuntimeError("remove() needs an in-process server")
        self.zone.remove(name)

    def _respond(self, data, proto):
        try:
            req = DNSRecord.parse(data)
        except Exception:
            return None
        if not req.questions:
            return None
        q = req.q
        self.queries.append((_norm(str(q.qname)), _qtype_name(q.qtype), proto))
        kind, reply = self.zone.answer(req, proto)
        if kind in ("drop", "close"):
            return None
        if kind == "bytes":
            return reply
        limit = 65535
        if proto == "udp":
            limit = 512
            for ar in req.ar:
                if ar.rtype == QTYPE.OPT:
                    limit = max(512, ar.rclass)
        out = reply.pack()
        if len(out) > limit:
            reply.rr, reply.auth, reply.ar = [], [], []
            reply.header.tc = 1
            out = reply.pack()
        return out

    def start(self):
        if self.spawn:
            return self._start_subprocess()
        for _ in range(50):
            udp = _ThreadingUDP(("127.0.0.1", self._want_port), _UDPHandler)
            port = udp.server_address[1]
            try:
                tcp = _ThreadingTCP(("127.0.0.1", port), _TCPHandler)
            except OSError:
                udp.server_close()
                if self._want_port:
                    raise
                continue
            break
        else:
            raise RuntimeError("no free port for UDP and TCP")
        self.port = port
        for s in (udp, tcp):
            s.owner = self
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2},
                             daemon=True).start()
        self._udp, self._tcp = udp, tcp
        if self.lifetime:
            self._timer = threading.Timer(self.lifetime, self.stop)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _start_subprocess(self):
        tmp = tempfile.NamedTemporaryFile("w", suffix=".py", delete=False)
        if self._zonefile:
            src = self._zonefile
        else:
            tmp.write(repr(self._data))
            src = tmp.name
        tmp.close()
        self._tmp = tmp.name
        cmd = ["/usr/bin/python3", __file__, "serve", src, "--lifetime",
               str(self.lifetime), "--port", str(self._want_port)]
        if self.origin:
            cmd += ["--origin", self.origin]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = self._proc.stdout.readline()
        if not line.startswith("PORT "):
            self._proc.kill()
            raise RuntimeError(f"dns server subprocess failed: {line!r}")
        self.port = int(line.split()[1])
        return self

    def stop(self):
        if self._timer:
            self._timer.cancel()
            self._timer = None
        for s in (self._udp, self._tcp):
            if s:
                s.shutdown()
                s.server_close()
        self._udp = self._tcp = None
        if self._proc:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None
            os.unlink(self._tmp)

    def __enter__(self):
        if self.port is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


# --- zone files -------------------------------------------------------------

def _zone_lines(text):
    """Logical lines of a master file: comments dropped, ( ) joined."""
    out, cur, depth = [], "", 0
    for raw in text.splitlines():
        line, inq, i = [], False, 0
        while i < len(raw):
            c = raw[i]
            if c == "\\" and i + 1 < len(raw):
                line.append(raw[i:i + 2])
                i += 2
                continue
            if c == '"':
                inq = not inq
            elif not inq and c == ";":
                break
            elif not inq and c == "(":
                depth += 1
                c = " "
            elif not inq and c == ")":
                depth -= 1
                c = " "
            line.append(c)
            i += 1
        piece = "".join(line)
        if cur:
            cur += " " + piece
        else:
            cur = piece
        if depth <= 0:
            if cur.strip():
                out.append(cur)
            cur, depth = "", 0
    if cur.strip():
        out.append(cur)
    return out


_CLASSES = {"IN", "CH", "HS", "CS"}


def _load_zonefile(zone, path, origin=""):
    text = pathlib.Path(path).read_text()
    origin = origin.rstrip(".")
    ttl, last = DEFAULT_TTL, None
    for line in _zone_lines(text):
        starts_blank = line[0].isspace()
        toks = line.split(None, 1)
        if toks[0].upper() == "$ORIGIN":
            origin = toks[1].split()[0].rstrip(".")
            continue
        if toks[0].upper() == "$TTL":
            ttl = int(toks[1].split()[0])
            continue
        if toks[0].upper() in ("$BEHAVIOUR", "$BEHAVIOR"):
            args = toks[1].split()
            name = _abs(args[0], origin)
            t = None if len(args) == 2 or args[1].upper() == "ANY" else _qtype_num(args[1])
            zone._set_behaviour(_norm(name), t, args[-1])
            continue
        words = line.split()
        if starts_blank:
            owner = last
        else:
            owner = _abs(words.pop(0), origin)
            last = owner
        rttl = ttl
        while words:
            w = words[0].upper()
            if w.isdigit():
                rttl = int(w)
            elif w in _CLASSES:
                pass
            else:
                break
            words.pop(0)
        rtype = words.pop(0).upper()
        # rdata text: everything after the type word
        rdtext = line[_find_word(line, rtype, starts_blank):].strip()
        if rtype in ("TXT", "SPF"):
            rd = TXT(split_txt(_zone_tokens(rdtext)))
        elif rtype in ("A", "AAAA", "NS", "CNAME", "PTR", "DNAME"):
            # (AAAA goes through _make_rdata too, so every IPv6 spelling works)
            rd = _make_rdata(rtype, _abs(rdtext.split()[0], origin) if rtype not in ("A", "AAAA")
                             else rdtext.split()[0], origin)
        elif rtype.startswith("TYPE") and rdtext.startswith("\\#"):
            parts = rdtext.split()
            rd = _Raw(binascii.unhexlify("".join(parts[2:])))
        else:
            rd = _make_rdata(rtype, rdtext, origin + "." if origin else "")
        zone.add_rr(RR(owner, rtype=_qtype_num(rtype), ttl=rttl, rdata=rd))


def _find_word(line, word, starts_blank):
    """Offset just past the record-type word in a zone line."""
    i, n, skip = 0, len(line), 0 if starts_blank else 1
    while i < n:
        while i < n and line[i].isspace():
            i += 1
        j = i
        while j < n and not line[j].isspace():
            j += 1
        if skip:
            skip -= 1
        elif line[i:j].upper() == word:
            return j
        i = j
    return n


# --- NSD with signed zones --------------------------------------------------

def _free_port():
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
        except OSError:
            u.close()
            t.close()
            continue
        u.close()
        t.close()
        return port
    raise RuntimeError("no free port")


def default_dnssec_zones():
    """Zones for secure / insecure / bogus answers under dnssec.test."""
    soa = lambda z: ("SOA", (f"ns.{z}.", f"hostmaster.{z}.", 1, 3600, 600, 86400, 60))
    return {
        "dnssec.test": {
            "sign": "ok",
            "records": {
                "dnssec.test": [soa("dnssec.test"), ("NS", "ns.dnssec.test."),
                                ("TXT", "top of the signed test tree")],
                "ns.dnssec.test": [("A", "127.0.0.1")],
                "ok.dnssec.test": [("A", "192.0.2.1"), ("AAAA", "2001:db8::1"),
                                   ("MX", (10, "mx.ok.dnssec.test.")),
                                   ("TXT", "v=spf1 ip4:192.0.2.1 -all")],
                "mx.ok.dnssec.test": [("A", "192.0.2.25")],
                "_25._tcp.mx.ok.dnssec.test": [("TLSA", (3, 1, 1, "00" * 32))],
                "alias.dnssec.test": [("CNAME", "ok.dnssec.test.")],
                "tampered.dnssec.test": [("A", "192.0.2.66"), ("TXT", "signed text")],
            },
            "tamper": {"tampered.dnssec.test": [("A", "192.0.2.99")]},
        },
        "insecure.dnssec.test": {
            "sign": "none",
            "records": {
                "insecure.dnssec.test": [soa("insecure.dnssec.test"),
                                         ("NS", "ns.dnssec.test.")],
                "www.insecure.dnssec.test": [("A", "192.0.2.2"), ("TXT", "unsigned")],
            },
        },
        "expired.dnssec.test": {
            "sign": "expired",
            "records": {
                "expired.dnssec.test": [soa("expired.dnssec.test"), ("NS", "ns.dnssec.test.")],
                "www.expired.dnssec.test": [("A", "192.0.2.3"), ("TXT", "stale")],
            },
        },
        "nods.dnssec.test": {
            "sign": "ok",
            "parent_ds": False,
            "records": {
                "nods.dnssec.test": [soa("nods.dnssec.test"), ("NS", "ns.dnssec.test.")],
                "www.nods.dnssec.test": [("A", "192.0.2.4")],
            },
        },
    }


def _rr_text(rr):
    return rr.toZone()


class NsdServer:
    """NSD on 127.0.0.1 serving zones signed at start with ldns-signzone."""

    def __init__(self, zones=None, workdir=None, lifetime=600):
        self.zone_specs = zones if zones is not None else default_dnssec_zones()
        self._own_dir = workdir is None
        self.workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="nsdfix"))
        self.lifetime = lifetime
        self.port = None
        self.proc = None
        self.trust_anchor_file = str(self.workdir / "trust-anchors")
        self.zones = sorted(self.zone_specs, key=lambda z: -z.count("."))
        self._timer = None

    @property
    def server(self):
        return f"127.0.0.1@{self.port}"

    def _parent(self, z):
        best = None
        for p in self.zone_specs:
            if p != z and z.endswith("." + p) and (best is None or len(p) > len(best)):
                best = p
        return best

    def _sign(self, name, spec, extra):
        d = self.workdir
        zone = _Zone()
        zone.load(spec.get("records", {}), name)
        lines = []
        for n in zone.rrs:
            for rr in zone.rrs[n]:
                lines.append(_rr_text(rr))
        lines += extra
        plain = d / f"{name}.zone"
        plain.write_text("\n".join(lines) + "\n")
        mode = spec.get("sign", "ok")
        if mode == "none":
            return plain, None
        keys = []
        for ksk in (True, False):
            args = ["ldns-keygen", "-a", "ECDSAP256SHA256"] + (["-k"] if ksk else []) + [name]
            base = subprocess.run(args, cwd=d, capture_output=True, text=True,
                                  check=True).stdout.strip()
            keys.append(base)
        args = ["ldns-signzone", "-n"]
        if mode == "expired":
            args += ["-i", "20190101000000", "-e", "20200101000000"]
        args += ["-f", str(d / f"{name}.signed"), "-o", name, str(plain)] + keys
        subprocess.run(args, cwd=d, capture_output=True, text=True, check=True)
        signed = d / f"{name}.signed"
        ds = (d / f"{keys[0]}.ds").read_text().strip()
        tamper = spec.get("tamper")
        if tamper:
            self._tamper(signed, tamper, name)
        return signed, ds

    def _tamper(self, path, tamper, origin):
        repl = _Zone()
        repl.load(tamper, origin)
        out = []
        types = {(n, r.rtype) for n in repl.rrs for r in repl.rrs[n]}
        for line in path.read_text().splitlines():
            w = line.split()
            if len(w) >= 4 and not line.startswith(";"):
                owner = _norm(w[0])
                rtype = w[3].upper()
                if rtype in QTYPE.reverse and (owner, getattr(QTYPE, rtype)) in types:
                    continue
            out.append(line)
        for n in repl.rrs:
            for rr in repl.rrs[n]:
                out.append(_rr_text(rr))
        path.write_text("\n".join(out) + "\n")

    def start(self):
        d = self.workdir
        d.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        # children first, so the parents can carry their DS
        ds_of, files, anchors = {}, {}, []
        for z in self.zones:
            spec = self.zone_specs[z]
            extra = []
            for c in self.zone_specs:
                if self._parent(c) == z:
                    extra.append(f"{c}. 300 IN NS ns.{z}.")
                    if ds_of.get(c) and self.zone_specs[c].get("parent_ds", True):
                        extra.append(ds_of[c])
            files[z], ds_of[z] = self._sign(z, spec, extra)
        for z in self.zones:
            p = self._parent(z)
            if ds_of[z] and (p is None or ds_of.get(p) is None):
                anchors.append(ds_of[z])
        pathlib.Path(self.trust_anchor_file).write_text("\n".join(anchors) + "\n")
        conf = [
            "server:",
            f'    ip-address: 127.0.0.1@{self.port}',
            "    do-ip6: no",
            f'    zonesdir: "{d}"',
            f'    pidfile: "{d}/nsd.pid"',
            f'    xfrdfile: "{d}/xfrd.state"',
            f'    zonelistfile: "{d}/zone.list"',
            f'    database: ""',
            f'    xfrdir: "{d}"',
            '    username: ""',
            '    chroot: ""',
            "    server-count: 1",
            "    verbosity: 1",
            "    hide-version: yes",
            "remote-control:",
            "    control-enable: no",
        ]
        for z in self.zones:
            conf += ["zone:", f"    name: {z}", f'    zonefile: "{files[z]}"']
        (d / "nsd.conf").write_text("\n".join(conf) + "\n")
        self.log = open(d / "nsd.log", "w")
        self.proc = subprocess.Popen(["/usr/sbin/nsd", "-d", "-c", str(d / "nsd.conf"),
                                      "-P", str(d / "nsd.pid")],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._wait_ready()
        if self.lifetime:
            self._timer = threading.Timer(self.lifetime, self.stop)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _wait_ready(self):
        q = DNSRecord.question(self.zones[-1], "SOA").pack()
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nsd exited: " + (self.workdir / "nsd.log").read_text())
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.3)
            try:
                s.sendto(q, ("127.0.0.1", self.port))
                r = DNSRecord.parse(s.recv(4096))
                if r.header.rcode == RCODE.NOERROR and r.rr:
                    return
            except (socket.timeout, OSError):
                pass
            finally:
                s.close()
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("nsd did not answer")

    def stop(self):
        if self._timer:
            self._timer.cancel()
            self._timer = None
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.proc = None
            self.log.close()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


# --- the system resolver pointed at a zone (namespaces) ----------------------

class SystemDnsUnavailable(RuntimeError):
    pass


def run_with_system_dns(data, commands, timeout=120, origin=""):
    """Run commands (argv lists) where /etc/resolv.conf names 127.0.0.1 and
    a DnsServer for data listens on 127.0.0.1:53 (private mount and network
    namespaces, so nothing outside is touched).  -> [CompletedProcess]."""
    import json
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise SystemDnsUnavailable("needs root and unshare")
    with tempfile.TemporaryDirectory(prefix="sysdns") as d:
        src = pathlib.Path(d) / "zone.py"
        src.write_text(repr(data))
        cmds = pathlib.Path(d) / "cmds.json"
        cmds.write_text(json.dumps(commands))
        r = subprocess.run(["unshare", "-mn", "/usr/bin/python3", __file__, "netns-run",
                            str(src), str(cmds), "--origin", origin],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise SystemDnsUnavailable(f"namespace run failed: {r.stderr[-2000:]}")
        return [subprocess.CompletedProcess(c, x["rc"], x["out"], x["err"])
                for c, x in zip(commands, json.loads(r.stdout))]


def _netns_run(src, cmdfile, origin):
    import json
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    d = tempfile.mkdtemp(prefix="sysdns")
    rc = pathlib.Path(d) / "resolv.conf"
    rc.write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
    subprocess.run(["mount", "--bind", str(rc), "/etc/resolv.conf"], check=True)
    data = ast.literal_eval(pathlib.Path(src).read_text())
    srv = DnsServer(data, origin=origin, lifetime=0, port=53).start()
    out = []
    try:
        for argv in json.loads(pathlib.Path(cmdfile).read_text()):
            r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            out.append({"rc": r.returncode, "out": r.stdout, "err": r.stderr})
    finally:
        srv.stop()
        subprocess.run(["umount", "/etc/resolv.conf"])
        shutil.rmtree(d, ignore_errors=True)
    print(json.dumps(out))


# --- pytest fixtures ---------------------------------------------------------

try:
    import pytest

    @pytest.fixture
    def dns_server():
        """Factory: dns_server(zone_data, **kw) -> started DnsServer."""
        started = []

        def make(data=None, **kw):
            s = DnsServer(data, **kw).start()
            started.append(s)
            return s
        yield make
        for s in started:
            s.stop()

    @pytest.fixture
    def nsd_server(tmp_path):
        """Factory: nsd_server(zones=None) -> started NsdServer."""
        started = []

        def make(zones=None, **kw):
            s = NsdServer(zones, tmp_path / f"nsd{len(started)}", **kw).start()
            started.append(s)
            return s
        yield make
        for s in started:
            s.stop()
except ImportError:      # used without pytest (subprocess mode)
    pass


def _main(argv):
    ap = argparse.ArgumentParser(description="loopback DNS server for tests")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("serve", help="serve a zone file or a Python literal file")
    sp.add_argument("source")
    sp.add_argument("--origin", default="")
    sp.add_argument("--port", type=int, default=0)
    sp.add_argument("--lifetime", type=float, default=600)
    np_ = sub.add_parser("nsd", help="run NSD with the default signed zones")
    np_.add_argument("--dir", default=None)
    np_.add_argument("--lifetime", type=float, default=600)
    nr = sub.add_parser("netns-run", help=argparse.SUPPRESS)
    nr.add_argument("source")
    nr.add_argument("cmds")
    nr.add_argument("--origin", default="")
    a = ap.parse_args(argv)
    if a.cmd == "netns-run":
        _netns_run(a.source, a.cmds, a.origin)
        return
    if a.cmd == "serve":
        text = pathlib.Path(a.source).read_text()
        try:
            data = ast.literal_eval(text)
            srv = DnsServer(data, origin=a.origin, lifetime=0, port=a.port)
        except (ValueError, SyntaxError):
            srv = DnsServer(zonefile=a.source, origin=a.origin, lifetime=0, port=a.port)
        srv.start()
        print(f"PORT {srv.port}", flush=True)
    else:
        srv = NsdServer(workdir=a.dir, lifetime=0).start()
        print(f"PORT {srv.port}\nTRUST_ANCHOR_FILE {srv.trust_anchor_file}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait(a.lifetime if a.lifetime else None)
    except KeyboardInterrupt:
        pass
    srv.stop()


if __name__ == "__main__":
    _main(sys.argv[1:])

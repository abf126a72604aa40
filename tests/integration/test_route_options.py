"""Router options Exim administrators use beyond the basics: the address
order of multi-homed hosts (AAAA first, ipv4_prefer, ipv4_only),
mx_fail_domains, srv_fail_domains, fail_defer_domains (dnslookup),
host_find_failed, ignore_target_hosts with host_all_ignored and
hosts_randomize (manualroute), all through -bt against a real DNS server
on loopback."""
import subprocess

from dnsfixture import DnsServer

ZONE = {"multi.test": [("A", "192.0.2.6"), ("A", "192.0.2.7"), ("AAAA", "2001:db8::6")],
        "mail.test": [("MX", (10, "multi.test"))],
        "broken.test": "SERVFAIL",
        "srvbroken.test": [("MX", (10, "multi.test"))],
        "_smtp._tcp.srvbroken.test": "SERVFAIL"}


def bt(postern_bin, tmp_path, name, routers, *addrs):
    with DnsServer(ZONE) as dns:
        cfg = tmp_path / f"{name}.conf"
        cfg.write_text(f"""primary_hostname = a.example
dns_servers = {dns.server}
dns_trust_anchor_file =
begin routers
{routers}
begin transports
remote_smtp:
  driver = smtp
""")
        r = subprocess.run([postern_bin, "-C", str(cfg), "-bt"] + list(addrs),
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout + r.stderr


def hosts(out):
    return [l.split("[")[1].split("]")[0] for l in out.splitlines() if l.strip().startswith("host ")]


def test_address_order_of_a_multi_homed_host(postern_bin, tmp_path):
    base = "r:\n  driver = dnslookup\n  transport = remote_smtp\n"
    _, out = bt(postern_bin, tmp_path, "dflt", base, "x@mail.test")
    h = hosts(out)
    assert h[0] == "2001:db8::6" and sorted(h[1:]) == ["192.0.2.6", "192.0.2.7"], out   # AAAA first (Exim)
    _, out = bt(postern_bin, tmp_path, "prefer", base + "  ipv4_prefer = yes\n", "x@mail.test")
    h = hosts(out)
    assert sorted(h[:2]) == ["192.0.2.6", "192.0.2.7"] and h[2] == "2001:db8::6", out
    _, out = bt(postern_bin, tmp_path, "only", base + "  ipv4_only = ${if eq{$domain}{mail.test}{yes}{no}}\n",
                "x@mail.test")
    assert sorted(hosts(out)) == ["192.0.2.6", "192.0.2.7"], out
    _, out = bt(postern_bin, tmp_path, "off", base + "  ipv4_only = false\n", "x@mail.test")
    assert "2001:db8::6" in hosts(out), out
    # manualroute names get every address too, in the same order
    _, out = bt(postern_bin, tmp_path, "manual",
                "m:\n  driver = manualroute\n  route_list = * multi.test\n  transport = remote_smtp\n", "x@any.test")
    h = hosts(out)
    assert h[0] == "2001:db8::6" and sorted(h[1:]) == ["192.0.2.6", "192.0.2.7"], out


def test_mx_and_srv_fail_domains(postern_bin, tmp_path):
    base = "r:\n  driver = dnslookup\n  transport = remote_smtp\n"
    rc, out = bt(postern_bin, tmp_path, "servfail", base, "x@broken.test")
    assert rc == 1 and "deferred" in out, out
    # an MX lookup error counts as "no MX": the A lookup decides (none here)
    rc, out = bt(postern_bin, tmp_path, "mxfail", base + "  mx_fail_domains = broken.test\n", "x@broken.test")
    assert "MX for broken.test deferred" not in out, out
    srv = base + "  check_srv = smtp\n"
    rc, out = bt(postern_bin, tmp_path, "srv", srv, "x@srvbroken.test")
    assert rc == 1 and "SRV" in out, out
    rc, out = bt(postern_bin, tmp_path, "srvfail", srv + "  srv_fail_domains = srvbroken.test\n", "x@srvbroken.test")
    assert rc == 0 and "host multi.test" in out, out


def test_fail_defer_domains(postern_bin, tmp_path):
    base = "r:\n  driver = dnslookup\n  transport = remote_smtp\n"
    rc, out = bt(postern_bin, tmp_path, "nx", base, "x@nosuch.test")
    assert rc == 2 and "Unrouteable address" in out, out
    rc, out = bt(postern_bin, tmp_path, "nxdefer", base + "  fail_defer_domains = *.test\n", "x@nosuch.test")
    assert rc == 1 and "nosuch.test" in out, out


def test_manualroute_host_find_failed_and_host_all_ignored(postern_bin, tmp_path):
    route = "m:\n  driver = manualroute\n  route_list = * nosuch.test:multi.test\n  transport = remote_smtp\n"
    rc, out = bt(postern_bin, tmp_path, "hff", route, "x@any.test")
    assert rc == 1, out                                           # defer by default
    rc, out = bt(postern_bin, tmp_path, "hffignore", route + "  host_find_failed = ignore\n", "x@any.test")
    assert rc == 0 and "192.0.2.6" in out and "nosuch" not in out, out
    rc, out = bt(postern_bin, tmp_path, "hffdecline", route + "  host_find_failed = decline\n", "x@any.test")
    assert rc == 2, out
    ign = ("m:\n  driver = manualroute\n  route_list = * multi.test\n  transport = remote_smtp\n"
           "  ignore_target_hosts = <; 192.0.2.0/24 ; 2001:db8::/32\n")
    rc, out = bt(postern_bin, tmp_path, "allign", ign, "x@any.test")
    assert rc == 1, out                                           # host_all_ignored: defer
    rc, out = bt(postern_bin, tmp_path, "allignpass", ign + "  host_all_ignored = pass\n"
                 "next:\n  driver = manualroute\n  route_list = * 203.0.113.9\n  transport = remote_smtp\n", "x@any.test")
    assert rc == 0 and "203.0.113.9" in out, out
    rc, out = bt(postern_bin, tmp_path, "allignfail", ign + "  host_all_ignored = fail\n", "x@any.test")
    assert rc == 2, out


def test_manualroute_hosts_randomize(postern_bin, tmp_path):
    names = ":".join(f"10.0.0.{i}" for i in range(1, 9))
    route = f"m:\n  driver = manualroute\n  route_list = * {names}\n  transport = remote_smtp\n"
    _, out = bt(postern_bin, tmp_path, "fixed", route, "x@any.test")
    assert hosts(out) == [f"10.0.0.{i}" for i in range(1, 9)], out
    orders = set()
    for i in range(6):
        _, out = bt(postern_bin, tmp_path, f"rand{i}", route + "  hosts_randomize\n", "x@any.test")
        assert sorted(hosts(out)) == sorted(f"10.0.0.{i}" for i in range(1, 9)), out
        orders.add(tuple(hosts(out)))
    assert len(orders) > 1          # 8! orders: six runs agreeing by chance is (1/40320)^5


def test_manualroute_byname_bydns_and_the_default(postern_bin, tmp_path):
    """byname asks the system resolver (/etc/hosts), not the DNS; bydns only
    the DNS; by default the DNS and then the system resolver (Exim)."""
    route = "m:\n  driver = manualroute\n  route_list = * {}\n  self = send\n  transport = remote_smtp\n"
    rc, out = bt(postern_bin, tmp_path, "byname", route.format("multi.test byname"), "x@any.test")
    assert rc != 0 and hosts(out) == [], out               # only the DNS knows multi.test
    rc, out = bt(postern_bin, tmp_path, "lh", route.format("localhost byname"), "x@any.test")
    assert rc == 0 and "127.0.0.1" in hosts(out), out
    rc, out = bt(postern_bin, tmp_path, "bydns", route.format("multi.test bydns"), "x@any.test")
    assert rc == 0 and "192.0.2.6" in hosts(out), out


def redirect_bt(postern_bin, tmp_path, name, options, *addrs, files=None):
    for fname, (text, owner) in (files or {}).items():
        (tmp_path / fname).write_text(text)
        if owner:
            import shutil
            shutil.chown(tmp_path / fname, owner)
    routers = ("r:\n  driver = redirect\n  local_parts = a : gone : nobody\n" + options.replace("%D%", str(tmp_path)) +
               "u:\n  driver = accept\n  transport = remote_smtp\n")
    cfg = tmp_path / f"{name}.conf"
    cfg.write_text("primary_hostname = a.example\nbegin routers\n" + routers +
                   "begin transports\nremote_smtp:\n  driver = smtp\np:\n  driver = pipe\nf:\n  driver = appendfile\n")
    r = subprocess.run([postern_bin, "-C", str(cfg), "-bt"] + list(addrs), capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def test_bt_shows_pipes_files_and_discards_as_exim(postern_bin, tmp_path):
    data = "  data = ${if eq{$local_part}{gone}{:blackhole:}{|/bin/cat, /tmp/f, b@x.test}}\n"
    rc, out = redirect_bt(postern_bin, tmp_path, "pf", data + "  pipe_transport = p\n  file_transport = f\n",
                          "a@x.test", "gone@x.test")
    assert rc == 0
    assert out == ("a@x.test -> |/bin/cat\n  transport = p\n"
                   "a@x.test -> /tmp/f\n  transport = f\n"
                   "b@x.test\n    <-- a@x.test\n  router = u, transport = remote_smtp\n"
                   "mail to gone@x.test is discarded\n"), out
    # no pipe_transport: the pipe carries the error; forbid_file: forbidden
    rc, out = redirect_bt(postern_bin, tmp_path, "nopipe", data + "  forbid_file\n  file_transport = f\n", "a@x.test")
    assert out.startswith("a@x.test -> |/bin/cat\n*** Error in setting up pipe, file, or autoreply:\n"
                          "pipe_transport unset in r router\n"
                          "a@x.test -> /tmp/f *** forbidden ***\n"), out


def test_forward_file_owner_and_errors(postern_bin, tmp_path):
    """check_local_user: the .forward must be the user's (or in owners):
    root's is refused; a tainted file name is never read."""
    fwd = "  check_local_user\n  file = %D%/$local_part_data.forward\n"
    files = {"nobody.forward": ("b@x.test\n", None)}
    rc, out = redirect_bt(postern_bin, tmp_path, "own", fwd, "nobody@x.test", files=files)
    assert rc == 1 and f"nobody@x.test cannot be resolved at this time: bad owner for {tmp_path}/nobody.forward" \
        in out, out
    rc, out = redirect_bt(postern_bin, tmp_path, "owners", fwd + "  owners = root\n", "nobody@x.test", files=files)
    assert rc == 0 and "b@x.test\n    <-- nobody@x.test\n" in out, out
    files = {"nobody.forward": ("b@x.test\n", "nobody")}
    rc, out = redirect_bt(postern_bin, tmp_path, "mine", fwd, "nobody@x.test", files=files)
    assert rc == 0 and "b@x.test\n    <-- nobody@x.test\n" in out, out
    rc, out = redirect_bt(postern_bin, tmp_path, "taint", fwd.replace("$local_part_data", "$local_part"),
                          "nobody@x.test", files=files)
    assert rc == 1 and f"Tainted name '{tmp_path}/nobody.forward' for file read not permitted" in out, out


def test_self_must_be_one_of_exims_words(postern_bin, tmp_path):
    cfg = tmp_path / "self.conf"
    cfg.write_text("begin routers\nm:\n  driver = manualroute\n  route_list = * 127.0.0.1\n"
                   "  self = ${if eq{$domain}{x}{fail}{freeze}}\n  transport = t\n"
                   "begin transports\nt:\n  driver = smtp\n")
    r = subprocess.run([postern_bin, "-C", str(cfg), "-bt", "a@x.test"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert ("configuration error for m router:\n  ${if eq{$domain}{x}{fail}{freeze}} is not valid for the self "
            "option\n") in r.stderr, r.stderr

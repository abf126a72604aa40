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

"""@mx_any, @mx_primary, @mx_secondary and host-name items in host lists,
answered by a real DNS server on loopback (dnsfixture)."""
import pytest

from conftest import run
from dnsfixture import DnsServer

ZONE = {
    "primary.test": [("MX", (10, "here.test")), ("MX", (20, "there.test"))],
    "secondary.test": [("MX", (10, "there.test")), ("MX", (20, "here.test"))],
    "elsewhere.test": [("MX", (10, "there.test"))],
    "nomx.test": [("A", "192.0.2.5")],
    "here.test": [("A", "127.0.0.1")],
    "there.test": [("A", "192.0.2.1")],
    "named.test": [("A", "127.0.0.1")],
}


@pytest.fixture(scope="module")
def dns():
    with DnsServer(ZONE) as d:
        yield d


def be(postern_bin, cfg, *exprs):
    r = run([postern_bin, "-C", cfg, "-be", *exprs])
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


CASES = [
    ("${if match_domain{primary.test}{@mx_any}{y}{n}}", "y"),
    ("${if match_domain{primary.test}{@mx_primary}{y}{n}}", "y"),
    ("${if match_domain{primary.test}{@mx_secondary}{y}{n}}", "n"),
    ("${if match_domain{secondary.test}{@mx_any}{y}{n}}", "y"),
    ("${if match_domain{secondary.test}{@mx_primary}{y}{n}}", "n"),
    ("${if match_domain{secondary.test}{@mx_secondary}{y}{n}}", "y"),
    ("${if match_domain{elsewhere.test}{@mx_any}{y}{n}}", "n"),
    ("${if match_domain{nomx.test}{@mx_any}{y}{n}}", "n"),
    ("${if match_domain{primary.test}{@mx_any/ignore=127.0.0.1}{y}{n}}", "n"),
    ("${if match_domain{primary.test}{!@mx_any : *}{y}{n}}", "n"),
]


def test_mx_items(postern_bin, write_config, dns):
    cfg = write_config(f"primary_hostname = x.test\ndns_servers = {dns.server}\n"
                       "dns_trust_anchor_file =\n")
    got = be(postern_bin, cfg, *[e for e, _ in CASES])
    assert got == [w for _, w in CASES]


def test_match_ip_condition_ignores_names(postern_bin, write_config, dns):
    # the match_ip condition never looks names up: a name fails the list
    cfg = write_config(f"primary_hostname = x.test\ndns_servers = {dns.server}\n"
                       "dns_trust_anchor_file =\n")
    assert be(postern_bin, cfg, "${if match_ip{127.0.0.1}{named.test : 127.0.0.1}{y}{n}}",
              "${if match_ip{127.0.0.1}{127.0.0.1 : named.test}{y}{n}}") == ["n", "y"]

/* match_test.c: table-driven tests of list matching (domain, host/IP,
 * address and local part lists): negation, named lists, wildcards,
 * regular expressions, lookups and CIDR masks. */
#include "check.h"
#include "config/config.h"
#include "core/state.h"
#include "expand/match.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum kind { DOM, IP, IPONLY, HOSTNAMED, ADDR, LP };

typedef struct row {
    enum kind k;
    const char *subject, *list;
    status want;
    const char *value;   /* expected $value on match, NULL = don't check */
} row;

static const char *data_dir;

static const row rows[] = {
    {DOM, "a.example", "a.example : b.example", ST_OK, "a.example"},
    {DOM, "A.EXAMPLE", "a.example", ST_OK, NULL},
    {DOM, "c.example", "a.example : b.example", ST_FAIL, NULL},
    {DOM, "x.b.example", "*.b.example", ST_OK, NULL},
    {DOM, "b.example", "*.b.example", ST_FAIL, NULL},
    {DOM, "xb.example", "*b.example", ST_OK, NULL},
    {DOM, "a.example", "!a.example", ST_FAIL, NULL},
    {DOM, "c.example", "!a.example", ST_OK, NULL},          /* trailing negative: implicit * */
    {DOM, "a.example", "!a.example : *", ST_FAIL, NULL},
    {DOM, "b.example", "!a.example : *", ST_OK, NULL},
    {DOM, "unit.example", "@", ST_OK, NULL},
    {DOM, "x.b.example", "+doms", ST_OK, "*.b.example"},
    {DOM, "a.neg", "+neg : a.neg", ST_OK, NULL},          /* sublist negative: item skipped */
    {DOM, "b.neg", "!+neg", ST_FAIL, NULL},
    {DOM, "a.neg", "!+neg", ST_OK, NULL},
    {DOM, "x", "+undefined", ST_ERROR, NULL},
    {DOM, "abc.example", "^a.c\\.example$", ST_OK, "^a.c\\.example$"},
    {DOM, "", ":", ST_OK, NULL},
    {DOM, "x", "", ST_FAIL, NULL},
    {DOM, "a.example", "<; b.example ; a.example", ST_OK, NULL},
    {DOM, "foo.example", "lsearch;DATA/domains", ST_OK, "foodata"},
    {DOM, "sub.wild.example", "partial-lsearch;DATA/domains", ST_OK, "wilddata"},
    {DOM, "nope.example", "lsearch;DATA/domains", ST_FAIL, NULL},
    {DOM, "x", "lsearch;DATA/nonexistent", ST_DEFER, NULL},
    {IP, "10.1.2.3", "10.0.0.0/8", ST_OK, NULL},
    {IP, "11.1.2.3", "10.0.0.0/8", ST_FAIL, NULL},
    {IP, "192.168.1.1", "+nets", ST_OK, NULL},
    {IP, "::1", "<; ::1/128", ST_OK, NULL},
    {IP, "2001:db8::5", "<; 2001:db8::/32", ST_OK, NULL},
    {IP, "2001:db9::5", "<; 2001:db8::/32", ST_FAIL, NULL},
    {IP, "1.2.3.4", "*", ST_OK, NULL},
    {IP, "127.0.0.1", "@[]", ST_OK, NULL},                 /* a local interface */
    {IP, "192.0.2.1", "@[]", ST_FAIL, NULL},
    {DOM, "[127.0.0.1]", "@[]", ST_OK, NULL},
    {IP, "", ": 1.2.3.4", ST_OK, NULL},
    {IP, "1.2.3.4", "!1.2.3.4 : *", ST_FAIL, NULL},
    {IPONLY, "1.2.3.4", "1.2.3.5 : host.name.example : 1.2.3.4", ST_FAIL, NULL},  /* a name fails the list */
    {IPONLY, "1.2.3.4", "1.2.3.4 : host.name.example", ST_OK, NULL},
    {IPONLY, "1.2.3.4", "+ignore_unknown : host.name.example : 1.2.3.4", ST_OK, NULL},
    {IPONLY, "1.2.3.4", "+include_unknown : host.name.example", ST_OK, NULL},
    {IP, "1.2.3.4", "*.x.example : 1.2.3.4", ST_FAIL, NULL},          /* host name unknown */
    {HOSTNAMED, "1.2.3.4", "*.x.example", ST_OK, NULL},                /* ps.sender_host_name set */
    {HOSTNAMED, "1.2.3.4", "^mail\\.", ST_OK, NULL},
    {HOSTNAMED, "1.2.3.4", "*.y.example : 1.2.3.4", ST_OK, NULL},
    {HOSTNAMED, "1.2.3.4", "mail.x.example", ST_OK, NULL},
    {IP, "10.9.9.9", "iplsearch;DATA/ips", ST_OK, NULL},
    {IP, "10.1.2.99", "net24-lsearch;DATA/nets", ST_OK, NULL},
    {IP, "10.1.3.99", "net24-lsearch;DATA/nets", ST_FAIL, NULL},
    {ADDR, "X@Y.example", "x@y.example", ST_OK, NULL},
    {ADDR, "a@z.example", "+addrs", ST_OK, "*@z.example"},
    {ADDR, "a@y.example", "y.example", ST_OK, NULL},
    {ADDR, "a@q.y.example", "*.y.example", ST_OK, NULL},
    {ADDR, "a@y.example", "^a@", ST_OK, NULL},
    {ADDR, "ab@y.example", "*b@y.example", ST_OK, NULL},
    {ADDR, "a@y.example", "b@y.example", ST_FAIL, NULL},
    {ADDR, "", ":", ST_OK, NULL},
    {ADDR, "a@z.example", "!*@z.example : *", ST_FAIL, NULL},
    {ADDR, "u@dom.example", "lsearch*@;DATA/addrs", ST_OK, "domdefault"},
    {ADDR, "Bob@x.example", "+caseful : bob@x.example", ST_FAIL, NULL},
    {ADDR, "bob@x.example", "@@lsearch;DATA/lpbydomain", ST_OK, NULL},
    {ADDR, "eve@x.example", "@@lsearch;DATA/lpbydomain", ST_FAIL, NULL},
    {LP, "ABC", "abc", ST_OK, NULL},
    {LP, "ABC", "*BC", ST_OK, NULL},
    {LP, "al1", "+lps", ST_OK, "^al.*"},
    {LP, "carol", "+lps", ST_FAIL, NULL},
    {LP, "x", "!x : *", ST_FAIL, NULL},
};

static char *subst(const char *s)
{
    static char buf[2048];
    char *o = buf;
    while (*s && o < buf + sizeof buf - 512) {
        if (strncmp(s, "DATA", 4) == 0) {
            o += sprintf(o, "%s", data_dir);
            s += 4;
        } else
            *o++ = *s++;
    }
    *o = 0;
    return buf;
}

int main(void)
{
    state_init("match_test");
    data_dir = getenv("EXPAND_TEST_DATA");
    if (!data_dir)
        data_dir = "tests/unit/expand/data";
    static char absdir[4096];
    if (realpath(data_dir, absdir))   /* dsearch wants absolute names */
        data_dir = absdir;
    config *c;
    char *err;
    const char *text =
        "primary_hostname = unit.example\n"
        "domainlist doms = a.example : *.b.example\n"
        "domainlist neg = !a.neg : *.neg\n"
        "hostlist nets = 10.0.0.0/8 : 192.168.0.0/16\n"
        "addresslist addrs = x@y.example : *@z.example\n"
        "localpartlist lps = bob : ^al.*\n";
    if (config_load_string(text, "unit", NULL, &c, &err) != ST_OK) {
        fprintf(stderr, "config: %s\n", err);
        return 1;
    }
    config_set_current(c);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *r = &rows[i];
        char *list = strdup(subst(r->list));
        const char *value = NULL;
        char *e = NULL;
        status st;
        switch (r->k) {
        case DOM: st = match_domain(r->subject, list, ps.scratch, &value, &e); break;
        case IP: st = match_ip(r->subject, list, ps.scratch, &value, &e); break;
        case IPONLY: st = match_ip_only(r->subject, list, ps.scratch, &value, &e); break;
        case HOSTNAMED:
            ps.sender_host_name = "mail.x.example";
            st = match_ip(r->subject, list, ps.scratch, &value, &e);
            ps.sender_host_name = NULL;
            break;
        case ADDR: st = match_address(r->subject, list, true, ps.scratch, &value, &e); break;
        default: st = match_local_part(r->subject, list, true, ps.scratch, &value, &e); break;
        }
        CHECK(st == r->want, "row %zu: %s in [%s]: got %s want %s (%s)", i, r->subject, list,
              status_name(st), status_name(r->want), e ? e : "");
        if (st == ST_OK && r->value)
            CHECK_STR(value, r->value, r->subject);
        free(list);
        arena_reset(ps.scratch);
    }
    /* IP helpers */
    unsigned char a[16], n[16];
    int fa, fn, m;
    CHECK(ip_parse("192.0.2.1", a, &fa, NULL) && fa == 4, "parse v4");
    CHECK(ip_parse("2001:db8::/32", n, &fn, &m) && fn == 6 && m == 32, "parse v6 net");
    CHECK(!ip_parse("1.2.3", a, &fa, NULL), "short v4 rejected");
    CHECK(!ip_parse("1.2.3.4/8", a, &fa, NULL), "mask refused without mask pointer");
    CHECK(ip_parse("192.0.2.1", a, &fa, NULL) && ip_parse("192.0.2.0/24", n, &fn, &m) &&
          ip_in_net(a, fa, n, fn, m), "in net");
    CHECK(match_domain_pattern("x.example", "*.example", ps.scratch), "pattern");
    return check_report("match_test");
}

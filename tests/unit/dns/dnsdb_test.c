/* dnsdb_test: the dnsdb query syntax and output formats on a fake resolver. */
#include "check.h"
#include "core/gstr.h"
#include "lookup/dnsdb.h"

#include <strings.h>

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

typedef struct frr { const char *name; int type; const char *a, *b; unsigned n1, n2, n3;
                     const char *txt[3]; status st; dns_sec sec; } frr;

static const frr zone[] = {
    { "h.example", DNS_T_A, "192.0.2.1" },
    { "h.example", DNS_T_A, "192.0.2.2" },
    { "h.example", DNS_T_AAAA, "2001:db8::1" },
    { "h.example", DNS_T_MX, "mx1.example", NULL, 10 },
    { "h.example", DNS_T_MX, "mx2.example", NULL, 20 },
    { "h.example", DNS_T_TXT, NULL, NULL, 0, 0, 0, { "one", "two", "three" } },
    { "h.example", DNS_T_SPF, NULL, NULL, 0, 0, 0, { "v=spf1 ", "-all" } },
    { "h.example", DNS_T_NS, "ns.example" },
    { "example", DNS_T_NS, "ns.top" },
    { "example", DNS_T_SOA, "ns.top", "hm.top", 1, 2, 3 },
    { "_s._tcp.h.example", DNS_T_SRV, "t.example", NULL, 1, 2, 25 },
    { "_25._tcp.h.example", DNS_T_TLSA, "\x03\x01\x01\xab\xcd", NULL, 5 },
    { "1.2.0.192.in-addr.arpa", DNS_T_PTR, "p.example" },
    { "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", DNS_T_PTR, "p6.example" },
    { "c.example", DNS_T_CNAME, "h.example" },
    { "sec.example", DNS_T_A, "192.0.2.7", NULL, 0, 0, 0, { 0 }, ST_OK, DNS_SEC_SECURE },
    { "fail.example", DNS_T_A, NULL, NULL, 0, 0, 0, { 0 }, ST_DEFER },
    { "v6colon.example", DNS_T_AAAA, "2001:db8::2" },
    { "_client._smtp.good.example", DNS_T_SRV, "good.example", NULL, 1, 2, 0 },
    { "_client._smtp.corp.example", DNS_T_SRV, "corp.example", NULL, 1, 0, 1 },
    /* NODATA (not NXDOMAIN) is what lets the CSA search go up */
    { "_client._smtp.host.corp.example", DNS_T_TXT, NULL, NULL, 0, 0, 0, { "x" } },
    { "_client._smtp.nx.corp.example", DNS_T_SRV, NULL, NULL, 0, 0, 0, { 0 }, ST_DEFER },
};

static status fake(void *ctx, const char *name, int type, arena *a, dns_answer *out)
{
    memset(out, 0, sizeof *out);
    out->rr = arena_calloc(a, 8 * sizeof *out->rr);
    bool exists = false;
    for (size_t i = 0; i < sizeof zone / sizeof zone[0]; i++) {
        const frr *z = &zone[i];
        if (strcasecmp(z->name, name) != 0)
            continue;
        exists = true;
        if (z->type != type)
            continue;
        if (z->st == ST_DEFER) {
            out->why = "server failure";
            return out->st = ST_DEFER;
        }
        out->sec = z->sec;
        dns_rr *r = &out->rr[out->nrr++];
        r->type = type;
        r->text = z->a;
        r->text2 = z->b;
        r->pref = z->n1;
        r->weight = z->n2;
        r->port = z->n3;
        r->soa_serial = z->n1, r->soa_refresh = z->n2, r->soa_retry = z->n3;
        if (type == DNS_T_TLSA) {
            r->rdata = (const unsigned char *)z->a;
            r->rdlen = z->n1;
            r->tlsa_usage = 3, r->tlsa_selector = 1, r->tlsa_mtype = 1;
        }
        if (type == DNS_T_TXT || type == DNS_T_SPF) {
            int n = 0;
            while (n < 3 && z->txt[n])
                n++;
            size_t *lens = arena_alloc(a, 3 * sizeof *lens);
            r->rdlen = 0;
            for (int k = 0; k < n; k++) {
                lens[k] = strlen(z->txt[k]);
                r->rdlen += 1 + lens[k];
            }
            r->nstrings = n;
            r->strings = (const char **)z->txt;
            r->string_lens = lens;
        }
    }
    if (out->nrr)
        return out->st = ST_OK;
    out->nxdomain = !exists;
    return out->st = ST_NOTFOUND;
}

int main(void)
{
    arena *a = arena_new("test", true);
    struct { const char *q; status want; const char *result; } rows[] = {
        { "a=h.example", ST_OK, "192.0.2.1\n192.0.2.2" },
        { ">: a=h.example", ST_OK, "192.0.2.1:192.0.2.2" },
        { ">:a = h.example", ST_OK, "192.0.2.1:192.0.2.2" },
        { ">: aaaa=v6colon.example", ST_OK, "2001::db8::::2" },     /* list element */
        { ">; a+=h.example", ST_OK, "2001:db8::1;192.0.2.1;192.0.2.2" },
        { "mx=h.example", ST_OK, "10 mx1.example\n20 mx2.example" },
        { ">:,- mx=h.example", ST_OK, "10-mx1.example:20-mx2.example" },
        { "mxh=h.example", ST_OK, "mx1.example\nmx2.example" },
        { "h.example", ST_OK, "one" },                              /* txt default */
        { "txt=h.example", ST_OK, "one" },
        { ">\n, txt=h.example", ST_OK, "one two three" },
        { ">\n; txt=h.example", ST_OK, "onetwothree" },
        { ">\n,: txt=h.example", ST_OK, "one:two:three" },
        { "spf=h.example", ST_OK, "v=spf1 -all" },
        { "ns=h.example", ST_OK, "ns.example" },
        { "zns=x.y.h.example", ST_OK, "ns.example" },
        { "zns=x.example", ST_OK, "ns.top" },
        { "zns=nothing", ST_NOTFOUND, NULL },
        { "soa=a.b.example", ST_OK, "ns.top" },
        { ">:,; soa=example", ST_OK, "ns.top;hm.top;1;2;3;0;0" },
        { "srv=_s._tcp.h.example", ST_OK, "1 2 25 t.example" },
        { "tlsa=_25._tcp.h.example", ST_OK, "3 1 1 abcd" },
        { "ptr=192.0.2.1", ST_OK, "p.example" },
        { "ptr=2001:db8::1", ST_OK, "p6.example" },                /* not split */
        { "ptr=<;192.0.2.1;2001:db8::1", ST_OK, "p.example\np6.example" },
        { "cname=c.example", ST_OK, "h.example" },
        { "a=nx.example:h.example", ST_OK, "192.0.2.1\n192.0.2.2" },
        { "a=nx.example", ST_NOTFOUND, NULL },
        { "a=<;nx.example;h.example", ST_OK, "192.0.2.1\n192.0.2.2" },
        /* defer behaviours */
        { "a=fail.example:h.example", ST_OK, "192.0.2.1\n192.0.2.2" },
        { "defer_lax,a=fail.example:h.example", ST_OK, "192.0.2.1\n192.0.2.2" },
        { "defer_strict,a=fail.example:h.example", ST_DEFER, NULL },
        { "defer_never,a=fail.example", ST_NOTFOUND, NULL },
        { "a=fail.example:nx.example", ST_DEFER, NULL },
        { "defer_never, a=fail.example:nx.example", ST_NOTFOUND, NULL },
        /* dnssec */
        { "dnssec_strict,a=h.example", ST_DEFER, NULL },
        { "dnssec_strict,a=sec.example", ST_OK, "192.0.2.7" },
        { "dnssec_strict,defer_never,a=h.example", ST_NOTFOUND, NULL },
        { "dnssec_never,a=h.example", ST_OK, "192.0.2.1\n192.0.2.2" },
        { "retrans_2s,retry_3,a=h.example", ST_OK, "192.0.2.1\n192.0.2.2" },
        { "retrans_1m30s, dnssec_lax , a=h.example", ST_OK, "192.0.2.1\n192.0.2.2" },
        /* CSA */
        { "csa=good.example", ST_OK, "Y good.example" },
        { "csa=host.corp.example", ST_OK, "X corp.example" },
        { "csa=other.corp.example", ST_NOTFOUND, NULL },      /* NXDOMAIN: no search */
        { "csa=nx.corp.example", ST_DEFER, NULL },
        /* syntax errors defer, as Exim does */
        { "bogus=h.example", ST_DEFER, NULL },
        { "defer_sometimes,a=h.example", ST_DEFER, NULL },
        { "dnssec_maybe,a=h.example", ST_DEFER, NULL },
        { "retrans_0s,a=h.example", ST_DEFER, NULL },
        { "retrans_xs,a=h.example", ST_DEFER, NULL },
        { "retry_-1,a=h.example", ST_DEFER, NULL },
        { "defer_lax a=h.example", ST_DEFER, NULL },
        { ">", ST_DEFER, NULL },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        dnsdb_env env = { .dns = { fake, NULL } };
        char *res = NULL, *err = NULL;
        status st = dnsdb_run(&env, rows[i].q, a, &res, &err);
        CHECK(st == rows[i].want, "%s: got %s want %s (%s)", rows[i].q, status_name(st),
              status_name(rows[i].want), err ? err : "");
        if (rows[i].result && st == ST_OK)
            CHECK_STR(res, rows[i].result, rows[i].q);
    }
    dnsdb_env env = { .dns = { fake, NULL } };
    char *res, *err;
    dnsdb_run(&env, "a=sec.example", a, &res, &err);
    CHECK_STR(env.dnssec_auth, "yes", "dnssec yes");
    dnsdb_run(&env, "a=h.example", a, &res, &err);
    CHECK_STR(env.dnssec_auth, "no", "dnssec no");
    dnsdb_run(&env, "dnssec_never,a=h.example", a, &res, &err);
    CHECK(env.dnssec_auth == NULL, "dnssec never");

    /* a list long enough to exceed the result bound */
    gstr big;
    gstr_init(&big, a, 4096);
    gstr_cat(&big, ">\n; txt=");
    for (int i = 0; i < 120000; i++)
        gstr_cat(&big, i ? ":h.example" : "h.example");
    dnsdb_env benv = { .dns = { fake, NULL } };
    CHECK(dnsdb_run(&benv, big.s, a, &res, &err) == ST_DEFER && strstr(err, "longer"),
          "result bound");

    const char *end;
    CHECK(dnsdb_read_time("5s", ',', &end) == 5 && dnsdb_read_time("1m30s,", ',', &end) == 90 &&
          *end == ',' && dnsdb_read_time("2h", ',', &end) == 7200 &&
          dnsdb_read_time("7", ',', &end) == 7 && dnsdb_read_time("s", ',', &end) == -1 &&
          dnsdb_read_time("5x", ',', &end) == -1, "read_time");
    arena_free(a);
    return check_report("dnsdb_test");
}

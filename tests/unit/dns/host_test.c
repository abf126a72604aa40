/* host_test: host names with forward confirmation, HELO verification and
 * @mx_* matching on an injected resolver. */
#include "check.h"
#include "dns/host.h"

#include <strings.h>

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static const struct { const char *name; int type; const char *val; unsigned pref; bool defer; bool sec; } zone[] = {
    { "1.2.0.192.in-addr.arpa", DNS_T_PTR, "Good.Example" },
    { "1.2.0.192.in-addr.arpa", DNS_T_PTR, "alias.example" },
    { "1.2.0.192.in-addr.arpa", DNS_T_PTR, "liar.example" },
    { "good.example", DNS_T_A, "192.0.2.1" },
    { "alias.example", DNS_T_AAAA, "::ffff:192.0.2.1" },
    { "liar.example", DNS_T_A, "198.51.100.1" },
    { "2.2.0.192.in-addr.arpa", DNS_T_PTR, "liar.example" },
    { "3.2.0.192.in-addr.arpa", DNS_T_PTR, "bad_name.example" },
    { "bad_name.example", DNS_T_A, "192.0.2.3" },
    { "4.2.0.192.in-addr.arpa", DNS_T_PTR, NULL, 0, true },
    { "5.2.0.192.in-addr.arpa", DNS_T_PTR, "slow.example" },
    { "slow.example", DNS_T_A, NULL, 0, true },
    { "6.2.0.192.in-addr.arpa", DNS_T_PTR, "sec.example", 0, false, true },
    { "sec.example", DNS_T_A, "192.0.2.6", 0, false, true },
    { "helo.example", DNS_T_A, "192.0.2.9" },
    /* MX */
    { "prim.example", DNS_T_MX, "me.example", 10 },
    { "prim.example", DNS_T_MX, "other.example", 20 },
    { "sec.mx.example", DNS_T_MX, "other.example", 10 },
    { "sec.mx.example", DNS_T_MX, "me.example", 20 },
    { "none.example", DNS_T_MX, "other.example", 10 },
    { "tie.example", DNS_T_MX, "other.example", 10 },
    { "tie.example", DNS_T_MX, "me.example", 10 },
    { "deferred.example", DNS_T_MX, NULL, 0, true },
    { "me.example", DNS_T_A, "203.0.113.5" },
    { "other.example", DNS_T_A, "198.51.100.9" },
};

static status fake(void *ctx, const char *name, int type, arena *a, dns_answer *out)
{
    memset(out, 0, sizeof *out);
    out->rr = arena_calloc(a, 8 * sizeof *out->rr);
    out->sec = DNS_SEC_SECURE;
    for (size_t i = 0; i < sizeof zone / sizeof zone[0]; i++) {
        if (strcasecmp(zone[i].name, name) != 0 || zone[i].type != type)
            continue;
        if (zone[i].defer)
            return out->st = ST_DEFER;
        if (!zone[i].sec)
            out->sec = DNS_SEC_INSECURE;
        out->rr[out->nrr].type = type;
        out->rr[out->nrr].pref = zone[i].pref;
        out->rr[out->nrr++].text = zone[i].val;
    }
    return out->st = out->nrr ? ST_OK : ST_NOTFOUND;
}

int main(void)
{
    arena *a = arena_new("test", true);
    dns_iface d = { fake, NULL };
    host_name_result r;

    CHECK(host_ip_equal("192.0.2.1", "::ffff:192.0.2.1") && !host_ip_equal("192.0.2.1", "192.0.2.2")
          && host_ip_equal("2001:db8::1", "2001:DB8:0::1") && !host_ip_equal("x", "x"), "ip_equal");

    CHECK(host_name_lookup(&d, "192.0.2.1", a, &r) == ST_OK, "lookup .1");
    CHECK_STR(r.name, "good.example", "name lowercased");
    CHECK(r.aliases[0] && strcmp(r.aliases[0], "alias.example") == 0 && !r.aliases[1],
          "aliases: confirmed only");
    CHECK(!r.dnssec, "insecure");

    CHECK(host_name_lookup(&d, "192.0.2.2", a, &r) == ST_FAIL, "liar");
    CHECK_STR(r.msg, " (192.0.2.2 does not match any IP address for liar.example)", "msg");
    CHECK(host_name_lookup(&d, "192.0.2.3", a, &r) == ST_FAIL, "bad chars");
    CHECK_STR(r.msg, " (failed to find host name from IP address)", "msg2");
    CHECK(host_name_lookup(&d, "192.0.2.4", a, &r) == ST_DEFER, "ptr defer");
    CHECK(host_name_lookup(&d, "192.0.2.5", a, &r) == ST_DEFER, "forward defer");
    CHECK(host_name_lookup(&d, "192.0.2.7", a, &r) == ST_FAIL, "no ptr");
    CHECK(host_name_lookup(&d, "192.0.2.6", a, &r) == ST_OK && r.dnssec, "secure");

    bool sec;
    CHECK(host_verify_helo(&d, "[192.0.2.1]", "192.0.2.1", NULL, a, &sec) == ST_OK, "literal");
    CHECK(host_verify_helo(&d, "[192.0.2.1]", "::ffff:192.0.2.1", NULL, a, &sec) == ST_OK, "literal mapped");
    CHECK(host_verify_helo(&d, "[192.0.2.2]", "192.0.2.1", NULL, a, &sec) == ST_FAIL, "literal wrong");
    CHECK(host_verify_helo(&d, "GOOD.example", "192.0.2.1", NULL, a, &sec) == ST_OK, "by name");
    CHECK(host_verify_helo(&d, "alias.example", "192.0.2.1", NULL, a, &sec) == ST_OK, "by alias");
    CHECK(host_verify_helo(&d, "helo.example", "192.0.2.9", NULL, a, &sec) == ST_OK, "forward");
    CHECK(host_verify_helo(&d, "helo.example", "192.0.2.1", NULL, a, &sec) == ST_FAIL, "wrong");
    CHECK(host_verify_helo(&d, "helo.example", "192.0.2.4", NULL, a, &sec) == ST_DEFER, "defer");
    CHECK(host_verify_helo(&d, "anything", NULL, NULL, a, &sec) == ST_OK, "no ip");

    CHECK(host_name_has_ip(&d, "good.example", "192.0.2.1", a) == ST_OK, "has ip");
    CHECK(host_name_has_ip(&d, "good.example", "192.0.2.9", a) == ST_FAIL, "has not ip");
    CHECK(host_name_has_ip(&d, "slow.example", "192.0.2.9", a) == ST_DEFER, "has ip defer");

    const char *mine[] = { "203.0.113.5", NULL };
    host_mx_local loc = { .local_ips = mine };
    struct { const char *dom; enum host_mx_mode m; status want; } mx[] = {
        { "prim.example", HOST_MX_ANY, ST_OK }, { "prim.example", HOST_MX_PRIMARY, ST_OK },
        { "prim.example", HOST_MX_SECONDARY, ST_FAIL },
        { "sec.mx.example", HOST_MX_ANY, ST_OK }, { "sec.mx.example", HOST_MX_PRIMARY, ST_FAIL },
        { "sec.mx.example", HOST_MX_SECONDARY, ST_OK },
        { "tie.example", HOST_MX_PRIMARY, ST_OK }, { "tie.example", HOST_MX_SECONDARY, ST_FAIL },
        { "none.example", HOST_MX_ANY, ST_FAIL }, { "nomx.example", HOST_MX_ANY, ST_FAIL },
        { "deferred.example", HOST_MX_ANY, ST_DEFER },
    };
    for (size_t i = 0; i < sizeof mx / sizeof mx[0]; i++)
        CHECK(host_mx_match(&d, mx[i].dom, mx[i].m, &loc, a) == mx[i].want, "mx %s mode %d",
              mx[i].dom, mx[i].m);

    /* host-list items */
    const char *ifs[] = { "127.0.0.1", "203.0.113.5", NULL };
    struct { const char *ip, *item; status want; } hl[] = {
        { "192.0.2.1", "good.example", ST_OK },
        { "192.0.2.1", "GOOD.EXAMPLE", ST_OK },
        { "192.0.2.9", "good.example", ST_FAIL },
        { "192.0.2.9", "nowhere.example", ST_NOTFOUND },
        { "192.0.2.9", "slow.example", ST_DEFER },
        { "192.0.2.1", "*.example", ST_OK },
        { "192.0.2.1", "*alias.example", ST_OK },       /* aliases count */
        { "192.0.2.1", "*.other", ST_FAIL },
        { "192.0.2.1", "^good\\.", ST_OK },
        { "192.0.2.1", "^GOOD", ST_OK },                 /* caseless */
        { "192.0.2.1", "^(?-i)GOOD", ST_FAIL },
        { "192.0.2.1", "^(", ST_ERROR },
        { "192.0.2.2", "*.example", ST_NOTFOUND },       /* liar: no confirmed name */
        { "192.0.2.4", "*.example", ST_NOTFOUND },      /* reverse defer: unknown */
        { "192.0.2.1", "Good.Example", ST_OK },
        { "192.0.2.1", "good.example+x", ST_FAIL },       /* not plain: name compare */
        { "203.0.113.5", "@[]", ST_OK },
        { "192.0.2.1", "@[]", ST_FAIL },
        { "203.0.113.5", "@", ST_OK },                   /* primary_hostname me.example */
        { "192.0.2.1", "@", ST_FAIL },
        { "192.0.2.1", "192.0.2.1", ST_DECLINED },
        { "192.0.2.1", "10.0.0.0/8", ST_DECLINED },
        { "192.0.2.1", "lsearch;/etc/hosts", ST_DECLINED },
    };
    for (size_t i = 0; i < sizeof hl / sizeof hl[0]; i++) {
        host_ctx hc = { .dns = &d, .ip = hl[i].ip, .primary_hostname = "me.example",
                        .local_ips = ifs };
        char *err = NULL;
        status st = host_list_item(&hc, hl[i].item, a, &err);
        CHECK(st == hl[i].want, "host item %s for %s: got %s", hl[i].item, hl[i].ip,
              status_name(st));
    }
    host_ctx hc = { .dns = &d, .ip = "192.0.2.1" };
    const char *const *names;
    CHECK(host_ctx_names(&hc, a, &names) == ST_OK && strcmp(names[0], "good.example") == 0 &&
          strcmp(names[1], "alias.example") == 0 && !names[2], "ctx names");
    arena_free(a);
    return check_report("host_test");
}

/* dnslist_test: the dnslists condition against an injected resolver. */
#include "check.h"
#include "dns/dnslist.h"

#include <strings.h>

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* fake zone: name -> A list ("" = NXDOMAIN is the default), TXT, or DEFER */
static const struct { const char *name; const char *a[4]; const char *txt; bool defer; } zone[] = {
    { "2.0.0.127.bl.example", { "127.0.0.2" }, "listed: see http://bl" },
    { "3.0.0.127.bl.example", { "127.0.0.2", "127.0.0.3" }, NULL },
    { "4.0.0.127.bl.example", { "192.0.2.1" }, "outside 127/8" },
    { "5.0.0.127.bl.example", { "127.0.0.5" }, NULL },
    { "2.0.0.127.txt.example", { "127.0.0.9" }, "specific text" },
    { "6.0.0.127.bl.example", { NULL }, NULL, true },
    { "bad.domain.dbl.example", { "127.0.1.2" }, "bad domain" },
    { "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example",
      { "127.0.0.4" }, NULL },
};

static int calls;

static status fake(void *ctx, const char *name, int type, arena *a, dns_answer *out)
{
    memset(out, 0, sizeof *out);
    calls++;
    for (size_t i = 0; i < sizeof zone / sizeof zone[0]; i++) {
        if (strcasecmp(zone[i].name, name) != 0)
            continue;
        if (zone[i].defer)
            return out->st = ST_DEFER;
        out->rr = arena_calloc(a, 4 * sizeof *out->rr);
        if (type == DNS_T_A)
            for (int j = 0; j < 4 && zone[i].a[j]; j++) {
                out->rr[out->nrr].type = DNS_T_A;
                out->rr[out->nrr++].text = zone[i].a[j];
            }
        if (type == DNS_T_TXT && zone[i].txt) {
            static size_t len;
            len = strlen(zone[i].txt);
            out->rr[0].type = DNS_T_TXT;
            out->rr[0].nstrings = 1;
            out->rr[0].strings = (const char **)&zone[i].txt;
            out->rr[0].string_lens = &len;
            out->nrr = 1;
        }
        return out->st = out->nrr ? ST_OK : ST_NOTFOUND;
    }
    out->nxdomain = true;
    return out->st = ST_NOTFOUND;
}

int main(void)
{
    arena *a = arena_new("test", true);
    struct row {
        const char *list, *ip;
        status want;
        const char *domain, *matched, *text, *value;
    } rows[] = {
        { "bl.example", "127.0.0.2", ST_OK, "bl.example", "127.0.0.2",
          "listed: see http://bl", "127.0.0.2" },
        { "bl.example", "127.0.0.1", ST_FAIL },
        { "bl.example", NULL, ST_FAIL },
        { "nx.example : bl.example", "127.0.0.3", ST_OK, "bl.example", "127.0.0.3",
          NULL, "127.0.0.2, 127.0.0.3" },
        /* returned address outside 127/8: ignored */
        { "bl.example", "127.0.0.4", ST_FAIL },
        /* = any, == all, ! negation, & bitmask */
        { "bl.example=127.0.0.3", "127.0.0.3", ST_OK, "bl.example" },
        { "bl.example=127.0.0.4", "127.0.0.3", ST_FAIL },
        { "bl.example==127.0.0.3", "127.0.0.3", ST_FAIL },
        { "bl.example==127.0.0.3,127.0.0.2", "127.0.0.3", ST_OK },
        { "bl.example!=127.0.0.3", "127.0.0.3", ST_FAIL },
        { "bl.example!=127.0.0.9", "127.0.0.3", ST_OK },
        { "bl.example!==127.0.0.3", "127.0.0.3", ST_OK },
        { "bl.example!==127.0.0.3,127.0.0.2", "127.0.0.3", ST_FAIL },
        { "bl.example&0.0.0.1", "127.0.0.5", ST_OK },
        { "bl.example&0.0.0.2", "127.0.0.5", ST_FAIL },
        { "bl.example&0.0.0.2,0.0.0.4", "127.0.0.5", ST_OK },
        { "bl.example!&0.0.0.1", "127.0.0.3", ST_FAIL },
        { "bl.example=&0.0.0.2", "127.0.0.3", ST_OK },
        { "bl.example=&0.0.0.1", "127.0.0.3", ST_FAIL },
        { "bl.example!=&0.0.0.1", "127.0.0.3", ST_OK },
        { "bl.example!=&0.0.0.1,0.0.0.2", "127.0.0.3", ST_FAIL },
        /* explicit keys: IPs inverted, names not; sublists */
        { "bl.example/127.0.0.2", NULL, ST_OK, "bl.example", "127.0.0.2" },
        { "dbl.example/bad.domain", NULL, ST_OK, "dbl.example", "bad.domain", "bad domain",
          "127.0.1.2" },
        { "bl.example/<;127.0.0.1;127.0.0.5", "1.1.1.1", ST_OK, "bl.example", "127.0.0.5" },
        { "bl.example/127.0.0.1::127.0.0.5", NULL, ST_OK, "bl.example", "127.0.0.5" },
        { "bl.example/2001:db8::1", NULL, ST_FAIL },   /* ':' splits the item */
        { "<; bl.example/2001:db8::1", NULL, ST_FAIL },   /* the key sublist splits too */
        { "<| bl.example/<;2001:db8::1", NULL, ST_OK, "bl.example", "2001:db8::1" },
        { "bl.example", "2001:db8::1", ST_OK, "bl.example", "2001:0db8:0000:0000:0000:0000:0000:0001" },  /* $dnslist_matched: full form, as Exim */
        /* TXT from another domain: the first domain is the text domain */
        { "txt.example,bl.example=127.0.0.2", "127.0.0.2", ST_OK, "txt.example",
          "127.0.0.2", "specific text", "127.0.0.9" },
        { "txt.example,bl.example=127.0.0.7", "127.0.0.2", ST_FAIL },
        /* unknown results */
        { "bl.example", "127.0.0.6", ST_FAIL },
        { "+include_unknown : bl.example", "127.0.0.6", ST_OK, "bl.example", "127.0.0.6" },
        { "+defer_unknown : bl.example", "127.0.0.6", ST_DEFER },
        { "+defer_unknown : +exclude_unknown : bl.example", "127.0.0.6", ST_FAIL },
        { "+defer_unknown : bl.example : nx.example", "127.0.0.6", ST_DEFER },
        /* a later key's success overrides an earlier key's defer */
        { "+defer_unknown : bl.example/<;127.0.0.6;127.0.0.2", NULL, ST_OK },
        { "+defer_unknown : bl.example/<;127.0.0.6;127.0.0.1", NULL, ST_DEFER },
        { "+bogus_option : bl.example", "127.0.0.2", ST_OK },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        dnslist_ctx c = { .dns = { fake, NULL }, .host_ip = rows[i].ip };
        dnslist_result r = { 0 };
        status st = dnslist_check(&c, rows[i].list, a, &r);
        CHECK(st == rows[i].want, "%s [%s]: got %s want %s", rows[i].list,
              rows[i].ip ? rows[i].ip : "-", status_name(st), status_name(rows[i].want));
        if (st == ST_OK && rows[i].domain) {
            CHECK_STR(r.domain, rows[i].domain, rows[i].list);
            CHECK_STR(r.matched, rows[i].matched ? rows[i].matched : r.matched, rows[i].list);
            if (rows[i].text || rows[i].value) {
                CHECK_STR(r.text, rows[i].text, rows[i].list);
                CHECK_STR(r.value, rows[i].value, rows[i].list);
            }
        }
    }
    dnslist_item it;
    dnslist_parse_item("t.example,d.example!=&127.0.0.1,127.0.0.2/k1:k2", a, &it);
    CHECK_STR(it.domain, "d.example", "parse domain");
    CHECK_STR(it.domain_txt, "t.example", "parse txt");
    CHECK_STR(it.iplist, "127.0.0.1,127.0.0.2", "parse iplist");
    CHECK_STR(it.key, "k1:k2", "parse key");
    CHECK(it.negate && it.all && it.bitmask, "parse flags");
    arena_free(a);
    return check_report("dnslist_test");
}

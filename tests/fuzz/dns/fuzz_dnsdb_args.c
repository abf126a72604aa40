/* fuzz_dnsdb_args: the dnsdb query syntax and the dnslists list syntax on
 * arbitrary strings, against a resolver that answers every name from a
 * fixed table (A, TXT, MX...) so the formatting paths run too.
 * Input: first byte selects dnsdb (even) or dnslists (odd); the rest is the
 * query or the list. */
#include "dns/dnslist.h"
#include "lookup/dnsdb.h"

#include <stdint.h>
#include <string.h>

static status fake(void *ctx, const char *name, int type, arena *a, dns_answer *out)
{
    memset(out, 0, sizeof *out);
    size_t h = 0;
    for (const char *p = name; *p; p++)
        h = h * 31 + (unsigned char)*p;
    if (h % 7 == 0)
        return out->st = ST_DEFER;
    if (h % 5 == 0) {
        out->nxdomain = true;
        return out->st = ST_NOTFOUND;
    }
    out->sec = h % 3 == 0 ? DNS_SEC_SECURE : DNS_SEC_INSECURE;
    out->nrr = 1 + (int)(h % 3);
    out->rr = arena_calloc(a, (size_t)out->nrr * sizeof *out->rr);
    for (int i = 0; i < out->nrr; i++) {
        dns_rr *r = &out->rr[i];
        r->type = type;
        r->owner = name;
        r->pref = (unsigned)(h + i) % 3;
        r->weight = (unsigned)(h >> 3) % 5;
        r->port = (unsigned)(h >> 5) % 4;
        switch (type) {
        case DNS_T_A: r->text = i ? "127.0.0.2" : (h & 1 ? "127.0.0.3" : "192.0.2.1"); break;
        case DNS_T_AAAA: r->text = "2001:db8::1"; break;
        case DNS_T_TXT: case DNS_T_SPF: {
            static const char *strs[] = { "abc", "", "de:f" };
            static const size_t lens[] = { 3, 0, 4 };
            r->nstrings = 3;
            r->strings = strs;
            r->string_lens = lens;
            r->rdlen = 10;
            break;
        }
        case DNS_T_TLSA:
            r->rdata = (const unsigned char *)"\3\1\1\xab\xcd";
            r->rdlen = 5;
            break;
        case DNS_T_SOA: r->text = "ns.example"; r->text2 = "hm.example"; break;
        default: r->text = "target.example"; break;
        }
    }
    return out->st = ST_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static arena *a;
    if (!a)
        a = arena_new("fuzz", true);
    if (size < 1 || size > 4096)
        return 0;
    char *s = arena_strndup(a, (const char *)data + 1, size - 1);
    if (data[0] & 1) {
        dnslist_ctx c = { .dns = { fake, NULL }, .host_ip = data[0] & 2 ? "127.0.0.2" : "2001:db8::9" };
        dnslist_result r = { 0 };
        dnslist_check(&c, s, a, &r);
    } else {
        dnsdb_env e = { .dns = { fake, NULL } };
        char *res = NULL, *err = NULL;
        dnsdb_run(&e, s, a, &res, &err);
        if (res)
            (void)strlen(res);
    }
    arena_reset(a);
    return 0;
}

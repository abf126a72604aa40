/* fuzz_spf_record.c: SPF records and macro-strings from outside.  The
 * input is parsed as a record, expanded as a macro-string (domain-spec and
 * explanation rules), and evaluated by check_host() as the sender domain's
 * record against a resolver that answers every name (the input again for
 * TXT of names under example.com, fixed addresses, MX and PTR). */
#include "msgauth/policy/spf.h"
#include "msgauth/policy/spf_int.h"

#include <stdint.h>
#include <string.h>

typedef struct { const char *rec; size_t len; int queries; } fz;

static status lookup(void *ctx, const char *name, int type, arena *a, dns_answer *out)
{
    fz *f = ctx;
    memset(out, 0, sizeof *out);
    if (++f->queries > 200 || strstr(name, "nx")) {
        out->st = ST_NOTFOUND;
        out->nxdomain = true;
        return ST_NOTFOUND;
    }
    if (strstr(name, "tmp")) {
        out->st = ST_DEFER;
        return ST_DEFER;
    }
    dns_rr *rr = arena_calloc(a, sizeof *rr);
    out->rr = rr;
    out->nrr = 1;
    rr->type = type;
    switch (type) {
    case DNS_T_TXT:
        rr->text = f->rec;
        rr->text_len = f->len;
        break;
    case DNS_T_A: rr->text = "192.0.2.1"; break;
    case DNS_T_AAAA: rr->text = "2001:db8::1"; break;
    case DNS_T_MX: rr->text = "mx.example.com"; rr->pref = 10; break;
    case DNS_T_PTR: rr->text = "host.example.com"; break;
    default: out->nrr = 0; out->st = ST_NOTFOUND; return ST_NOTFOUND;
    }
    rr->text_len = type == DNS_T_TXT ? f->len : strlen(rr->text);
    out->st = ST_OK;
    return ST_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    arena *a = arena_new("fuzz", false);
    char *s = arena_memdup(a, data, size);
    char *err = NULL, *out = NULL;
    spf_record_check(s, a, &err);
    spf_macro_ctx m = { .sender = "a.b-c@example.com", .local = "a.b-c", .sender_dom = "example.com",
                        .domain = "example.com", .ip = "2001:db8::cb01", .helo = "h.example",
                        .receiver = "r.example", .now = 1 };
    spf_macro_expand(s, size, &m, a, &out, &err);
    spf_domain_spec_ok(s, size);
    m.in_exp = true;
    m.ip = "192.0.2.3";
    spf_macro_expand(s, size, &m, a, &out, &err);
    /* evaluate: the record (made to start like one) for every TXT lookup */
    char *rec = arena_printf(a, "v=spf1 %s", s);
    fz f = { rec, strlen(rec), 0 };
    dns_iface dns = { lookup, &f };
    spf_query q = { .ip = (size & 1) ? "192.0.2.1" : "2001:db8::1", .sender = "u.v@example.com",
                    .helo = "h.example", .receiver = "r.example", .now = 1,
                    .guess = SPF_DEFAULT_GUESS };
    spf_outcome o;
    spf_check(&q, &dns, a, &o);
    spf_received(&q, &o, a);
    spf_smtp_comment(&q, &o, s, a);
    /* hostile identities: the input's first line as sender, the rest as HELO */
    char *nl = memchr(s, '\n', size);
    if (nl) {
        *nl = 0;
        q.sender = s;
        q.helo = nl + 1;
        q.ip = "::ffff:192.0.2.1";
        spf_check(&q, &dns, a, &o);
        spf_received(&q, &o, a);
        spf_header_comment(&q, &o, a);
        spf_smtp_comment(&q, &o, NULL, a);
    }
    arena_free(a);
    return 0;
}

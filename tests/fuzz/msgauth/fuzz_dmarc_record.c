/* fuzz_dmarc_record.c: DMARC policy records from outside, parsed in both
 * modes and evaluated (tree walk, alignment, np existence checks) with a
 * resolver that returns the input as every _dmarc TXT record. */
#include "msgauth/policy/dmarc.h"
#include "msgauth/policy/dmarc_report.h"
#include "msgauth/policy/idna.h"

#include <stdint.h>
#include <string.h>

typedef struct { const char *rec; size_t len; } fz;

static status lookup(void *ctx, const char *name, int type, arena *a, dns_answer *out)
{
    fz *f = ctx;
    memset(out, 0, sizeof *out);
    if (type != DNS_T_TXT || strncmp(name, "_dmarc.", 7) != 0 || strstr(name, "none")) {
        out->st = ST_NOTFOUND;
        out->nxdomain = strstr(name, "ghost") != NULL;
        return ST_NOTFOUND;
    }
    dns_rr *rr = arena_calloc(a, sizeof *rr);
    rr->type = type;
    rr->text = f->rec;
    rr->text_len = f->len;
    out->rr = rr;
    out->nrr = 1;
    out->st = ST_OK;
    return ST_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    arena *a = arena_new("fuzz", false);
    char *s = arena_memdup(a, data, size);
    dmarc_record r;
    char *err;
    idna_to_alabel(s, a);                 /* From domains may be U-labels */
    dmarc_record_parse(s, size, DMARC_MODE_RFC7489, a, &r, &err);
    dmarc_record_parse(s, size, DMARC_MODE_RFC9989, a, &r, &err);
    fz f = { s, size };
    dns_iface dns = { lookup, &f };
    const char *froms[] = { "a.b.ghost.example.com", "example.org", "" };
    dmarc_dkim dk = { "b.example.com", "sel", "pass" };
    for (int mode = 0; mode < 2; mode++) {
        dmarc_input in = { .mode = mode, .from_domains = froms, .nfrom = 3, .nfrom_headers = 1,
                           .spf = SPF_PASS, .spf_domain = "x.example.org", .dkim = &dk,
                           .ndkim = 1, .pct_roll = (int)(size % 100) };
        dmarc_result res;
        dmarc_evaluate(&in, &dns, a, &res);
        dmarc_authres_text(&res, a);
        dmarc_hist h;
        dmarc_hist_from_result(&h, &res, &in, "job", "rep", 1, "192.0.2.1", "x.example.org", a);
        dmarc_hist_format(&h, a);
        if (dmarc_fail_wanted(&res, &in)) {
            dmarc_fail_opts fo = { .forensic_sender = "f@r.example",
                                   .to = dmarc_uri_mailto(res.rec.ruf, a), .reporter = "r.example",
                                   .ip = "192.0.2.1", .mfrom = "x@x.example.org", .now = 1,
                                   .headers = s, .headers_len = size };
            dmarc_fail_build(&res, &fo, a);
        }
    }
    arena_free(a);
    return 0;
}

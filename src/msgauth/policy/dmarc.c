/* dmarc.c: DMARC evaluation: policy discovery, identifier alignment,
 * policy selection (p, sp, np), pct= and t= handling, Exim's outcomes. */
#include "msgauth/policy/dmarc.h"
#include "msgauth/policy/dmarc_int.h"
#include "msgauth/policy/spf_int.h"
#include "msgauth/policy/idna.h"
#include "core/gstr.h"
#include "core/list.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

const char *dmarc_outcome_name(dmarc_outcome o)
{
    static const char *const n[] = {
        [DMARC_ACCEPT] = "accept", [DMARC_REJECT] = "reject",
        [DMARC_QUARANTINE] = "quarantine", [DMARC_NONE] = "none",
        [DMARC_NORECORD] = "norecord", [DMARC_NOFROM] = "nofrom",
        [DMARC_TEMPERROR] = "temperror", [DMARC_OFF] = "off",
    };
    return (unsigned)o <= DMARC_OFF ? n[o] : "temperror";
}

bool dmarc_outcome_in_list(const char *list, dmarc_outcome o, arena *scratch)
{
    int sep = 0;
    char *item;
    while ((item = list_next(&list, &sep, scratch))) {
        bool neg = false;
        while (*item == '!') {
            neg = !neg;
            item++;
        }
        bool m = strcmp(item, "*") == 0 || strcasecmp(item, dmarc_outcome_name(o)) == 0;
        if (m != neg)
            return true;
    }
    return false;
}

/* $dmarc_status_text: the labels Exim users see (and match in logs). */
const char *dmarc_status_label(dmarc_outcome o)
{
    switch (o) {
    case DMARC_ACCEPT: return "Accept";
    case DMARC_REJECT: return "Reject";
    case DMARC_QUARANTINE: return "Quarantine";
    case DMARC_NONE: return "None, Accept";
    case DMARC_NORECORD: return "No DMARC record";
    case DMARC_NOFROM: return "No From: domain found";
    case DMARC_OFF: return "DMARC verification disabled";
    default: return "Internal Policy Error";
    }
}

static char *lower_dup(arena *a, const char *s)
{
    char *o = arena_strdup(a, s);
    size_t l = strlen(o);
    if (l && o[l - 1] == '.')
        o[--l] = 0;
    for (char *p = o; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return o;
}

typedef struct ectx {
    const dmarc_input *in;
    const dns_iface *dns;
    arena *a;
    bool temp;          /* a DNS failure during alignment */
} ectx;

/* Does id align with the From domain (whose organizational domain is org)? */
static bool aligned(ectx *c, const char *id, const char *from, const char *org, bool strict)
{
    if (!id || !*id || !(id = idna_to_alabel(id, c->a)))
        return false;
    char *x = lower_dup(c->a, id);
    if (strcmp(x, from) == 0)
        return true;
    if (strict)
        return false;
    /* quick reject: relaxed alignment needs a common suffix at a label boundary */
    size_t xl = strlen(x), ol = strlen(org);
    if (xl < ol || strcmp(x + xl - ol, org) != 0 || (xl > ol && x[xl - ol - 1] != '.'))
        return false;
    const char *xo;
    if (dmarc_org_domain(x, c->in->mode, c->in->psl, c->dns, c->a, &xo) != ST_OK) {
        c->temp = true;
        return false;
    }
    return strcmp(xo, org) == 0;
}

/* RFC 9091 / RFC 9989: no A, AAAA or MX records at the name. */
static bool nonexistent(ectx *c, const char *d)
{
    static const int types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_MX };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        dns_answer ans;
        memset(&ans, 0, sizeof ans);
        status st = c->dns->lookup(c->dns->ctx, d, types[i], c->a, &ans);
        if (st == ST_OK && ans.nrr > 0)
            return false;
        if (st == ST_NOTFOUND && ans.nxdomain)
            return true;
        if (st == ST_DEFER)
            return false;       /* unknown: do not apply the stricter np */
    }
    return true;
}

static dmarc_pol lower_one(dmarc_pol p)
{
    return p == DMARC_POL_REJECT ? DMARC_POL_QUARANTINE
         : p == DMARC_POL_QUARANTINE ? DMARC_POL_NONE : p;
}

static void eval_one(ectx *c, const char *from, dmarc_result *r)
{
    const dmarc_input *in = c->in;
    arena *a = c->a;
    memset(r, 0, sizeof *r);
    r->from_domain = from;
    r->used_domain = "";
    r->domain_policy = "";
    r->org_domain = "";
    bool clean = true;                 /* letters, digits, '-', '_', '.' only */
    for (const char *p = from; *p; p++)
        clean &= (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                 *p == '_' || *p == '.';
    if (!clean || !spf_domain_ok(from, true)) {
        r->outcome = DMARC_NOFROM;
        r->ar = "permerror";
        r->ar_reason = "From domain is not a valid domain name";
        r->detail = arena_printf(a, "From domain \"%s\" is not a valid domain", from);
        return;
    }
    const char *org = NULL;
    if (in->mode == DMARC_MODE_RFC7489)
        dmarc_org_domain(from, in->mode, in->psl, c->dns, a, &org);

    /* policy discovery */
    dmarc_record rec;
    char *err = NULL;
    dmarc_fetch f = DMARC_F_NONE;
    const char *targets[DMARC_WALK_MAX];
    int nt;
    if (in->mode == DMARC_MODE_RFC7489) {
        targets[0] = from;
        nt = 1;
        if (strcmp(org, from) != 0)
            targets[nt++] = org;
    } else {
        nt = dmarc_walk_targets(from, targets, DMARC_WALK_MAX);
    }
    const char *used = NULL;
    for (int i = 0; i < nt; i++) {
        f = dmarc_fetch_record(targets[i], in->mode, c->dns, a, &rec, &err);
        if (f != DMARC_F_NONE) {
            used = targets[i];
            break;
        }
    }
    if (f == DMARC_F_TEMP) {
        r->outcome = DMARC_TEMPERROR;
        r->ar = "temperror";
        r->ar_reason = err;
        r->detail = arena_printf(a, "Temporary error looking up the DMARC record: %s", err);
        return;
    }
    if (f == DMARC_F_PERM) {
        r->outcome = DMARC_NORECORD;
        r->ar = "permerror";
        r->used_domain = used;
        r->ar_reason = arena_printf(a, "syntax error in DMARC record of %s: %s", used, err);
        r->detail = arena_printf(a, "Invalid DMARC record at _dmarc.%s: %s", used, err);
        return;
    }
    if (f == DMARC_F_NOPOLICY) {
        r->outcome = DMARC_NORECORD;
        r->ar = "none";
        r->used_domain = used;
        r->detail = arena_printf(a, "DMARC record of %s has no usable policy", used);
        return;
    }
    if (f == DMARC_F_NONE) {
        r->outcome = DMARC_NORECORD;
        r->ar = "none";
        r->detail = arena_printf(a, "No DMARC record for %s", from);
        return;
    }
    r->have_record = true;
    r->rec = rec;
    r->used_domain = used;
    if (!org && dmarc_org_domain(from, in->mode, in->psl, c->dns, a, &org) != ST_OK) {
        r->outcome = DMARC_TEMPERROR;
        r->ar = "temperror";
        r->ar_reason = "DNS failure finding the organizational domain";
        r->detail = "Temporary error finding the organizational domain";
        return;
    }
    r->org_domain = org;

    /* alignment */
    for (int i = 0; i < in->ndkim && !r->dkim_aligned; i++)
        if (in->dkim[i].result && strcasecmp(in->dkim[i].result, "pass") == 0)
            r->dkim_aligned = aligned(c, in->dkim[i].domain, from, org, rec.adkim_strict);
    if (in->spf == SPF_PASS)
        r->spf_aligned = aligned(c, in->spf_domain, from, org, rec.aspf_strict);
    else if (in->spf_domain)
        r->spf_aligned_fail = aligned(c, in->spf_domain, from, org, rec.aspf_strict);
    for (int i = 0; i < in->ndkim && !r->dkim_aligned && !r->dkim_aligned_fail; i++)
        if (!in->dkim[i].result || strcasecmp(in->dkim[i].result, "pass") != 0)
            if (aligned(c, in->dkim[i].domain, from, org, rec.adkim_strict))
                r->dkim_aligned_fail = &in->dkim[i];

    /* policy selection */
    dmarc_pol pol = rec.p;
    if (strcmp(used, from) != 0 && strcmp(from, org) != 0) {
        if (rec.np != DMARC_POL_UNSET && nonexistent(c, from))
            pol = rec.np;
        else if (rec.sp != DMARC_POL_UNSET)
            pol = rec.sp;
    }
    r->applied = pol;
    r->domain_policy = dmarc_pol_name(pol);

    if (r->dkim_aligned || r->spf_aligned) {
        r->outcome = DMARC_ACCEPT;
        r->ar = "pass";
        r->disposition = DMARC_POL_NONE;
        r->detail = arena_printf(a, "Accepted: %s aligned with the From domain %s",
                                      r->dkim_aligned && r->spf_aligned ? "DKIM and SPF"
                                      : r->dkim_aligned ? "DKIM" : "SPF", from);
        r->ar_reason = strcmp(used, from) == 0 ? "From domain record"
                                                : arena_printf(a, "record of %s", used);
        return;
    }
    if (c->temp) {
        r->outcome = DMARC_TEMPERROR;
        r->ar = "temperror";
        r->ar_reason = "DNS failure checking alignment";
        r->detail = "Temporary error checking identifier alignment";
        return;
    }
    dmarc_pol disp = pol;
    if (in->mode == DMARC_MODE_RFC7489 && rec.pct < 100 && in->pct_roll >= 0 &&
        in->pct_roll >= rec.pct) {
        disp = lower_one(pol);
        r->sampled_out = true;
    }
    if (in->mode == DMARC_MODE_RFC9989 && rec.testing) {
        disp = lower_one(pol);
        r->sampled_out = true;
    }
    r->disposition = disp;
    r->ar = "fail";
    r->ar_reason = strcmp(used, from) == 0 ? "From domain record"
                                            : arena_printf(a, "record of %s", used);
    r->outcome = disp == DMARC_POL_REJECT ? DMARC_REJECT
               : disp == DMARC_POL_QUARANTINE ? DMARC_QUARANTINE : DMARC_NONE;
    r->detail = arena_printf(a, "Failed: neither SPF nor DKIM aligned with %s; "
                                  "policy %s%s", from, dmarc_pol_name(pol),
                                  r->sampled_out ? arena_printf(a, " (applied as %s)",
                                                                dmarc_pol_name(disp)) : "");
}

/* How decisive a per-domain result is when a message has several From
 * domains: the strictest disposition wins. */
static int severity(const dmarc_result *r)
{
    switch (r->outcome) {
    case DMARC_REJECT: return 7;
    case DMARC_QUARANTINE: return 6;
    case DMARC_TEMPERROR: return 5;
    case DMARC_NONE: return 4;
    case DMARC_NOFROM: return 3;
    case DMARC_NORECORD: return strcmp(r->ar, "permerror") == 0 ? 2 : 0;
    case DMARC_ACCEPT: return 1;
    default: return 0;
    }
}

void dmarc_evaluate(const dmarc_input *in, const dns_iface *dns, arena *a, dmarc_result *out)
{
    ectx c = { .in = in, .dns = dns, .a = a };
    const char *doms[DMARC_MAX_FROM];
    int nd = 0;
    for (int i = 0; i < in->nfrom && nd < DMARC_MAX_FROM; i++) {
        if (!in->from_domains[i] || !*in->from_domains[i])
            continue;
        /* RFC 9989: U-labels are looked up and compared as A-labels */
        const char *al = idna_to_alabel(in->from_domains[i], a);
        char *d = lower_dup(a, al ? al : "");
        if (!*d)
            continue;
        bool dup = false;
        for (int j = 0; j < nd; j++)
            dup |= strcmp(doms[j], d) == 0;
        if (!dup)
            doms[nd++] = d;
    }
    if (nd == 0 || in->nfrom_headers == 0) {
        memset(out, 0, sizeof *out);
        out->outcome = DMARC_NOFROM;
        out->ar = "permerror";
        out->ar_reason = in->nfrom_headers == 0 ? "no From header" : "no domain in From header";
        out->detail = "Unable to determine the From domain";
        out->from_domain = out->used_domain = out->domain_policy = out->org_domain = "";
        out->status_text = dmarc_status_label(out->outcome);
        out->mode = in->mode;
        return;
    }
    dmarc_result best;
    for (int i = 0; i < nd; i++) {
        dmarc_result r;
        c.temp = false;
        eval_one(&c, doms[i], &r);
        if (i == 0 || severity(&r) > severity(&best))
            best = r;
    }
    *out = best;
    out->mode = in->mode;
    out->status_text = dmarc_status_label(out->outcome);
}

char *dmarc_authres_text(const dmarc_result *r, arena *a)
{
    gstr g;
    gstr_init(&g, a, 128);
    gstr_printf(&g, "dmarc=%s", r->ar);
    if (r->ar_reason && *r->ar_reason) {
        gstr_cat(&g, " (");
        for (const char *p = r->ar_reason; *p; p++)   /* comment-safe */
            gstr_catc(&g, *p == '(' || *p == ')' || *p == '\\' || (unsigned char)*p < 0x20 ? ' ' : *p);
        gstr_catc(&g, ')');
    }
    if (r->from_domain && *r->from_domain)
        gstr_printf(&g, " header.from=%s", r->from_domain);
    if (r->have_record) {
        gstr_printf(&g, " policy.dmarc=%s", dmarc_pol_name(r->applied));
        if (r->mode == DMARC_MODE_RFC9989) {       /* RFC 9989's polrec ptype */
            gstr_printf(&g, " polrec.p=%s", dmarc_pol_name(r->rec.p));
            if (r->used_domain && strcmp(r->used_domain, r->from_domain) != 0)
                gstr_printf(&g, " polrec.domain=%s", r->used_domain);
        }
    }
    return g.s;
}

/* dmarc_record.c: DMARC policy record parsing (RFC 7489 section 6.3 and
 * RFC 9989's tag set), the organizational domain (PSL or DNS tree walk). */
#include "msgauth/policy/dmarc.h"
#include "msgauth/policy/dmarc_int.h"
#include "core/gstr.h"

#include <ctype.h>
#include <libpsl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *dmarc_pol_name(dmarc_pol p)
{
    switch (p) {
    case DMARC_POL_NONE: return "none";
    case DMARC_POL_QUARANTINE: return "quarantine";
    case DMARC_POL_REJECT: return "reject";
    default: return "";
    }
}

static dmarc_pol pol_parse(const char *v)
{
    if (strcasecmp(v, "none") == 0) return DMARC_POL_NONE;
    if (strcasecmp(v, "quarantine") == 0) return DMARC_POL_QUARANTINE;
    if (strcasecmp(v, "reject") == 0) return DMARC_POL_REJECT;
    return DMARC_POL_UNSET;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = 0;
    return s;
}

/* Is there at least one syntactically plausible URI in a rua/ruf list? */
static bool has_uri(const char *v)
{
    return v && strchr(v, ':') != NULL;
}

status dmarc_record_parse(const char *s, size_t n, dmarc_mode mode, arena *a,
                          dmarc_record *r, char **err)
{
    memset(r, 0, sizeof *r);
    r->pct = 100;
    r->psd = 'u';
    r->ri = 86400;
    if (memchr(s, 0, n))
        return ST_NOTFOUND;
    char *buf = arena_strndup(a, s, n);
    char *save = NULL;
    bool first = true, have_p = false, bad_p = false;
    for (char *tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        char *t = trim(tok);
        if (!*t) {
            if (first)
                return ST_NOTFOUND;
            continue;
        }
        char *eq = strchr(t, '=');
        if (first) {
            /* dmarc-version = "v" *WSP "=" *WSP "DMARC1" */
            if (!eq)
                return ST_NOTFOUND;
            *eq = 0;
            if (strcasecmp(trim(t), "v") != 0 || strcmp(trim(eq + 1), "DMARC1") != 0)
                return ST_NOTFOUND;
            first = false;
            continue;
        }
        if (!eq) {
            *err = arena_printf(a, "tag without value: \"%s\"", t);
            return ST_FAIL;
        }
        *eq = 0;
        char *name = trim(t), *val = trim(eq + 1);
        for (char *p = name; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_') {
                *err = arena_printf(a, "invalid tag name \"%s\"", name);
                return ST_FAIL;
            }
        if (strcasecmp(name, "p") == 0) {
            have_p = true;
            r->p = pol_parse(val);
            bad_p = r->p == DMARC_POL_UNSET;
        } else if (strcasecmp(name, "sp") == 0) {
            r->sp = pol_parse(val);
        } else if (strcasecmp(name, "np") == 0) {
            r->np = pol_parse(val);
        } else if (strcasecmp(name, "adkim") == 0) {
            r->adkim_strict = strcasecmp(val, "s") == 0;
        } else if (strcasecmp(name, "aspf") == 0) {
            r->aspf_strict = strcasecmp(val, "s") == 0;
        } else if (strcasecmp(name, "pct") == 0 && mode == DMARC_MODE_RFC7489) {
            char *end;
            long v = strtol(val, &end, 10);
            if (*val && !*end && v >= 0 && v <= 100)
                r->pct = (int)v;
        } else if (strcasecmp(name, "t") == 0 && mode == DMARC_MODE_RFC9989) {
            r->testing = strcasecmp(val, "y") == 0;
        } else if (strcasecmp(name, "psd") == 0 && mode == DMARC_MODE_RFC9989) {
            if (strcasecmp(val, "y") == 0 || strcasecmp(val, "n") == 0)
                r->psd = (char)tolower((unsigned char)val[0]);
        } else if (strcasecmp(name, "rua") == 0) {
            r->rua = val;
        } else if (strcasecmp(name, "ruf") == 0) {
            r->ruf = val;
        } else if (strcasecmp(name, "fo") == 0) {
            r->fo = val;
        } else if (strcasecmp(name, "rf") == 0) {
            r->rf = val;
        } else if (strcasecmp(name, "ri") == 0) {
            char *end;
            unsigned long v = strtoul(val, &end, 10);
            if (*val && !*end && v > 0 && v < 0xffffffffUL)
                r->ri = (unsigned)v;
        }
        /* unknown tags are ignored (RFC 7489 6.3) */
    }
    if (first)
        return ST_NOTFOUND;
    if (!have_p || bad_p) {
        /* RFC 7489 6.6.3: usable only with a reporting URI, then as p=none.
         * RFC 9989: a missing or unknown p is read as p=none. */
        if (mode == DMARC_MODE_RFC7489 && !has_uri(r->rua))
            return ST_DECLINED;
        r->p = DMARC_POL_NONE;
    }
    return ST_OK;
}

/* ---- DNS --------------------------------------------------------------- */

dmarc_fetch dmarc_fetch_record(const char *domain, dmarc_mode mode, const dns_iface *dns,
                               arena *a, dmarc_record *rec, char **err)
{
    const char *name = arena_printf(a, "_dmarc.%s", domain);
    dns_answer ans;
    memset(&ans, 0, sizeof ans);
    status st = dns->lookup(dns->ctx, name, DNS_T_TXT, a, &ans);
    if (st == ST_DEFER) {
        *err = arena_printf(a, "DNS failure looking up %s", name);
        return DMARC_F_TEMP;
    }
    if (st != ST_OK)
        return DMARC_F_NONE;
    int found = 0;
    status pst = ST_NOTFOUND;
    char *perr = NULL;
    for (int i = 0; i < ans.nrr; i++) {
        const dns_rr *rr = &ans.rr[i];
        if (!rr->text)
            continue;
        dmarc_record r;
        char *e = NULL;
        status s1 = dmarc_record_parse(rr->text, rr->text_len, mode, a, &r, &e);
        if (s1 == ST_NOTFOUND)
            continue;                     /* not a DMARC record: discarded */
        if (++found == 1) {
            pst = s1;
            *rec = r;
            perr = e;
        }
    }
    if (found != 1)
        return DMARC_F_NONE;     /* none, or several: all ignored */
    if (pst == ST_FAIL) {
        *err = perr;
        return DMARC_F_PERM;
    }
    if (pst == ST_DECLINED)
        return DMARC_F_NOPOLICY;
    return pst == ST_OK ? DMARC_F_FOUND : DMARC_F_NONE;
}

static int count_labels(const char *d)
{
    int n = 1;
    for (; *d; d++)
        n += *d == '.';
    return n;
}

/* The rightmost k labels of d. */
static const char *last_labels(const char *d, int k)
{
    int n = count_labels(d);
    while (n > k) {
        d = strchr(d, '.') + 1;
        n--;
    }
    return d;
}

int dmarc_walk_targets(const char *domain, const char **out, int max)
{
    int n = 0, x = count_labels(domain);
    if (max < 1)
        return 0;
    out[n++] = domain;
    const char *t = x >= 5 ? last_labels(domain, 4) : (x > 1 ? strchr(domain, '.') + 1 : NULL);
    while (t && n < max) {
        out[n++] = t;
        const char *dot = strchr(t, '.');
        t = dot ? dot + 1 : NULL;
    }
    return n;
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

status dmarc_org_domain(const char *domain, dmarc_mode mode, const void *psl,
                        const dns_iface *dns, arena *a, const char **org)
{
    char *d = lower_dup(a, domain);
    if (mode == DMARC_MODE_RFC7489) {
        const char *reg = dmarc_psl_registrable(psl, d, a);
        *org = reg ? reg : d;
        return ST_OK;
    }
    /* RFC 9989 tree walk: psd=n marks the organizational domain, psd=y a
     * public suffix domain (the organizational domain is one label below
     * it); otherwise the record with the fewest labels; else the domain. */
    const char *targets[DMARC_WALK_MAX];
    int nt = dmarc_walk_targets(d, targets, DMARC_WALK_MAX);
    const char *shortest = NULL;
    for (int i = 0; i < nt; i++) {
        dmarc_record r;
        char *err;
        dmarc_fetch f = dmarc_fetch_record(targets[i], mode, dns, a, &r, &err);
        if (f == DMARC_F_TEMP)
            return ST_DEFER;
        if (f != DMARC_F_FOUND)
            continue;
        if (r.psd == 'n') {
            *org = targets[i];
            return ST_OK;
        }
        if (r.psd == 'y') {
            int k = count_labels(targets[i]) + 1;
            *org = k <= count_labels(d) ? last_labels(d, k) : d;
            return ST_OK;
        }
        shortest = targets[i];
    }
    *org = shortest ? shortest : d;
    return ST_OK;
}

void *dmarc_psl_load(const char *path, char **err, arena *a)
{
    psl_ctx_t *p = path ? psl_load_file(path) : psl_latest(NULL);
    if (!p && !path)
        return (void *)psl_builtin();
    if (!p)
        *err = arena_printf(a, "cannot load public suffix list %s", path);
    return p;
}

const char *dmarc_psl_registrable(const void *psl, const char *domain, arena *a)
{
    const psl_ctx_t *ctx = psl ? psl : psl_builtin();
    if (!ctx || !domain || !*domain || domain[0] == '.')
        return NULL;
    char *lc = NULL;
    if (psl_str_to_utf8lower(domain, "utf-8", NULL, &lc) != PSL_SUCCESS || !lc)
        return NULL;
    const char *reg = psl_registrable_domain(ctx, lc);
    const char *out = reg ? arena_strdup(a, reg) : NULL;
    psl_free_string(lc);
    return out;
}

void dmarc_psl_free(void *psl)
{
    if (psl && psl != psl_builtin())
        psl_free(psl);
}

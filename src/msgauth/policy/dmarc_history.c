/* dmarc_history.c: the per-message DMARC history record (the format Exim
 * writes to dmarc_history_file for OpenDMARC's import tools): build it
 * from an evaluation, write it, and read a file of them back. */
#include "msgauth/policy/dmarc_report.h"
#include "core/gstr.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int ares_of(const char *r)
{
    static const struct { const char *n; int v; } t[] = {
        { "pass", ARES_PASS }, { "softfail", ARES_SOFTFAIL }, { "neutral", ARES_NEUTRAL },
        { "temperror", ARES_TEMPERROR }, { "permerror", ARES_PERMERROR },
        { "none", ARES_NONE }, { "fail", ARES_FAIL }, { "invalid", ARES_PERMERROR },
    };
    for (size_t i = 0; r && i < sizeof t / sizeof t[0]; i++)
        if (strcasecmp(r, t[i].n) == 0)
            return t[i].v;
    return ARES_UNKNOWN;
}

static int spf_ares(spf_result s)
{
    switch (s) {
    case SPF_PASS: return ARES_PASS;
    case SPF_FAIL: return ARES_FAIL;
    case SPF_SOFTFAIL: return ARES_SOFTFAIL;
    case SPF_NEUTRAL: return ARES_NEUTRAL;
    case SPF_NONE: return ARES_NONE;
    case SPF_TEMPERROR: return ARES_TEMPERROR;
    case SPF_PERMERROR: return ARES_PERMERROR;
    }
    return ARES_UNKNOWN;
}

static int pol_char(dmarc_pol p)
{
    return p == DMARC_POL_NONE ? 'n' : p == DMARC_POL_QUARANTINE ? 'q'
         : p == DMARC_POL_REJECT ? 'r' : 0;
}

/* A value safe for one "key value" line: no spaces or control characters. */
static const char *word(arena *a, const char *s)
{
    if (!s || !*s)
        return "-";
    char *o = arena_strdup(a, s);
    for (char *p = o; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            *p = '_';
    return o;
}

void dmarc_hist_from_result(dmarc_hist *h, const dmarc_result *r, const dmarc_input *in,
                            const char *job, const char *reporter, long long received,
                            const char *ip, const char *mfrom_domain, arena *a)
{
    memset(h, 0, sizeof *h);
    h->job = word(a, job);
    h->reporter = word(a, reporter);
    h->received = received;
    h->ipaddr = word(a, ip);
    h->from = word(a, r->from_domain);
    h->mfrom = word(a, mfrom_domain);
    h->spf = spf_ares(in->spf);
    for (int i = 0; i < in->ndkim && h->ndkim < DMARC_HIST_MAX_DKIM; i++) {
        dmarc_hist_dkim *d = &h->dkim[h->ndkim++];
        d->domain = word(a, in->dkim[i].domain);
        d->selector = word(a, in->dkim[i].selector);
        d->result = ares_of(in->dkim[i].result);
    }
    h->pdomain = word(a, r->used_domain);
    h->policy = !r->have_record ? HIST_POLICY_ABSENT
              : r->outcome == DMARC_ACCEPT ? HIST_POLICY_PASS
              : r->outcome == DMARC_REJECT ? HIST_POLICY_REJECT
              : r->outcome == DMARC_QUARANTINE ? HIST_POLICY_QUARANTINE : HIST_POLICY_NONE;
    if (r->have_record && r->rec.rua) {
        char *list = arena_strdup(a, r->rec.rua), *save = NULL;
        for (char *u = strtok_r(list, ",", &save); u && h->nrua < DMARC_HIST_MAX_RUA;
             u = strtok_r(NULL, ",", &save)) {
            while (isspace((unsigned char)*u))
                u++;
            if (*u)
                h->rua[h->nrua++] = word(a, u);
        }
    }
    h->pct = r->have_record ? r->rec.pct : 100;
    h->adkim = r->rec.adkim_strict ? 's' : 'r';
    h->aspf = r->rec.aspf_strict ? 's' : 'r';
    h->p = pol_char(r->rec.p);
    h->sp = pol_char(r->rec.sp);
    h->align_dkim = r->dkim_aligned ? HIST_ALIGN_PASS : HIST_ALIGN_FAIL;
    h->align_spf = r->spf_aligned ? HIST_ALIGN_PASS : HIST_ALIGN_FAIL;
    h->action = r->outcome == DMARC_REJECT ? HIST_ACTION_REJECT
              : r->outcome == DMARC_QUARANTINE ? HIST_ACTION_QUARANTINE
              : r->outcome == DMARC_TEMPERROR ? HIST_ACTION_TEMPFAIL : HIST_ACTION_ACCEPT;
}

char *dmarc_hist_format(const dmarc_hist *h, arena *a)
{
    gstr g;
    gstr_init(&g, a, 512);
    gstr_printf(&g, "job %s\nreporter %s\nreceived %lld\nipaddr %s\nfrom %s\nmfrom %s\n",
                h->job, h->reporter, h->received, h->ipaddr, h->from, h->mfrom);
    if (h->spf >= 0)
        gstr_printf(&g, "spf %d\n", h->spf);
    for (int i = 0; i < h->ndkim; i++)
        gstr_printf(&g, "dkim %s %s %d\n", h->dkim[i].domain, h->dkim[i].selector,
                    h->dkim[i].result);
    gstr_printf(&g, "pdomain %s\npolicy %d\n", h->pdomain, h->policy);
    if (h->nrua == 0)
        gstr_cat(&g, "rua -\n");
    for (int i = 0; i < h->nrua; i++)
        gstr_printf(&g, "rua %s\n", h->rua[i]);
    gstr_printf(&g, "pct %d\nadkim %d\naspf %d\np %d\nsp %d\n"
                    "align_dkim %d\nalign_spf %d\naction %d\n",
                h->pct, h->adkim, h->aspf, h->p, h->sp, h->align_dkim, h->align_spf, h->action);
    return g.s;
}

static bool int_val(const char *s, long long *out)
{
    char *e;
    if (!*s)
        return false;
    long long v = strtoll(s, &e, 10);
    if (*e)
        return false;
    *out = v;
    return true;
}

int dmarc_hist_parse(const char *text, size_t len, arena *a, dmarc_hist **out, int *bad)
{
    int n = 0, cap = 16;
    dmarc_hist *v = arena_calloc(a, sizeof *v * (size_t)cap);
    dmarc_hist *cur = NULL;
    *bad = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *line = p;
        p += ll + (nl ? 1 : 0);
        if (ll && line[ll - 1] == '\r')
            ll--;
        if (ll == 0)
            continue;
        if (ll > DMARC_HIST_MAX_LINE || memchr(line, 0, ll)) {
            (*bad)++;
            continue;
        }
        char *l = arena_strndup(a, line, ll);
        char *sp = strchr(l, ' ');
        char *key = l, *val = sp ? sp + 1 : (char *)"";
        if (sp)
            *sp = 0;
        long long iv = 0;
        if (strcmp(key, "job") == 0) {
            if (n == cap) {
                dmarc_hist *nv = arena_calloc(a, sizeof *nv * (size_t)cap * 2);
                memcpy(nv, v, sizeof *v * (size_t)n);
                v = nv;
                cap *= 2;
            }
            cur = &v[n++];
            memset(cur, 0, sizeof *cur);
            cur->job = val;
            cur->spf = -1;
            cur->pct = 100;
            cur->policy = HIST_POLICY_ABSENT;
            cur->align_dkim = cur->align_spf = HIST_ALIGN_FAIL;
            cur->action = HIST_ACTION_ACCEPT;
            cur->reporter = cur->ipaddr = cur->from = cur->mfrom = cur->pdomain = "-";
            continue;
        }
        if (!cur) {
            (*bad)++;
            continue;
        }
        if (strcmp(key, "reporter") == 0) cur->reporter = val;
        else if (strcmp(key, "ipaddr") == 0) cur->ipaddr = val;
        else if (strcmp(key, "from") == 0) cur->from = val;
        else if (strcmp(key, "mfrom") == 0) cur->mfrom = val;
        else if (strcmp(key, "pdomain") == 0) cur->pdomain = val;
        else if (strcmp(key, "rua") == 0) {
            if (strcmp(val, "-") != 0 && cur->nrua < DMARC_HIST_MAX_RUA)
                cur->rua[cur->nrua++] = val;
        } else if (strcmp(key, "dkim") == 0) {
            /* "dkim domain selector result" or the older "dkim domain result" */
            char *f[3] = { 0 };
            int nf = 0;
            char *save = NULL;
            for (char *t = strtok_r(val, " ", &save); t && nf < 3; t = strtok_r(NULL, " ", &save))
                f[nf++] = t;
            if (nf < 2 || cur->ndkim >= DMARC_HIST_MAX_DKIM || !int_val(f[nf - 1], &iv)) {
                (*bad)++;
                continue;
            }
            dmarc_hist_dkim *d = &cur->dkim[cur->ndkim++];
            d->domain = f[0];
            d->selector = nf == 3 ? f[1] : "-";
            d->result = (int)iv;
        } else {
            static const char *const ik[] = { "received", "spf", "policy", "pct", "adkim",
                                              "aspf", "p", "sp", "align_dkim", "align_spf",
                                              "action" };
            size_t k;
            for (k = 0; k < sizeof ik / sizeof ik[0]; k++)
                if (strcmp(key, ik[k]) == 0)
                    break;
            if (k == sizeof ik / sizeof ik[0])
                continue;                 /* unknown keys (arc, ...) are skipped */
            if (!int_val(val, &iv) || iv < -1 || iv > 0x7fffffffffffLL) {
                (*bad)++;
                continue;
            }
            int i32 = (int)(iv > 0x7fffffff ? 0x7fffffff : iv);
            switch (k) {
            case 0: cur->received = iv; break;
            case 1: cur->spf = i32; break;
            case 2: cur->policy = i32; break;
            case 3: cur->pct = i32; break;
            case 4: cur->adkim = i32; break;
            case 5: cur->aspf = i32; break;
            case 6: cur->p = i32; break;
            case 7: cur->sp = i32; break;
            case 8: cur->align_dkim = i32; break;
            case 9: cur->align_spf = i32; break;
            case 10: cur->action = i32; break;
            }
        }
    }
    *out = v;
    return n;
}

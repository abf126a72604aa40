/* dmarc_agg.c: DMARC aggregate reports (RFC 9990 XML) from history
 * records: one report per policy domain, rows grouped by source address
 * and identical evaluation, counts summed. */
#include "msgauth/policy/dmarc_report.h"
#include "core/gstr.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void xml_text(gstr *g, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '<': gstr_cat(g, "&lt;"); break;
        case '>': gstr_cat(g, "&gt;"); break;
        case '&': gstr_cat(g, "&amp;"); break;
        case '"': gstr_cat(g, "&quot;"); break;
        case '\'': gstr_cat(g, "&apos;"); break;
        default:
            if (*p < 0x20 && *p != '\t')
                gstr_catc(g, '?');        /* not allowed in XML 1.0 */
            else
                gstr_catc(g, (char)*p);
        }
    }
}

static void el(gstr *g, int ind, const char *name, const char *val)
{
    gstr_printf(g, "%*s<%s>", ind, "", name);
    xml_text(g, val);
    gstr_printf(g, "</%s>\n", name);
}

static const char *ares_name(int v)
{
    switch (v) {
    case ARES_PASS: return "pass";
    case ARES_SOFTFAIL: return "softfail";
    case ARES_NEUTRAL: return "neutral";
    case ARES_TEMPERROR: return "temperror";
    case ARES_PERMERROR: return "permerror";
    case ARES_NONE: return "none";
    case ARES_FAIL: return "fail";
    default: return "none";
    }
}

static const char *pol_name(int c)
{
    return c == 'n' ? "none" : c == 'q' ? "quarantine" : c == 'r' ? "reject" : NULL;
}

static const char *disposition(const dmarc_hist *h)
{
    switch (h->policy) {
    case HIST_POLICY_REJECT: return "reject";
    case HIST_POLICY_QUARANTINE: return "quarantine";
    case HIST_POLICY_PASS:           /* RFC 9990: passed, policy not applied */
        return "pass";
    default: return "none";
    }
}

/* The row identity of a record: everything but the count. */
static char *row_key(const dmarc_hist *h, arena *a)
{
    gstr g;
    gstr_init(&g, a, 128);
    gstr_printf(&g, "%s|%s|%d|%d|%s|%s|%d", h->ipaddr, disposition(h), h->align_dkim,
                h->align_spf, h->from, h->mfrom, h->spf);
    for (int i = 0; i < h->ndkim; i++)
        gstr_printf(&g, "|%s/%s/%d", h->dkim[i].domain, h->dkim[i].selector, h->dkim[i].result);
    return g.s;
}

static void row_xml(gstr *g, const dmarc_hist *h, int count)
{
    gstr_cat(g, "  <record>\n    <row>\n");
    el(g, 6, "source_ip", h->ipaddr);
    gstr_printf(g, "      <count>%d</count>\n      <policy_evaluated>\n", count);
    el(g, 8, "disposition", disposition(h));
    el(g, 8, "dkim", h->align_dkim == HIST_ALIGN_PASS ? "pass" : "fail");
    el(g, 8, "spf", h->align_spf == HIST_ALIGN_PASS ? "pass" : "fail");
    gstr_cat(g, "      </policy_evaluated>\n    </row>\n    <identifiers>\n");
    el(g, 6, "header_from", h->from);
    if (strcmp(h->mfrom, "-") != 0)
        el(g, 6, "envelope_from", h->mfrom);
    gstr_cat(g, "    </identifiers>\n    <auth_results>\n");
    for (int i = 0; i < h->ndkim; i++) {
        gstr_cat(g, "      <dkim>\n");
        el(g, 8, "domain", h->dkim[i].domain);
        el(g, 8, "selector", strcmp(h->dkim[i].selector, "-") != 0 ? h->dkim[i].selector : "");
        el(g, 8, "result", ares_name(h->dkim[i].result));
        gstr_cat(g, "      </dkim>\n");
    }
    gstr_cat(g, "      <spf>\n");
    el(g, 8, "domain", strcmp(h->mfrom, "-") != 0 ? h->mfrom : h->from);
    el(g, 8, "scope", "mfrom");
    el(g, 8, "result", h->spf < 0 ? "none" : ares_name(h->spf));
    gstr_cat(g, "      </spf>\n    </auth_results>\n  </record>\n");
}

/* File names must not carry path characters. */
static char *fname_part(arena *a, const char *s)
{
    char *o = arena_strdup(a, s);
    for (char *p = o; *p; p++)
        if (*p == '/' || *p == '!' || (unsigned char)*p <= ' ' || *p == '\\')
            *p = '_';
    return o;
}

/* A dot-atom-text piece: atext characters and dots only. */
static char *atom(arena *a, const char *s)
{
    char *o = arena_strdup(a, s && *s ? s : "x");
    for (char *p = o; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".!#$%&'*+-/=?^_`{|}~", *p))
            *p = '_';
    return o;
}

int dmarc_agg_build(const dmarc_hist *h, int nh, const dmarc_agg_opts *o, arena *a,
                    dmarc_agg_report **out)
{
    /* distinct policy domains in the period, in order of appearance */
    const char **doms = arena_alloc(a, sizeof(char *) * (size_t)(nh + 1));
    int nd = 0;
    for (int i = 0; i < nh; i++) {
        if (h[i].received < o->begin || h[i].received >= o->end)
            continue;
        if (h[i].policy == HIST_POLICY_ABSENT || strcmp(h[i].pdomain, "-") == 0)
            continue;
        bool seen = false;
        for (int j = 0; j < nd && !seen; j++)
            seen = strcasecmp(doms[j], h[i].pdomain) == 0;
        if (!seen)
            doms[nd++] = h[i].pdomain;
    }
    dmarc_agg_report *rep = arena_calloc(a, sizeof *rep * (size_t)(nd + 1));
    const char *receiver = o->receiver;
    if (!receiver || !*receiver) {
        const char *at = o->email ? strrchr(o->email, '@') : NULL;
        receiver = at ? at + 1 : "localhost";
    }
    for (int d = 0; d < nd; d++) {
        dmarc_agg_report *r = &rep[d];
        r->domain = doms[d];
        /* RFC 9990: Report-ID a dot-atom[@dot-atom]; file name
         * receiver!domain!begin!end!unique-id.xml, unique-id alphanumeric */
        r->report_id = arena_printf(a, "%s.%lld.%d.%s@%s",
                                    o->report_id_prefix ? o->report_id_prefix : "postern",
                                    o->begin, d + 1, atom(a, doms[d]), atom(a, receiver));
        r->filename = arena_printf(a, "%s!%s!%lld!%lld!%lld%d.xml", fname_part(a, receiver),
                                   fname_part(a, doms[d]), o->begin, o->end, o->end, d + 1);
        /* group rows */
        const dmarc_hist **rows = arena_alloc(a, sizeof(void *) * (size_t)nh);
        const char **keys = arena_alloc(a, sizeof(char *) * (size_t)nh);
        int *counts = arena_calloc(a, sizeof(int) * (size_t)nh);
        int nr = 0;
        const dmarc_hist *last = NULL;
        for (int i = 0; i < nh; i++) {
            const dmarc_hist *x = &h[i];
            if (x->received < o->begin || x->received >= o->end ||
                x->policy == HIST_POLICY_ABSENT || strcasecmp(x->pdomain, doms[d]) != 0)
                continue;
            last = x;
            r->messages++;
            if (!r->rua && x->nrua)
                r->rua = x->rua[0];
            char *k = row_key(x, a);
            int j;
            for (j = 0; j < nr; j++)
                if (strcmp(keys[j], k) == 0)
                    break;
            if (j == nr) {
                rows[nr] = x;
                keys[nr] = k;
                nr++;
            }
            counts[j]++;
        }
        r->records = nr;
        gstr g;
        gstr_init(&g, a, 2048);
        gstr_cat(&g, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">\n"
                     "  <version>1.0</version>\n  <report_metadata>\n");
        el(&g, 4, "org_name", o->org_name);
        el(&g, 4, "email", o->email);
        if (o->extra_contact)
            el(&g, 4, "extra_contact_info", o->extra_contact);
        el(&g, 4, "report_id", r->report_id);
        gstr_printf(&g, "    <date_range>\n      <begin>%lld</begin>\n      <end>%lld</end>\n"
                        "    </date_range>\n", o->begin, o->end);
        el(&g, 4, "generator", "postern " POSTERN_VERSION);
        gstr_cat(&g, "  </report_metadata>\n  <policy_published>\n");
        el(&g, 4, "domain", doms[d]);
        el(&g, 4, "discovery_method", o->mode == DMARC_MODE_RFC7489 ? "psl" : "treewalk");
        el(&g, 4, "p", pol_name(last->p) ? pol_name(last->p) : "none");
        if (pol_name(last->sp))
            el(&g, 4, "sp", pol_name(last->sp));
        el(&g, 4, "adkim", last->adkim == 's' ? "s" : "r");
        el(&g, 4, "aspf", last->aspf == 's' ? "s" : "r");
        gstr_cat(&g, "  </policy_published>\n");
        for (int j = 0; j < nr; j++)
            row_xml(&g, rows[j], counts[j]);
        gstr_cat(&g, "</feedback>\n");
        r->xml = g.s;
    }
    *out = rep;
    return nd;
}

char *dmarc_agg_mail(const dmarc_agg_report *r, const dmarc_agg_opts *o, time_t now, arena *a)
{
    const char *to = dmarc_uri_mailtos(r->rua ? r->rua : "", a);
    if (!to)
        return NULL;
    const char *receiver = o->receiver;
    if (!receiver || !*receiver) {
        const char *at = o->email ? strrchr(o->email, '@') : NULL;
        receiver = at ? at + 1 : "localhost";
    }
    if (!now)
        now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char date[64];
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    const char *boundary = arena_printf(a, "=_postern_agg_%lld_%s", (long long)now,
                                        fname_part(a, r->domain));
    gstr g;
    gstr_init(&g, a, strlen(r->xml) * 4 / 3 + 2048);
    gstr_printf(&g, "From: %s\r\nTo: %s\r\n", o->email, to);
    gstr_printf(&g, "Subject: Report Domain: %s\r\n Submitter: %s\r\n Report-ID: <%s>\r\n",
                r->domain, receiver, r->report_id);
    gstr_printf(&g, "Date: %s\r\nMessage-ID: <%s>\r\nAuto-Submitted: auto-generated\r\n"
                    "MIME-Version: 1.0\r\n"
                    "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n",
                date, r->report_id, boundary);
    gstr_printf(&g, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
                    "DMARC aggregate report for %s from %s: %d messages, %d rows.\r\n\r\n",
                boundary, r->domain, receiver, r->messages, r->records);
    gstr_printf(&g, "--%s\r\nContent-Type: text/xml; name=\"%s\"\r\n"
                    "Content-Disposition: attachment; filename=\"%s\"\r\n"
                    "Content-Transfer-Encoding: base64\r\n\r\n", boundary, r->filename,
                r->filename);
    size_t n = strlen(r->xml);
    for (size_t off = 0; off < n; off += 57) {       /* 76-character lines */
        unsigned char line[80];
        int k = EVP_EncodeBlock(line, (const unsigned char *)r->xml + off,
                                (int)(n - off < 57 ? n - off : 57));
        gstr_catn(&g, (const char *)line, (size_t)k);
        gstr_cat(&g, "\r\n");
    }
    gstr_printf(&g, "\r\n--%s--\r\n", boundary);
    return g.s;
}

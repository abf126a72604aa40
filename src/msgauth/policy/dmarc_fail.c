/* dmarc_fail.c: DMARC failure reports (RFC 9991; format of RFC 6591, the
 * authentication-failure flavour of RFC 5965 ARF). */
#include "msgauth/policy/dmarc_report.h"
#include "core/gstr.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

bool dmarc_fail_wanted(const dmarc_result *r, const dmarc_input *in)
{
    /* RFC 9991: no failure reports for a public suffix's record (psd=y) */
    if (!r->have_record || !r->rec.ruf || strcmp(r->ar, "fail") != 0 || r->rec.psd == 'y')
        return false;
    const char *fo = r->rec.fo && *r->rec.fo ? r->rec.fo : "0";
    bool dkim_fail = !r->dkim_aligned, spf_fail = !r->spf_aligned;
    bool any_dkim_bad = in->ndkim == 0;
    for (int i = 0; i < in->ndkim; i++)
        any_dkim_bad |= !in->dkim[i].result || strcasecmp(in->dkim[i].result, "pass") != 0;
    bool want = false;
    for (const char *p = fo; *p; p++) {
        switch (*p) {
        case '0': want |= dkim_fail && spf_fail; break;    /* all failed */
        case '1': want |= dkim_fail || spf_fail; break;    /* any failed */
        case 'd': want |= any_dkim_bad; break;
        case 's': want |= in->spf != SPF_PASS; break;
        default: break;
        }
    }
    return want;
}

const char *dmarc_uri_mailto(const char *list, arena *a)
{
    if (!list)
        return NULL;
    char *l = arena_strdup(a, list), *save = NULL;
    for (char *u = strtok_r(l, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*u))
            u++;
        if (strncasecmp(u, "mailto:", 7) != 0)
            continue;
        u += 7;
        char *bang = strchr(u, '!');
        if (bang)
            *bang = 0;
        char *e = u + strlen(u);
        while (e > u && isspace((unsigned char)e[-1]))
            *--e = 0;
        /* an address: no header-breaking characters */
        if (*u && strchr(u, '@') && !strpbrk(u, "\r\n<>\",;"))
            return u;
    }
    return NULL;
}

const char *dmarc_uri_mailtos(const char *list, arena *a)
{
    if (!list)
        return NULL;
    gstr g;
    gstr_init(&g, a, strlen(list));
    char *l = arena_strdup(a, list), *save = NULL;
    for (char *u = strtok_r(l, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
        const char *m = dmarc_uri_mailto(u, a);
        if (!m)
            continue;
        if (g.len)
            gstr_cat(&g, ", ");
        gstr_cat(&g, m);
    }
    return g.len ? g.s : NULL;
}

static const char *rfc5322_date(time_t t, arena *a)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[64];
    strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return arena_strdup(a, buf);
}

/* A header value we write: no CR/LF from outside. */
static const char *hv(arena *a, const char *s)
{
    char *o = arena_strdup(a, s ? s : "");
    for (char *p = o; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    return o;
}

char *dmarc_fail_build(const dmarc_result *r, const dmarc_fail_opts *o, arena *a)
{
    time_t now = o->now ? o->now : time(NULL);
    const char *boundary = arena_printf(a, "=_postern_dmarc_%lld_%s", (long long)now,
                                        r->from_domain);
    for (char *p = (char *)boundary; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("=_.-", *p))
            *p = '_';
    /* RFC 9991: the mechanisms that failed for an aligned identifier */
    const char *align = r->dkim_aligned_fail && r->spf_aligned_fail ? "dkim, spf"
                      : r->dkim_aligned_fail ? "dkim" : r->spf_aligned_fail ? "spf" : "none";
    gstr g;
    gstr_init(&g, a, 4096);
    gstr_printf(&g, "From: %s\r\n", hv(a, o->forensic_sender));
    gstr_printf(&g, "To: %s\r\n", hv(a, o->to));
    gstr_printf(&g, "Subject: DMARC failure report for %s from %s\r\n", hv(a, r->from_domain),
                hv(a, o->ip));
    gstr_printf(&g, "Date: %s\r\n", rfc5322_date(now, a));
    gstr_printf(&g, "Message-ID: <dmarc-fail.%lld.%s@%s>\r\n", (long long)now,
                hv(a, r->from_domain), hv(a, o->reporter));
    gstr_printf(&g, "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: multipart/report; report-type=feedback-report;\r\n"
                    "\tboundary=\"%s\"\r\n\r\n", boundary);
    gstr_printf(&g, "This is a MIME-formatted message.\r\n\r\n--%s\r\n"
                    "Content-Type: text/plain; charset=us-ascii\r\n"
                    "Content-Transfer-Encoding: 7bit\r\n\r\n", boundary);
    gstr_printf(&g, "A message from %s claiming to be from %s failed DMARC\r\n"
                    "(neither SPF nor DKIM produced an aligned pass); the domain's policy\r\n"
                    "is %s.  Its header section is attached.\r\n\r\n",
                hv(a, o->ip), hv(a, r->from_domain), dmarc_pol_name(r->applied));
    gstr_printf(&g, "--%s\r\nContent-Type: message/feedback-report\r\n\r\n", boundary);
    gstr_cat(&g, "Feedback-Type: auth-failure\r\nVersion: 1\r\n");
    gstr_printf(&g, "User-Agent: postern/%s\r\n", POSTERN_VERSION);
    gstr_cat(&g, "Auth-Failure: dmarc\r\n");
    gstr_printf(&g, "Arrival-Date: %s\r\n", rfc5322_date(now, a));
    if (o->ip && *o->ip)
        gstr_printf(&g, "Source-IP: %s\r\n", hv(a, o->ip));
    if (o->mfrom)
        gstr_printf(&g, "Original-Mail-From: <%s>\r\n", hv(a, o->mfrom));
    gstr_printf(&g, "Reported-Domain: %s\r\n", hv(a, r->from_domain));
    if (o->authres && *o->authres)
        gstr_printf(&g, "Authentication-Results: %s\r\n", hv(a, o->authres));
    gstr_printf(&g, "Identity-Alignment: %s\r\n", align);
    if (r->dkim_aligned_fail) {
        const dmarc_dkim *d = r->dkim_aligned_fail;
        gstr_printf(&g, "DKIM-Domain: %s\r\n", hv(a, d->domain));
        gstr_printf(&g, "DKIM-Identity: @%s\r\n", hv(a, d->domain));
        if (d->selector && *d->selector)
            gstr_printf(&g, "DKIM-Selector: %s\r\n", hv(a, d->selector));
    }
    if (r->spf_aligned_fail && o->spf_domain) {
        /* RFC 6591 3.2: "txt : domain : record" */
        gstr_printf(&g, "SPF-DNS: txt : %s : ", hv(a, o->spf_domain));
        if (o->spf_record) {
            gstr_catc(&g, '"');
            for (const char *p = o->spf_record; *p; p++) {
                if (*p == '"' || *p == '\\')
                    gstr_catc(&g, '\\');
                gstr_catc(&g, *p == '\r' || *p == '\n' ? ' ' : *p);
            }
            gstr_catc(&g, '"');
        } else {
            gstr_cat(&g, "\"\"");
        }
        gstr_cat(&g, "\r\n");
    }
    gstr_printf(&g, "Delivery-Result: %s\r\n\r\n",
                o->delivery_result ? hv(a, o->delivery_result)
                : r->outcome == DMARC_REJECT ? "reject"
                : r->outcome == DMARC_QUARANTINE ? "spam" : "delivered");
    gstr_printf(&g, "--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary);
    if (o->headers && o->headers_len) {
        /* the header section, CRLF line endings, no line starting the boundary */
        const char *p = o->headers, *e = o->headers + o->headers_len;
        while (p < e) {
            const char *nl = memchr(p, '\n', (size_t)(e - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(e - p);
            size_t m = n && p[n - 1] == '\r' ? n - 1 : n;
            if (m >= 2 && p[0] == '-' && p[1] == '-')
                gstr_catc(&g, ' ');
            gstr_catn(&g, p, m);
            gstr_cat(&g, "\r\n");
            p += n + (nl ? 1 : 0);
        }
    }
    gstr_printf(&g, "\r\n--%s--\r\n", boundary);
    return g.s;
}

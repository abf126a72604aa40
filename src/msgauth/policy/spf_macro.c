/* spf_macro.c: SPF macro expansion (RFC 7208 section 7) and the IP
 * helpers it needs.  One bounded pass over the macro-string; output is
 * capped at SPF_MAX_EXPANSION bytes. */
#include "msgauth/policy/spf_int.h"
#include "core/gstr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

bool spf_ip_parse(const char *s, unsigned char out[16], bool *v6)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!s)
        return false;
    if (inet_pton(AF_INET, s, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        *v6 = false;
        return true;
    }
    if (inet_pton(AF_INET6, s, &a6) == 1) {
        memcpy(out, &a6, 16);
        static const unsigned char mapped[12] = { 0,0,0,0,0,0,0,0,0,0,0xff,0xff };
        *v6 = memcmp(out, mapped, 12) != 0;
        return true;
    }
    return false;
}

static bool is_delim(char c)
{
    return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

/* The value of one macro letter (lower case), or NULL when not allowed. */
static const char *letter_value(char l, const spf_macro_ctx *m, arena *a, char **err)
{
    unsigned char ip[16];
    bool v6 = false;
    switch (l) {
    case 's': return m->sender ? m->sender : "";
    case 'l': return m->local ? m->local : "postmaster";
    case 'o': return m->sender_dom ? m->sender_dom : "";
    case 'd': return m->domain ? m->domain : "";
    case 'h': return m->helo ? m->helo : "";
    case 'c':
        if (!m->in_exp)
            break;
        /* fall through */
    case 'i':
    case 'v':
        if (!spf_ip_parse(m->ip, ip, &v6)) {
            *err = "client IP address is not valid";
            return NULL;
        }
        if (l == 'v')
            return v6 ? "ip6" : "in-addr";
        if (!v6) {
            return arena_printf(a, "%u.%u.%u.%u", ip[12], ip[13], ip[14], ip[15]);
        }
        if (l == 'c') {
            char buf[INET6_ADDRSTRLEN];
            inet_ntop(AF_INET6, ip, buf, sizeof buf);
            return arena_strdup(a, buf);
        } else {
            char *o = arena_alloc(a, 64), *p = o;
            /* nibbles in the case the address was written in (RFC 7208
             * leaves it open; the OpenSPF suite expects this) */
            const char *hx = strpbrk(m->ip, "ABCDEF") ? "0123456789ABCDEF" : "0123456789abcdef";
            for (int k = 0; k < 16; k++) {
                *p++ = hx[ip[k] >> 4]; *p++ = '.';
                *p++ = hx[ip[k] & 15]; *p++ = '.';
            }
            p[-1] = 0;
            return o;
        }
    case 'p':
        if (m->ptr_name)
            return m->ptr_name(m->ptr_ctx, m->domain);
        return "unknown";
    case 'r':
        if (!m->in_exp)
            break;
        return m->receiver && *m->receiver ? m->receiver : "unknown";
    case 't':
        if (!m->in_exp)
            break;
        return arena_printf(a, "%lld", (long long)m->now);
    }
    *err = arena_printf(a, "macro letter '%c' not allowed here", l);
    return NULL;
}

/* Apply transformers: split on delims, optionally reverse, keep the
 * rightmost `keep` parts (0 = all), join with '.'. */
static void transform(gstr *g, const char *v, int keep, bool rev, const char *delims, size_t nd)
{
    enum { MAXP = 256 };
    const char *part[MAXP];
    size_t plen[MAXP];
    int n = 0;
    const char *p = v, *start = v;
    for (;; p++) {
        bool d = *p == 0;
        if (!d)
            d = nd ? memchr(delims, *p, nd) != NULL : *p == '.';
        if (d) {
            if (n < MAXP) {
                part[n] = start;
                plen[n] = (size_t)(p - start);
                n++;
            } else {       /* fold the rest into the last part */
                plen[n - 1] = (size_t)(p - part[n - 1]);
            }
            if (*p == 0)
                break;
            start = p + 1;
        }
    }
    if (rev) {
        for (int i = 0, j = n - 1; i < j; i++, j--) {
            const char *tp = part[i]; part[i] = part[j]; part[j] = tp;
            size_t tl = plen[i]; plen[i] = plen[j]; plen[j] = tl;
        }
    }
    int from = (keep > 0 && keep < n) ? n - keep : 0;
    for (int i = from; i < n; i++) {
        if (i > from)
            gstr_catc(g, '.');
        gstr_catn(g, part[i], plen[i]);
    }
}

static void url_escape(gstr *g, const char *s, size_t n)
{
    static const char hx[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
            gstr_catc(g, (char)c);
        else {
            gstr_catc(g, '%');
            gstr_catc(g, hx[c >> 4]);
            gstr_catc(g, hx[c & 15]);
        }
    }
}

status spf_macro_expand(const char *in, size_t len, const spf_macro_ctx *m,
                        arena *a, char **out, char **err)
{
    gstr g;
    gstr_init(&g, a, len + 16);
    const char *p = in, *end = in + len;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (g.len > SPF_MAX_EXPANSION) {
            *err = "macro expansion too long";
            return ST_FAIL;
        }
        if (c != '%') {
            if (c == ' ' && m->in_exp) {
                gstr_catc(&g, ' ');
            } else if (c < 0x21 || c > 0x7e) {
                *err = arena_printf(a, "invalid character 0x%02x in macro-string", c);
                return ST_FAIL;
            } else {
                gstr_catc(&g, (char)c);
            }
            p++;
            continue;
        }
        if (p + 1 >= end) {
            *err = "'%' at end of macro-string";
            return ST_FAIL;
        }
        char n = p[1];
        if (n == '%') { gstr_catc(&g, '%'); p += 2; continue; }
        if (n == '_') { gstr_catc(&g, ' '); p += 2; continue; }
        if (n == '-') { gstr_cat(&g, "%20"); p += 2; continue; }
        if (n != '{') {
            *err = arena_printf(a, "invalid macro '%%%c'", n);
            return ST_FAIL;
        }
        p += 2;
        if (p >= end) {
            *err = "unterminated macro";
            return ST_FAIL;
        }
        char letter = *p++;
        bool upper = isupper((unsigned char)letter);
        letter = (char)tolower((unsigned char)letter);
        if (!strchr("slodiphcrtv", letter) || letter == 0) {
            *err = arena_printf(a, "invalid macro letter '%c'", letter);
            return ST_FAIL;
        }
        long keep = 0;
        bool have_digits = false;
        while (p < end && isdigit((unsigned char)*p)) {
            have_digits = true;
            if (keep < 100000)
                keep = keep * 10 + (*p - '0');
            p++;
        }
        if (have_digits && keep == 0) {
            *err = "macro transformer digit must not be zero";
            return ST_FAIL;
        }
        bool rev = false;
        if (p < end && (*p == 'r' || *p == 'R')) {
            rev = true;
            p++;
        }
        const char *dstart = p;
        while (p < end && is_delim(*p))
            p++;
        size_t nd = (size_t)(p - dstart);
        if (p >= end || *p != '}') {
            *err = "invalid macro syntax";
            return ST_FAIL;
        }
        p++;
        const char *v = letter_value(letter, m, a, err);
        if (!v)
            return ST_FAIL;
        if (!have_digits && !rev && nd == 0) {
            if (upper)
                url_escape(&g, v, strlen(v));
            else
                gstr_cat(&g, v);
        } else {
            gstr t;
            gstr_init(&t, a, strlen(v) + 1);
            transform(&t, v, (int)keep, rev, dstart, nd);
            if (upper)
                url_escape(&g, t.s, t.len);
            else
                gstr_catn(&g, t.s, t.len);
        }
    }
    if (g.len > SPF_MAX_EXPANSION) {
        *err = "macro expansion too long";
        return ST_FAIL;
    }
    *out = g.s;
    return ST_OK;
}

bool spf_macro_syntax_ok(const char *s, size_t n, bool in_exp)
{
    const char *p = s, *end = s + n;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c != '%') {
            if (!(c >= 0x21 && c <= 0x7e) && !(in_exp && c == ' '))
                return false;
            p++;
            continue;
        }
        if (p + 1 >= end)
            return false;
        char nx = p[1];
        if (nx == '%' || nx == '_' || nx == '-') {
            p += 2;
            continue;
        }
        if (nx != '{' || p + 2 >= end)
            return false;
        p += 2;
        char l = (char)tolower((unsigned char)*p++);
        if (!l || !strchr("slodiphcrtv", l))
            return false;
        if (!in_exp && (l == 'c' || l == 'r' || l == 't'))
            return false;
        bool digits = false;
        long k = 0;
        while (p < end && isdigit((unsigned char)*p)) {
            digits = true;
            if (k < 100000)
                k = k * 10 + (*p - '0');
            p++;
        }
        if (digits && k == 0)
            return false;
        if (p < end && (*p == 'r' || *p == 'R'))
            p++;
        while (p < end && is_delim(*p))
            p++;
        if (p >= end || *p != '}')
            return false;
        p++;
    }
    return true;
}

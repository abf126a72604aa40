/* idn.c: internationalised names for the utf8_* expansion operators:
 * Punycode (RFC 3492) and the "xn--" A-label forms of domains and local
 * parts.  Domains are treated label by label with ASCII letters folded
 * to lower case (no Unicode normalisation tables are applied). */
#include "expand_int.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

enum { P_BASE = 36, P_TMIN = 1, P_TMAX = 26, P_SKEW = 38, P_DAMP = 700,
       P_BIAS = 72, P_N = 128, IDN_MAX_CP = 1024 };

static uint32_t adapt(uint32_t delta, uint32_t npoints, bool first)
{
    delta = first ? delta / P_DAMP : delta / 2;
    delta += delta / npoints;
    uint32_t k = 0;
    while (delta > ((P_BASE - P_TMIN) * P_TMAX) / 2) {
        delta /= P_BASE - P_TMIN;
        k += P_BASE;
    }
    return k + (P_BASE - P_TMIN + 1) * delta / (delta + P_SKEW);
}

static char digit(uint32_t d)
{
    return (char)(d < 26 ? 'a' + d : '0' + d - 26);
}

/* UTF-8 to code points; false on malformed input. */
static bool utf8_decode(const char *s, size_t len, uint32_t *cp, size_t *n)
{
    size_t k = 0;
    const unsigned char *p = (const unsigned char *)s, *e = p + len;
    while (p < e) {
        uint32_t c = *p++;
        int more = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
        if (more < 0)
            return false;
        if (more)
            c &= 0x3fu >> more;
        for (int i = 0; i < more; i++) {
            if (p >= e || (*p & 0xc0) != 0x80)
                return false;
            c = (c << 6) | (*p++ & 0x3f);
        }
        if (k == IDN_MAX_CP)
            return false;
        cp[k++] = c;
    }
    *n = k;
    return true;
}

static void utf8_encode(gstr *g, uint32_t c)
{
    if (c < 0x80)
        gstr_catc(g, (char)c);
    else if (c < 0x800) {
        gstr_catc(g, (char)(0xc0 | c >> 6));
        gstr_catc(g, (char)(0x80 | (c & 0x3f)));
    } else if (c < 0x10000) {
        gstr_catc(g, (char)(0xe0 | c >> 12));
        gstr_catc(g, (char)(0x80 | ((c >> 6) & 0x3f)));
        gstr_catc(g, (char)(0x80 | (c & 0x3f)));
    } else {
        gstr_catc(g, (char)(0xf0 | c >> 18));
        gstr_catc(g, (char)(0x80 | ((c >> 12) & 0x3f)));
        gstr_catc(g, (char)(0x80 | ((c >> 6) & 0x3f)));
        gstr_catc(g, (char)(0x80 | (c & 0x3f)));
    }
}

static bool puny_encode(gstr *g, const uint32_t *cp, size_t n)
{
    size_t b = 0;
    for (size_t i = 0; i < n; i++)
        if (cp[i] < 0x80) {
            gstr_catc(g, (char)cp[i]);
            b++;
        }
    if (b)
        gstr_catc(g, '-');
    uint32_t nn = P_N, delta = 0, bias = P_BIAS;
    for (size_t h = b; h < n;) {
        uint32_t m = UINT32_MAX;
        for (size_t i = 0; i < n; i++)
            if (cp[i] >= nn && cp[i] < m)
                m = cp[i];
        if ((uint64_t)(m - nn) * (h + 1) + delta > UINT32_MAX)
            return false;
        delta += (m - nn) * (uint32_t)(h + 1);
        nn = m;
        for (size_t i = 0; i < n; i++) {
            if (cp[i] < nn && ++delta == 0)
                return false;
            if (cp[i] == nn) {
                uint32_t q = delta;
                for (uint32_t k = P_BASE;; k += P_BASE) {
                    uint32_t t = k <= bias ? P_TMIN : k >= bias + P_TMAX ? P_TMAX : k - bias;
                    if (q < t)
                        break;
                    gstr_catc(g, digit(t + (q - t) % (P_BASE - t)));
                    q = (q - t) / (P_BASE - t);
                }
                gstr_catc(g, digit(q));
                bias = adapt(delta, (uint32_t)(h + 1), h == b);
                delta = 0;
                h++;
            }
        }
        delta++;
        nn++;
    }
    return true;
}

static bool puny_decode(gstr *g, const char *s, size_t len)
{
    uint32_t out[IDN_MAX_CP];
    size_t n = 0, b = 0;
    for (size_t j = 0; j < len; j++)
        if (s[j] == '-')
            b = j;
    for (size_t j = 0; j < b; j++) {
        if ((unsigned char)s[j] >= 0x80)
            return false;
        out[n++] = (unsigned char)s[j];
    }
    uint32_t nn = P_N, i = 0, bias = P_BIAS;
    for (size_t in = b ? b + 1 : 0; in < len;) {
        uint32_t oldi = i, w = 1;
        for (uint32_t k = P_BASE;; k += P_BASE) {
            if (in >= len)
                return false;
            char c = s[in++];
            uint32_t d = c >= '0' && c <= '9' ? (uint32_t)(c - '0' + 26)
                       : c >= 'a' && c <= 'z' ? (uint32_t)(c - 'a')
                       : c >= 'A' && c <= 'Z' ? (uint32_t)(c - 'A') : P_BASE;
            if (d >= P_BASE || d > (UINT32_MAX - i) / w)
                return false;
            i += d * w;
            uint32_t t = k <= bias ? P_TMIN : k >= bias + P_TMAX ? P_TMAX : k - bias;
            if (d < t)
                break;
            if (w > UINT32_MAX / (P_BASE - t))
                return false;
            w *= P_BASE - t;
        }
        if (n == IDN_MAX_CP)
            return false;
        bias = adapt(i - oldi, (uint32_t)(n + 1), oldi == 0);
        if (i / (n + 1) > UINT32_MAX - nn)
            return false;
        nn += i / (uint32_t)(n + 1);
        i %= (uint32_t)(n + 1);
        memmove(out + i + 1, out + i, (n - i) * sizeof out[0]);
        out[i++] = nn;
        n++;
    }
    for (size_t k = 0; k < n; k++)
        utf8_encode(g, out[k]);
    return true;
}

static bool is_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] & 0x80)
            return false;
    return true;
}

static bool label_to_a(gstr *g, const char *s, size_t n, bool fold)
{
    if (is_ascii(s, n)) {
        for (size_t i = 0; i < n; i++)
            gstr_catc(g, fold && s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i]);
        return true;
    }
    uint32_t cp[IDN_MAX_CP];
    size_t k;
    if (!utf8_decode(s, n, cp, &k))
        return false;
    if (fold)
        for (size_t i = 0; i < k; i++)
            if (cp[i] >= 'A' && cp[i] <= 'Z')
                cp[i] += 32;
    gstr_cat(g, "xn--");
    return puny_encode(g, cp, k);
}

static bool label_from_a(gstr *g, const char *s, size_t n)
{
    if (n > 4 && strncasecmp(s, "xn--", 4) == 0)
        return puny_decode(g, s + 4, n - 4);
    gstr_catn(g, s, n);
    return true;
}

/* op: "utf8_domain_to_alabel" etc.; result appended to out. */
status x_idn_op(xs *x, const char *op, const char *s, gstr *out)
{
    bool domain = strncmp(op, "utf8_domain", 11) == 0;
    bool to_a = strstr(op, "to_alabel") != NULL;
    gstr g;
    gstr_init(&g, x->w, strlen(s) * 2 + 8);
    bool ok = true;
    if (!domain) {
        if (!to_a && strncasecmp(s, "xn--", 4) != 0)
            return xfail(x, "error converting alabel (%s) to utf8: bad alabel prefix", s);
        ok = to_a ? label_to_a(&g, s, strlen(s), false) : label_from_a(&g, s, strlen(s));
    } else if (to_a && is_ascii(s, strlen(s))) {
        gstr_cat(&g, s);   /* plain ASCII domains are not lower-cased */
    } else {
        const char *p = s;
        for (;;) {
            const char *dot = strchr(p, '.');
            size_t n = dot ? (size_t)(dot - p) : strlen(p);
            ok = to_a ? label_to_a(&g, p, n, true) : label_from_a(&g, p, n);
            if (!ok || !dot)
                break;
            gstr_catc(&g, '.');
            p = dot + 1;
        }
    }
    if (!ok)
        return xfail(x, "error converting %s: %s", xq(x, s),
                     to_a ? "invalid UTF-8 or name too long" : "invalid Punycode");
    gstr_catn(out, g.s, g.len);
    return ST_OK;
}

/* idna.c: U-label to A-label conversion (RFC 3492 Punycode encoder). */
#include "msgauth/policy/idna.h"
#include "core/gstr.h"

#include <libpsl.h>
#include <stdint.h>
#include <string.h>

enum { BASE = 36, TMIN = 1, TMAX = 26, SKEW = 38, DAMP = 700, INITIAL_BIAS = 72,
       INITIAL_N = 128, MAX_LABEL_CPS = 63 };

static uint32_t adapt(uint32_t delta, uint32_t numpoints, int first)
{
    delta = first ? delta / DAMP : delta / 2;
    delta += delta / numpoints;
    uint32_t k = 0;
    while (delta > ((BASE - TMIN) * TMAX) / 2) {
        delta /= BASE - TMIN;
        k += BASE;
    }
    return k + (BASE - TMIN + 1) * delta / (delta + SKEW);
}

static char digit(uint32_t d)
{
    return (char)(d < 26 ? 'a' + d : '0' + d - 26);
}

/* Decode one UTF-8 label (n bytes) into cps; -1 if invalid. */
static int utf8_decode(const unsigned char *s, size_t n, uint32_t *cps, int max)
{
    int k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c = s[i];
        int len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!len || i + (size_t)len > n || k == max)
            return -1;
        if (len > 1)
            c &= 0x3fu >> (len - 1);
        for (int j = 1; j < len; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return -1;
            c = (c << 6) | (s[i + j] & 0x3f);
        }
        static const uint32_t minv[] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (c < minv[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return -1;
        cps[k++] = c;
        i += (size_t)len;
    }
    return k;
}

/* Punycode of cps[0..n) appended to g; false on overflow. */
static bool punycode(gstr *g, const uint32_t *cps, int n)
{
    uint32_t nn = INITIAL_N, delta = 0, bias = INITIAL_BIAS, h, b = 0;
    for (int i = 0; i < n; i++)
        if (cps[i] < 0x80) {
            gstr_catc(g, (char)cps[i]);
            b++;
        }
    h = b;
    if (b > 0)
        gstr_catc(g, '-');
    while (h < (uint32_t)n) {
        uint32_t m = UINT32_MAX;
        for (int i = 0; i < n; i++)
            if (cps[i] >= nn && cps[i] < m)
                m = cps[i];
        if ((m - nn) > (UINT32_MAX - delta) / (h + 1))
            return false;
        delta += (m - nn) * (h + 1);
        nn = m;
        for (int i = 0; i < n; i++) {
            if (cps[i] < nn && ++delta == 0)
                return false;
            if (cps[i] == nn) {
                uint32_t q = delta;
                for (uint32_t k = BASE;; k += BASE) {
                    uint32_t t = k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
                    if (q < t)
                        break;
                    gstr_catc(g, digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                }
                gstr_catc(g, digit(q));
                bias = adapt(delta, h + 1, h == b);
                delta = 0;
                h++;
            }
        }
        delta++;
        nn++;
    }
    return true;
}

const char *idna_to_alabel(const char *name, arena *a)
{
    const unsigned char *p = (const unsigned char *)name;
    for (; *p; p++)
        if (*p >= 0x80)
            break;
    if (!*p)
        return name;
    /* the input must be valid UTF-8 (libpsl would repair it) */
    {
        uint32_t tmp[MAX_LABEL_CPS + 1];
        const char *l = name;
        for (;;) {
            const char *dot = strchr(l, '.');
            size_t n = dot ? (size_t)(dot - l) : strlen(l);
            if (utf8_decode((const unsigned char *)l, n, tmp, MAX_LABEL_CPS) < 0)
                return NULL;
            if (!dot)
                break;
            l = dot + 1;
        }
    }
    char *lc = NULL;
    const char *src = name;
    if (psl_str_to_utf8lower(name, "utf-8", NULL, &lc) == PSL_SUCCESS && lc)
        src = arena_strdup(a, lc);
    if (lc)
        psl_free_string(lc);
    gstr g;
    gstr_init(&g, a, strlen(src) * 2 + 8);
    const char *l = src;
    while (*l) {
        const char *dot = strchr(l, '.');
        size_t n = dot ? (size_t)(dot - l) : strlen(l);
        bool ascii = true;
        for (size_t i = 0; i < n; i++)
            ascii &= (unsigned char)l[i] < 0x80;
        size_t start = g.len;
        if (ascii) {
            gstr_catn(&g, l, n);
        } else {
            uint32_t cps[MAX_LABEL_CPS + 1];
            int k = utf8_decode((const unsigned char *)l, n, cps, MAX_LABEL_CPS);
            if (k < 0)
                return NULL;
            gstr_cat(&g, "xn--");
            if (!punycode(&g, cps, k))
                return NULL;
        }
        if (g.len - start > 63)
            return NULL;
        if (!dot)
            break;
        gstr_catc(&g, '.');
        l = dot + 1;
    }
    return g.s;
}

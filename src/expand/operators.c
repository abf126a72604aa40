/* operators.c: ${operator:string} and ${operator_args:string}. */
#include "expand_int.h"
#include "expand.h"
#include "config/config.h"
#include "core/list.h"
#include "lookup/lookup.h"
#include "match.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void x_substr(gstr *out, const char *s, int start, int len);
status x_idn_op(xs *x, const char *op, const char *s, gstr *out);
status x_hash(xs *x, gstr *out, const char *s, int n, int m);
status x_nhash(xs *x, gstr *out, const char *s, int n, int m);

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b32chars[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char b62chars[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

char *x_hex(arena *a, const unsigned char *p, size_t n)
{
    char *h = arena_alloc(a, 2 * n + 1);
    for (size_t i = 0; i < n; i++)
        sprintf(h + 2 * i, "%02x", p[i]);
    h[2 * n] = 0;
    return h;
}

const char *x_strip(arena *a, const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return arena_strndup(a, s, n);
}

static void b64enc(gstr *out, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        gstr_catc(out, b64chars[(v >> 18) & 63]);
        gstr_catc(out, b64chars[(v >> 12) & 63]);
        gstr_catc(out, i + 1 < n ? b64chars[(v >> 6) & 63] : '=');
        gstr_catc(out, i + 2 < n ? b64chars[v & 63] : '=');
    }
}

/* Strict base64 decode (length multiple of 4, '=' only at the end);
 * white space is ignored. */
static bool b64dec(gstr *out, const char *in)
{
    char sbuf[4096], *s = sbuf;
    size_t inl = strlen(in);
    if (inl >= sizeof sbuf)
        s = malloc(inl + 1);
    if (!s)
        return false;
    size_t k = 0;
    for (const char *p = in; *p; p++)
        if (!isspace((unsigned char)*p))
            s[k++] = *p;
    s[k] = 0;
    bool ok = true;
    size_t n = k;
    if (n % 4)
        { ok = false; goto done; }
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            char c = s[i + j];
            const char *k = c ? strchr(b64chars, c) : NULL;
            if (c == '=' && i + 4 == n && j >= 2) {
                v[j] = 0;
                pad++;
                continue;
            }
            if (!k || pad)
                { ok = false; goto done; }
            v[j] = (int)(k - b64chars);
        }
        unsigned w = (unsigned)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
        gstr_catc(out, (char)(w >> 16));
        if (pad < 2)
            gstr_catc(out, (char)(w >> 8));
        if (pad < 1)
            gstr_catc(out, (char)w);
    }
done:
    if (s != sbuf)
        free(s);
    return ok;
}

/* ---- eval ---------------------------------------------------------------- */

typedef struct ev {
    const char *s;
    bool dec;
    const char *err;
    int depth;
} ev;

static long long ev_or(ev *e);

static void ev_ws(ev *e)
{
    while (isspace((unsigned char)*e->s))
        e->s++;
}

static long long ev_number(ev *e)
{
    ev_ws(e);
    long long n = 0;
    if (isdigit((unsigned char)*e->s)) {
        char *end;
        errno = 0;
        n = strtoll(e->s, &end, e->dec ? 10 : 0);
        e->s = end;
        unsigned long long m = 1;
        switch (tolower((unsigned char)*e->s)) {
        case 'k': m = 1024; e->s++; break;
        case 'm': m = 1024 * 1024; e->s++; break;
        case 'g': m = 1024ULL * 1024 * 1024; e->s++; break;
        default: break;
        }
        n = (long long)((unsigned long long)n * m);
        ev_ws(e);
    } else if (*e->s == '(') {
        e->s++;
        if (++e->depth > EXPAND_MAX_DEPTH) {
            e->err = "expression nested too deeply";
            return 0;
        }
        n = ev_or(e);
        e->depth--;
        if (!e->err) {
            if (*e->s != ')')
                e->err = "expecting closing parenthesis";
            else {
                e->s++;
                ev_ws(e);
            }
        }
    } else {
        e->err = "expecting number or opening parenthesis";
    }
    return n;
}

static long long ev_unary(ev *e)
{
    ev_ws(e);
    if (*e->s == '+' || *e->s == '-' || *e->s == '~') {
        char op = *e->s++;
        if (++e->depth > EXPAND_MAX_DEPTH) {
            e->err = "expression nested too deeply";
            return 0;
        }
        long long x = ev_unary(e);
        e->depth--;
        if (op == '-')
            return (long long)(0ULL - (unsigned long long)x);
        if (op == '~')
            return ~x;
        return x;
    }
    return ev_number(e);
}

static long long ev_mult(ev *e)
{
    long long x = ev_unary(e);
    while (!e->err && (*e->s == '*' || *e->s == '/' || *e->s == '%')) {
        char op = *e->s++;
        long long y = ev_unary(e);
        if (e->err)
            break;
        if (y == -1 && x == LLONG_MIN && op != '*') {
            x = LLONG_MAX;
            continue;
        }
        if (op == '*')
            x = (long long)((unsigned long long)x * (unsigned long long)y);
        else if (y == 0) {
            e->err = op == '/' ? "divide by zero" : "modulo by zero";
            return 0;
        } else
            x = op == '/' ? x / y : x % y;
    }
    return x;
}

static long long ev_sum(ev *e)
{
    long long x = ev_mult(e);
    while (!e->err && (*e->s == '+' || *e->s == '-')) {
        bool plus = *e->s++ == '+';
        long long y = ev_mult(e);
        if (e->err)
            break;
        /* Exim's conservative overflow check, kept for identical results */
        if (x >= LLONG_MAX / 2 || (x <= -(LLONG_MAX / 2) && y <= -(LLONG_MAX / 2))) {
            e->err = plus ? "overflow in sum" : "overflow in difference";
            break;
        }
        x = (long long)(plus ? (unsigned long long)x + (unsigned long long)y
                             : (unsigned long long)x - (unsigned long long)y);
    }
    return x;
}

static long long ev_shift(ev *e)
{
    long long x = ev_sum(e);
    while (!e->err && (*e->s == '<' || *e->s == '>') && e->s[1] == e->s[0]) {
        char op = *e->s;
        e->s += 2;
        long long y = ev_sum(e);
        if (e->err)
            break;
        int sh = (int)(y & 63);
        x = op == '<' ? (long long)((unsigned long long)x << sh) : x >> sh;
    }
    return x;
}

static long long ev_and(ev *e)
{
    long long x = ev_shift(e);
    while (!e->err && *e->s == '&') {
        e->s++;
        long long y = ev_shift(e);
        if (!e->err)
            x &= y;
    }
    return x;
}

static long long ev_xor(ev *e)
{
    long long x = ev_and(e);
    while (!e->err && *e->s == '^') {
        e->s++;
        long long y = ev_and(e);
        if (!e->err)
            x ^= y;
    }
    return x;
}

static long long ev_or(ev *e)
{
    long long x = ev_xor(e);
    while (!e->err && *e->s == '|') {
        e->s++;
        long long y = ev_xor(e);
        if (!e->err)
            x |= y;
    }
    return x;
}

status x_eval(xs *x, const char *s, bool decimal_only, long long *out)
{
    ev e = {.s = s, .dec = decimal_only};
    long long v = ev_or(&e);
    if (!e.err && *e.s)
        e.err = "expecting operator";
    if (e.err)
        return xfail(x, "error in expression evaluation: %s (after processing \"%.*s\")", e.err,
                     (int)(e.s - s), s);
    *out = v;
    return ST_OK;
}

/* ---- time ------------------------------------------------------------------ */

static bool read_time(const char *s, long long *out)
{
    long long total = 0;
    const char *p = s;
    if (!*p)
        return false;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return false;
        long long n = 0;
        while (isdigit((unsigned char)*p)) {
            n = n * 10 + (*p++ - '0');
            if (n > INT_MAX)
                return false;
        }
        switch (*p) {
        case 'w': n *= 7 * 24 * 3600; p++; break;
        case 'd': n *= 24 * 3600; p++; break;
        case 'h': n *= 3600; p++; break;
        case 'm': n *= 60; p++; break;
        case 's': p++; break;
        default: return false;
        }
        total += n;
        if (total > INT_MAX)
            return false;
    }
    *out = total;
    return true;
}

static void print_time(gstr *out, long long t)
{
    if (t == 0) {
        gstr_cat(out, "0s");
        return;
    }
    if (t < 0) {
        gstr_catc(out, '-');
        t = -t;
    }
    long long w = t / (7 * 86400); t %= 7 * 86400;
    long long d = t / 86400; t %= 86400;
    long long h = t / 3600; t %= 3600;
    long long m = t / 60, sec = t % 60;
    if (w) gstr_printf(out, "%lldw", w);
    if (d) gstr_printf(out, "%lldd", d);
    if (h) gstr_printf(out, "%lldh", h);
    if (m) gstr_printf(out, "%lldm", m);
    if (sec) gstr_printf(out, "%llds", sec);
}

/* ---- IP helpers -------------------------------------------------------------- */

/* IPv6 address text as Exim writes it: hex groups, the longest run of zero
 * groups (the first of equal runs, even a single group) written "::". */
static void ipv6_text(gstr *out, const unsigned char *a)
{
    unsigned g[8];
    for (int i = 0; i < 8; i++)
        g[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
    int best = -1, bestlen = 0;
    for (int i = 0; i < 8;) {
        if (g[i]) {
            i++;
            continue;
        }
        int j = i;
        while (j < 8 && !g[j])
            j++;
        if (j - i > bestlen) {
            best = i;
            bestlen = j - i;
        }
        i = j;
    }
    if (bestlen == 8) {
        gstr_catc(out, ':');   /* Exim's rendering of the all-zero address */
        return;
    }
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            gstr_cat(out, i == 0 ? "::" : ":");
            i += bestlen - 1;
            continue;
        }
        gstr_printf(out, "%x", g[i]);
        if (i < 7)
            gstr_catc(out, ':');
    }
}

static status op_mask(xs *x, const char *s, bool normalised, gstr *out)
{
    const char *slash = strchr(s, '/');
    unsigned char a[16];
    int fam, mask;
    {
        char *ip = arena_strndup(x->w, s, slash ? (size_t)(slash - s) : strlen(s));
        int f2;
        unsigned char b[16];
        if (!ip_parse(ip, b, &f2, NULL))
            return xfail(x, "%s is not an IP address", xq(x, s));
    }
    if (!slash)
        return xfail(x, "missing mask value in %s", xq(x, s));
    if (!slash[1]) {
        char *ip = arena_strndup(x->w, s, (size_t)(slash - s));
        ip_parse(ip, a, &fam, NULL);
        mask = 0;
    } else if (!ip_parse(s, a, &fam, &mask))
        return xfail(x, "mask value too big in %s", xq(x, s));
    int max = fam == 4 ? 32 : 128;
    long m = slash[1] ? strtol(slash + 1, NULL, 10) : 0;
    if (m > max)
        return xfail(x, "mask value too big in %s", xq(x, s));
    for (int i = 0, b = mask; i < 16; i++, b -= 8)
        a[i] &= b >= 8 ? 0xff : b > 0 ? (unsigned char)(0xff << (8 - b)) : 0;
    if (fam == 4) {
        gstr_printf(out, "%d.%d.%d.%d/%d", a[0], a[1], a[2], a[3], mask);
    } else if (normalised) {
        ipv6_text(out, a);
        gstr_printf(out, "/%d", mask);
    } else {
        for (int i = 0; i < 16; i += 2)
            gstr_printf(out, "%s%02x%02x", i ? "." : "", a[i], a[i + 1]);
        gstr_printf(out, "/%d", mask);
    }
    return ST_OK;
}

static status op_reverse_ip(xs *x, const char *s, gstr *out)
{
    unsigned char a[16];
    int fam, mask;
    if (!ip_parse(s, a, &fam, &mask))
        return xfail(x, "reverse_ip() not given an IP address [%s]", s);
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (fam == 6 && memcmp(a, mapped, 12) == 0 && strchr(s, '.')) {
        memmove(a, a + 12, 4);
        fam = 4;
    }
    if (fam == 4)
        gstr_printf(out, "%d.%d.%d.%d", a[3], a[2], a[1], a[0]);
    else
        for (int i = 15; i >= 0; i--)
            gstr_printf(out, "%x.%x%s", a[i] & 15, a[i] >> 4, i ? "." : "");
    return ST_OK;
}

static status op_ipv6(xs *x, const char *s, bool norm, gstr *out)
{
    unsigned char a[16];
    int fam;
    if (!ip_parse(s, a, &fam, NULL))
        return xfail(x, "%s is not an IP address", xq(x, s));
    if (fam == 4) {
        unsigned char b[16] = {0};
        b[10] = b[11] = 0xff;
        memcpy(b + 12, a, 4);
        memcpy(a, b, 16);
    }
    if (norm) {
        ipv6_text(out, a);
    } else {
        for (int i = 0; i < 16; i += 2)
            gstr_printf(out, "%s%02x%02x", i ? ":" : "", a[i], a[i + 1]);
    }
    return ST_OK;
}

/* ---- RFC 2047 ------------------------------------------------------------- */

static const char *hdr_charset(void)
{
    const char *c = cfg ? cfg_str(MO_headers_charset) : NULL;
    return c ? c : "UTF-8";
}

static void rfc2047_encode(gstr *out, const char *s)
{
    gstr g;
    gstr_init(&g, out->a, 64);
    gstr_printf(&g, "=?%s?Q?", hdr_charset());
    size_t hlen = g.len, line_off = hlen;
    bool coded = false, first_byte = false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (g.len - line_off > 67 && !first_byte) {
            gstr_cat(&g, "?= ");
            line_off = g.len;
            gstr_catn(&g, g.s, hlen);
        }
        int c = *p;
        if (c < 33 || c > 126 || strchr("?=()<>@,;:\\\".[]_", c)) {
            if (c == ' ') {
                gstr_catc(&g, '_');
                first_byte = false;
            } else {
                gstr_printf(&g, "=%02X", c);
                coded = true;
                first_byte = !first_byte;
            }
        } else {
            gstr_catc(&g, (char)c);
            first_byte = false;
        }
    }
    if (coded) {
        gstr_cat(&g, "?=");
        gstr_catn(out, g.s, g.len);
    } else {
        gstr_cat(out, s);
    }
}

static int hexv(int c)
{
    return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

static void conv_append(gstr *out, const char *cs, const char *data, size_t n)
{
    const char *to = hdr_charset();
    if (strcasecmp(cs, to) == 0) {
        gstr_catn(out, data, n);
        return;
    }
    iconv_t cd = iconv_open(to, cs);
    if (cd == (iconv_t)-1) {
        gstr_catn(out, data, n);
        return;
    }
    char *in = (char *)data;
    size_t inl = n;
    while (inl) {
        char buf[256], *o = buf;
        size_t ol = sizeof buf;
        size_t r = iconv(cd, &in, &inl, &o, &ol);
        gstr_catn(out, buf, (size_t)(o - buf));
        if (r == (size_t)-1 && errno != E2BIG) {
            gstr_catc(out, '?');
            in++;
            inl--;
        }
    }
    iconv_close(cd);
}

static status rfc2047_decode(xs *x, const char *s, gstr *out)
{
    const char *p = s;
    bool last_encoded = false;
    const char *pending_ws = NULL;
    size_t pending_n = 0;
    while (*p) {
        const char *q = strstr(p, "=?");
        const char *cs_end, *enc_end, *end;
        if (q && (cs_end = strchr(q + 2, '?')) && cs_end[1] && cs_end[2] == '?' &&
            strchr("qQbB", cs_end[1]) && (end = strstr(cs_end + 3, "?="))) {
            enc_end = cs_end + 2;
            /* text before */
            bool ws_only = true;
            for (const char *t = p; t < q; t++)
                if (!isspace((unsigned char)*t))
                    ws_only = false;
            if (!(last_encoded && ws_only))
                gstr_catn(out, p, (size_t)(q - p));
            (void)pending_ws;
            (void)pending_n;
            char *cs = arena_strndup(x->w, q + 2, (size_t)(cs_end - q - 2));
            char *star = strchr(cs, '*');
            if (star)
                *star = 0;
            gstr d;
            gstr_init(&d, x->w, 64);
            const char *t = enc_end + 1;
            if (cs_end[1] == 'b' || cs_end[1] == 'B') {
                char *b = arena_strndup(x->w, t, (size_t)(end - t));
                if (!b64dec(&d, b))
                    return xfail(x, "error in RFC 2047 base64 encoding");
            } else {
                for (; t < end; t++) {
                    if (*t == '_')
                        gstr_catc(&d, ' ');
                    else if (*t == '=' && isxdigit((unsigned char)t[1]) && isxdigit((unsigned char)t[2])) {
                        gstr_catc(&d, (char)(hexv((unsigned char)t[1]) * 16 + hexv((unsigned char)t[2])));
                        t += 2;
                    } else
                        gstr_catc(&d, *t);
                }
            }
            conv_append(out, cs, d.s, d.len);
            p = end + 2;
            last_encoded = true;
            continue;
        }
        gstr_cat(out, p);
        break;
    }
    return ST_OK;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

static void utf8clean(gstr *out, const unsigned char *s)
{
    while (*s) {
        unsigned c = *s;
        int need = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
        if (need < 0) {
            gstr_catc(out, '?');
            s++;
            continue;
        }
        int i;
        for (i = 1; i <= need; i++)
            if ((s[i] & 0xc0) != 0x80)
                break;
        if (i <= need) {
            gstr_catc(out, '?');
            s += i;
            continue;
        }
        gstr_catn(out, (const char *)s, (size_t)need + 1);
        s += need + 1;
    }
}

static void from_utf8(gstr *out, const unsigned char *s)
{
    static const unsigned masks[] = {0xff, 0x1f, 0x0f, 0x07, 0x03, 0x01};
    while (*s) {
        unsigned long c = *s++;
        if ((c & 0xc0) == 0xc0) {
            int n = c < 0xe0 ? 1 : c < 0xf0 ? 2 : c < 0xf8 ? 3 : c < 0xfc ? 4 : 5;
            int sh = 6 * n;
            c = (c & masks[n]) << sh;
            while (n-- > 0 && *s) {   /* continuation bytes, not past the end */
                sh -= 6;
                c |= (unsigned long)(*s++ & 0x3f) << sh;
            }
        }
        gstr_catc(out, c > 255 ? '_' : (char)c);
    }
}

/* ---- headerwrap (Exim 4.99) ---------------------------------------------- */

static void headerwrap(gstr *out, const char *s, unsigned cols, unsigned maxchars)
{
    /* Break s into lines of at most cols columns at white space (hard
     * break when there is none), continuation lines starting with a tab
     * counted as 8 columns; a literal "\\n" or a newline forces a break;
     * the whole result is cut at maxchars. */
    if (maxchars == 0)
        maxchars = INT_MAX;
    if (cols == 0)
        cols = INT_MAX;
    size_t start = out->len;
    if (!s || !*s)
        return;
    for (unsigned llen = 0;; llen = 8) {
        const char *t;
        unsigned ltail = 0;
        if ((t = strchr(s, '\\')) && t[1] == 'n')
            ltail = 2;
        else if ((t = strchr(s, '\n')))
            ltail = 1;
        else
            t = s + strlen(s);
        if (llen + (unsigned)(t - s) > cols) {
            bool done = false;
            for (const char *u = s + cols - llen; u > s + 10; --u)
                if (isspace((unsigned char)*u)) {
                    llen = (unsigned)(u - s);
                    while (u > s + 1 && isspace((unsigned char)u[-1]))
                        --u;
                    gstr_catn(out, s, (size_t)(u - s));
                    s += ++llen;
                    while (*s && isspace((unsigned char)*s))
                        s++, llen++;
                    done = true;
                    break;
                }
            if (!done) {
                if (llen < cols) {
                    llen = cols - llen;
                    gstr_catn(out, s, llen);
                    s += llen;
                } else {
                    /* the indent alone fills the line: emit one character so
                     * that the loop always progresses (Exim would spin) */
                    gstr_catc(out, *s++);
                    llen = 1;
                }
            }
        } else {
            llen = (unsigned)(t - s);
            gstr_catn(out, s, llen);
            s = t + ltail;
        }
        if (!*s)
            break;
        if (out->len - start >= maxchars) {
            gstr_truncate(out, start + maxchars);
            break;
        }
        gstr_cat(out, "\n\t");
    }
}

/* ---- listnamed ---------------------------------------------------------------- */

static status op_listnamed(xs *x, const char *name, const char *which, gstr *out, int depth)
{
    if (*name == '+')
        name++;
    static const list_kind order[] = {NL_ADDRESS, NL_DOMAIN, NL_HOST, NL_LOCALPART};
    const named_list *nl = NULL;
    if (which && !strchr("adhl", which[0]))
        return xfail(x, "bad suffix on \"list\" operator");
    if (depth > 20)
        return xfail(x, "named lists nested too deeply at %s", xq(x, name));
    for (size_t i = 0; i < 4 && cfg && !nl; i++) {
        char k = "adhl"[i];
        if (!which || which[0] == k)
            nl = config_named_list(order[i], name);
    }
    if (!nl)
        return xfail(x, "%s is not a %snamed list", xq(x, name),
                     !which ? "" : which[0] == 'd' ? "domain " : which[0] == 'h' ? "host " :
                     which[0] == 'a' ? "address " : "localpart ");
    /* items re-quoted as a colon list; nested named lists expanded */
    const char *l = nl->value ? nl->value : "";
    int sep = 0;
    char *item;
    bool needsep = false;
    while ((item = list_next(&l, &sep, x->w))) {
        if (needsep)
            gstr_cat(out, " : ");
        needsep = true;
        if (*item == '+') {
            status st = op_listnamed(x, item, which, out, depth + 1);
            if (st != ST_OK)
                return st;
        } else if (sep != ':') {
            for (const char *p = item; *p; p++) {
                if (*p == ':')
                    gstr_catc(out, ':');
                gstr_catc(out, *p);
            }
        } else {
            gstr_cat(out, item);
        }
    }
    return ST_OK;
}

/* ---- the operator table -------------------------------------------------- */

static const char *const ops[] = {
    "address", "addresses", "base32", "base32d", "base62", "base62d", "base64", "base64d",
    "domain", "escape", "escape8bit", "eval", "eval10", "expand", "from_utf8", "h", "hash",
    "headerwrap", "hex2b64", "hexquote", "ipv6denorm", "ipv6norm", "l", "lc", "length",
    "listcount", "listnamed", "local_part", "mask", "md5", "nh", "nhash", "quote",
    "quote_local_part", "randint", "reverse_ip", "rfc2047", "rfc2047d", "rxquote", "s",
    "sha1", "sha2", "sha256", "sha3", "stat", "str2b64", "strlen", "substr", "time_eval",
    "time_interval", "uc", "utf8_domain_from_alabel", "utf8_domain_to_alabel",
    "utf8_localpart_from_alabel", "utf8_localpart_to_alabel", "utf8clean", "xtextd", NULL,
};

/* operators that take _arguments */
static bool takes_arg(const char *op)
{
    static const char *const a[] = {"sha2", "sha256", "sha3", "headerwrap", "listnamed", "mask",
                                    "quote", "quote_local_part", "length", "l", "substr", "s",
                                    "hash", "h", "nhash", "nh", NULL};
    for (int i = 0; a[i]; i++)
        if (strcmp(a[i], op) == 0)
            return true;
    return false;
}

/* Split "name_arg" into the operator and its argument text. */
static const char *op_split(arena *a, const char *name, const char **arg)
{
    *arg = NULL;
    for (int i = 0; ops[i]; i++)
        if (strcmp(ops[i], name) == 0)
            return ops[i];
    const char *best = NULL;
    for (int i = 0; ops[i]; i++) {
        size_t n = strlen(ops[i]);
        if (strncmp(name, ops[i], n) == 0 && name[n] == '_' && (!best || n > strlen(best)))
            best = ops[i];
    }
    if (best)
        *arg = name + strlen(best) + 1;
    return best;
}

static status digest(xs *x, const char *mdname, const char *s, bool upper, gstr *out)
{
    const EVP_MD *md = EVP_get_digestbyname(mdname);
    if (!md)
        return xfail(x, "digest %s not available", mdname);
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(s, strlen(s), d, &n, md, NULL);
    for (unsigned i = 0; i < n; i++)
        gstr_printf(out, upper ? "%02X" : "%02x", d[i]);
    return ST_OK;
}

static status numargs(xs *x, const char *op, const char *name, const char *arg, int *v1, int *v2, bool is_len)
{
    if (!arg)
        return xfail(x, "missing values after %s", op);
    if (!*arg) {   /* "hash_:" etc.: Exim's defaults */
        *v1 = 0;
        *v2 = is_len ? 0 : -1;
        return ST_OK;
    }
    if (arg[strlen(arg) - 1] == '_')
        return xfail(x, "non-digit after underscore in %s", xq(x, name));
    const char *p = arg;
    int vals[2] = {0, -1};
    for (int i = 0; i < 2 && *p; i++) {
        int sign = 1;
        if (*p == '-' && i == 0 && !is_len) {
            sign = -1;
            p++;
        }
        if (!isdigit((unsigned char)*p))
            return xfail(x, "non-digit after underscore in %s", xq(x, name));
        long v = 0;
        while (isdigit((unsigned char)*p)) {
            if (v < INT_MAX / 10)
                v = v * 10 + (*p - '0');
            p++;
        }
        vals[i] = (int)(sign * v);
        if (*p == '_')
            p++;
        else if (*p)
            return xfail(x, "non-digit after underscore in %s", xq(x, name));
    }
    if (is_len) {
        *v1 = 0;
        *v2 = vals[0];
    } else {
        *v1 = vals[0];
        *v2 = vals[1];
    }
    return ST_OK;
}

static status op_addresses(xs *x, const char *s, gstr *out)
{
    int osep = ':';
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '>') {
        if (!s[1])
            return xfail(x, "output separator missing in expanding ${addresses:%s}", s);
        osep = (unsigned char)s[1];
        s += 2;
    }
    bool first = true;
    const char *p = s;
    while (*p) {
        /* split at a comma outside quotes, <> and comments */
        const char *q = p;
        bool inq = false;
        int depth = 0, angle = 0;
        for (; *q; q++) {
            if (*q == '\\' && q[1]) {
                q++;
                continue;
            }
            if (*q == '"' && !depth)
                inq = !inq;
            else if (inq)
                continue;
            else if (*q == '(')
                depth++;
            else if (*q == ')' && depth)
                depth--;
            else if (!depth && *q == '<')
                angle++;
            else if (!depth && *q == '>' && angle)
                angle--;
            else if (!depth && !angle && *q == ',')
                break;
        }
        char *item = arena_strndup(x->w, p, (size_t)(q - p));
        char *err;
        int doff;
        /* a group "name: a, b;" */
        char *colon = NULL;
        if (!strchr(item, '<') && !strchr(item, '"'))
            colon = strchr(item, ':');
        if (colon)
            item = colon + 1;
        size_t il = strlen(item);
        while (il && (isspace((unsigned char)item[il - 1]) || item[il - 1] == ';'))
            item[--il] = 0;
        char *a = x_parse_address(x->w, item, &err, &doff);
        if (a && *a) {
            if (!first) {
                gstr_catc(out, (char)osep);
                if (*a == osep)
                    gstr_catc(out, ' ');
            }
            for (const char *c = a; *c; c++) {
                if (*c == osep)
                    gstr_catc(out, (char)osep);
                gstr_catc(out, *c);
            }
            first = false;
        }
        p = *q ? q + 1 : q;
    }
    return ST_OK;
}

/* ---- one function per operator ------------------------------------------ */

/* Every operator function gets the operator (op, without its _arg), the
 * full name as written (name), the _arg text or NULL (arg), the expanded
 * argument (s) and its taint (argt); it appends to out, may set *taint,
 * and clears *keep_taint when the result does not carry the argument's
 * taint.  before is out->len on entry. */
#define OP_ARGS xs *x, const char *op, const char *name, const char *arg, const char *s, \
                bool argt, gstr *out, bool *taint, bool *keep_taint, size_t before

static status opf_lc(OP_ARGS)
{
    status st = ST_OK;
    bool up = op[0] == 'u';
    for (const char *p = s; *p; p++)
        gstr_catc(out, (char)(up ? toupper((unsigned char)*p) : tolower((unsigned char)*p)));
    return st;
}

static status opf_strlen(OP_ARGS)
{
    status st = ST_OK;
    gstr_printf(out, "%zu", strlen(s));
    *keep_taint = false;
    return st;
}

static status opf_md5(OP_ARGS)
{
    status st = ST_OK;
    st = digest(x, "MD5", s, false, out);
    return st;
}

static status opf_sha1(OP_ARGS)
{
    status st = ST_OK;
    st = digest(x, "SHA1", s, true, out);
    return st;
}

static status opf_sha2(OP_ARGS)
{
    status st = ST_OK;
    const char *bits = arg ? arg : "256";
    if (strcmp(bits, "256") && strcmp(bits, "384") && strcmp(bits, "512"))
        return xfail(x, "unrecognised sha2 variant");
    st = digest(x, arena_printf(x->w, "SHA%s", bits), s, true, out);
    return st;
}

static status opf_sha3(OP_ARGS)
{
    status st = ST_OK;
    const char *bits = arg ? arg : "256";
    if (strcmp(bits, "224") && strcmp(bits, "256") && strcmp(bits, "384") && strcmp(bits, "512"))
        return xfail(x, "unrecognised sha3 variant");
    st = digest(x, arena_printf(x->w, "SHA3-%s", bits), s, true, out);
    return st;
}

static status opf_base64(OP_ARGS)
{
    status st = ST_OK;
    b64enc(out, (const unsigned char *)s, strlen(s));
    return st;
}

static status opf_base64d(OP_ARGS)
{
    status st = ST_OK;
    if (!b64dec(out, s))
        return xfail(x, "string %s is not well-formed for \"base64d\" operator", xq(x, s));
    out->s[out->len] = 0;
    out->len = before + strlen(out->s + before);
    return st;
}

static status opf_hex2b64(OP_ARGS)
{
    status st = ST_OK;
    size_t n = strlen(s);
    unsigned char *b = arena_alloc(x->w, n / 2 + 2);
    size_t o = 0;
    const char *p = s;
    for (const char *q = s; *q; q++)
        if (!isxdigit((unsigned char)*q))
            return xfail(x, "%s is not a hex string", xq(x, s));
    if (n % 2)
        return xfail(x, "%s contains an odd number of characters", xq(x, s));
    for (; *p; p += 2) {
        b[o++] = (unsigned char)(hexv((unsigned char)p[0]) * 16 + hexv((unsigned char)p[1]));
    }
    b64enc(out, b, o);
    return st;
}

static status opf_base32(OP_ARGS)
{
    status st = ST_OK;
    char *e;
    unsigned long n = strtoul(s, &e, 10);
    if (*e)
        return xfail(x, "argument for base32 operator is %s, which is not a decimal number", xq(x, s));
    char buf[32];
    int i = 0;
    for (; n; n >>= 5)
        buf[i++] = b32chars[n & 31];
    while (i)
        gstr_catc(out, buf[--i]);
    return st;
}

static status opf_base32d(OP_ARGS)
{
    status st = ST_OK;
    unsigned long n = 0;
    for (const char *p = s; *p; p++) {
        const char *k = strchr(b32chars, *p);
        if (!k)
            return xfail(x, "argument for base32d operator is %s, which is not a base 32 number", xq(x, s));
        n = n * 32 + (unsigned long)(k - b32chars);
    }
    gstr_printf(out, "%ld", (long)n);
    return st;
}

static status opf_base62(OP_ARGS)
{
    status st = ST_OK;
    char *e;
    unsigned long n = strtoul(s, &e, 10);
    if (*e)
        return xfail(x, "argument for base62 operator is %s, which is not a decimal number", xq(x, s));
    char buf[7];
    buf[6] = 0;
    for (int i = 5; i >= 0; i--) {
        buf[i] = b62chars[n % 62];
        n /= 62;
    }
    gstr_cat(out, buf);
    return st;
}

static status opf_base62d(OP_ARGS)
{
    status st = ST_OK;
    unsigned long n = 0;
    for (const char *p = s; *p; p++) {
        const char *k = strchr(b62chars, *p);
        if (!k)
            return xfail(x, "argument for base62d operator is %s, which is not a base 62 number", xq(x, s));
        n = n * 62 + (unsigned long)(k - b62chars);
    }
    gstr_printf(out, "%ld", (long)n);
    return st;
}

static status opf_escape(OP_ARGS)
{
    status st = ST_OK;
    bool top = cfg && cfg_bool(MO_print_topbitchars);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int c = *p;
        if ((c >= 32 && c <= 126) || c == '\t' || (top && c > 127)) {
            gstr_catc(out, (char)c);
            continue;
        }
        switch (c) {
        case '\n': gstr_cat(out, "\\n"); break;
        case '\r': gstr_cat(out, "\\r"); break;
        case '\b': gstr_cat(out, "\\b"); break;
        case '\v': gstr_cat(out, "\\v"); break;
        case '\f': gstr_cat(out, "\\f"); break;
        default: gstr_printf(out, "\\%03o", c); break;
        }
    }
    return st;
}

static status opf_escape8bit(OP_ARGS)
{
    status st = ST_OK;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 127 && *p != '\\')
            gstr_catc(out, (char)*p);
        else
            gstr_printf(out, "\\%03o", *p);
    return st;
}

static status opf_hexquote(OP_ARGS)
{
    status st = ST_OK;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            gstr_printf(out, "\\x%02x", *p);
        else
            gstr_catc(out, (char)*p);
    return st;
}

static status opf_eval(OP_ARGS)
{
    status st = ST_OK;
    long long v;
    if ((st = x_eval(x, s, op[4] == '1', &v)) == ST_OK)
        gstr_printf(out, "%lld", v);
    *keep_taint = false;
    return st;
}

static status opf_expand(OP_ARGS)
{
    status st = ST_OK;
    const char *p = s;
    bool t = false;
    if (argt)
        return xfail(x, "internal expansion of %s failed: attempt to expand tainted string '%s'", xq(x, s), s);
    size_t mark = out->len;
    st = xp_sub(x, &p, false, false, out, &t);
    if (st != ST_OK && !x->forced) {
        char *inner = x->err;
        x->err = NULL;
        gstr_truncate(out, mark);
        st = xfail(x, "internal expansion of %s failed: %s", xq(x, s), inner ? inner : "");
    }
    *taint |= t;
    return st;
}

static status opf_length(OP_ARGS)
{
    status st = ST_OK;
    int v1, v2;
    bool is_len = op[0] == 'l';
    if ((st = numargs(x, op, name, arg, &v1, &v2, is_len)) == ST_OK)
        x_substr(out, s, v1, v2);
    return st;
}

static status opf_hash(OP_ARGS)
{
    status st = ST_OK;
    int v1, v2;
    if ((st = numargs(x, op, name, arg, &v1, &v2, false)) == ST_OK)
        st = x_hash(x, out, s, v1, v2);
    return st;
}

static status opf_nhash(OP_ARGS)
{
    status st = ST_OK;
    int v1, v2;
    if ((st = numargs(x, op, name, arg, &v1, &v2, false)) == ST_OK)
        st = x_nhash(x, out, s, v1, v2);
    return st;
}

static status opf_listcount(OP_ARGS)
{
    status st = ST_OK;
    gstr_printf(out, "%d", list_count(s, 0, x->w));
    *keep_taint = false;
    return st;
}

static status opf_listnamed(OP_ARGS)
{
    status st = ST_OK;
    st = op_listnamed(x, s, arg, out, 0);
    *keep_taint = false;
    return st;
}

static status opf_quote(OP_ARGS)
{
    status st = ST_OK;
    bool need = !*s;
    for (const char *p = s; *p && !need; p++)
        need = !isalnum((unsigned char)*p) && !strchr("_-.", *p);
    if (!need)
        gstr_cat(out, s);
    else {
        gstr_catc(out, '"');
        for (const char *p = s; *p; p++) {
            if (*p == '\n')
                gstr_cat(out, "\\n");
            else if (*p == '\r')
                gstr_cat(out, "\\r");
            else {
                if (*p == '\\' || *p == '"')
                    gstr_catc(out, '\\');
                gstr_catc(out, *p);
            }
        }
        gstr_catc(out, '"');
    }
    return st;
}

static status opf_quote_local_part(OP_ARGS)
{
    status st = ST_OK;
    bool need = !*s;
    for (const char *p = s; *p && !need; p++)
        need = !isalnum((unsigned char)*p) && !strchr("!#$%&'*+-/=?^_`{|}~", *p) &&
               (*p != '.' || p == s || !p[1]);
    if (!need)
        gstr_cat(out, s);
    else {
        gstr_catc(out, '"');
        for (const char *p = s; *p; p++) {
            if (*p == '\\' || *p == '"')
                gstr_catc(out, '\\');
            gstr_catc(out, *p);
        }
        gstr_catc(out, '"');
    }
    return st;
}

static status opf_rxquote(OP_ARGS)
{
    status st = ST_OK;
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p))
            gstr_catc(out, '\\');
        gstr_catc(out, *p);
    }
    return st;
}

static status opf_address(OP_ARGS)
{
    status st = ST_OK;
    char *err;
    int doff = -1;
    char *a = x_parse_address(x->w, s, &err, &doff);
    if (a) {
        if (op[0] == 'a')
            gstr_cat(out, a);
        else if (op[0] == 'd') {
            if (doff >= 0)
                gstr_cat(out, a + doff);
        } else {
            gstr_catn(out, a, doff >= 0 ? (size_t)doff - 1 : strlen(a));
        }
    }
    return st;
}

static status opf_addresses(OP_ARGS)
{
    status st = ST_OK;
    st = op_addresses(x, s, out);
    return st;
}

static status opf_mask(OP_ARGS)
{
    status st = ST_OK;
    st = op_mask(x, s, arg && arg[0] == 'n', out);
    return st;
}

static status opf_reverse_ip(OP_ARGS)
{
    status st = ST_OK;
    st = op_reverse_ip(x, s, out);
    return st;
}

static status opf_ipv6norm(OP_ARGS)
{
    status st = ST_OK;
    st = op_ipv6(x, s, op[4] == 'n', out);
    return st;
}

static status opf_time_eval(OP_ARGS)
{
    status st = ST_OK;
    long long t;
    if (!read_time(s, &t))
        return xfail(x, "string %s is not an Exim time interval in \"time_eval\" operator", xq(x, s));
    gstr_printf(out, "%lld", t);
    *keep_taint = false;
    return st;
}

static status opf_time_interval(OP_ARGS)
{
    status st = ST_OK;
    const char *p = s;
    long long n = 0;
    if (*p && !isdigit((unsigned char)*p))
        return xfail(x, "string %s is not a positive number in \"time_interval\" operator", xq(x, s));
    while (isdigit((unsigned char)*p)) {
        if (n < INT_MAX)
            n = n * 10 + (*p - '0');
        p++;
    }
    switch (tolower((unsigned char)*p)) {
    case 'k': n *= 1024; p++; break;
    case 'm': n *= 1024 * 1024; p++; break;
    default: break;
    }
    if (*p)
        return xfail(x, "string %s is not a positive number in \"time_interval\" operator", xq(x, s));
    print_time(out, n);
    *keep_taint = false;
    return st;
}

static status opf_utf8_domain_from_alabel(OP_ARGS)
{
    status st = ST_OK;
    st = x_idn_op(x, op, s, out);
    return st;
}

static status opf_utf8clean(OP_ARGS)
{
    status st = ST_OK;
    utf8clean(out, (const unsigned char *)s);
    return st;
}

static status opf_from_utf8(OP_ARGS)
{
    status st = ST_OK;
    from_utf8(out, (const unsigned char *)s);
    return st;
}

static status opf_rfc2047(OP_ARGS)
{
    status st = ST_OK;
    rfc2047_encode(out, s);
    return st;
}

static status opf_rfc2047d(OP_ARGS)
{
    status st = ST_OK;
    st = rfc2047_decode(x, s, out);
    return st;
}

static status opf_headerwrap(OP_ARGS)
{
    status st = ST_OK;
    unsigned col = 80, lim = 998;
    if (arg && *arg) {
        col = (unsigned)atoi(arg);
        const char *u = strchr(arg, '_');
        if (u)
            lim = (unsigned)atoi(u + 1);
    }
    headerwrap(out, s, col, lim);
    return st;
}

static status opf_xtextd(OP_ARGS)
{
    status st = ST_OK;
    for (const char *p = s; *p; p++) {
        if (*p == '+' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            gstr_catc(out, (char)(hexv((unsigned char)p[1]) * 16 + hexv((unsigned char)p[2])));
            p += 2;
        } else
            gstr_catc(out, *p);
    }
    return st;
}

static status opf_randint(OP_ARGS)
{
    status st = ST_OK;
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p) && !((*p == '-' || *p == '+') && isdigit((unsigned char)p[1])))
        return xfail(x, "integer expected but %s found", xq(x, s));
    long long max;
    if (!x_number(s, &max))
        return xfail(x, "invalid integer %s", xq(x, s));
    unsigned long long r = 0;
    RAND_bytes((unsigned char *)&r, sizeof r);
    gstr_printf(out, "%llu", max <= 1 ? 0ULL : r % (unsigned long long)max);
    *keep_taint = false;
    return st;
}

static status opf_stat(OP_ARGS)
{
    status st = ST_OK;
    struct stat sb;
    if (ps.exp_forbid & EXPAND_FORBID_STAT)
        return xfail(x, "Use of the stat() expansion is not permitted");
    if (argt)
        return xfail(x, "Tainted filename '%s' for stat", s);
    if (stat(s, &sb) != 0)
        return xfail(x, "stat(%s) failed: %s", s, strerror(errno));
    static const char *const t = "?pc?d?b?-?l?s???";
    char smode[11];
    smode[0] = t[(sb.st_mode >> 12) & 15];
    for (int i = 0; i < 9; i++)
        smode[1 + i] = (sb.st_mode & (0400 >> i)) ? "rwxrwxrwx"[i] : '-';
    smode[10] = 0;
    gstr_printf(out, "mode=%04o smode=%s inode=%ld device=%ld links=%ld uid=%ld gid=%ld size=%lld "
                     "atime=%ld mtime=%ld ctime=%ld",
                (int)sb.st_mode, smode, (long)sb.st_ino, (long)sb.st_dev,
                (long)sb.st_nlink, (long)sb.st_uid, (long)sb.st_gid, (long long)sb.st_size,
                (long)sb.st_atime, (long)sb.st_mtime, (long)sb.st_ctime);
    *keep_taint = false;
    return st;
}

typedef status (*op_fn)(OP_ARGS);

/* The operator table, sorted by name for bsearch. */
static const struct op_row {
    const char *name;
    op_fn fn;
} op_table[] = {
    {"address", opf_address},
    {"addresses", opf_addresses},
    {"base32", opf_base32},
    {"base32d", opf_base32d},
    {"base62", opf_base62},
    {"base62d", opf_base62d},
    {"base64", opf_base64},
    {"base64d", opf_base64d},
    {"domain", opf_address},
    {"escape", opf_escape},
    {"escape8bit", opf_escape8bit},
    {"eval", opf_eval},
    {"eval10", opf_eval},
    {"expand", opf_expand},
    {"from_utf8", opf_from_utf8},
    {"h", opf_hash},
    {"hash", opf_hash},
    {"headerwrap", opf_headerwrap},
    {"hex2b64", opf_hex2b64},
    {"hexquote", opf_hexquote},
    {"ipv6denorm", opf_ipv6norm},
    {"ipv6norm", opf_ipv6norm},
    {"l", opf_length},
    {"lc", opf_lc},
    {"length", opf_length},
    {"listcount", opf_listcount},
    {"listnamed", opf_listnamed},
    {"local_part", opf_address},
    {"mask", opf_mask},
    {"md5", opf_md5},
    {"nh", opf_nhash},
    {"nhash", opf_nhash},
    {"quote", opf_quote},
    {"quote_local_part", opf_quote_local_part},
    {"randint", opf_randint},
    {"reverse_ip", opf_reverse_ip},
    {"rfc2047", opf_rfc2047},
    {"rfc2047d", opf_rfc2047d},
    {"rxquote", opf_rxquote},
    {"s", opf_length},
    {"sha1", opf_sha1},
    {"sha2", opf_sha2},
    {"sha256", opf_sha2},
    {"sha3", opf_sha3},
    {"stat", opf_stat},
    {"str2b64", opf_base64},
    {"strlen", opf_strlen},
    {"substr", opf_length},
    {"time_eval", opf_time_eval},
    {"time_interval", opf_time_interval},
    {"uc", opf_lc},
    {"utf8_domain_from_alabel", opf_utf8_domain_from_alabel},
    {"utf8_domain_to_alabel", opf_utf8_domain_from_alabel},
    {"utf8_localpart_from_alabel", opf_utf8_domain_from_alabel},
    {"utf8_localpart_to_alabel", opf_utf8_domain_from_alabel},
    {"utf8clean", opf_utf8clean},
    {"xtextd", opf_xtextd},
};

static int op_row_cmp(const void *k, const void *r)
{
    return strcmp(k, ((const struct op_row *)r)->name);
}

status xp_op(xs *x, const char *name, const char *s, bool argt, gstr *out, bool *taint)
{
    const char *arg = NULL;
    const char *op = NULL;
    bool quote_lookup = false;
    const lookup_driver *qd = NULL;
    if (strncmp(name, "quote_", 6) != 0 || strncmp(name, "quote_local_part", 16) == 0)
        op = op_split(x->w, name, &arg);
    if (!op && strncmp(name, "quote_", 6) == 0 && strcmp(name, "quote_local_part") != 0) {
        const char *ln = name + 6;
        const char *us = strchr(ln, '_');
        size_t n = us ? (size_t)(us - ln) : strlen(ln);
        qd = lookup_find_driver(ln, n);
        if (!qd)
            return xfail(x, "unknown lookup type \"%.*s\"", (int)n, ln);
        quote_lookup = true;
        arg = us ? us + 1 : NULL;
    }
    if (!op && !quote_lookup)
        return ST_NOTFOUND;
    if (!s)
        return ST_OK;       /* syntax check only */
    if (arg && !quote_lookup && !takes_arg(op))
        return xfail(x, "unknown expansion operator %s (\"%.*s\" does not take an _arg)", xq(x, name), (int)strlen(op), name);

    size_t before = out->len;
    status st = ST_OK;
    bool keep_taint = true;   /* result carries the argument's taint */

    if (quote_lookup) {
        if (qd->quote)
            gstr_cat(out, qd->quote(s, arg, x->w));
        else
            gstr_cat(out, s);    } else {
        const struct op_row *r = bsearch(op, op_table, sizeof op_table / sizeof op_table[0],
                                         sizeof op_table[0], op_row_cmp);
        if (!r)
            return ST_NOTFOUND;
        st = r->fn(x, op, name, arg, s, argt, out, taint, &keep_taint, before);
    }
    if (st == ST_OK && keep_taint)
        *taint |= argt;
    return st;
}

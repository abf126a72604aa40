/* sigutil.c: tag lists, canonicalization, base64, folding helpers shared
 * by DKIM, ARC and DomainKeys.  See sigutil.h. */
#include "msgauth/sig/sigutil.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* ---- tag lists ---------------------------------------------------------- */

static bool is_wsp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

status tags_parse(arena *a, const char *s, size_t len, sig_tags *out, const char **err)
{
    out->n = 0;
    const char *p = s, *end = s + len;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *e = semi ? semi : end;
        const char *q = p;
        while (q < e && is_wsp(*q))
            q++;
        if (q == e) {                        /* empty segment */
            if (semi && semi + 1 < end) {
                /* ";;" or leading ';' in the middle: tolerated only at the end */
                const char *r = semi + 1;
                while (r < end && is_wsp(*r))
                    r++;
                if (r < end) {
                    *err = "empty tag";
                    return ST_FAIL;
                }
            }
            p = semi ? semi + 1 : end;
            continue;
        }
        const char *ns = q;
        while (q < e && (isalnum((unsigned char)*q) || *q == '_'))
            q++;
        const char *ne = q;
        if (ne == ns || !isalpha((unsigned char)*ns)) {
            *err = "bad tag name";
            return ST_FAIL;
        }
        while (q < e && is_wsp(*q))
            q++;
        if (q == e || *q != '=') {
            *err = "tag without '='";
            return ST_FAIL;
        }
        q++;
        while (q < e && is_wsp(*q))
            q++;
        const char *ve = e;
        while (ve > q && is_wsp(ve[-1]))
            ve--;
        for (const char *c = q; c < ve; c++) {
            unsigned char u = (unsigned char)*c;
            if ((u < 0x21 || u > 0x7e) && !is_wsp(*c) && u < 0x80) {
                *err = "bad character in tag value";
                return ST_FAIL;
            }
        }
        if (out->n == TAGS_MAX) {
            *err = "too many tags";
            return ST_FAIL;
        }
        char *name = arena_strndup(a, ns, (size_t)(ne - ns));
        for (int i = 0; i < out->n; i++)
            if (strcmp(out->t[i].name, name) == 0) {
                *err = "duplicate tag";
                return ST_FAIL;
            }
        out->t[out->n].name = name;
        out->t[out->n].value = arena_strndup(a, q, (size_t)(ve - q));
        out->n++;
        p = semi ? semi + 1 : end;
    }
    return ST_OK;
}

const char *tags_get(const sig_tags *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->t[i].name, name) == 0)
            return t->t[i].value;
    return NULL;
}

char *str_nows(arena *a, const char *v)
{
    size_t n = strlen(v);
    char *o = arena_alloc(a, n + 1), *p = o;
    for (; *v; v++)
        if (!isspace((unsigned char)*v))
            *p++ = *v;
    *p = 0;
    return o;
}

/* ---- canonicalization --------------------------------------------------- */

static bool canon_word(const char *s, size_t n, canon *c)
{
    if (n == 6 && strncasecmp(s, "simple", 6) == 0)
        *c = CANON_SIMPLE;
    else if (n == 7 && strncasecmp(s, "relaxed", 7) == 0)
        *c = CANON_RELAXED;
    else
        return false;
    return true;
}

bool canon_parse(const char *s, canon *head, canon *body)
{
    const char *slash = strchr(s, '/');
    if (!slash) {
        *body = CANON_SIMPLE;
        return canon_word(s, strlen(s), head);
    }
    return canon_word(s, (size_t)(slash - s), head) &&
           canon_word(slash + 1, strlen(slash + 1), body);
}

const char *canon_name(canon c)
{
    return c == CANON_SIMPLE ? "simple" : c == CANON_RELAXED ? "relaxed" : "nofws";
}

void canon_header(gstr *g, canon c, const mail_header *h)
{
    if (c == CANON_SIMPLE) {
        gstr_catn(g, h->raw, h->raw_len);
        if (h->raw_len < 2 || h->raw[h->raw_len - 1] != '\n')
            gstr_catn(g, "\r\n", 2);
        return;
    }
    if (c == CANON_NOFWS) {
        /* DomainKeys: drop every WSP and line break, keep the rest. */
        for (size_t i = 0; i < h->raw_len; i++) {
            char ch = h->raw[i];
            if (!is_wsp(ch))
                gstr_catc(g, ch);
        }
        gstr_catn(g, "\r\n", 2);
        return;
    }
    for (size_t i = 0; i < h->name_len; i++)
        gstr_catc(g, (char)tolower((unsigned char)h->name[i]));
    gstr_catc(g, ':');
    const char *v = h->value, *e = h->value + h->value_len;
    bool sp = false, any = false;
    for (; v < e; v++) {
        char ch = *v;
        if (ch == '\r' || ch == '\n')
            continue;
        if (ch == ' ' || ch == '\t') {
            sp = true;
            continue;
        }
        if (sp && any)
            gstr_catc(g, ' ');
        sp = false;
        any = true;
        gstr_catc(g, ch);
    }
    gstr_catn(g, "\r\n", 2);
}

char *canon_body(arena *a, canon c, const char *body, size_t len, size_t *outlen)
{
    /* the output is never longer than the input plus a final CRLF */
    char *o = arena_alloc(a, len + 3), *w = o;
    const char *p = body, *end = body + len;
    size_t keep = 0;       /* length up to the last non-empty line */
    while (p < end) {
        const char *nl = p;
        for (;;) {
            nl = memchr(nl, '\r', (size_t)(end - nl));
            if (!nl || (nl + 1 < end && nl[1] == '\n'))
                break;
            nl++;
        }
        if (!nl)
            nl = end;
        char *line_start = w;
        if (c == CANON_SIMPLE) {
            memcpy(w, p, (size_t)(nl - p));
            w += nl - p;
        } else if (c == CANON_RELAXED) {
            const char *te = nl;
            while (te > p && (te[-1] == ' ' || te[-1] == '\t'))
                te--;
            const char *q = p;
            while (q < te) {
                /* copy a run without WSP, then squeeze the WSP run after it */
                const char *r = q;
                while (r < te && *r != ' ' && *r != '\t')
                    r++;
                memcpy(w, q, (size_t)(r - q));
                w += r - q;
                if (r == te)
                    break;
                while (r < te && (*r == ' ' || *r == '\t'))
                    r++;
                *w++ = ' ';
                q = r;
            }
        } else {
            for (const char *q = p; q < nl; q++)
                if (!is_wsp(*q))
                    *w++ = *q;
        }
        bool content = w > line_start;
        *w++ = '\r';
        *w++ = '\n';
        if (content)
            keep = (size_t)(w - o);
        p = nl < end ? nl + 2 : end;
    }
    if (keep == 0 && c == CANON_SIMPLE) {
        o[0] = '\r';
        o[1] = '\n';
        keep = 2;
    }
    o[keep] = 0;
    *outlen = keep;
    return o;
}

/* ---- base64 ------------------------------------------------------------- */

static int b64v(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

unsigned char *b64_decode(arena *a, const char *s, size_t *outlen)
{
    size_t n = strlen(s);
    unsigned char *o = arena_alloc(a, n / 4 * 3 + 4);
    size_t j = 0;
    unsigned acc = 0;
    int bits = 0, pad = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isspace(c))
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64v(c);
        if (v < 0 || pad)
            return NULL;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[j++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (pad > 2 || bits >= 6)
        return NULL;
    *outlen = j;
    return o;
}

char *b64_encode(arena *a, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = arena_alloc(a, (n + 2) / 3 * 4 + 1), *q = o;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *q++ = tab[v >> 18];
        *q++ = tab[(v >> 12) & 63];
        *q++ = tab[(v >> 6) & 63];
        *q++ = tab[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
        *q++ = tab[v >> 18];
        *q++ = tab[(v >> 12) & 63];
        *q++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *q++ = '=';
    }
    *q = 0;
    return o;
}

/* ---- misc --------------------------------------------------------------- */

char *fold_tags(arena *a, const char *name, const char *value, bool break_b)
{
    gstr g;
    gstr_init(&g, a, strlen(value) + 64);
    gstr_printf(&g, "%s:", name);
    size_t col = g.len;
    const char *p = value;
    bool first = true;
    while (*p) {
        const char *e = strstr(p, "; ");
        size_t n = e ? (size_t)(e - p) + 1 : strlen(p);   /* piece incl. ';' */
        bool is_b = (p[0] == 'b' && p[1] == '=') || (p[0] == 'b' && p[1] == 'h' && p[2] == '=');
        if (!first && col + 1 + n > 76) {
            gstr_cat(&g, "\r\n\t");
            col = 8;
        } else {
            gstr_catc(&g, ' ');
            col++;
        }
        first = false;
        if (is_b && break_b && col + n > 76) {
            /* break a long base64 value; folding inside b=/bh= is allowed */
            size_t i = 0;
            while (i < n) {
                size_t room = col < 76 ? 76 - col : 0;
                if (room < 8) {
                    gstr_cat(&g, "\r\n\t");
                    col = 8;
                    continue;
                }
                size_t take = n - i < room ? n - i : room;
                gstr_catn(&g, p + i, take);
                col += take;
                i += take;
            }
        } else {
            gstr_catn(&g, p, n);
            col += n;
        }
        p += n;
        while (*p == ' ')
            p++;
    }
    gstr_cat(&g, "\r\n");
    return g.s;
}

char *append_b(arena *a, const char *field, const char *b64)
{
    gstr g;
    gstr_init(&g, a, strlen(field) + strlen(b64) + 64);
    size_t fl = strlen(field);
    if (fl >= 2 && field[fl - 2] == '\r')
        fl -= 2;
    gstr_catn(&g, field, fl);
    size_t col = 0;
    while (col < fl && field[fl - 1 - col] != '\n')
        col++;
    size_t n = strlen(b64), i = 0;
    while (i < n) {
        size_t room = col < 76 ? 76 - col : 0;
        if (room < 8) {
            gstr_cat(&g, "\r\n\t");
            col = 8;
            continue;
        }
        size_t take = n - i < room ? n - i : room;
        gstr_catn(&g, b64 + i, take);
        i += take;
        col += take;
    }
    gstr_cat(&g, "\r\n");
    return g.s;
}

void strip_b_value(arena *a, const mail_header *h, mail_header *out)
{
    *out = *h;
    const char *v = h->value, *end = h->raw + h->raw_len;
    const char *vend = h->value + h->value_len;
    const char *p = v;
    while (p < vend) {
        const char *semi = memchr(p, ';', (size_t)(vend - p));
        const char *e = semi ? semi : vend;
        const char *q = p;
        while (q < e && is_wsp(*q))
            q++;
        const char *ns = q;
        while (q < e && isalnum((unsigned char)*q))
            q++;
        size_t nl = (size_t)(q - ns);
        while (q < e && is_wsp(*q))
            q++;
        if (nl == 1 && *ns == 'b' && q < e && *q == '=') {
            q++;
            /* drop q..e */
            size_t pre = (size_t)(q - h->raw), post = (size_t)(end - e);
            char *r = arena_alloc(a, pre + post + 1);
            memcpy(r, h->raw, pre);
            memcpy(r + pre, e, post);
            r[pre + post] = 0;
            out->raw = r;
            out->raw_len = pre + post;
            out->value = r + (h->value - h->raw);
            out->value_len = h->value_len - (size_t)(e - q);
            return;
        }
        p = semi ? semi + 1 : vend;
    }
}

bool domain_eq(const char *x, const char *y)
{
    size_t nx = strlen(x), ny = strlen(y);
    while (nx && x[nx - 1] == '.') nx--;
    while (ny && y[ny - 1] == '.') ny--;
    return nx == ny && strncasecmp(x, y, nx) == 0;
}

bool domain_within(const char *sub, const char *parent)
{
    size_t ns = strlen(sub), np = strlen(parent);
    while (ns && sub[ns - 1] == '.') ns--;
    while (np && parent[np - 1] == '.') np--;
    if (ns == np)
        return strncasecmp(sub, parent, ns) == 0;
    if (ns > np && sub[ns - np - 1] == '.')
        return strncasecmp(sub + ns - np, parent, np) == 0;
    return false;
}

bool domain_syntax_ok(const char *d)
{
    size_t n = strlen(d), label = 0;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0 && !(i == n - 1 && i > 0))
                return false;
            label = 0;
            continue;
        }
        if (!(isalnum(c) || c == '-' || c == '_' || c >= 0x80) || ++label > 63)
            return false;
    }
    return true;
}

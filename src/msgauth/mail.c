/* mail.c: split a message into raw header fields and body; address lists
 * and From: domains.  See mail.h. */
#include "msgauth/mail.h"
#include "core/gstr.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Copy buf with every bare LF turned into CRLF. */
static char *to_crlf(arena *a, const char *buf, size_t len, size_t *outlen, bool *bare)
{
    size_t n = 0;
    for (const char *p = buf, *end = buf + len; (p = memchr(p, '\n', (size_t)(end - p))); p++)
        if (p == buf || p[-1] != '\r')
            n++;
    char *o = arena_alloc(a, len + n + 1);
    if (n == 0) {
        memcpy(o, buf, len);
    } else {
        size_t j = 0;
        for (size_t i = 0; i < len; i++) {
            if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
                o[j++] = '\r';
            o[j++] = buf[i];
        }
    }
    o[len + n] = 0;
    *outlen = len + n;
    *bare = n > 0;
    return o;
}

/* Length of the line at p (up to and including CRLF), within end. */
static size_t line_len(const char *p, const char *end)
{
    const char *q = p;
    while (q < end && (q = memchr(q, '\n', (size_t)(end - q)))) {
        if (q > p && q[-1] == '\r')
            return (size_t)(q + 1 - p);
        q++;
    }
    return (size_t)(end - p);
}

/* If the line is "name:" return the length of name (trailing WSP
 * trimmed) and set *colon to the colon offset; else 0. */
static size_t field_name(const char *p, size_t n, size_t *colon)
{
    size_t i = 0;
    while (i < n && p[i] != ':') {
        unsigned char c = (unsigned char)p[i];
        if (c < 33 || c > 126) {
            if (c != ' ' && c != '\t')
                return 0;
        }
        i++;
    }
    if (i == n)
        return 0;
    *colon = i;
    size_t e = i;
    while (e > 0 && (p[e - 1] == ' ' || p[e - 1] == '\t'))
        e--;
    for (size_t k = 0; k < e; k++)
        if (p[k] == ' ' || p[k] == '\t')
            return 0;
    return e;
}

status mail_parse(arena *a, const char *buf, size_t len, mail_msg *m, char **err)
{
    memset(m, 0, sizeof *m);
    size_t n;
    char *s = to_crlf(a, buf, len, &n, &m->bare_lf);
    const char *p = s, *end = s + n;
    if (n >= 5 && memcmp(p, "From ", 5) == 0)
        p += line_len(p, end);

    int cap = 32;
    m->hdr = arena_alloc(a, sizeof(mail_header) * (size_t)cap);
    while (p < end) {
        size_t ll = line_len(p, end);
        if (ll == 2 && p[0] == '\r') {      /* the empty line */
            m->has_body_sep = true;
            p += 2;
            break;
        }
        if ((p[0] == ' ' || p[0] == '\t') && m->nhdr > 0) {
            mail_header *h = &m->hdr[m->nhdr - 1];
            h->raw_len += ll;
            p += ll;
            continue;
        }
        size_t colon, nl = field_name(p, ll, &colon);
        if (nl == 0)
            break;                            /* not a header: body starts */
        if (m->nhdr == MAIL_MAX_HEADERS) {
            *err = arena_printf(a, "more than %d header fields", MAIL_MAX_HEADERS);
            return ST_FAIL;
        }
        if (m->nhdr == cap) {
            mail_header *nh = arena_alloc(a, sizeof(mail_header) * (size_t)cap * 2);
            memcpy(nh, m->hdr, sizeof(mail_header) * (size_t)cap);
            m->hdr = nh;
            cap *= 2;
        }
        mail_header *h = &m->hdr[m->nhdr++];
        h->raw = p;
        h->raw_len = ll;
        h->name = arena_strndup(a, p, nl);
        h->name_len = nl;
        h->value = p + colon + 1;
        p += ll;
    }
    for (int i = 0; i < m->nhdr; i++) {
        mail_header *h = &m->hdr[i];
        size_t vl = (size_t)(h->raw + h->raw_len - h->value);
        if (vl >= 2 && h->value[vl - 2] == '\r' && h->value[vl - 1] == '\n')
            vl -= 2;
        h->value_len = vl;
    }
    m->body = p;
    m->body_len = (size_t)(end - p);
    return ST_OK;
}

int mail_find(const mail_msg *m, const char *name, int from)
{
    size_t nl = strlen(name);
    for (int i = from < 0 ? 0 : from; i < m->nhdr; i++)
        if (m->hdr[i].name_len == nl && strncasecmp(m->hdr[i].name, name, nl) == 0)
            return i;
    return -1;
}

int mail_find_last(const mail_msg *m, const char *name, int from)
{
    size_t nl = strlen(name);
    if (from < 0 || from >= m->nhdr)
        from = m->nhdr - 1;
    for (int i = from; i >= 0; i--)
        if (m->hdr[i].name_len == nl && strncasecmp(m->hdr[i].name, name, nl) == 0)
            return i;
    return -1;
}

int mail_count(const mail_msg *m, const char *name)
{
    int n = 0;
    for (int i = mail_find(m, name, 0); i >= 0; i = mail_find(m, name, i + 1))
        n++;
    return n;
}

char *mail_unfold(arena *a, const mail_header *h)
{
    char *o = arena_alloc(a, h->value_len + 1);
    size_t j = 0;
    for (size_t i = 0; i < h->value_len; i++) {
        char c = h->value[i];
        if (c == '\r' || c == '\n')
            continue;
        o[j++] = c;
    }
    o[j] = 0;
    size_t b = 0;
    while (b < j && (o[b] == ' ' || o[b] == '\t'))
        b++;
    while (j > b && (o[j - 1] == ' ' || o[j - 1] == '\t'))
        j--;
    o[j] = 0;
    return o + b;
}

/* ---- address lists ----------------------------------------------------- */

typedef struct scan {
    const char *p, *end;
} scan;

static void skip_cfws(scan *s)
{
    for (;;) {
        while (s->p < s->end && (isspace((unsigned char)*s->p)))
            s->p++;
        if (s->p < s->end && *s->p == '(') {
            int depth = 0;
            while (s->p < s->end) {
                char c = *s->p++;
                if (c == '\\' && s->p < s->end)
                    s->p++;
                else if (c == '(')
                    depth++;
                else if (c == ')' && --depth == 0)
                    break;
            }
            continue;
        }
        return;
    }
}

/* One "word" (atom or quoted string, or a dot-joined run) appended to g. */
static void take_quoted(scan *s, gstr *g)
{
    gstr_catc(g, *s->p++);
    while (s->p < s->end) {
        char c = *s->p++;
        gstr_catc(g, c);
        if (c == '\\' && s->p < s->end)
            gstr_catc(g, *s->p++);
        else if (c == '"')
            break;
    }
}

static bool special(char c)
{
    return strchr("()<>[]:;@\\,\".", c) != NULL || isspace((unsigned char)c);
}

/* Parse an addr-spec at s (local@domain) into out; stops at '>' ',' ';'. */
static bool addr_spec(arena *a, scan *s, mail_addr *out)
{
    gstr lp, dom;
    gstr_init(&lp, a, 32);
    gstr_init(&dom, a, 32);
    gstr *cur = &lp;
    bool at = false;
    while (s->p < s->end) {
        skip_cfws(s);
        if (s->p >= s->end)
            break;
        char c = *s->p;
        if (c == '>' || c == ',' || c == ';')
            break;
        if (c == '@' && !at) {
            at = true;
            cur = &dom;
            s->p++;
            continue;
        }
        if (c == '"') {
            take_quoted(s, cur);
            continue;
        }
        if (c == '[') {
            while (s->p < s->end && *s->p != ']')
                gstr_catc(cur, *s->p++);
            if (s->p < s->end)
                gstr_catc(cur, *s->p++);
            continue;
        }
        if (c == '.' || !special(c)) {
            while (s->p < s->end && (*s->p == '.' || !special(*s->p)))
                gstr_catc(cur, *s->p++);
            continue;
        }
        s->p++;   /* stray special: skip */
    }
    if (lp.len == 0 && dom.len == 0)
        return false;
    for (size_t i = 0; i < dom.len; i++)
        dom.s[i] = (char)tolower((unsigned char)dom.s[i]);
    while (dom.len && dom.s[dom.len - 1] == '.')
        gstr_truncate(&dom, dom.len - 1);
    out->local = lp.s;
    out->domain = dom.s;
    return true;
}

int mail_addr_list(arena *a, const char *value, size_t len, mail_addr **out)
{
    scan s = { value, value + len };
    int n = 0, cap = 4;
    mail_addr *v = arena_alloc(a, sizeof *v * (size_t)cap);
    while (s.p < s.end) {
        /* One mailbox: find '<' before the next top-level ',' or ';'. */
        skip_cfws(&s);
        if (s.p >= s.end)
            break;
        if (*s.p == ',' || *s.p == ';') {
            s.p++;
            continue;
        }
        const char *q = s.p;
        const char *lt = NULL, *colon = NULL;
        bool inq = false;
        int depth = 0;
        for (; q < s.end; q++) {
            char c = *q;
            if (c == '\\' && q + 1 < s.end) { q++; continue; }
            if (inq) { if (c == '"') inq = false; continue; }
            if (c == '"') { inq = true; continue; }
            if (c == '(') { depth++; continue; }
            if (c == ')') { if (depth) depth--; continue; }
            if (depth)
                continue;
            if (c == '<') { lt = q; break; }
            if (c == ':' && !colon) { colon = q; break; }
            if (c == ',' || c == ';')
                break;
        }
        mail_addr ad;
        bool got = false;
        if (lt) {
            s.p = lt + 1;
            skip_cfws(&s);
            if (s.p < s.end && *s.p == '@') {      /* obs-route: skip to ':' */
                while (s.p < s.end && *s.p != ':' && *s.p != '>')
                    s.p++;
                if (s.p < s.end && *s.p == ':')
                    s.p++;
            }
            got = addr_spec(a, &s, &ad);
            while (s.p < s.end && *s.p != '>' && *s.p != ',')
                s.p++;
            if (s.p < s.end && *s.p == '>')
                s.p++;
        } else if (colon) {                          /* group: "name:" */
            s.p = colon + 1;
            continue;
        } else {
            got = addr_spec(a, &s, &ad);
        }
        if (got && (ad.local[0] || ad.domain[0])) {
            if (n == cap) {
                mail_addr *nv = arena_alloc(a, sizeof *v * (size_t)cap * 2);
                memcpy(nv, v, sizeof *v * (size_t)cap);
                v = nv;
                cap *= 2;
            }
            v[n++] = ad;
        }
        /* skip to the next separator */
        while (s.p < s.end && *s.p != ',' && *s.p != ';') {
            if (*s.p == '(' ) { skip_cfws(&s); continue; }
            if (*s.p == '"') { gstr junk; gstr_init(&junk, a, 8); take_quoted(&s, &junk); continue; }
            s.p++;
        }
    }
    *out = v;
    return n;
}

int mail_from_domains(arena *a, const mail_msg *m, const char ***domains, int *nfrom)
{
    int n = 0, cap = 4, nh = 0;
    const char **v = arena_alloc(a, sizeof *v * (size_t)cap);
    for (int i = mail_find(m, "from", 0); i >= 0; i = mail_find(m, "from", i + 1)) {
        nh++;
        mail_addr *ad;
        int k = mail_addr_list(a, m->hdr[i].value, m->hdr[i].value_len, &ad);
        for (int j = 0; j < k; j++) {
            if (n == cap) {
                const char **nv = arena_alloc(a, sizeof *v * (size_t)cap * 2);
                memcpy(nv, v, sizeof *v * (size_t)cap);
                v = nv;
                cap *= 2;
            }
            v[n++] = ad[j].domain;
        }
    }
    if (nfrom)
        *nfrom = nh;
    *domains = v;
    return n;
}

char *mail_render(arena *a, const mail_msg *m, size_t *len)
{
    size_t n = m->body_len + 2;
    for (int i = 0; i < m->nhdr; i++)
        n += m->hdr[i].raw_len + 2;
    char *o = arena_alloc(a, n + 1), *p = o;
    for (int i = 0; i < m->nhdr; i++) {
        const mail_header *h = &m->hdr[i];
        memcpy(p, h->raw, h->raw_len);
        p += h->raw_len;
        if (h->raw_len < 2 || h->raw[h->raw_len - 1] != '\n') {
            *p++ = '\r';
            *p++ = '\n';
        }
    }
    if (m->has_body_sep || m->body_len) {
        *p++ = '\r';
        *p++ = '\n';
    }
    memcpy(p, m->body, m->body_len);
    p += m->body_len;
    *p = 0;
    *len = (size_t)(p - o);
    return o;
}

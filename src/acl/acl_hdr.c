/* acl_hdr.c: address lists in header lines (To:, Cc:, From:, ...) for
 * verify = header_syntax and verify = not_blind: one bounded scanner that
 * splits a header value into comma-separated elements (outside quotes,
 * comments, <> and []), understands groups ("name: a@b, c@d;"), display
 * names, route addresses and domain literals, and reports the first
 * problem with Exim's wording. */
#include "acl/acl_int.h"
#include "core/gstr.h"

#include <ctype.h>
#include <string.h>

typedef struct hscan {
    arena *a;
    bool in_group;
    bool allow_unqualified;
    const char *err;        /* first error text */
    const char *addr;       /* extracted address of the element (NULL: none) */
} hscan;

static const char *skip_cfws(const char *p)
{
    for (;;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (*p != '(')
            return p;
        int depth = 0;
        while (*p) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '(')
                depth++;
            else if (*p == ')' && --depth == 0) {
                p++;
                break;
            }
            p++;
        }
    }
}

static bool atom_char(unsigned char ch)
{
    return ch > 32 && ch != 127 && !strchr("()<>@,;:\\\".[]", ch);
}

/* One word (atom or quoted string) at *pp; false and *err on a bad quote.
 * *got is false when there is no word here. */
static bool word(hscan *h, const char **pp, bool *got)
{
    const char *p = *pp;
    *got = false;
    if (*p == '"') {
        p++;
        while (*p && *p != '"') {
            if (*p == '\\' && p[1])
                p++;
            p++;
        }
        if (*p != '"') {
            h->err = "unmatched doublequote in local part";
            return false;
        }
        *pp = p + 1;
        *got = true;
        return true;
    }
    while (atom_char((unsigned char)*p))
        p++;
    *got = p != *pp;
    *pp = p;
    return true;
}

/* local-part: words separated by dots (empty words tolerated, as Exim does) */
static bool local_part(hscan *h, const char **pp, const char **start, const char **end)
{
    const char *p = skip_cfws(*pp);
    *start = p;
    bool got;
    for (;;) {
        if (!word(h, &p, &got))
            return false;
        if (*p != '.')
            break;
        p++;
    }
    *end = p;
    *pp = p;
    return true;
}

static bool label_char(unsigned char ch)
{
    return isalnum(ch) || ch == '-' || ch >= 128;
}

/* domain after '@'; false (and *err) when missing or malformed */
static bool domain(hscan *h, const char **pp)
{
    const char *p = skip_cfws(*pp);
    if (*p == '[') {
        const char *q = strchr(p, ']');
        if (!q) {
            h->err = "malformed domain literal";
            return false;
        }
        *pp = q + 1;
        return true;
    }
    for (;;) {
        if (!(isalnum((unsigned char)*p) || (unsigned char)*p >= 128)) {
            h->err = "domain missing or malformed";
            return false;
        }
        while (label_char((unsigned char)*p))
            p++;
        if (*p != '.' )
            break;
        p++;
    }
    *pp = p;
    return true;
}

static const char *printing(arena *a, const char *s)
{
    gstr g;
    gstr_init(&g, a, strlen(s) + 4);
    for (; *s; s++) {
        if (*s == '\n')
            gstr_cat(&g, "\\n");
        else if (*s == '\r')
            gstr_cat(&g, "\\r");
        else
            gstr_catc(&g, *s);
    }
    return g.s;
}

/* addr-spec or unqualified local part at *pp (after any display name) */
static bool addr_spec(hscan *h, const char **pp, bool in_angle)
{
    const char *ls, *le;
    if (!local_part(h, pp, &ls, &le))
        return false;
    const char *p = skip_cfws(*pp);
    if (*p == '@') {
        const char *ds = skip_cfws(p + 1), *de = ds;
        if (!domain(h, &de))
            return false;
        if (le == ls) {
            h->err = "no local part";
            return false;
        }
        h->addr = arena_printf(h->a, "%.*s@%.*s", (int)(le - ls), ls, (int)(de - ds), ds);
        *pp = de;
        return true;
    }
    if (le == ls) {
        h->err = in_angle || !*p ? "missing or malformed local part" :
                 "missing or malformed local part (expected word or \"<\")";
        return false;
    }
    if (!h->allow_unqualified) {
        h->err = "unqualified address not permitted";
        return false;
    }
    h->addr = arena_strndup(h->a, ls, (size_t)(le - ls));
    *pp = le;
    return true;
}

static bool route_addr(hscan *h, const char **pp)
{
    const char *p = skip_cfws(*pp + 1);       /* after '<' */
    if (*p == '@') {                           /* obsolete route: @a,@b: */
        const char *colon = strchr(p, ':');
        const char *gt = strchr(p, '>');
        if (colon && (!gt || colon < gt))
            p = colon + 1;
    }
    if (!addr_spec(h, &p, true))
        return false;
    p = skip_cfws(p);
    if (*p != '>') {
        h->err = "'>' missing at end of address";
        return false;
    }
    *pp = p + 1;
    return true;
}

/* One element (between top-level commas); NUL-terminated copy. */
static bool element(hscan *h, const char *s)
{
    h->addr = NULL;
    const char *start = skip_cfws(s), *p = start;
    if (!*p)
        return true;
    /* group start: a phrase followed by ':' */
    if (!h->in_group && *p != '<') {
        const char *q = p;
        bool got = true;
        while (got) {
            q = skip_cfws(q);
            if (*q == '"' || atom_char((unsigned char)*q) || *q == '.') {
                if (*q == '.') {
                    q++;
                    continue;
                }
                if (!word(h, &q, &got))
                    return false;
            } else {
                got = false;
            }
        }
        q = skip_cfws(q);
        if (*q == ':' && q != p) {
            h->in_group = true;
            p = skip_cfws(q + 1);
            if (!*p)
                return true;
            start = p;
        }
    }
    if (h->in_group && *p == ';') {
        h->in_group = false;
        p = skip_cfws(p + 1);
        goto rest;
    }
    if (*p == '<') {
        if (!route_addr(h, &p))
            return false;
    } else {
        /* local part, or the display name of a route address */
        const char *save = p;
        const char *ls, *le;
        if (!local_part(h, &p, &ls, &le))
            return false;
        const char *q = skip_cfws(p);
        if (*q == '@' || !*q || *q == ';' || (*q != '<' && *q != '"' && !atom_char((unsigned char)*q))) {
            p = save;
            if (!addr_spec(h, &p, false))
                return false;
        } else {
            /* a phrase: more words, then '<' */
            bool got = true;
            while (got) {
                q = skip_cfws(q);
                if (*q == '.') {
                    q++;
                    continue;
                }
                if (!word(h, &q, &got))
                    return false;
            }
            q = skip_cfws(q);
            if (*q != '<') {
                h->err = "missing or malformed local part (expected word or \"<\")";
                return false;
            }
            p = q;
            if (!route_addr(h, &p))
                return false;
        }
    }
    {
        const char *r = skip_cfws(p);
        if (h->in_group && *r == ';') {
            h->in_group = false;
            p = r + 1;
        }
    }
rest:;
    const char *r = skip_cfws(p);
    if (*r) {
        h->err = arena_printf(h->a, "malformed address: %s may not follow %.*s", printing(h->a, r),
                              (int)(r - start), start);
        return false;
    }
    return true;
}

/* Split at top-level commas; calls element() for each. */
static bool scan(hscan *h, const char *value, const char **failing, const char ***addrs, int *naddr)
{
    const char *p = value;
    int cap = 0;
    while (*p) {
        const char *s = p;
        int angle = 0;
        while (*p) {
            if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && p[1])
                        p++;
                    p++;
                }
                if (*p)
                    p++;
                continue;
            }
            if (*p == '(') {
                const char *q = skip_cfws(p);
                p = q > p ? q : p + 1;
                continue;
            }
            if (*p == '[') {
                const char *q = strchr(p, ']');
                p = q ? q + 1 : p + strlen(p);
                continue;
            }
            if (*p == '<')
                angle++;
            else if (*p == '>' && angle > 0)
                angle--;
            else if (*p == ',' && angle == 0)
                break;
            p++;
        }
        char *el = arena_strndup(h->a, s, (size_t)(p - s));
        if (*p == ',')
            p++;
        if (!element(h, el)) {
            if (failing) {
                /* the element, trimmed */
                const char *b = el;
                while (isspace((unsigned char)*b))
                    b++;
                size_t n = strlen(b);
                while (n && isspace((unsigned char)b[n - 1]))
                    n--;
                *failing = arena_strndup(h->a, b, n);
            }
            return false;
        }
        if (h->addr && addrs) {
            if (*naddr == cap) {
                int nc = cap ? cap * 2 : 8;
                const char **na = arena_alloc(h->a, sizeof *na * (size_t)nc);
                if (*naddr)
                    memcpy(na, *addrs, sizeof *na * (size_t)*naddr);
                *addrs = na;
                cap = nc;
            }
            (*addrs)[(*naddr)++] = h->addr;
        }
    }
    return true;
}

const char *acl_hdr_syntax(arena *a, const char *value, bool allow_unqualified, const char **failing)
{
    hscan h = { .a = a, .allow_unqualified = allow_unqualified };
    *failing = NULL;
    if (scan(&h, value, failing, NULL, NULL))
        return NULL;
    return h.err ? h.err : "malformed address";
}

int acl_hdr_addresses(arena *a, const char *value, const char ***out)
{
    hscan h = { .a = a, .allow_unqualified = true };
    int n = 0;
    *out = NULL;
    /* a bad element stops the scan; what was found before it counts */
    scan(&h, value, NULL, out, &n);
    return n;
}

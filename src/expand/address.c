/* address.c: RFC 5322 address extraction for ${address:}, ${domain:},
 * ${local_part:} and ${addresses:}: comments are removed, a "phrase <addr>"
 * form yields addr, and anything that is not one address is an error. */
#include "expand_int.h"

#include <ctype.h>
#include <string.h>

typedef struct ap {
    const char *s;
    gstr *out;
    char *err;
    arena *a;
} ap;

static void skip_cfws(ap *p)
{
    for (;;) {
        while (isspace((unsigned char)*p->s))
            p->s++;
        if (*p->s != '(')
            return;
        int depth = 0;
        while (*p->s) {
            if (*p->s == '\\' && p->s[1])
                p->s++;
            else if (*p->s == '(')
                depth++;
            else if (*p->s == ')' && --depth == 0) {
                p->s++;
                break;
            }
            p->s++;
        }
    }
}

static bool atext(int c)
{
    return c > 32 && c != 127 && !strchr("()<>@,;:\\\".[]", c);
}

/* a word: atom or quoted string (kept with its quotes) */
static bool word(ap *p)
{
    skip_cfws(p);
    if (*p->s == '"') {
        gstr_catc(p->out, '"');
        p->s++;
        while (*p->s && *p->s != '"') {
            if (*p->s == '\\' && p->s[1]) {
                gstr_catc(p->out, *p->s++);
            }
            gstr_catc(p->out, *p->s++);
        }
        if (*p->s != '"')
            return false;
        gstr_catc(p->out, '"');
        p->s++;
        return true;
    }
    if (!atext((unsigned char)*p->s) && *p->s != '\\')
        return false;
    while (atext((unsigned char)*p->s) || (*p->s == '\\' && p->s[1])) {
        if (*p->s == '\\')
            gstr_catc(p->out, *p->s++);
        gstr_catc(p->out, *p->s++);
    }
    return true;
}

static bool addr_spec(ap *p, int *dom_off)
{
    /* local part: words and dots, leniently (Exim accepts ".a", "a..b",
     * "a."), but two words need a dot between them */
    bool any = false, after_word = false;
    for (;;) {
        skip_cfws(p);
        if (*p->s == '.') {
            p->s++;
            gstr_catc(p->out, '.');
            any = true;
            after_word = false;
            continue;
        }
        if (after_word)
            break;
        const char *save = p->s;
        size_t len = p->out->len;
        if (!word(p)) {
            p->s = save;
            gstr_truncate(p->out, len);
            break;
        }
        any = after_word = true;
    }
    if (!any) {
        p->err = "malformed address";
        return false;
    }
    skip_cfws(p);
    if (*p->s != '@') {
        *dom_off = -1;
        return true;
    }
    p->s++;
    gstr_catc(p->out, '@');
    *dom_off = (int)p->out->len;
    skip_cfws(p);
    if (*p->s == '[') {
        while (*p->s && *p->s != ']')
            gstr_catc(p->out, *p->s++);
        if (*p->s != ']') {
            p->err = "malformed domain literal";
            return false;
        }
        gstr_catc(p->out, *p->s++);
        return true;
    }
    for (;;) {
        skip_cfws(p);
        if (!atext((unsigned char)*p->s)) {
            p->err = "domain missing or malformed";
            return false;
        }
        while (atext((unsigned char)*p->s))
            gstr_catc(p->out, *p->s++);
        skip_cfws(p);
        if (*p->s != '.')
            break;
        p->s++;
        gstr_catc(p->out, '.');
    }
    return true;
}

char *x_parse_address(arena *a, const char *s, char **err, int *dom_off)
{
    gstr g;
    gstr_init(&g, a, 64);
    ap p = {.s = s, .out = &g, .a = a};
    int doff = -1;
    /* plain addr-spec */
    skip_cfws(&p);
    if (!*p.s) {
        *err = "empty address";
        return NULL;
    }
    const char *start = p.s;
    if (*p.s != '<' && addr_spec(&p, &doff)) {
        skip_cfws(&p);
        if (!*p.s) {
            *dom_off = doff;
            return g.s;
        }
    }
    /* phrase <route-addr> */
    p.s = start;
    const char *q = start;
    bool inq = false;
    int depth = 0;
    for (; *q; q++) {
        if (*q == '\\' && q[1]) {
            q++;
            continue;
        }
        if (*q == '"' && !depth)
            inq = !inq;
        else if (!inq && *q == '(')
            depth++;
        else if (!inq && *q == ')' && depth)
            depth--;
        else if (!inq && !depth && *q == '<')
            break;
    }
    if (*q != '<') {
        *err = p.err ? p.err : "malformed address";
        return NULL;
    }
    /* the phrase before '<': words, quoted strings and comments only */
    inq = false;
    depth = 0;
    for (const char *r = start; r < q; r++) {
        if (*r == '\\' && r[1]) {
            r++;
            continue;
        }
        if (*r == '"' && !depth)
            inq = !inq;
        else if (!inq && *r == '(')
            depth++;
        else if (!inq && *r == ')' && depth)
            depth--;
        else if (!inq && !depth && strchr("@,;:<>[]", *r)) {
            *err = "malformed address";
            return NULL;
        }
    }
    p.s = q + 1;
    gstr_reset(&g);
    skip_cfws(&p);
    if (*p.s == '>') {
        p.s++;
        skip_cfws(&p);
        if (*p.s) {
            *err = "malformed address";
            return NULL;
        }
        *dom_off = -1;
        return g.s;
    }
    if (*p.s == '@') {
        /* source route: skip up to the colon */
        const char *c = strchr(p.s, ':');
        if (!c) {
            *err = "malformed route";
            return NULL;
        }
        p.s = c + 1;
    }
    if (!addr_spec(&p, &doff)) {
        *err = p.err;
        return NULL;
    }
    skip_cfws(&p);
    if (*p.s != '>') {
        *err = "> missing at end of address";
        return NULL;
    }
    p.s++;
    skip_cfws(&p);
    if (*p.s) {
        *err = "malformed address";
        return NULL;
    }
    *dom_off = doff;
    return g.s;
}

char *expand_extract_address(arena *a, const char *s, char **err, int *domain_offset)
{
    /* the result keeps the taint of s */
    if (is_tainted(s) && !arena_is_tainted(a))
        a = ps.msg_t;
    return x_parse_address(a, s, err, domain_offset);
}

/* authres.c: Authentication-Results parsing and building (RFC 8601). */
#include "msgauth/sig/authres.h"
#include "core/gstr.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define AUTHRES_MAX_RESULTS 1000
#define AUTHRES_MAX_PROPS 100

typedef struct cur {
    const char *p, *end;
} cur;

static void skip_cfws(cur *c)
{
    for (;;) {
        while (c->p < c->end && isspace((unsigned char)*c->p))
            c->p++;
        if (c->p < c->end && *c->p == '(') {
            int depth = 0;
            while (c->p < c->end) {
                char ch = *c->p++;
                if (ch == '\\' && c->p < c->end)
                    c->p++;
                else if (ch == '(')
                    depth++;
                else if (ch == ')' && --depth == 0)
                    break;
            }
            continue;
        }
        return;
    }
}

static char *lower(char *s)
{
    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return s;
}

/* A token: characters up to whitespace, '(', ';' or one of stop. */
static char *token(arena *a, cur *c, const char *stop)
{
    const char *s = c->p;
    while (c->p < c->end) {
        char ch = *c->p;
        if (isspace((unsigned char)ch) || ch == '(' || ch == ';' || strchr(stop, ch))
            break;
        c->p++;
    }
    return arena_strndup(a, s, (size_t)(c->p - s));
}

/* A value: quoted string (quotes removed) or token. */
static char *value(arena *a, cur *c)
{
    if (c->p < c->end && *c->p == '"') {
        gstr g;
        gstr_init(&g, a, 16);
        c->p++;
        while (c->p < c->end && *c->p != '"') {
            if (*c->p == '\\' && c->p + 1 < c->end)
                c->p++;
            if (*c->p != '\r' && *c->p != '\n')
                gstr_catc(&g, *c->p);
            c->p++;
        }
        if (c->p < c->end)
            c->p++;
        return g.s;
    }
    return token(a, c, "");
}

/* End of the current top-level segment (next ';' outside quotes/comments). */
static const char *seg_end(const char *p, const char *end)
{
    int depth = 0;
    bool q = false;
    for (; p < end; p++) {
        char ch = *p;
        if (ch == '\\' && p + 1 < end) { p++; continue; }
        if (q) { if (ch == '"') q = false; continue; }
        if (ch == '"' && !depth) { q = true; continue; }
        if (ch == '(') { depth++; continue; }
        if (ch == ')' && depth) { depth--; continue; }
        if (ch == ';' && !depth)
            return p;
    }
    return end;
}

static char *squeeze(arena *a, const char *s, const char *e)
{
    gstr g;
    gstr_init(&g, a, (size_t)(e - s) + 1);
    bool sp = false;
    for (; s < e; s++) {
        if (isspace((unsigned char)*s)) {
            sp = true;
            continue;
        }
        if (sp && g.len)
            gstr_catc(&g, ' ');
        sp = false;
        gstr_catc(&g, *s);
    }
    return g.s;
}

/* One resinfo in [s,e). */
static bool resinfo(arena *a, const char *s, const char *e, authres_result *r)
{
    memset(r, 0, sizeof *r);
    r->raw = squeeze(a, s, e);
    cur c = { s, e };
    skip_cfws(&c);
    char *m = token(a, &c, "=/");
    if (!*m)
        return false;
    skip_cfws(&c);
    if (c.p < c.end && *c.p == '/') {            /* method-version */
        c.p++;
        skip_cfws(&c);
        token(a, &c, "=");
        skip_cfws(&c);
    }
    if (c.p >= c.end || *c.p != '=')
        return false;
    c.p++;
    skip_cfws(&c);
    char *res = token(a, &c, "");
    if (!*res)
        return false;
    r->method = lower(m);
    r->result = lower(res);
    r->props = arena_alloc(a, sizeof(authres_prop) * AUTHRES_MAX_PROPS);
    bool ok = true;
    for (;;) {
        skip_cfws(&c);
        if (c.p >= c.end)
            break;
        char *k = token(a, &c, "=");
        skip_cfws(&c);
        if (!*k || c.p >= c.end || *c.p != '=') {
            ok = false;
            if (!*k && c.p < c.end)
                c.p++;
            continue;
        }
        c.p++;
        skip_cfws(&c);
        char *v = value(a, &c);
        lower(k);
        if (strcmp(k, "reason") == 0) {
            r->reason = v;
            continue;
        }
        char *dot = strchr(k, '.');
        if (!dot) {
            ok = false;
            continue;
        }
        *dot = 0;
        if (r->nprops < AUTHRES_MAX_PROPS)
            r->props[r->nprops++] = (authres_prop){ k, dot + 1, v };
    }
    return ok;
}

status authres_parse(arena *a, const char *v, size_t len, authres *out, char **err)
{
    memset(out, 0, sizeof *out);
    const char *end = v + len;
    const char *e = seg_end(v, end);
    cur c = { v, e };
    skip_cfws(&c);
    char *id = value(a, &c);
    out->authserv_id = id;
    skip_cfws(&c);
    if (c.p < c.end && isdigit((unsigned char)*c.p)) {
        int ver = 0;
        while (c.p < c.end && isdigit((unsigned char)*c.p) && ver < 1000)
            ver = ver * 10 + (*c.p++ - '0');
        out->version = ver;
        skip_cfws(&c);
    }
    bool ok = *id && c.p == c.end;
    if (!*id) {
        *err = "missing authserv-id";
        return ST_FAIL;
    }
    out->res = arena_alloc(a, sizeof(authres_result) * 8);
    int cap = 8;
    const char *p = e;
    bool none = false;
    while (p < end) {
        p++;                                  /* the ';' */
        const char *s = p;
        p = seg_end(s, end);
        cur t = { s, p };
        skip_cfws(&t);
        if (t.p == p)
            continue;                         /* empty (trailing ';') */
        if (p - t.p >= 4 && strncasecmp(t.p, "none", 4) == 0) {
            t.p += 4;
            skip_cfws(&t);
            if (t.p == p) {
                none = true;
                continue;
            }
        }
        if (out->nres == AUTHRES_MAX_RESULTS) {
            ok = false;
            break;
        }
        if (out->nres == cap) {
            authres_result *n = arena_alloc(a, sizeof *n * (size_t)cap * 2);
            memcpy(n, out->res, sizeof *n * (size_t)cap);
            out->res = n;
            cap *= 2;
        }
        authres_result r;
        bool good = resinfo(a, s, p, &r);
        if (r.method && r.result)
            out->res[out->nres++] = r;
        if (!good)
            ok = false;
    }
    if (none && out->nres)
        ok = false;
    if (!none && !out->nres)
        ok = false;
    if (!ok)
        *err = "malformed Authentication-Results";
    return ok ? ST_OK : ST_FAIL;
}

const char *authres_prop_get(const authres_result *r, const char *ptype, const char *property)
{
    for (int i = 0; i < r->nprops; i++)
        if (strcasecmp(r->props[i].ptype, ptype) == 0 &&
            strcasecmp(r->props[i].property, property) == 0)
            return r->props[i].value;
    return NULL;
}

const authres_result *authres_find(const authres *r, const char *method)
{
    for (int i = 0; i < r->nres; i++)
        if (strcasecmp(r->res[i].method, method) == 0)
            return &r->res[i];
    return NULL;
}

/* A value needs quoting unless it is a token or a mailbox-ish word. */
static void cat_value(gstr *g, const char *v)
{
    bool plain = *v != 0;
    for (const char *p = v; *p; p++)
        if (isspace((unsigned char)*p) || strchr("()<>,;:\\\"[]?=", *p) ||
            (unsigned char)*p < 32 || *p == 127)
            plain = false;
    if (plain) {
        gstr_cat(g, v);
        return;
    }
    gstr_catc(g, '"');
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            gstr_catc(g, '\\');
        if (*p == '\r' || *p == '\n')
            continue;
        gstr_catc(g, *p);
    }
    gstr_catc(g, '"');
}

char *authres_result_text(arena *a, const authres_result *r)
{
    gstr g;
    gstr_init(&g, a, 64);
    gstr_printf(&g, "%s=%s", r->method, r->result);
    if (r->comment && *r->comment) {
        gstr_cat(&g, " (");
        for (const char *p = r->comment; *p; p++)
            if (*p != '(' && *p != ')' && *p != '\r' && *p != '\n')
                gstr_catc(&g, *p);
        gstr_catc(&g, ')');
    }
    if (r->reason) {
        gstr_cat(&g, " reason=");
        /* reason is always quoted for readability */
        gstr_catc(&g, '"');
        for (const char *p = r->reason; *p; p++) {
            if (*p == '"' || *p == '\\')
                gstr_catc(&g, '\\');
            if (*p != '\r' && *p != '\n')
                gstr_catc(&g, *p);
        }
        gstr_catc(&g, '"');
    }
    for (int i = 0; i < r->nprops; i++) {
        gstr_printf(&g, " %s.%s=", r->props[i].ptype, r->props[i].property);
        cat_value(&g, r->props[i].value ? r->props[i].value : "");
    }
    return g.s;
}

char *authres_build(arena *a, const char *authserv_id, const authres_result *res, int n)
{
    gstr g;
    gstr_init(&g, a, 128);
    gstr_cat(&g, authserv_id);
    if (n == 0) {
        gstr_cat(&g, "; none");
        return g.s;
    }
    for (int i = 0; i < n; i++) {
        gstr_cat(&g, ";\r\n\t");
        gstr_cat(&g, authres_result_text(a, &res[i]));
    }
    return g.s;
}

char *authres_header(arena *a, const char *authserv_id, const authres_result *res, int n)
{
    return arena_printf(a, "Authentication-Results: %s\r\n",
                        authres_build(a, authserv_id, res, n));
}

/* zonedns.c: in-memory zone data behind a dns_iface (see zonedns.h). */
#include "msgauth/policy/zonedns.h"
#include "core/gstr.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ZONE_FAIL_ANY -1   /* type value meaning "every type" */

typedef struct zrec {
    struct zrec *next;
    char *name;
    int type;              /* DNS_T_*, or ZONE_FAIL_ANY */
    bool timeout;
    char *text;            /* address / target / concatenated TXT */
    size_t text_len;
    int nstrings;
    const char **strings;
    size_t *string_lens;
    unsigned pref;
} zrec;

struct zonedns {
    arena *a;
    zrec *head, **tail;
    int queries;
};

zonedns *zonedns_new(arena *a)
{
    zonedns *z = arena_calloc(a, sizeof *z);
    z->a = a;
    z->tail = &z->head;
    return z;
}

int zonedns_queries(const zonedns *z) { return z->queries; }

/* Lower-cased copy without trailing dots; \DDD escapes decoded. */
static char *lower_name(arena *a, const char *s, size_t n)
{
    while (n && s[n - 1] == '.')
        n--;
    char *o = arena_alloc(a, n + 1), *q = o;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 3 < n && isdigit((unsigned char)s[i + 1]) &&
            isdigit((unsigned char)s[i + 2]) && isdigit((unsigned char)s[i + 3])) {
            *q++ = (char)tolower((s[i + 1] - '0') * 100 + (s[i + 2] - '0') * 10 + (s[i + 3] - '0'));
            i += 3;
            continue;
        }
        *q++ = (char)tolower((unsigned char)s[i]);
    }
    *q = 0;
    return o;
}

static int type_from_name(const char *s)
{
    static const struct { const char *n; int t; } tab[] = {
        { "A", DNS_T_A }, { "NS", DNS_T_NS }, { "CNAME", DNS_T_CNAME }, { "PTR", DNS_T_PTR },
        { "MX", DNS_T_MX }, { "TXT", DNS_T_TXT }, { "AAAA", DNS_T_AAAA }, { "SPF", DNS_T_SPF },
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcasecmp(s, tab[i].n) == 0)
            return tab[i].t;
    return -1;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static status parse_line(zonedns *z, const char *line, size_t n, char **err)
{
    char *l = arena_strndup(z->a, line, n);
    const char *p = skip_ws(l);
    if (!*p || *p == '#')
        return ST_OK;
    const char *nb = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    zrec *r = arena_calloc(z->a, sizeof *r);
    r->name = lower_name(z->a, nb, (size_t)(p - nb));
    p = skip_ws(p);
    const char *tb = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    char *type = arena_strndup(z->a, tb, (size_t)(p - tb));
    p = skip_ws(p);
    if (strcasecmp(type, "TIMEOUT") == 0 || strcasecmp(type, "SERVFAIL") == 0) {
        r->type = ZONE_FAIL_ANY;
        r->timeout = true;
    } else {
        r->type = type_from_name(type);
        if (r->type < 0) {
            *err = arena_printf(z->a, "unknown record type in \"%s\"", l);
            return ST_FAIL;
        }
        if (strcasecmp(p, "TIMEOUT") == 0 || strcasecmp(p, "SERVFAIL") == 0) {
            r->timeout = true;
        } else if (r->type == DNS_T_TXT || r->type == DNS_T_SPF) {
            gstr all;
            gstr_init(&all, z->a, strlen(p) + 1);
            int cap = 4;
            r->strings = arena_alloc(z->a, sizeof(char *) * (size_t)cap);
            r->string_lens = arena_alloc(z->a, sizeof(size_t) * (size_t)cap);
            if (*p != '"') {
                r->strings[0] = arena_strdup(z->a, p);
                r->string_lens[0] = strlen(p);
                r->nstrings = 1;
                gstr_cat(&all, p);
            }
            while (*p == '"') {
                gstr s;
                gstr_init(&s, z->a, 64);
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && p[1]) {
                        if (isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
                            isdigit((unsigned char)p[3])) {
                            gstr_catc(&s, (char)((p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0')));
                            p += 4;
                            continue;
                        }
                        p++;
                    }
                    gstr_catc(&s, *p++);
                }
                if (*p != '"') {
                    *err = arena_printf(z->a, "unterminated string in \"%s\"", l);
                    return ST_FAIL;
                }
                p = skip_ws(p + 1);
                if (r->nstrings == cap) {
                    cap *= 2;
                    const char **ns = arena_alloc(z->a, sizeof(char *) * (size_t)cap);
                    size_t *nl = arena_alloc(z->a, sizeof(size_t) * (size_t)cap);
                    memcpy(ns, r->strings, sizeof(char *) * (size_t)r->nstrings);
                    memcpy(nl, r->string_lens, sizeof(size_t) * (size_t)r->nstrings);
                    r->strings = ns;
                    r->string_lens = nl;
                }
                r->strings[r->nstrings] = s.s;
                r->string_lens[r->nstrings] = s.len;
                r->nstrings++;
                gstr_catn(&all, s.s, s.len);
            }
            r->text = all.s;
            r->text_len = all.len;
        } else if (r->type == DNS_T_MX) {
            char *end;
            r->pref = (unsigned)strtoul(p, &end, 10);
            if (end == p) {
                *err = arena_printf(z->a, "MX needs a preference in \"%s\"", l);
                return ST_FAIL;
            }
            p = skip_ws(end);
            r->text = lower_name(z->a, p, strlen(p));
            if (!*r->text)
                r->text = ".";
            r->text_len = strlen(r->text);
        } else if (r->type == DNS_T_CNAME || r->type == DNS_T_PTR || r->type == DNS_T_NS) {
            r->text = lower_name(z->a, p, strlen(p));
            r->text_len = strlen(r->text);
        } else {
            r->text = arena_strdup(z->a, p);
            r->text_len = strlen(p);
        }
    }
    *z->tail = r;
    z->tail = &r->next;
    return ST_OK;
}

status zonedns_load(zonedns *z, const char *text, char **err)
{
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n && p[n - 1] == '\r')
            n--;
        if (parse_line(z, p, n, err) != ST_OK)
            return ST_FAIL;
        p += n;
        while (*p == '\r' || *p == '\n')
            p++;
    }
    return ST_OK;
}

static status zlookup(void *ctx, const char *qname, int type, arena *a, dns_answer *out)
{
    zonedns *z = ctx;
    z->queries++;
    memset(out, 0, sizeof *out);
    char *name = lower_name(a, qname, strlen(qname));
    for (int hop = 0; hop < 8; hop++) {
        bool exists = false;
        zrec *cname = NULL;
        int n = 0;
        for (zrec *r = z->head; r; r = r->next) {
            if (strcmp(r->name, name) != 0)
                continue;
            exists = true;
            if (r->timeout && (r->type == ZONE_FAIL_ANY || r->type == type)) {
                out->st = ST_DEFER;
                out->rcode = -1;
                out->why = "timeout";
                return ST_DEFER;
            }
            if (r->type == type && !r->timeout)
                n++;
            if (r->type == DNS_T_CNAME && !r->timeout)
                cname = r;
        }
        if (n == 0 && cname && type != DNS_T_CNAME) {
            name = cname->text;
            continue;
        }
        out->canon = name;
        out->rcode = exists ? 0 : 3;
        if (n == 0) {
            out->st = ST_NOTFOUND;
            out->nxdomain = !exists;
            out->why = exists ? "no data" : "NXDOMAIN";
            return ST_NOTFOUND;
        }
        out->rr = arena_calloc(a, sizeof(dns_rr) * (size_t)n);
        for (zrec *r = z->head; r; r = r->next) {
            if (strcmp(r->name, name) != 0 || r->type != type || r->timeout)
                continue;
            dns_rr *rr = &out->rr[out->nrr++];
            rr->owner = r->name;
            rr->type = type;
            rr->ttl = 300;
            rr->text = r->text;
            rr->text_len = r->text_len;
            rr->nstrings = r->nstrings;
            rr->strings = r->strings;
            rr->string_lens = r->string_lens;
            rr->pref = r->pref;
        }
        out->st = ST_OK;
        return ST_OK;
    }
    out->st = ST_DEFER;
    out->why = "CNAME chain too long";
    return ST_DEFER;
}

dns_iface zonedns_iface(zonedns *z)
{
    return (dns_iface){ .lookup = zlookup, .ctx = z };
}

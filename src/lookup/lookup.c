/* lookup.c: search-type parsing and the generic part of single-key
 * lookups: partial matching and "*" / "*@" defaults (Exim semantics). */
#include "lookup.h"

#include <ctype.h>
#include <string.h>

const lookup_driver *lookup_find_driver(const char *name, size_t len)
{
    for (int i = 0; lookup_drivers[i]; i++)
        if (strlen(lookup_drivers[i]->name) == len && strncmp(lookup_drivers[i]->name, name, len) == 0)
            return lookup_drivers[i];
    return NULL;
}

const char *lookup_opt(const char *opts, const char *name, arena *a)
{
    size_t nl = strlen(name);
    const char *p = opts;
    while (p && *p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=')
            return arena_strndup(a, p + nl + 1, len - nl - 1);
        p = e;
    }
    return NULL;
}

status lookup_parse_type(const char *type, lookup_spec *sp, arena *a, char **err)
{
    memset(sp, 0, sizeof *sp);
    sp->partial = -1;
    sp->prefix = "*.";
    const char *s = type;
    if (strncmp(s, "partial", 7) == 0) {
        s += 7;
        int n = 2;
        if (isdigit((unsigned char)*s)) {
            n = 0;
            while (isdigit((unsigned char)*s))
                n = n * 10 + (*s++ - '0');
            if (n > 255)
                n = 255;
        }
        if (*s == '(') {
            const char *e = strchr(s, ')');
            if (!e) {
                *err = arena_printf(a, "missing ) in search type \"%s\"", type);
                return ST_ERROR;
            }
            sp->prefix = arena_strndup(a, s + 1, (size_t)(e - s - 1));
            s = e + 1;
        } else if (*s == '-') {
            s++;
        } else {
            *err = arena_printf(a, "format error in lookup type \"%s\"", type);
            return ST_ERROR;
        }
        sp->partial = n;
    }
    const char *e = s;
    while (isalnum((unsigned char)*e) || *e == '_')
        e++;
    sp->drv = lookup_find_driver(s, (size_t)(e - s));
    if (!sp->drv) {
        *err = arena_printf(a, "unknown lookup type \"%.*s\"", (int)(e - s), s);
        return ST_ERROR;
    }
    if (*e == '*') {
        e++;
        if (*e == '@') {
            e++;
            sp->starat = true;
        } else {
            sp->star = true;
        }
    }
    if (*e == ',') {
        sp->opts = arena_strdup(a, e + 1);
        e += strlen(e);
    }
    if (*e) {
        *err = arena_printf(a, "unknown lookup type \"%s\"", type);
        return ST_ERROR;
    }
    if (sp->drv->query_style && (sp->partial >= 0 || sp->star || sp->starat)) {
        *err = arena_printf(a, "\"partial\" or \"*\" not permitted for lookup type \"%s\"", sp->drv->name);
        return ST_ERROR;
    }
    return ST_OK;
}

static status one(const lookup_spec *sp, const char *file, const char *key, arena *a,
                  char **result, char **err)
{
    return sp->drv->find(file, key, sp->opts, a, result, err);
}

status lookup_search(const lookup_spec *sp, const char *file, const char *key, arena *a,
                     char **result, char **err)
{
    return lookup_search_partial(sp, file, key, a, result, err, NULL, NULL);
}

status lookup_search_partial(const lookup_spec *sp, const char *file, const char *key, arena *a,
                             char **result, char **err, const char **wild, const char **fixed)
{
    if (wild)
        *wild = *fixed = NULL;
    if (sp->drv->query_style)
        return sp->drv->find(file, NULL, sp->opts, a, result, err);
    if (file && is_tainted(file)) {
        *err = arena_printf(a, "Tainted filename for search: '%s'", file);
        return ST_ERROR;
    }
    status st = one(sp, file, key, a, result, err);
    if (st != ST_NOTFOUND)
        return st;

    if (sp->partial >= 0) {
        /* count components of key */
        int comps = 1;
        for (const char *p = key; *p; p++)
            if (*p == '.')
                comps++;
        size_t pl = strlen(sp->prefix);
        const char *rest = key;
        /* "*.key" (always), then with leading components stripped while
         * at least sp->partial remain */
        for (int left = comps; (left >= sp->partial || left == comps) && left > 0; left--) {
            char *k = arena_printf(a, "%s%s", sp->prefix, rest);
            st = one(sp, file, k, a, result, err);
            if (st != ST_NOTFOUND) {
                if (st == ST_OK && wild) {
                    *wild = arena_strndup(a, key, rest == key ? 0 : (size_t)(rest - key - 1));
                    *fixed = arena_strdup(a, rest);
                }
                return st;
            }
            const char *dot = strchr(rest, '.');
            if (!dot)
                break;
            rest = dot + 1;
        }
        if (sp->partial == 0 && pl) {
            char *k;
            if (pl == 1)
                k = arena_strdup(a, sp->prefix);
            else if (sp->prefix[pl - 1] == '.')
                k = arena_strndup(a, sp->prefix, pl - 1);
            else
                k = arena_strdup(a, sp->prefix);
            st = one(sp, file, k, a, result, err);
            if (st != ST_NOTFOUND)
                return st;
        }
    }
    if (sp->starat) {
        const char *at = strrchr(key, '@');
        if (at && at != key) {
            char *k = arena_printf(a, "*%s", at);
            st = one(sp, file, k, a, result, err);
            if (st != ST_NOTFOUND)
                return st;
        }
    }
    if (sp->star || sp->starat)
        return one(sp, file, "*", a, result, err);
    return ST_NOTFOUND;
}

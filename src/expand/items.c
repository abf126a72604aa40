/* items.c: expansion items of the form ${name{arg}...}: if, lookup,
 * extract, listextract, reduce, map, filter, sort, sg, substr, length,
 * hash, nhash, hmac, tr, readfile, env, listquote. */
#include "expand_int.h"
#include "msgauth/policy/srs.h"
#include "expand.h"
#include "config/config.h"
#include "core/list.h"
#include "lookup/lookup.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

status it_imapfolder(xs *x, const char **sp, bool skip, gstr *out, bool *taint);  /* items_ext.c */
status it_acl(xs *x, const char **sp, bool skip, gstr *out, bool *taint);         /* items_ext.c */
status it_readsocket(xs *x, const char **sp, bool skip, gstr *out, bool *taint);  /* items_ext.c */

static void skip_ws(const char **sp)
{
    while (isspace((unsigned char)**sp))
        (*sp)++;
}

/* ---- if / lookup ---------------------------------------------------------- */

static status it_if(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    bool r = false;
    const char *save = ps.exp_value;
    const char *save_num[EXPAND_MAX_NUMVARS];
    memcpy(save_num, ps.exp_num, sizeof save_num);
    int save_nmax = ps.exp_nmax;
    status st = xp_cond(x, sp, skip, &r);
    /* match_* and inlist set $value, match sets $1.. for the yes/no strings */
    if (st == ST_OK)
        st = xp_yesno(x, sp, skip, r, NULL, false, "if", out, taint);
    ps.exp_value = save;
    if (x->sticky)
        x->sticky_value = save;
    memcpy(ps.exp_num, save_num, sizeof save_num);
    ps.exp_nmax = save_nmax;
    return st;
}

static status it_lookup(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    const char *s = *sp;
    status st;
    if (ps.exp_forbid & EXPAND_FORBID_LOOKUP)
        return xfail(x, "lookup expansions are not permitted");
    const char *save_num[EXPAND_MAX_NUMVARS];
    memcpy(save_num, ps.exp_num, sizeof save_num);
    int save_nmax = ps.exp_nmax;
    char *key = NULL, *file = NULL;
    bool kt = false, ft = false;
    skip_ws(&s);
    if (*s == '{') {
        if ((st = xp_braced(x, &s, skip, &key, &kt)) != ST_OK)
            goto out;
        skip_ws(&s);
    }
    const char *t0 = s;
    while (*s && !isspace((unsigned char)*s) && *s != '{')
        s++;
    if (s == t0 || *t0 == '}') {
        st = xfail(x, "missing lookup type");
        goto out;
    }
    char *type = arena_strndup(x->w, t0, (size_t)(s - t0));
    lookup_spec spec;
    char *err = NULL;
    if (lookup_parse_type(type, &spec, x->w, &err) != ST_OK) {
        st = xfail(x, "%s", err);
        goto out;
    }
    if (!spec.drv->query_style && !key) {
        st = xfail(x, "missing {key} for single-key %s lookup", xq(x, spec.drv->name));
        goto out;
    }
    if (spec.drv->query_style && (ps.exp_forbid & EXPAND_FORBID_QUERY)) {
        st = xfail(x, "lookup expansions are not permitted");
        goto out;
    }
    if (spec.drv->query_style && key) {
        st = xfail(x, "a single key was given for lookup type %s, which is not a single-key lookup type", xq(x, spec.drv->name));
        goto out;
    }
    skip_ws(&s);
    if (*s != '{') {
        st = xfail(x, "missing '{' for lookup file-or-query arg");
        goto out;
    }
    if ((st = xp_braced(x, &s, skip, &file, &ft)) != ST_OK)
        goto out;
    char *val = NULL;
    bool found = false;
    if (!skip) {
        if (ft) {
            st = xfail(x, "Tainted filename for search: '%s'", file);
            goto out;
        }
        const char *wild, *fixed;
        status ls = lookup_search_partial(&spec, file, key, x->w, &val, &err, &wild, &fixed);
        if (ls == ST_OK) {
            found = true;
            if (wild) {   /* partial match: $1 the wild part, $2 the rest */
                ps.exp_num[0] = "";
                ps.exp_num[1] = wild;
                ps.exp_num[2] = fixed;
                ps.exp_nmax = 3;
            }
        }
        else if (ls == ST_DEFER) {
            st = xfail(x, "lookup of %s gave DEFER: %s", xq(x, key ? key : file), xq(x, err ? err : ""));
            goto out;
        } else if (ls == ST_ERROR) {
            st = xfail(x, "%s", err ? err : "lookup error");
            goto out;
        }
    }
    st = xp_yesno(x, &s, skip, found, found ? val : NULL, false, "lookup", out, taint);
    if (!found && st == ST_OK) {
        /* no "no" string and not found: nothing appended */
    }
out:
    memcpy(ps.exp_num, save_num, sizeof save_num);
    ps.exp_nmax = save_nmax;
    *sp = s;
    return st;
}

/* ---- extract ---------------------------------------------------------------- */

/* A value: up to white space, or a quoted string with escapes. */
static char *dequote(arena *a, const char **sp)
{
    const char *s = *sp;
    gstr v;
    gstr_init(&v, a, 16);
    if (*s != '"') {
        while (*s && !isspace((unsigned char)*s))
            gstr_catc(&v, *s++);
    } else {
        s++;
        while (*s && *s != '"') {
            if (*s == '\\' && s[1]) {
                s++;
                switch (*s) {
                case 'n': gstr_catc(&v, '\n'); s++; break;
                case 't': gstr_catc(&v, '\t'); s++; break;
                case 'r': gstr_catc(&v, '\r'); s++; break;
                default: gstr_catc(&v, *s++); break;
                }
                continue;
            }
            gstr_catc(&v, *s++);
        }
        if (*s)
            s++;
    }
    *sp = s;
    return v.s;
}

/* keyed: "key value" or "key = value" pairs, values optionally quoted;
 * keys compared caselessly */
static char *extract_keyed(arena *a, const char *key, const char *s)
{
    size_t kl = strlen(key);
    while (isspace((unsigned char)*s))
        s++;
    while (*s) {
        const char *k0 = s;
        while (*s && *s != '=' && !isspace((unsigned char)*s))
            s++;
        size_t klen = (size_t)(s - k0);
        while (isspace((unsigned char)*s))
            s++;
        if (*s == '=') {
            s++;
            while (isspace((unsigned char)*s))
                s++;
        }
        char *data = dequote(a, &s);
        if (klen == kl && strncasecmp(k0, key, kl) == 0)
            return data;
        while (isspace((unsigned char)*s))
            s++;
    }
    return NULL;
}

static char *extract_field(arena *a, long n, const char *seps, const char *s)
{
    if (n == 0)
        return arena_strdup(a, s);
    /* count fields */
    long count = 1;
    for (const char *p = s; *p; p++)
        if (strchr(seps, *p))
            count++;
    if (n < 0)
        n = count + n + 1;
    if (n <= 0 || n > count)
        return NULL;
    const char *p = s;
    for (long i = 1; i < n; i++)
        p += strcspn(p, seps) + 1;
    return arena_strndup(a, p, strcspn(p, seps));
}

/* JSON helpers for ${extract json{...}}: strip a wrapper pair, and take
 * the next element of an array/object body. */
char *x_dewrap(xs *x, char *s, const char *wrap)
{
    char *p = s;
    bool quotes = wrap[0] == wrap[1];
    unsigned depth = 0;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == wrap[0]) {
        s = ++p;
        while (*p) {
            if (*p == '\\') {
                if (p[1])
                    p++;
            } else if (!quotes && *p == wrap[0])
                depth++;
            else if (*p == wrap[1]) {
                if (depth == 0) {
                    *p = '\0';
                    return s;
                }
                depth--;
            }
            p++;
        }
    }
    x->err = arena_printf(x->w, "missing '%c'", wrap[1]);
    return NULL;
}

char *x_json_next(arena *a, const char **list)
{
    unsigned adepth = 0, odepth = 0;
    bool quoted = false;
    const char *s = *list;
    while (isspace((unsigned char)*s))
        s++;
    const char *item = s;
    for (; *s && (*s != ',' || adepth || odepth || quoted); s++) {
        if (!quoted) {
            switch (*s) {
            case '[': adepth++; break;
            case ']': adepth--; break;
            case '{': odepth++; break;
            case '}': odepth--; break;
            case '"': quoted = true; break;
            default: break;
            }
        } else if (*s == '\\') {
            if (s[1])
                s++;
        } else if (*s == '"')
            quoted = false;
    }
    *list = *s ? s + 1 : s;
    if (item == s)
        return NULL;
    return arena_strndup(a, item, (size_t)(s - item));
}

static status extract_json(xs *x, int fmt, bool numbered, long n, const char *key, char *data,
                           arena *a, char **value)
{
    *value = NULL;
    char *t = x_dewrap(x, arena_strdup(a, data), numbered ? "[]" : "{}");
    if (!t)
        return xfail(x, "%s wrapping %s for extract json", x->err ? x->err : "",
                     numbered ? "array" : "object");
    x->err = NULL;
    const char *list = t;
    char *item = NULL;
    if (numbered) {
        if (n <= 0)
            return xfail(x, "first argument of \"extract\" must be greater than zero");
        while (n > 0 && (item = x_json_next(a, &list)))
            n--;
        if (item) {
            size_t l = strlen(item);
            while (l && isspace((unsigned char)item[l - 1]))
                item[--l] = 0;
        }
        *value = item;
    } else {
        while ((item = x_json_next(a, &list))) {
            char *k = x_dewrap(x, item, "\"\"");
            if (!k)
                return xfail(x, "%s wrapping string key for extract json", x->err ? x->err : "");
            if (strcmp(k, key) == 0) {
                char *p = k + strlen(k) + 1;
                while (isspace((unsigned char)*p))
                    p++;
                if (*p != ':')
                    return xfail(x, "missing object value-separator for extract json");
                p++;
                while (isspace((unsigned char)*p))
                    p++;
                *value = p;
                break;
            }
        }
    }
    if (fmt == 2 && *value) {
        char *v = x_dewrap(x, *value, "\"\"");
        if (!v)
            return xfail(x, "%s wrapping string result for extract jsons", x->err ? x->err : "");
        x->err = NULL;
        *value = v;
    }
    return ST_OK;
}

static status it_extract(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    const char *s = *sp;
    char *sub[3] = {NULL, NULL, NULL};
    bool tt[3] = {false, false, false};
    status st = ST_OK;
    int fmt = 0;   /* 0 basic, 1 json, 2 jsons */
    skip_ws(&s);
    if (*s != '{' && strncmp(s, "json", 4) == 0) {
        s += 4;
        fmt = 1;
        if (*s == 's') {
            fmt = 2;
            s++;
        }
    }
    if (skip) {
        /* the form is unknown while skipping: up to 5 arguments, "fail" */
        for (int j = 5; j > 0 && *s == '{'; j--) {
            if ((st = xp_braced(x, &s, true, NULL, NULL)) != ST_OK)
                goto out;
            skip_ws(&s);
        }
        if (strncmp(s, "fail", 4) == 0 && (s[4] == '}' || s[4] == ' ' || s[4] == '\t' || !s[4])) {
            s += 4;
            skip_ws(&s);
        }
        if (*s != '}') {
            st = xfail(x, "missing '}' closing extract");
            goto out;
        }
        s++;
        goto out;
    }
    bool numbered = false;
    long n = 0;
    for (int i = 0, j = 2; i < j; i++) {
        skip_ws(&s);
        if (*s != '{') {
            st = xfail(x, "missing '{' for arg %d of extract", i + 1);
            goto out;
        }
        s++;
        gstr g;
        gstr_init(&g, x->w, 32);
        if ((st = xp_sub(x, &s, true, false, &g, &tt[i])) != ST_OK)
            goto out;
        if (*s != '}') {
            st = xfail(x, "missing '}' closing arg %d of extract", i + 1);
            goto out;
        }
        s++;
        sub[i] = g.s;
        if (i == 0) {
            sub[0] = (char *)x_strip(x->w, sub[0]);
            if (!*sub[0]) {
                st = xfail(x, "first argument of \"extract\" must not be empty");
                goto out;
            }
            const char *p = sub[0];
            if (*p == '-')
                p++;
            const char *d = p;
            while (isdigit((unsigned char)*p))
                p++;
            if (!*p) {
                n = strtol(sub[0], NULL, 10);
                numbered = true;
                (void)d;
                if (fmt == 0)
                    j = 3;
            }
        }
    }
    char *v = NULL;
    bool vt = false;
    if (fmt == 0) {
        if (numbered) {
            v = extract_field(x_arena(x, tt[2]), n, sub[1], sub[2]);
            vt = tt[2];
        } else {
            v = extract_keyed(x_arena(x, tt[1]), sub[0], sub[1]);
            vt = tt[1];
        }
    } else {
        if ((st = extract_json(x, fmt, numbered, n, sub[0], sub[1], x_arena(x, tt[1]), &v)) != ST_OK)
            goto out;
        vt = tt[1];
    }
    st = xp_yesno(x, &s, skip, v != NULL, v, vt, "extract", out, taint);
out:
    *sp = s;
    return st;
}

/* ---- list items ------------------------------------------------------------ */

static status it_listextract(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    char *v[2];
    bool t[2];
    status st;
    long n = 0;
    for (int i = 0; i < 2; i++) {
        skip_ws(sp);
        if (**sp != '{')
            return xfail(x, "missing '{' for arg %d of listextract", i + 1);
        if ((st = xp_braced(x, sp, skip, &v[i], &t[i])) != ST_OK)
            return st;
        if (i == 0 && !skip) {
            /* optional '-', digits (possibly none) and nothing else */
            const char *p = x_strip(x->w, v[0]);
            if (!*p)
                return xfail(x, "first argument of \"listextract\" must not be empty");
            int sign = 1;
            if (*p == '-') {
                sign = -1;
                p++;
            }
            while (isdigit((unsigned char)*p)) {
                if (n < 100000000)
                    n = n * 10 + (*p - '0');
                p++;
            }
            if (*p)
                return xfail(x, "first argument of \"listextract\" must be numeric");
            n *= sign;
        }
    }
    char *found = NULL;
    if (!skip) {
        int cnt = list_count(v[1], 0, x->w);
        if (n < 0)
            n = cnt + n + 1;
        if (n > 0 && n <= cnt) {
            const char *l = v[1];
            int sep = 0;
            for (long i = 1; i <= n; i++)
                found = list_next(&l, &sep, x_arena(x, t[1]));
        }
    }
    return xp_yesno(x, sp, skip, found != NULL, found, t[1], "listextract", out, taint);
}

static status it_listquote(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    char *v[2];
    bool t[2];
    status st = xp_args(x, sp, skip, 2, 2, true, "listquote", v, t, NULL);
    if (st != ST_OK || skip)
        return st;
    char sep = v[0][0];
    if (!*v[1])
        gstr_catc(out, ' ');   /* Exim's result for an empty string */
    if (!sep) {                /* no separator: nothing to double */
        gstr_cat(out, v[1]);
        *taint |= t[1];
        return ST_OK;
    }
    for (const char *p = v[1]; *p; p++) {
        if (*p == sep)
            gstr_catc(out, sep);
        gstr_catc(out, *p);
    }
    *taint |= t[1];
    return ST_OK;
}

/* map, filter, reduce, sort: the list is expanded first, then the
 * expression once per item with $item (and $value for reduce). */
/* Append an item to a list being built by map/filter: the separator is
 * doubled inside the item, and (except for the first item) a space goes
 * before an item that is empty or starts with the separator. */
static void iter_append(gstr *res, int sep, const char *item, bool first)
{
    if (!first) {
        gstr_catc(res, (char)sep);
        if (!*item || *item == sep)
            gstr_catc(res, ' ');
    }
    for (const char *p = item; *p; p++) {
        if (*p == sep)
            gstr_catc(res, (char)sep);
        gstr_catc(res, *p);
    }
}

/* Does key l sort before key r for the comparator cmp (one of < <= > >=,
 * numeric, or lt le gt ge with an optional i for caseless)?  A numeric
 * comparison of non-numbers is "not before", as in Exim. */
static bool sorts_before(const char *cmp, const char *l, const char *r)
{
    if (!isalpha((unsigned char)cmp[0])) {
        long long ln, rn;
        if (!x_number(l, &ln) || !x_number(r, &rn))
            return false;
        return !strcmp(cmp, "<") ? ln < rn : !strcmp(cmp, "<=") ? ln <= rn
             : !strcmp(cmp, ">") ? ln > rn : ln >= rn;
    }
    int c = strlen(cmp) == 3 ? strcasecmp(l, r) : strcmp(l, r);
    return !strncmp(cmp, "lt", 2) ? c < 0 : !strncmp(cmp, "le", 2) ? c <= 0
         : !strncmp(cmp, "gt", 2) ? c > 0 : c >= 0;
}

/* ${reduce}: $value starts as init and becomes each expansion of expr. */
static status run_reduce(xs *x, const char *list, int sep, arena *ia, const char *init, bool init_t,
                         const char *expr, gstr *out, bool *taint)
{
    const char *l = list, *value = init;
    char *item;
    bool rt = init_t;
    while ((item = list_next(&l, &sep, ia))) {
        ps.exp_item = item;
        ps.exp_value = value;
        const char *e = expr;
        gstr g;
        gstr_init(&g, x->w, 32);
        bool t = false;
        if (xp_sub(x, &e, true, false, &g, &t) != ST_OK) {
            x->err = arena_printf(x->w, "%s inside \"reduce\" item", xq(x, x->err ? x->err : ""));
            return ST_FAIL;
        }
        value = t ? arena_strdup(x_arena(x, true), g.s) : g.s;
        rt = t;
    }
    gstr_cat(out, value);
    *taint |= rt || is_tainted(value);
    return ST_OK;
}

/* ${sort}: keys from the extractor; each item goes before the first
 * already placed item it sorts before (Exim's insertion). */
static status run_sort(xs *x, const char *list, int sep, arena *ia, bool lt, const char *cmp,
                       const char *xtr, gstr *out, bool *taint)
{
    int n = list_count(list, sep, x->w) + 1;
    char **items = arena_alloc(x->w, sizeof(char *) * (size_t)(n + 1));
    char **keys = arena_alloc(x->w, sizeof(char *) * (size_t)(n + 1));
    int *order = arena_alloc(x->w, sizeof(int) * (size_t)(n + 1));
    const char *l = list;
    char *item;
    int k = 0;
    while ((item = list_next(&l, &sep, ia)) && k < n) {
        ps.exp_item = item;
        const char *e = xtr;
        gstr g;
        gstr_init(&g, x->w, 32);
        bool t = false;
        if (xp_sub(x, &e, true, false, &g, &t) != ST_OK || !*g.s) {
            x->err = NULL;
            return xfail(x, "field-extract in sort: %s", xq(x, arena_strndup(x->w, xtr, strcspn(xtr, "}"))));
        }
        int pos = k;
        for (int j = 0; j < k; j++)
            if (sorts_before(cmp, g.s, keys[order[j]])) {
                pos = j;
                break;
            }
        items[k] = item;
        keys[k] = g.s;
        memmove(order + pos + 1, order + pos, sizeof(int) * (size_t)(k - pos));
        order[pos] = k;
        k++;
    }
    int osep = sep > 0 ? sep : ':';
    gstr res;
    gstr_init(&res, x->w, 64);
    for (int i = 0; i < k; i++)
        list_append(&res, osep, items[order[i]], i == 0);
    gstr_catn(out, res.s, res.len);
    *taint |= lt;
    return ST_OK;
}

/* ${map} and ${filter}: the output list uses the input's separator. */
static status run_map_filter(xs *x, bool is_filter, const char *list, int sep, arena *ia, bool lt,
                             const char *expr, gstr *out, bool *taint)
{
    const char *l = list;
    char *item;
    gstr res;
    gstr_init(&res, x->w, 64);
    bool first = true, rt = false;
    while ((item = list_next(&l, &sep, ia))) {
        ps.exp_item = item;
        const char *e = expr;
        if (is_filter) {
            bool r;
            if (xp_cond(x, &e, false, &r) != ST_OK) {
                x->err = arena_printf(x->w, "%s inside \"filter\" condition", xq(x, x->err ? x->err : ""));
                return ST_FAIL;
            }
            if (r) {
                iter_append(&res, sep, item, first);
                first = false;
            }
            rt |= lt;
        } else {
            gstr g;
            gstr_init(&g, x->w, 32);
            bool t = false;
            if (xp_sub(x, &e, true, false, &g, &t) != ST_OK) {
                x->err = arena_printf(x->w, "%s inside \"map\" item", xq(x, x->err ? x->err : ""));
                return ST_FAIL;
            }
            iter_append(&res, sep, g.s, first);
            first = false;
            rt |= t || lt;
        }
    }
    gstr_catn(out, res.s, res.len);
    *taint |= rt;
    return ST_OK;
}

static status it_iter(xs *x, const char *name, const char **sp, bool skip, gstr *out, bool *taint)
{
    const char *s = *sp;
    status st;
    char *list, *init = NULL;
    bool lt = false, it_ = false;
    bool is_reduce = strcmp(name, "reduce") == 0;
    bool is_filter = strcmp(name, "filter") == 0;
    bool is_sort = strcmp(name, "sort") == 0;
    skip_ws(&s);
    if (*s != '{') {
        *sp = s;
        return xfail(x, is_sort ? "missing '{' for list arg of sort" : "missing '{' for first arg of %s", name);
    }
    /* a "<x" separator is taken from the unexpanded text */
    s++;
    int lsep = x_parse_sep(&s);
    {
        gstr lg;
        gstr_init(&lg, x->w, 64);
        if ((st = xp_sub(x, &s, true, skip, &lg, &lt)) != ST_OK)
            goto out;
        if (*s != '}') {
            st = xfail(x, "missing } at end of string");
            goto out;
        }
        s++;
        list = lg.s;
    }
    if (is_reduce) {
        skip_ws(&s);
        if (*s != '{') {
            st = xfail(x, "missing '{' for second arg of reduce");
            goto out;
        }
        if ((st = xp_braced(x, &s, skip, &init, &it_)) != ST_OK)
            goto out;
    }
    skip_ws(&s);
    if (*s != '{') {
        st = is_sort ? xfail(x, "missing '{' for comparator arg of sort")
                     : xfail(x, "missing '{' for last arg of %s", name);
        goto out;
    }
    s++;
    const char *expr = s;
    const char *cmp = NULL, *xtr = NULL;
    if (is_filter) {
        bool d;
        if ((st = xp_cond(x, &s, true, &d)) != ST_OK) {
            x->err = arena_printf(x->w, "%s inside %s item", x->err ? x->err : "", xq(x, name));
            goto out;
        }
        skip_ws(&s);
    } else if (is_sort) {
        /* the comparator: expanded without $ handling, then one of the
         * ordering conditions */
        gstr cg;
        gstr_init(&cg, x->w, 8);
        bool ct, save_nd = x->no_dollar;
        x->no_dollar = true;
        st = xp_sub(x, &s, true, skip, &cg, &ct);
        x->no_dollar = save_nd;
        if (st != ST_OK)
            goto out;
        if (*s != '}') {
            st = xfail(x, "missing '}' closing comparator arg of sort");
            goto out;
        }
        s++;
        cmp = cg.s;
        if (!skip) {
            static const char *const okc[] = {"<", "<=", ">", ">=", "lt", "lti", "le", "lei",
                                              "gt", "gti", "ge", "gei", NULL};
            const char *c0 = cmp;
            size_t cl = 0;
            if (*c0 == '<' || *c0 == '>' || *c0 == '=')
                cl = c0[1] == '=' ? 2 : 1;
            else
                while (isalnum((unsigned char)c0[cl]) || c0[cl] == '_')
                    cl++;
            if (cl == 0) {
                st = xfail(x, "condition name expected, but found \"%.16s\"", c0);
                goto out;
            }
            bool ok = false;
            for (int i = 0; okc[i]; i++)
                if (strlen(okc[i]) == cl && strncmp(okc[i], c0, cl) == 0)
                    ok = true;
            if (!ok) {
                static const char *const known[] = {"=", "==", "eq", "eqi", "match", "inlist", "inlisti",
                                                    "crypteq", "match_address", "match_domain", "match_ip",
                                                    "match_local_part", "and", "or", "bool", "bool_lax",
                                                    "def", "exists", "isip", "isip4", "isip6", "forall",
                                                    "forany", "first_delivery", "queue_running", NULL};
                bool isknown = false;
                for (int i = 0; known[i]; i++)
                    if (strlen(known[i]) == cl && strncmp(known[i], c0, cl) == 0)
                        isknown = true;
                st = isknown ? xfail(x, "comparator not handled for sort")
                             : xfail(x, "unknown condition %s", xq(x, s));
                goto out;
            }
            cmp = arena_strndup(x->w, c0, cl);
        }
        skip_ws(&s);
        if (*s != '{') {
            st = xfail(x, "missing '{' for extractor arg of sort");
            goto out;
        }
        s++;
        xtr = s;
        gstr dummy;
        gstr_init(&dummy, x->w, 8);
        bool dt;
        if ((st = xp_sub(x, &s, true, true, &dummy, &dt)) != ST_OK)
            goto out;
        if (*s != '}') {
            st = xfail(x, "missing '}' closing extractor arg of sort");
            goto out;
        }
    } else {
        gstr dummy;
        gstr_init(&dummy, x->w, 8);
        bool dt;
        if ((st = xp_sub(x, &s, true, true, &dummy, &dt)) != ST_OK) {
            x->err = arena_printf(x->w, "%s inside %s item", x->err ? x->err : "", xq(x, name));
            goto out;
        }
    }
    if (*s != '}') {
        st = xfail(x, "missing } at end of condition or expression inside %s; could be an unquoted } in the content", xq(x, name));
        goto out;
    }
    s++;
    skip_ws(&s);
    if (*s != '}') {
        st = xfail(x, "missing } at end of %s", xq(x, name));
        goto out;
    }
    s++;
    if (skip)
        goto out;

    const char *save_item = ps.exp_item, *save_value = ps.exp_value;
    arena *ia = x_arena(x, lt);
    if (is_reduce)
        st = run_reduce(x, list, lsep, ia, init, it_, expr, out, taint);
    else if (is_sort)
        st = run_sort(x, list, lsep, ia, lt, cmp, xtr, out, taint);
    else
        st = run_map_filter(x, is_filter, list, lsep, ia, lt, expr, out, taint);
    ps.exp_item = save_item;
    ps.exp_value = save_value;
out:
    *sp = s;
    return st;
}

/* ---- sg --------------------------------------------------------------------- */

static status it_sg(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    char *v[3];
    bool t[3];
    status st = xp_args(x, sp, skip, 3, 3, true, "sg", v, t, NULL);
    if (st != ST_OK || skip)
        return st;
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)v[1], PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
    if (!code) {
        char msg[256];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        return xfail(x, "regular expression error in %s: %s at offset %d", xq(x, v[1]), msg, (int)eo);
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    const char *subj = v[0];
    size_t len = strlen(subj), off = 0;
    uint32_t flags = 0;
    const char *save_num[EXPAND_MAX_NUMVARS];
    memcpy(save_num, ps.exp_num, sizeof save_num);
    int save_nmax = ps.exp_nmax;
    bool rt = t[0] || t[2];
    for (;;) {
        int rc = pcre2_match(code, (PCRE2_SPTR)subj, len, off, flags, md, NULL);
        if (rc < 0) {
            if (rc == PCRE2_ERROR_NOMATCH && flags) {
                /* empty match at off failed: copy one char and retry */
                if (off >= len)
                    break;
                gstr_catc(out, subj[off]);
                off++;
                flags = 0;
                continue;
            }
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        gstr_catn(out, subj + off, ov[0] - off);
        int n = rc == 0 ? (int)pcre2_get_ovector_count(md) : rc;
        if (n > EXPAND_MAX_NUMVARS)
            n = EXPAND_MAX_NUMVARS;
        for (int i = 0; i < n; i++)
            ps.exp_num[i] = ov[2 * i] == PCRE2_UNSET ? "" :
                arena_strndup(x_arena(x, t[0]), subj + ov[2 * i], ov[2 * i + 1] - ov[2 * i]);
        ps.exp_nmax = n;
        const char *r = v[2];
        bool tt = false;
        if ((st = xp_sub(x, &r, false, false, out, &tt)) != ST_OK)
            break;
        off = ov[1];
        /* after an empty match, try a non-empty one at the same place */
        flags = ov[0] == ov[1] ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
        if (out->len > EXPAND_MAX_RESULT) {
            st = xfail(x, "expansion result too long");
            break;
        }
    }
    if (st == ST_OK && off < len)
        gstr_catn(out, subj + off, len - off);
    memcpy(ps.exp_num, save_num, sizeof save_num);
    ps.exp_nmax = save_nmax;
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    *taint |= rt;
    return st;
}

/* ---- substr, length, hash, nhash ---------------------------------------- */

static const char hashcodes[] = "abcdefghijklmnopqrtsuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
static const unsigned primes[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47,
                                  53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113};

void x_substr(gstr *out, const char *s, int start, int len)
{
    int sl = (int)strlen(s);
    if (start < 0) {
        start += sl;
        if (start < 0) {
            len += start;
            if (len < 0)
                len = 0;
            start = 0;
        } else if (len < 0) {
            len = start;
            start = 0;
        }
    } else {
        if (start > sl) {
            start = sl;
            len = 0;
        } else if (len < 0)
            len = sl;
    }
    if (start + len > sl)
        len = sl - start;
    gstr_catn(out, s + start, (size_t)len);
}

status x_hash(xs *x, gstr *out, const char *s, int n, int m)
{
    if (m <= 0)
        m = 26;
    else if (m > (int)strlen(hashcodes))
        return xfail(x, "hash count \"%d\" too big", m);
    int sl = (int)strlen(s);
    if (n < 0)
        n = 0;
    if (n >= sl) {
        gstr_cat(out, s);
        return ST_OK;
    }
    unsigned char *h = (unsigned char *)arena_strdup(x->w, s);
    int i = 0;
    for (int j = n; h[j]; j++) {
        int c = h[j];
        int shift = (c + j) & 7;
        h[i] ^= (unsigned char)((c << shift) | (c >> (8 - shift)));
        if (++i >= n)
            i = 0;
    }
    for (i = 0; i < n; i++)
        gstr_catc(out, hashcodes[h[i] % m]);
    return ST_OK;
}

status x_nhash(xs *x, gstr *out, const char *s, int n, int m)
{
    unsigned long total = 0;
    int i = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (i == 0)
            i = (int)(sizeof primes / sizeof primes[0]) - 1;
        total += primes[i--] * (unsigned)*p;
    }
    if (m < 0) {
        if (n == 0)   /* Exim divides by zero here */
            return xfail(x, "nhash divisor must be positive");
        gstr_printf(out, "%lu", total % (unsigned long)(long)n);   /* n < 0 wraps as in Exim */
        return ST_OK;
    }
    if (n <= 0 || m <= 0)
        return xfail(x, "nhash divisors must be positive");
    total %= (unsigned long)n * (unsigned long)m;
    gstr_printf(out, "%lu/%lu", total / (unsigned long)m, total % (unsigned long)m);
    return ST_OK;
}

static status it_numeric(xs *x, const char *name, const char **sp, bool skip, gstr *out, bool *taint)
{
    bool is_len = strcmp(name, "length") == 0;
    char *v[3];
    bool t[3];
    int cnt;
    status st = xp_args(x, sp, skip, 2, is_len ? 2 : 3, true, name, v, t, &cnt);
    if (st != ST_OK || skip)
        return st;
    char *str = cnt == 3 ? v[2] : v[1];
    bool st_t = cnt == 3 ? t[2] : t[1];
    char *a1 = v[0], *a2 = cnt == 3 ? v[1] : NULL;
    int val[2] = {0, -1};
    if (is_len) {
        a2 = a1;
        a1 = NULL;
    }
    const char *args[2] = {a1, a2};
    bool argtaint[2] = {cnt == 3 ? t[0] : (is_len ? false : t[0]), cnt == 3 ? t[1] : (is_len ? t[0] : false)};
    for (int i = 0; i < 2; i++) {
        if (!args[i])
            continue;
        if (argtaint[i])
            return xfail(x, "attempt to use tainted string '%s' for %s", args[i], name);
        char *e;
        errno = 0;
        long l = strtol(args[i], &e, 10);
        if (*e || (i != 0 && l < 0))
            return xfail(x, "%s is not a%s number (in %s expansion)", xq(x, args[i]),
                         i != 0 ? " positive" : "", xq(x, name));
        val[i] = (int)l;
    }
    *taint |= st_t;
    if (strcmp(name, "hash") == 0)
        return x_hash(x, out, str, val[0], val[1]);
    if (strcmp(name, "nhash") == 0)
        return x_nhash(x, out, str, val[0], val[1]);
    x_substr(out, str, val[0], val[1]);
    return ST_OK;
}

/* ---- hmac, tr, readfile, env ---------------------------------------------- */

static status it_hmac(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    char *v[3];
    status st = xp_args(x, sp, skip, 3, 3, true, "hmac", v, NULL, NULL);
    if (st != ST_OK || skip)
        return st;
    const EVP_MD *md = NULL;
    if (strcmp(v[0], "md5") == 0)
        md = EVP_md5();
    else if (strcmp(v[0], "sha1") == 0)
        md = EVP_sha1();
    else
        return xfail(x, "hmac algorithm %s is not recognised", xq(x, v[0]));
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(md, v[1], (int)strlen(v[1]), (const unsigned char *)v[2], strlen(v[2]), d, &n);
    gstr_cat(out, x_hex(x->w, d, n));
    return ST_OK;
}

static status it_tr(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    char *v[3];
    bool t[3];
    status st = xp_args(x, sp, skip, 3, 3, true, "tr", v, t, NULL);
    if (st != ST_OK || skip)
        return st;
    size_t fl = strlen(v[1]), tl = strlen(v[2]);
    for (const char *p = v[0]; *p; p++) {
        const char *m = tl ? memrchr(v[1], *p, fl) : NULL;
        if (m) {
            size_t o = (size_t)(m - v[1]);
            gstr_catc(out, v[2][o < tl ? o : tl - 1]);
        } else {
            gstr_catc(out, *p);
        }
    }
    *taint |= t[0];
    return ST_OK;
}

static status it_readfile(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    char *v[2];
    bool t[2];
    if (ps.exp_forbid & EXPAND_FORBID_READFILE)
        return xfail(x, "file insertions are not permitted");
    status st = xp_args(x, sp, skip, 1, 2, true, "readfile", v, t, NULL);
    if (st != ST_OK || skip)
        return st;
    if (t[0])
        return xfail(x, "Tainted filename '%s'", v[0]);
    FILE *f = fopen(v[0], "r");
    if (!f)
        return xfail(x, "failed to open %s: %s", v[0], strerror(errno));
    int c;
    size_t n = 0;
    while ((c = getc(f)) != EOF) {
        if (++n > EXPAND_MAX_READFILE) {
            fclose(f);
            return xfail(x, "file %s too big for ${readfile}", v[0]);
        }
        if (c == '\n' && v[1])
            gstr_cat(out, v[1]);
        else
            gstr_catc(out, (char)c);
    }
    fclose(f);
    return ST_OK;
}

/* Exim clears the environment except keep_environment (and adds
 * add_environment); ${env} sees only that. */
static const char *env_value(xs *x, const char *name)
{
    if (!cfg)
        return getenv(name);
    const char *add = cfg_str(MO_add_environment);
    if (add) {
        int sep = 0;
        char *it;
        size_t nl = strlen(name);
        while ((it = list_next(&add, &sep, x->w)))
            if (strncmp(it, name, nl) == 0 && it[nl] == '=')
                return it + nl + 1;
    }
    const char *keep = cfg_str(MO_keep_environment);
    if (keep) {
        int sep = 0;
        char *it;
        while ((it = list_next(&keep, &sep, x->w)))
            if (strcmp(it, name) == 0 || (it[0] == '^' && 0))
                return getenv(name);
    }
    if (strcmp(name, "TZ") == 0)
        return getenv(name);
    return NULL;
}

static status it_env(xs *x, const char **sp, bool skip, gstr *out, bool *taint)
{
    const char *s = *sp;
    char *name;
    skip_ws(&s);
    status st = xp_braced(x, &s, skip, &name, NULL);
    if (st != ST_OK) {
        *sp = s;
        return st;
    }
    const char *v = skip ? NULL : env_value(x, name);
    if (v)
        v = arena_strdup(x->w, v);   /* visible only via keep_environment: admin data */
    st = xp_yesno(x, &s, skip, v != NULL, v, false, "env", out, taint);
    *sp = s;
    return st;
}

/* ---- dispatch ---------------------------------------------------------------- */

static const char *const item_names[] = {
    "acl", "authresults", "certextract", "dlfunc", "env", "extract", "filter", "hash", "hmac",
    "if", "imapfolder", "length", "listextract", "listquote", "lookup", "map", "nhash", "perl",
    "prvs", "prvscheck", "readfile", "readsocket", "reduce", "run", "sg", "sort", "srs_encode",
    "substr", "tr", NULL,
};

bool xp_is_item(const char *name)
{
    for (int i = 0; item_names[i]; i++)
        if (strcmp(item_names[i], name) == 0)
            return true;
    return false;
}

status xp_item(xs *x, const char *name, const char **sp, bool skip, gstr *out, bool *taint)
{
    status st;
    x->depth++;
    if (x->depth > EXPAND_MAX_DEPTH) {
        x->depth--;
        return xfail(x, "expansion nesting too deep (limit %d)", EXPAND_MAX_DEPTH);
    }
    if (strcmp(name, "if") == 0)
        st = it_if(x, sp, skip, out, taint);
    else if (strcmp(name, "lookup") == 0)
        st = it_lookup(x, sp, skip, out, taint);
    else if (strcmp(name, "extract") == 0)
        st = it_extract(x, sp, skip, out, taint);
    else if (strcmp(name, "listextract") == 0)
        st = it_listextract(x, sp, skip, out, taint);
    else if (strcmp(name, "listquote") == 0)
        st = it_listquote(x, sp, skip, out, taint);
    else if (!strcmp(name, "map") || !strcmp(name, "filter") || !strcmp(name, "reduce") || !strcmp(name, "sort"))
        st = it_iter(x, name, sp, skip, out, taint);
    else if (strcmp(name, "sg") == 0)
        st = it_sg(x, sp, skip, out, taint);
    else if (!strcmp(name, "substr") || !strcmp(name, "length") || !strcmp(name, "hash") || !strcmp(name, "nhash"))
        st = it_numeric(x, name, sp, skip, out, taint);
    else if (strcmp(name, "hmac") == 0)
        st = it_hmac(x, sp, skip, out, taint);
    else if (strcmp(name, "tr") == 0)
        st = it_tr(x, sp, skip, out, taint);
    else if (strcmp(name, "readfile") == 0)
        st = it_readfile(x, sp, skip, out, taint);
    else if (strcmp(name, "env") == 0)
        st = it_env(x, sp, skip, out, taint);
    else if (strcmp(name, "run") == 0)
        st = it_run(x, sp, skip, out, taint);
    else if (strcmp(name, "prvs") == 0)
        st = it_prvs(x, sp, skip, out, taint);
    else if (strcmp(name, "prvscheck") == 0)
        st = it_prvscheck(x, sp, skip, out, taint);
    else if (strcmp(name, "imapfolder") == 0)
        st = it_imapfolder(x, sp, skip, out, taint);
    else if (strcmp(name, "acl") == 0)
        st = it_acl(x, sp, skip, out, taint);
    else if (strcmp(name, "readsocket") == 0)
        st = it_readsocket(x, sp, skip, out, taint);
    else if (strcmp(name, "authresults") == 0) {
        /* ${authresults{id}}: the header; results (iprev, SPF, DKIM, DMARC,
         * ARC) are appended by the modules that produce them (later). */
        char *v[1];
        st = xp_args(x, sp, skip, 1, 1, true, "authresults", v, NULL, NULL);
        if (st == ST_OK && !skip)
            gstr_printf(out, "Authentication-Results: %s", v[0]);
    }
    else if (strcmp(name, "srs_encode") == 0) {
        /* ${srs_encode {secret}{return path}{original domain}} (src/msgauth) */
        char *v[3];
        bool tv[3] = { false, false, false };
        st = xp_args(x, sp, skip, 3, 3, true, "srs_encode", v, tv, NULL);
        if (st == ST_OK && !skip && *v[1]) {
            /* the return path must be one address, as Exim parses it */
            char *perr = NULL;
            int doff;
            if (!x_parse_address(x->w, v[1], &perr, &doff))
                st = xfail(x, "%s", perr ? perr : "malformed address");
        }
        if (st == ST_OK && !skip) {
            char *err = NULL;
            char *res = srs_exim_encode(v[0], v[1], v[2], time(NULL), x->w, &err);
            if (!res)
                st = xfail(x, "%s", err ? err : "srs_encode failed");
            else {
                gstr_cat(out, res);
                if (tv[1] || tv[2])
                    *taint = true;
            }
        }
    }
    else if (!strcmp(name, "perl") || !strcmp(name, "dlfunc") ||
             !strcmp(name, "certextract"))
        st = xfail(x, "the \"%s\" expansion item is not supported by postern", name);
    else
        st = ST_NOTFOUND;
    x->depth--;
    return st;
}

/* expand.c: the expansion driver: walks a string, copies text, handles
 * backslash escapes and \N...\N, and dispatches $variables, ${items} and
 * ${operators:...}.  The public entry points live here too. */
#include "expand.h"
#include "expand_int.h"

#include "core/log.h"
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

arena *x_arena(xs *x, bool tainted)
{
    if (!tainted)
        return x->w;
    if (!x->wt)
        x->wt = arena_new("expand-tainted", true);
    return x->wt;
}

static char x_escape(const char **sp);

const char *xq(xs *x, const char *s)
{
    gstr g;
    gstr_init(&g, x->w, strlen(s) + 8);
    gstr_catc(&g, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int c = *p;
        if (c >= 32 && c <= 126 && c != '"') {
            gstr_catc(&g, (char)c);
            continue;
        }
        switch (c) {
        case '\n': gstr_cat(&g, "\\n"); break;
        case '\r': gstr_cat(&g, "\\r"); break;
        case '\b': gstr_cat(&g, "\\b"); break;
        case '\v': gstr_cat(&g, "\\v"); break;
        case '\f': gstr_cat(&g, "\\f"); break;
        case '\t': gstr_cat(&g, "\\t"); break;
        case '"': gstr_cat(&g, "\\\""); break;
        default: gstr_printf(&g, "\\%03o", c); break;
        }
    }
    gstr_catc(&g, '"');
    return g.s;
}

int x_parse_sep(const char **sp)
{
    const char *s = *sp;
    while (isspace((unsigned char)*s))
        s++;
    if (s[0] != '<' || !s[1])
        return 0;
    const char *p = s + 1;
    unsigned char c;
    if (*p == '\\' && p[1]) {
        p++;
        c = (unsigned char)x_escape(&p);
    } else {
        c = (unsigned char)*p++;
    }
    if (c && (ispunct(c) || iscntrl(c))) {
        *sp = p;
        return c;
    }
    return 0;
}

status xfail(xs *x, const char *fmt, ...)
{
    if (!x->err) {
        va_list ap;
        va_start(ap, fmt);
        x->err = arena_vprintf(x->w, fmt, ap);
        va_end(ap);
    }
    return ST_FAIL;
}

/* One backslash escape at *sp (just after the backslash). */
static char x_escape(const char **sp)
{
    const char *s = *sp;
    char c = *s++;
    switch (c) {
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'v': c = '\v'; break;
    case 'x':
        if (isxdigit((unsigned char)*s)) {
            int v = 0;
            for (int i = 0; i < 2 && isxdigit((unsigned char)*s); i++, s++)
                v = v * 16 + (isdigit((unsigned char)*s) ? *s - '0' : (tolower((unsigned char)*s) - 'a' + 10));
            c = (char)v;
        }
        break;
    default:
        if (c >= '0' && c <= '7') {
            int v = c - '0';
            for (int i = 0; i < 2 && *s >= '0' && *s <= '7'; i++, s++)
                v = v * 8 + (*s - '0');
            c = (char)v;
        }
        break;
    }
    *sp = s;
    return c;
}

#define EXPAND_MAX_NAME 255   /* longest variable/item name read */

static size_t name_len(const char *s)
{
    size_t n = 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '_')
        n++;
    return n;
}

static char *name_dup(arena *a, const char *s, size_t n)
{
    return arena_strndup(a, s, n > EXPAND_MAX_NAME ? EXPAND_MAX_NAME : n);
}

/* Header variables ($h_name:, $header_name:, $rh_, $bh_, $lh_ ...). */
static bool is_header_var(const char *s)
{
    static const char *const pfx[] = {"h_", "header_", "rh_", "rheader_", "bh_", "bheader_",
                                      "lh_", "lheader_", NULL};
    for (int i = 0; pfx[i]; i++)
        if (strncmp(s, pfx[i], strlen(pfx[i])) == 0)
            return true;
    return false;
}

static status append_var(xs *x, const char *name, bool braced, bool skip, gstr *out, bool *taint)
{
    bool known = false;
    const char *v = var_get(x, name, &known);
    if (!known) {
        if (braced)
            return xfail(x, "unknown variable in \"${%s}\"", name);
        return xfail(x, "unknown variable name %s", xq(x, name));
    }
    if (v && !skip) {
        gstr_cat(out, v);
        if (is_tainted(v))
            *taint = true;
    }
    return ST_OK;
}

status xp_sub(xs *x, const char **sp, bool brace_end, bool skip, gstr *out, bool *taint)
{
    const char *s = *sp;
    status st = ST_OK;
    if (++x->depth > EXPAND_MAX_DEPTH) {
        x->depth--;
        return xfail(x, "expansion nesting too deep (limit %d)", EXPAND_MAX_DEPTH);
    }
    while (*s) {
        if (out->len > EXPAND_MAX_RESULT) {
            st = xfail(x, "expansion result too long (limit %d bytes)", EXPAND_MAX_RESULT);
            goto done;
        }
        if (brace_end && *s == '}')
            break;
        if (*s == '\\') {
            if (s[1] == 'N') {
                s += 2;
                const char *e = strstr(s, "\\N");
                size_t n = e ? (size_t)(e - s) : strlen(s);
                if (!skip)
                    gstr_catn(out, s, n);
                s += n + (e ? 2 : 0);
                continue;
            }
            if (!s[1]) {
                st = xfail(x, "\\ at end of string");
                goto done;
            }
            s++;
            char c = x_escape(&s);
            if (!skip)
                gstr_catc(out, c);
            continue;
        }
        if (*s != '$' || x->no_dollar) {
            const char *e = s + 1;
            while (*e && (*e != '$' || x->no_dollar) && *e != '\\' && !(brace_end && *e == '}'))
                e++;
            if (!skip)
                gstr_catn(out, s, (size_t)(e - s));
            s = e;
            continue;
        }
        s++;
        if (isalpha((unsigned char)*s)) {
            size_t n = name_len(s);
            char *name = name_dup(x->w, s, n);
            s += n;
            if (is_header_var(name)) {
                /* header name runs to the colon */
                const char *us = strchr(name, '_') + 1;
                const char *hstart = s - n + (size_t)(us - name);
                while (*s && *s != ':' && !isspace((unsigned char)*s))
                    s++;
                const char *hend = s;
                if (*s == ':')
                    s++;
                else if (!*s)
                    x->bad_header = true;
                if (!skip && ps.msg_headers && hend > hstart) {
                    const char *v = vars_header(x, name, hstart, (size_t)(hend - hstart));
                    gstr_cat(out, v);
                    if (*v)
                        *taint = true;
                }
                continue;   /* no message in this context: empty */
            }
            /* unknown names fail even in a part that is skipped (as Exim) */
            if ((st = append_var(x, name, false, skip, out, taint)) != ST_OK)
                goto done;
            continue;
        }
        if (isdigit((unsigned char)*s)) {
            int n = 0;
            while (isdigit((unsigned char)*s)) {
                if (n < 1000)
                    n = n * 10 + (*s - '0');
                s++;
            }
            if (!skip && n < ps.exp_nmax && ps.exp_num[n]) {
                gstr_cat(out, ps.exp_num[n]);
                if (is_tainted(ps.exp_num[n]))
                    *taint = true;
            }
            continue;
        }
        if (*s != '{') {
            st = xfail(x, "$ not followed by letter, digit, or {");
            goto done;
        }
        s++;
        if (isdigit((unsigned char)*s)) {
            int n = 0;
            while (isdigit((unsigned char)*s)) {
                if (n < 1000)
                    n = n * 10 + (*s - '0');
                s++;
            }
            if (*s != '}') {
                st = xfail(x, "} expected after number");
                goto done;
            }
            s++;
            if (!skip && n < ps.exp_nmax && ps.exp_num[n]) {
                gstr_cat(out, ps.exp_num[n]);
                if (is_tainted(ps.exp_num[n]))
                    *taint = true;
            }
            continue;
        }
        if (!isalpha((unsigned char)*s)) {
            st = xfail(x, "letter or digit expected after ${");
            goto done;
        }
        /* "-" is allowed in names here, for negative operator arguments */
        size_t n = 0;
        while (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '-')
            n++;
        char *name = name_dup(x->w, s, n);
        s += n;
        if (n && xp_is_item(name)) {
            const char *t = s;
            while (isspace((unsigned char)*t))
                t++;
            s = t;
            if ((st = xp_item(x, name, &s, skip, out, taint)) != ST_OK)
                goto done;
            continue;
        }
        if (*s == '}') {
            s++;
            if ((st = append_var(x, name, true, skip, out, taint)) != ST_OK)
                goto done;
            continue;
        }
        if (*s == ':' && n) {
            status known = xp_op(x, name, NULL, false, NULL, NULL);
            if (known != ST_OK && known != ST_NOTFOUND) {
                st = known;       /* e.g. an _arg on an operator that takes none */
                goto done;
            }
            s++;
            gstr arg;
            gstr_init(&arg, x->w, 64);
            bool at = false;
            if ((st = xp_sub(x, &s, true, skip, &arg, &at)) != ST_OK)
                goto done;
            if (*s != '}') {
                st = xfail(x, x->bad_header ? "missing } at end of string - could be header name not terminated by colon"
                                            : "missing } at end of string");
                goto done;
            }
            s++;
            if (known == ST_NOTFOUND) {
                st = xfail(x, "unknown expansion operator %s", xq(x, name));
                goto done;
            }
            if (!skip && (st = xp_op(x, name, arg.s, at, out, taint)) != ST_OK)
                goto done;
            continue;
        }
        if (*s == '{' && n) {
            st = xp_item(x, name, &s, skip, out, taint);
            if (st == ST_NOTFOUND) {
                st = xfail(x, "\"${%s\" is not a known operator (or a } is missing in a variable reference)", name);
                goto done;
            }
            if (st != ST_OK)
                goto done;
            continue;
        }
        st = xfail(x, "\"${%s\" is not a known operator (or a } is missing in a variable reference)", name);
        goto done;
    }
done:
    x->depth--;
    *sp = s;
    return st;
}

status xp_braced(xs *x, const char **sp, bool skip, char **val, bool *taint)
{
    const char *s = *sp;
    if (*s != '{')
        return xfail(x, "missing or misplaced { or }");
    s++;
    gstr g;
    gstr_init(&g, x->w, 32);
    bool t = false;
    status st = xp_sub(x, &s, true, skip, &g, &t);
    if (st != ST_OK) {
        *sp = s;
        return st;
    }
    if (*s != '}') {
        *sp = s;
        return xfail(x, x->bad_header ? "missing } at end of string - could be header name not terminated by colon"
                                      : "missing } at end of string");
    }
    *sp = s + 1;
    if (val)
        *val = g.s;
    if (taint)
        *taint = t;
    return ST_OK;
}

static void skip_ws(const char **sp)
{
    while (isspace((unsigned char)**sp))
        (*sp)++;
}

status xp_args(xs *x, const char **sp, bool skip, int min, int max, bool close,
               const char *name, char **vals, bool *taints, int *count)
{
    const char *s = *sp;
    int n = 0;
    status st;
    skip_ws(&s);
    while (*s == '{') {
        if (n >= max) {
            *sp = s;
            return xfail(x, "Too many arguments for '%s' (max is %d)", name, max);
        }
        bool t = false;
        if ((st = xp_braced(x, &s, skip, &vals[n], &t)) != ST_OK) {
            *sp = s;
            return st;
        }
        if (taints)
            taints[n] = t;
        n++;
        skip_ws(&s);
    }
    if (n < min) {
        *sp = s;
        return xfail(x, "Not enough arguments for '%s' (min is %d)", name, min);
    }
    for (int i = n; i < max; i++) {
        vals[i] = NULL;
        if (taints)
            taints[i] = false;
    }
    if (close) {
        if (*s != '}') {
            *sp = s;
            return xfail(x, "missing '}' after '%s'", name);
        }
        s++;
    }
    if (count)
        *count = n;
    *sp = s;
    return ST_OK;
}

status xp_yesno(xs *x, const char **sp, bool skip, bool yes, const char *value,
                bool value_taint, const char *item, gstr *out, bool *taint)
{
    const char *s = *sp;
    status st = ST_OK;
    const char *save_value = ps.exp_value;
    bool is_if = strcmp(item, "if") == 0;
    skip_ws(&s);
    if (*s == '}') {
        if (!skip && yes) {
            if (is_if) {
                gstr_cat(out, "true");
            } else if (value) {
                gstr_cat(out, value);
                if (value_taint || is_tainted(value))
                    *taint = true;
            }
        }
        *sp = s + 1;
        return ST_OK;
    }
    if (*s != '{') {
        *sp = s;
        if (x->bad_header)
            return xfail(x, "missing or misplaced { or } - could be header name not terminated by colon");
        return xfail(x, "curly-bracket problem in conditional yes/no parsing: 'yes' part did not start with '{'\n remaining string is '%s'", s);
    }
    if (!is_if)
        ps.exp_value = value;
    char *v;
    bool t = false;
    if ((st = xp_braced(x, &s, skip || !yes, &v, &t)) != ST_OK)
        goto done;
    if (!skip && yes) {
        gstr_cat(out, v);
        *taint |= t;
    }
    skip_ws(&s);
    if (*s == '{') {
        t = false;
        if (!is_if)
            ps.exp_value = save_value;   /* the "no" string sees the previous $value */
        if ((st = xp_braced(x, &s, skip || yes, &v, &t)) != ST_OK)
            goto done;
        if (!skip && !yes) {
            gstr_cat(out, v);
            *taint |= t;
        }
    } else if (*s != '}' && strncmp(s, "fail", 4) != 0) {
        st = xfail(x, "syntax error in %s item - \"fail\" expected", xq(x, item));
        goto done;
    } else if (strncmp(s, "fail", 4) == 0 && !isalnum((unsigned char)s[4])) {
        s += 4;
        if (!skip && !yes) {
            skip_ws(&s);
            if (*s != '}') {
                st = xfail(x, "curly-bracket problem in conditional yes/no parsing: did not close with '}' after forcedfail\n remaining string is '%s'", s);
                goto done;
            }
            x->forced = true;
            st = xfail(x, "%s failed and \"fail\" requested", xq(x, item));
            goto done;
        }
    }
    skip_ws(&s);
    if (*s != '}') {
        st = xfail(x, "curly-bracket problem in conditional yes/no parsing: did not close with '}'\n remaining string is '%s'", s);
        goto done;
    }
    s++;
done:
    ps.exp_value = save_value;
    if (x->sticky)
        x->sticky_value = save_value;   /* an enclosing item restores $value */
    *sp = s;
    return st;
}

/* ---- public API ---------------------------------------------------------- */

static arena *taint_arena_for(arena *a)
{
    if (arena_is_tainted(a))
        return a;
    if (a == ps.msg && ps.msg_t)
        return ps.msg_t;
    if (ps.conn_t && a != ps.msg)
        return ps.conn_t;
    if (ps.msg_t)
        return ps.msg_t;
    static arena *fallback;
    if (!fallback)
        fallback = arena_new("expand-tainted", true);
    return fallback;
}

_Static_assert(sizeof ps.exp_num / sizeof ps.exp_num[0] == EXPAND_MAX_NUMVARS,
               "ps.exp_num must hold EXPAND_MAX_NUMVARS entries");

typedef struct saved_nums {
    const char *num[EXPAND_MAX_NUMVARS];
    int nmax;
    const char *item, *value;
} saved_nums;

static void save_state(saved_nums *sv)
{
    memcpy(sv->num, ps.exp_num, sizeof sv->num);
    sv->nmax = ps.exp_nmax;
    sv->item = ps.exp_item;
    sv->value = ps.exp_value;
}

static void restore_state(const saved_nums *sv)
{
    memcpy(ps.exp_num, sv->num, sizeof sv->num);
    ps.exp_nmax = sv->nmax;
    ps.exp_item = sv->item;
    ps.exp_value = sv->value;
}

static status finish(xs *x, status st, arena *a, char **err)
{
    if (st == ST_OK)
        return st;
    if (x->forced)
        st = ST_FAIL_FORCED;
    if (err)
        *err = arena_strdup(a, x->err ? x->err : "expansion failed");
    return st;
}

status expand_string(const char *s, arena *a, char **out, char **err)
{
    if (!s)
        panic("expand_string: NULL string");
    if (is_tainted(s)) {
        /* outside data is never expanded (DESIGN.md section 8) */
        log_write(LOG_MAIN | LOG_PANIC, "attempt to expand tainted string '%s'", s);
        if (err)
            *err = arena_printf(a, "attempt to expand tainted string '%s'", s);
        return ST_ERROR;
    }
    if (ps.exp_level >= EXPAND_MAX_LEVEL) {
        if (err)
            *err = arena_printf(a, "expansion nesting too deep (expansions within lookups or lists, limit %d)",
                                EXPAND_MAX_LEVEL);
        return ST_ERROR;
    }
    ps.exp_level++;
    xs x = {.w = arena_new("expand", false)};
    saved_nums sv;
    save_state(&sv);
    gstr g;
    gstr_init(&g, x.w, 64);
    bool t = false;
    const char *p = s;
    status st = xp_sub(&x, &p, false, false, &g, &t);
    if (st == ST_OK)
        *out = arena_memdup(t ? taint_arena_for(a) : a, g.s, g.len);
    st = finish(&x, st, a, err);
    restore_state(&sv);
    if (x.sticky)
        ps.exp_value = x.sticky_value ? arena_strdup(ps.conn ? ps.conn : a, x.sticky_value) : NULL;
    arena_free(x.w);
    if (x.wt)
        arena_free(x.wt);
    ps.exp_level--;
    return st;
}

status expand_condition(const char *s, arena *a, bool *result, char **err)
{
    if (is_tainted(s)) {
        log_write(LOG_MAIN | LOG_PANIC, "attempt to expand tainted string '%s'", s);
        if (err)
            *err = arena_printf(a, "attempt to expand tainted string '%s'", s);
        return ST_ERROR;
    }
    xs x = {.w = arena_new("expand", false)};
    saved_nums sv;
    save_state(&sv);
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    status st = xp_cond(&x, &p, false, result);
    if (st == ST_OK) {
        while (isspace((unsigned char)*p))
            p++;
        if (*p)
            st = xfail(&x, "extra characters after condition: \"%s\"", p);
    }
    st = finish(&x, st, a, err);
    restore_state(&sv);
    arena_free(x.w);
    if (x.wt)
        arena_free(x.wt);
    return st;
}

status expand_check_bool(const char *s, arena *a, bool *result, char **err)
{
    char *v;
    status st = expand_string(s, a, &v, err);
    if (st != ST_OK)
        return st;
    const char *p = v;
    while (isspace((unsigned char)*p))
        p++;
    size_t n = strlen(p);
    while (n && isspace((unsigned char)p[n - 1]))
        n--;
    *result = !(n == 0 || (n == 1 && *p == '0') || (n == 2 && strncasecmp(p, "no", 2) == 0) ||
                (n == 5 && strncasecmp(p, "false", 5) == 0));
    return ST_OK;
}

status expand_integer(const char *s, arena *a, long long *out, char **err)
{
    char *v;
    status st = expand_string(s, a, &v, err);
    if (st != ST_OK)
        return st;
    if (!x_number(v, out)) {
        if (err)
            *err = arena_printf(a, "\"%s\" is not a number", v);
        return ST_ERROR;
    }
    return ST_OK;
}

/* ---- ACL variables ------------------------------------------------------- */

static acl_var **acl_list(const char *name)
{
    if (strncmp(name, "acl_c", 5) == 0)
        return &ps.acl_c;
    if (strncmp(name, "acl_m", 5) == 0)
        return &ps.acl_m;
    return NULL;
}

static bool acl_name_ok(const char *name)
{
    if (!acl_list(name))
        return false;
    const char *p = name + 5;
    if (isdigit((unsigned char)*p))
        return p[1] == '\0';
    if (*p != '_' || !p[1])
        return false;
    for (p++; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

status expand_set_acl_var(const char *name, const char *value, char **err)
{
    if (!acl_name_ok(name)) {
        if (err)
            *err = arena_printf(ps.scratch, "invalid ACL variable name \"%s\"", name);
        return ST_ERROR;
    }
    acl_var **lp = acl_list(name);
    bool conn = lp == &ps.acl_c;
    arena *a = conn ? ps.conn : ps.msg;
    if (value && is_tainted(value))
        a = conn ? ps.conn_t : ps.msg_t;
    for (acl_var *v = *lp; v; v = v->next)
        if (strcmp(v->name, name) == 0) {
            v->value = value ? arena_strdup(a, value) : NULL;
            return ST_OK;
        }
    acl_var *v = arena_calloc(conn ? ps.conn : ps.msg, sizeof *v);
    v->name = arena_strdup(conn ? ps.conn : ps.msg, name);
    v->value = value ? arena_strdup(a, value) : NULL;
    v->next = *lp;
    *lp = v;
    return ST_OK;
}

const char *expand_get_acl_var(const char *name)
{
    acl_var **lp = acl_list(name);
    if (!lp)
        return NULL;
    for (acl_var *v = *lp; v; v = v->next)
        if (strcmp(v->name, name) == 0)
            return v->value;
    return NULL;
}

void expand_reset_message(void)
{
    ps.acl_m = NULL;
    ps.exp_nmax = 0;
    ps.exp_item = ps.exp_value = NULL;
}

/* parse.c: the sections of a configuration: main options and named lists,
 * ACLs, routers/transports/authenticators, retry and rewrite rules. */
#include "config/acl_names.h"
#include "config/config.h"
#include "config/drivers.h"
#include "config/reader.h"
#include "core/list.h"
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <netdb.h>

enum section { SEC_MAIN, SEC_ACL, SEC_ROUTERS, SEC_TRANSPORTS, SEC_AUTH, SEC_RETRY, SEC_REWRITE, SEC_LOCAL_SCAN };
static const char *const section_names[] = {
    "main", "acl", "routers", "transports", "authenticators", "retry", "rewrite", "local_scan",
};

static char *skip_ws(const char *p)
{
    while (isspace((unsigned char)*p))
        p++;
    return (char *)p;
}

/* ---- string values ------------------------------------------------------ */

/* Process a quoted string starting at p (at the '"').  Returns NULL and sets
 * an error when the closing quote is missing. */
static char *unquote(reader *r, const char *p, const char **endp)
{
    gstr g;
    gstr_init(&g, r->a, strlen(p));
    p++;
    while (*p && *p != '"') {
        if (*p != '\\') {
            gstr_catc(&g, *p++);
            continue;
        }
        p++;
        switch (*p) {
        case 'n': gstr_catc(&g, '\n'); p++; break;
        case 'r': gstr_catc(&g, '\r'); p++; break;
        case 't': gstr_catc(&g, '\t'); p++; break;
        case 'x': {
            p++;
            int v = 0, n = 0;
            while (n < 2 && isxdigit((unsigned char)*p)) {
                v = v * 16 + (isdigit((unsigned char)*p) ? *p - '0' : (tolower((unsigned char)*p) - 'a' + 10));
                p++;
                n++;
            }
            gstr_catc(&g, (char)v);
            break;
        }
        case '\0':
            break;
        default:
            if (*p >= '0' && *p <= '7') {
                int v = 0, n = 0;
                while (n < 3 && *p >= '0' && *p <= '7') {
                    v = v * 8 + (*p++ - '0');
                    n++;
                }
                gstr_catc(&g, (char)v);
            } else {
                gstr_catc(&g, *p++);
            }
        }
    }
    if (*p != '"') {
        reader_error(r, "missing closing quote in string");
        return NULL;
    }
    if (endp)
        *endp = p + 1;
    return g.s;
}

/* The value of an option: quoted or raw rest of line. */
static char *read_value(reader *r, const char *p)
{
    p = skip_ws(p);
    if (*p == '"') {
        const char *end;
        char *v = unquote(r, p, &end);
        if (!v)
            return NULL;
        end = skip_ws(end);
        if (*end) {
            reader_error(r, "extra characters follow quoted string: %s", end);
            return NULL;
        }
        return v;
    }
    return arena_strdup(r->a, p);
}

/* ---- option setting ----------------------------------------------------- */

static status parse_octal(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 8);
    if (errno || end == s || *end)
        return ST_FAIL;
    *out = v;
    return ST_OK;
}

static status parse_timelist(const char *s, arena *a)
{
    int sep = 0;
    char *it;
    const char *l = s;
    long long t;
    while ((it = list_next(&l, &sep, a)))
        if (opt_parse_time(it, &t) != ST_OK)
            return ST_FAIL;
    return ST_OK;
}

/* Give v the value text for definition d.  what names the option for errors. */
static status assign(reader *r, const optdef *d, optval *v, const char *text)
{
    long long n;
    switch (d->type) {
    case OT_BOOL:
        if (!strcasecmp(text, "true") || !strcasecmp(text, "yes"))
            v->n = 1;
        else if (!strcasecmp(text, "false") || !strcasecmp(text, "no"))
            v->n = 0;
        else if ((d->flags & OF_EXPAND) && strchr(text, '$')) {
            v->s = text;
            v->is_expanded_bool = true;
        } else
            return reader_error(r, "\"%s\" is not a valid value for the \"%s\" option", text, d->name);
        break;
    case OT_INT:
        if (opt_parse_int(text, &n) != ST_OK)
            return reader_error(r, "invalid integer value \"%s\" for %s", text, d->name);
        v->n = n;
        break;
    case OT_OCTINT:
        if (parse_octal(text, &n) != ST_OK)
            return reader_error(r, "invalid octal integer value \"%s\" for %s", text, d->name);
        v->n = n;
        break;
    case OT_FIXED:
        if (opt_parse_fixed(text, &n) != ST_OK)
            return reader_error(r, "invalid fixed-point value \"%s\" for %s", text, d->name);
        v->n = n;
        break;
    case OT_TIME:
        if (opt_parse_time(text, &n) != ST_OK)
            return reader_error(r, "invalid time value \"%s\" for %s", text, d->name);
        v->n = n;
        break;
    case OT_TIMELIST:
        if (parse_timelist(text, r->a) != ST_OK)
            return reader_error(r, "invalid time list \"%s\" for %s", text, d->name);
        v->s = text;
        break;
    case OT_STRING:
    case OT_UID:
    case OT_GID:
        v->s = text;
        break;
    }
    v->set = true;
    return ST_OK;
}

/* ---- options postern does not implement yet ----------------------------- */

/* Options marked OF_UNIMPL may only be given their default value (or, with
 * OF_OFFOK, their "off" value), so that a configuration written for Exim
 * never has a setting silently ignored (DESIGN.md section 1). */

static bool same_list(const char *x, const char *y, arena *a)
{
    int sx = 0, sy = 0;
    for (;;) {
        char *ix = list_next(&x, &sx, a), *iy = list_next(&y, &sy, a);
        if (!ix || !iy)
            return !ix && !iy;
        if (strcmp(ix, iy) != 0)
            return false;
    }
}

static bool is_string_type(opt_type t)
{
    return t == OT_STRING || t == OT_TIMELIST || t == OT_UID || t == OT_GID;
}

static bool is_off(const optdef *d, const optval *v)
{
    return is_string_type(d->type) ? !v->s || !*v->s : v->n == 0;
}

static bool unimpl_value_ok(reader *r, const optdef *d, const optval *v)
{
    if (v->is_expanded_bool)
        return false;
    if ((d->flags & OF_OFFOK) && is_off(d, v))
        return true;
    optval dv = { 0 };
    if (d->dflt && assign(r, d, &dv, d->dflt) != ST_OK)
        return false;
    if (!is_string_type(d->type))
        return v->n == dv.n;
    if (is_off(d, &dv) || is_off(d, v))    /* unset and empty are alike */
        return is_off(d, &dv) && is_off(d, v);
    return d->flags & OF_LIST ? same_list(v->s, dv.s, r->a) : strcmp(v->s, dv.s) == 0;
}

/* where: NULL for the main section, else " (router \"r1\", driver accept)" */
static status unimpl_error(reader *r, const optdef *d, const char *where)
{
    const char *off = !(d->flags & OF_OFFOK) ? ""
                    : d->type == OT_BOOL ? " or false" : is_string_type(d->type) ? " or left empty" : " or 0";
    const char *allowed;
    if (d->type == OT_BOOL)
        allowed = arena_printf(r->a, "it may only be %s (its default)%s",
                               d->dflt && strcmp(d->dflt, "true") == 0 ? "true" : "false", off);
    else if (!d->dflt)
        allowed = is_string_type(d->type) ? "it may only be left unset or empty" : "it may only be left unset";
    else
        allowed = arena_printf(r->a, "it may only be set to its default (\"%s\")%s", d->dflt, off);
    return reader_error(r, "%soption \"%s\"%s is not implemented by postern yet: %s",
                        where ? "" : "main ", d->name, where ? where : "", allowed);
}

/* Unimplemented options that have no effect unless one of the other options
 * named is true; they are checked when the whole driver has been read. */
static const struct { const char *opt; const char *unless[2]; } inert_unless[] = {
    /* an SMTP code in :fail: or :defer: text arises only where they are allowed */
    { "forbid_smtp_code", { "allow_fail", "allow_defer" } },
};

static bool checked_later(const optdef *d)
{
    for (size_t i = 0; i < sizeof inert_unless / sizeof inert_unless[0]; i++)
        if (strcmp(inert_unless[i].opt, d->name) == 0)
            return true;
    return false;
}

/* The check for a value just set from the configuration. */
static status unimpl_check(reader *r, const optdef *d, const optval *v, const char *where)
{
    if (!(d->flags & OF_UNIMPL) || checked_later(d) || unimpl_value_ok(r, d, v))
        return ST_OK;
    return unimpl_error(r, d, where);
}

static const optdef *driver_optdef(const driver_inst *d, const char *name)
{
    int n;
    const optdef *g = config_generic_opts(d->cls, &n);
    for (int i = 0; i < n; i++)
        if (strcmp(g[i].name, name) == 0)
            return &g[i];
    for (int i = 0; i < d->info->nopts; i++)
        if (strcmp(d->info->opts[i].name, name) == 0)
            return &d->info->opts[i];
    return NULL;
}

/* The checks left for when a driver has been read. */
static status unimpl_check_driver(reader *r, const driver_inst *d, const char *where)
{
    for (size_t i = 0; i < sizeof inert_unless / sizeof inert_unless[0]; i++) {
        const optval *v = driver_opt(d, inert_unless[i].opt);
        if (!v || !v->src_file)
            continue;
        const optdef *def = driver_optdef(d, inert_unless[i].opt);
        bool live = false;
        for (size_t u = 0; u < 2; u++) {
            const optval *o = driver_opt(d, inert_unless[i].unless[u]);
            live |= o && o->n;
        }
        if (!live || unimpl_value_ok(r, def, v))
            continue;
        r->file = v->src_file;
        r->line = v->src_line;
        return unimpl_error(r, def, where);
    }
    return ST_OK;
}

/* Parse "[hide] name [= value]" / "no_name" against a table.  *unknown is
 * set (and nothing reported) when the name is not in the table; where names
 * the driver for errors (NULL in the main section). */
static status set_option(reader *r, const optdef *defs, int n, optval *vals,
                         const char *line, bool *unknown, bool *seen, const char *where)
{
    const char *p = line;
    bool hide = false;
    *unknown = false;
    if (strncmp(p, "hide", 4) == 0 && isspace((unsigned char)p[4])) {
        hide = true;
        p = skip_ws(p + 4);
    }
    const char *name = p;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    size_t nl = (size_t)(p - name);
    if (nl == 0)
        return reader_error(r, "option setting expected: %s", line);
    char *nm = arena_strndup(r->a, name, nl);
    p = skip_ws(p);
    if (*p && *p != '=')
        return reader_error(r, "unexpected characters after option name \"%s\": %s", nm, p);
    bool has_value = *p == '=';
    if (has_value)
        p++;

    bool negated = false;
    int idx = -1;
    for (int i = 0; i < n; i++)
        if (defs[i].name && strcmp(defs[i].name, nm) == 0) {
            idx = i;
            break;
        }
    if (idx < 0) {
        const char *base = NULL;
        if (strncmp(nm, "no_", 3) == 0)
            base = nm + 3;
        else if (strncmp(nm, "not_", 4) == 0)
            base = nm + 4;
        if (base)
            for (int i = 0; i < n; i++)
                if (defs[i].name && strcmp(defs[i].name, base) == 0) {
                    idx = i;
                    negated = true;
                    break;
                }
        if (idx < 0) {
            *unknown = true;
            r->unknown = nm;   /* the word, for the caller's message */
            return ST_ERROR;
        }
    }
    const optdef *d = &defs[idx];
    optval *v = &vals[idx];
    /* a few options may be given more than once (Exim's "repeated"
     * options): the values are joined, in order */
    const char *rep_sep = !strcmp(d->name, "set") ? ";" : !strcmp(d->name, "headers_add") ? "\n"
                        : !strcmp(d->name, "headers_remove") ? ":" : NULL;
    if (seen[idx] && rep_sep && has_value && v->s && !negated) {
        char *more = read_value(r, p);
        if (!more)
            return ST_ERROR;
        v->s = arena_printf(r->a, "%s%s%s", v->s, rep_sep, more);
        return ST_OK;
    }
    if (seen[idx])
        return reader_error(r, "\"%s\" option set for the second time", d->name);
    seen[idx] = true;
    v->src_file = r->file;
    v->src_line = r->line;
    v->hidden = hide;
    if (negated) {
        if (d->type != OT_BOOL)
            return reader_error(r, "negation prefix applied to a non-boolean option \"%s\"", nm);
        if (has_value)
            return reader_error(r, "extra characters follow boolean option %s", nm);
        v->n = 0;
        v->s = NULL;
        v->set = true;
        return unimpl_check(r, d, v, where);
    }
    if (!has_value) {
        if (d->type != OT_BOOL)
            return reader_error(r, "missing \"=\" after option \"%s\"", nm);
        v->n = 1;
        v->s = NULL;
        v->set = true;
        return unimpl_check(r, d, v, where);
    }
    char *val = read_value(r, p);
    if (!val || assign(r, d, v, val) != ST_OK)
        return ST_ERROR;
    return unimpl_check(r, d, v, where);
}

static status apply_defaults(reader *r, const optdef *defs, int n, optval *vals)
{
    for (int i = 0; i < n; i++) {
        if (!defs[i].name)
            continue;
        if (!defs[i].dflt) {
            vals[i].set = false;
            continue;
        }
        if (assign(r, &defs[i], &vals[i], defs[i].dflt) != ST_OK)
            panic("config: bad built-in default \"%s\" for %s", defs[i].dflt, defs[i].name);
    }
    return ST_OK;
}

/* ---- named lists -------------------------------------------------------- */

static bool named_list_line(reader *r, const char *line, status *st)
{
    static const struct { const char *word; list_kind kind; const char *what; } kinds[] = {
        { "domainlist", NL_DOMAIN, "domain" }, { "hostlist", NL_HOST, "host" },
        { "addresslist", NL_ADDRESS, "address" }, { "localpartlist", NL_LOCALPART, "local part" },
    };
    const char *p = line;
    bool hide = false;
    if (strncmp(p, "hide", 4) == 0 && isspace((unsigned char)p[4])) {
        hide = true;
        p = skip_ws(p + 4);
    }
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t wl = strlen(kinds[k].word);
        if (strncmp(p, kinds[k].word, wl) != 0)
            continue;
        const char *q = p + wl;
        if (strncmp(q, "_cache", 6) == 0)
            q += 6;
        if (!isspace((unsigned char)*q))
            continue;
        q = skip_ws(q);
        const char *name = q;
        while (isalnum((unsigned char)*q) || *q == '_')
            q++;
        if (q == name) {
            *st = reader_error(r, "missing or malformed name for named %s list", kinds[k].what);
            return true;
        }
        char *nm = arena_strndup(r->a, name, (size_t)(q - name));
        q = skip_ws(q);
        if (*q != '=') {
            *st = reader_error(r, "missing \"=\" after named %s list \"%s\"", kinds[k].what, nm);
            return true;
        }
        for (named_list *l = r->c->lists; l; l = l->next)
            if (l->kind == kinds[k].kind && strcmp(l->name, nm) == 0) {
                *st = reader_error(r, "duplicate name \"%s\" for a named %s list", nm, kinds[k].what);
                return true;
            }
        char *val = read_value(r, q + 1);
        if (!val) {
            *st = ST_ERROR;
            return true;
        }
        named_list *l = arena_calloc(r->a, sizeof *l);
        l->kind = kinds[k].kind;
        l->name = nm;
        l->value = val;
        l->hidden = hide;
        l->file = r->file;
        l->line = r->line;
        named_list **tail = &r->c->lists;
        while (*tail)
            tail = &(*tail)->next;
        *tail = l;
        *st = ST_OK;
        return true;
    }
    return false;
}

/* ---- ACLs --------------------------------------------------------------- */

typedef struct acl_state {
    acl_def *cur;
    acl_stmt *stmt;
} acl_state;

static int verb_of(const char *w, size_t len)
{
    for (int v = 0; v < ACLV__COUNT; v++)
        if (strlen(acl_verb_name((acl_verb)v)) == len && strncmp(acl_verb_name((acl_verb)v), w, len) == 0)
            return v;
    return -1;
}

static status acl_condition(reader *r, acl_state *as, const char *p)
{
    const char *start = p;
    bool neg = false;
    if (*p == '!') {
        neg = true;
        p = skip_ws(p + 1);
    }
    const char *name = p;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    size_t nl = (size_t)(p - name);
    const acl_name_info *info = acl_name_lookup(name, nl);
    if (!info)
        return reader_error(r, "error in ACL: unknown ACL condition/modifier \"%.*s\" in \"%s\"",
                            (int)(nl ? nl : strlen(name)), name, start);
    if (!info->supported)
        return reader_error(r, "error in ACL: the ACL %s \"%s\" is not supported by postern",
                            info->modifier ? "modifier" : "condition", info->name);
    if (neg && info->modifier)
        return reader_error(r, "error in ACL: negation is not allowed with \"%s\"", info->name);
    acl_cond *c = arena_calloc(r->a, sizeof *c);
    c->name = info->name;
    c->negated = neg;
    c->is_modifier = info->modifier;
    c->file = r->file;
    c->line = r->line;
    p = skip_ws(p);
    if (strcmp(info->name, "endpass") == 0) {
        if (*p)
            return reader_error(r, "error in ACL: \"endpass\" takes no value");
        c->value = "";
    } else if (strcmp(info->name, "set") == 0) {
        const char *var = p;
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        size_t vl = (size_t)(p - var);
        bool ok = vl > 5 && (strncmp(var, "acl_c", 5) == 0 || strncmp(var, "acl_m", 5) == 0)
                  && (isdigit((unsigned char)var[5]) || var[5] == '_');
        if (!ok)
            return reader_error(r, "error in ACL: invalid variable name after \"set\" in \"%s\" "
                                   "(must be acl_c or acl_m followed by a digit or underscore)", start);
        const char *q = skip_ws(p);
        if (*q != '=')
            return reader_error(r, "error in ACL: missing \"=\" after \"set %.*s\"", (int)vl, var);
        c->value = arena_printf(r->a, "%.*s = %s", (int)vl, var, skip_ws(q + 1));
    } else {
        if (*p != '=')
            return reader_error(r, "error in ACL: missing \"=\" after \"%s\"", info->name);
        c->value = arena_strdup(r->a, skip_ws(p + 1));
    }
    acl_cond **tail = &as->stmt->conds;
    while (*tail)
        tail = &(*tail)->next;
    *tail = c;
    return ST_OK;
}

static status acl_line(reader *r, acl_state *as, const char *line)
{
    const char *p = line;
    const char *w = p;
    while (isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.')
        p++;
    size_t wl = (size_t)(p - w);
    if (wl && *p == ':' && !*skip_ws(p + 1)) {
        char *name = arena_strndup(r->a, w, wl);
        for (acl_def *a = r->c->acls; a; a = a->next)
            if (strcmp(a->name, name) == 0)
                return reader_error(r, "there are two ACLs called \"%s\"", name);
        acl_def *a = arena_calloc(r->a, sizeof *a);
        a->name = name;
        a->file = r->file;
        a->line = r->line;
        acl_def **tail = &r->c->acls;
        while (*tail)
            tail = &(*tail)->next;
        *tail = a;
        as->cur = a;
        as->stmt = NULL;
        return ST_OK;
    }
    if (!as->cur)
        return reader_error(r, "ACL name expected (a name followed by a colon), found \"%s\"", line);
    int v = verb_of(w, wl);
    if (v >= 0 && (!*p || isspace((unsigned char)*p))) {
        acl_stmt *s = arena_calloc(r->a, sizeof *s);
        s->verb = (acl_verb)v;
        s->file = r->file;
        s->line = r->line;
        acl_stmt **tail = &as->cur->stmts;
        while (*tail)
            tail = &(*tail)->next;
        *tail = s;
        as->stmt = s;
        p = skip_ws(p);
        return *p ? acl_condition(r, as, p) : ST_OK;
    }
    if (!as->stmt) {
        if (*line != '!' && !acl_name_lookup(w, wl))
            return reader_error(r, "error in ACL: unknown ACL verb \"%.*s\" in \"%s\"", (int)(wl ? wl : strlen(w)), w, line);
        return reader_error(r, "error in ACL: condition or modifier before an ACL verb: \"%s\"", line);
    }
    return acl_condition(r, as, line);
}

/* ---- drivers ------------------------------------------------------------ */

typedef struct pending_line {
    const char *text, *file;
    int line;
    struct pending_line *next;
} pending_line;

typedef struct driver_state {
    driver_class cls;
    const char *name, *file;
    int line;
    pending_line *lines, **tail;
} driver_state;

static status driver_finish(reader *r, driver_state *ds)
{
    if (!ds->name)
        return ST_OK;
    const char *cname = driver_class_name(ds->cls);
    const char *save_file = r->file;
    int save_line = r->line;
    for (driver_inst *d = r->c->drivers[ds->cls]; d; d = d->next)
        if (strcmp(d->name, ds->name) == 0) {
            r->file = ds->file;
            r->line = ds->line;
            return reader_error(r, "there are two %ss called \"%s\"", cname, ds->name);
        }
    /* Find the driver first: private options may come before "driver". */
    const char *drv = NULL;
    pending_line *drvline = NULL;
    for (pending_line *l = ds->lines; l; l = l->next) {
        const char *p = l->text;
        if (strncmp(p, "driver", 6) == 0) {
            const char *q = skip_ws(p + 6);
            if (*q == '=') {
                if (drv) {
                    r->file = l->file;
                    r->line = l->line;
                    return reader_error(r, "\"driver\" option set for the second time");
                }
                r->file = l->file;
                r->line = l->line;
                drv = read_value(r, q + 1);
                if (!drv)
                    return ST_ERROR;
                drvline = l;
            }
        }
    }
    r->file = ds->file;
    r->line = ds->line;
    if (!drv)
        return reader_error(r, "no driver defined for %s \"%s\"", cname, ds->name);
    const driver_table *t = &driver_tables[ds->cls];
    const driver_entry *e = NULL;
    for (int i = 0; i < t->ndrivers; i++)
        if (strcmp(t->drivers[i].info.name, drv) == 0)
            e = &t->drivers[i];
    r->file = drvline->file;
    r->line = drvline->line;
    if (!e)
        return reader_error(r, "%s \"%s\": cannot find %s driver \"%s\"", cname, ds->name, cname, drv);
    if (!e->available)
        return reader_error(r, "%s \"%s\": the %s driver \"%s\" is not supported by postern",
                            cname, ds->name, cname, drv);

    driver_inst *d = arena_calloc(r->a, sizeof *d);
    d->cls = ds->cls;
    d->name = ds->name;
    d->file = ds->file;
    d->line = ds->line;
    d->info = &e->info;
    d->generic = arena_calloc(r->a, sizeof(optval) * (size_t)(t->ngeneric + 1));
    d->priv = arena_calloc(r->a, sizeof(optval) * (size_t)(e->info.nopts + 1));
    bool *gseen = arena_calloc(r->a, (size_t)t->ngeneric + 1);
    bool *pseen = arena_calloc(r->a, (size_t)e->info.nopts + 1);
    apply_defaults(r, t->generic, t->ngeneric, d->generic);
    apply_defaults(r, e->info.opts, e->info.nopts, d->priv);
    const char *where = arena_printf(r->a, " (%s \"%s\", driver %s)", cname, ds->name, drv);
    for (pending_line *l = ds->lines; l; l = l->next) {
        r->file = l->file;
        r->line = l->line;
        bool unknown;
        status st = set_option(r, e->info.opts, e->info.nopts, d->priv, l->text, &unknown, pseen, where);
        if (st == ST_OK)
            continue;
        if (!unknown)
            return st;
        const char *word = r->unknown;
        st = set_option(r, t->generic, t->ngeneric, d->generic, l->text, &unknown, gseen, where);
        if (st == ST_OK)
            continue;
        if (unknown)
            return reader_error(r, "option \"%s\" unknown%s", word, where);
        return st;
    }
    if (unimpl_check_driver(r, d, where) != ST_OK)
        return ST_ERROR;
    driver_inst **tail = &r->c->drivers[ds->cls];
    while (*tail)
        tail = &(*tail)->next;
    *tail = d;
    ds->name = NULL;
    ds->lines = NULL;
    ds->tail = &ds->lines;
    r->file = save_file;
    r->line = save_line;
    return ST_OK;
}

static status driver_line(reader *r, driver_state *ds, const char *line)
{
    const char *p = line;
    while (isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.')
        p++;
    if (p != line && *p == ':' && !*skip_ws(p + 1)) {
        if (driver_finish(r, ds) != ST_OK)
            return ST_ERROR;
        ds->name = arena_strndup(r->a, line, (size_t)(p - line));
        ds->file = r->file;
        ds->line = r->line;
        ds->lines = NULL;
        ds->tail = &ds->lines;
        return ST_OK;
    }
    if (!ds->name)
        return reader_error(r, "%s name expected (a name followed by a colon), found \"%s\"",
                            driver_class_name(ds->cls), line);
    pending_line *l = arena_calloc(r->a, sizeof *l);
    l->text = arena_strdup(r->a, line);
    l->file = r->file;
    l->line = r->line;
    *ds->tail = l;
    ds->tail = &l->next;
    return ST_OK;
}

/* ---- retry and rewrite -------------------------------------------------- */

/* Next whitespace-delimited token, honouring double quotes. */
static char *token(reader *r, const char **pp)
{
    const char *p = skip_ws(*pp);
    if (!*p)
        return NULL;
    char *t;
    if (*p == '"') {
        t = unquote(r, p, &p);
        if (!t)
            return NULL;
    } else {
        const char *s = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        t = arena_strndup(r->a, s, (size_t)(p - s));
    }
    *pp = p;
    return t;
}

static status retry_line(reader *r, const char *line)
{
    const char *p = line;
    retry_rule *rr = arena_calloc(r->a, sizeof *rr);
    rr->file = r->file;
    rr->line = r->line;
    if (!(rr->pattern = token(r, &p)))
        return r->err ? ST_ERROR : reader_error(r, "missing address pattern in retry rule");
    rr->error = token(r, &p);
    if (!rr->error) {
        if (r->err)
            return ST_ERROR;
        rr->error = "*";
    }
    const char *save = p;
    char *t = token(r, &p);
    if (t && strncmp(t, "senders=", 8) == 0) {
        rr->senders = t + 8;
        if (!*rr->senders) {
            /* senders= "quoted list" */
            rr->senders = token(r, &p);
            if (!rr->senders)
                return reader_error(r, "missing list after senders= in retry rule");
        }
    } else {
        p = save;
    }
    /* rules: F,2h,15m; G,16h,1h,1.5; ... */
    p = skip_ws(p);
    int cap = 4;
    rr->params = arena_calloc(r->a, sizeof(retry_param) * (size_t)cap);
    while (*p) {
        const char *e = strchr(p, ';');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *rule = arena_strndup(r->a, p, len);
        char *s = skip_ws(rule);
        size_t sl = strlen(s);
        while (sl && isspace((unsigned char)s[sl - 1]))
            s[--sl] = '\0';
        if (*s) {
            char algo = *s;
            if (algo != 'F' && algo != 'G' && algo != 'H')
                return reader_error(r, "unknown retry rule letter \"%c\" in \"%s\"", algo, s);
            char *fields[4] = { 0 };
            int nf = 0;
            char *q = skip_ws(s + 1);
            if (*q != ',')
                return reader_error(r, "comma expected after retry rule letter in \"%s\"", s);
            while (*q == ',') {
                if (nf == 4)
                    return reader_error(r, "too many values in retry rule \"%s\"", rule);
                q = skip_ws(q + 1);
                char *f0 = q;
                while (*q && *q != ',' && !isspace((unsigned char)*q))
                    q++;
                char *end = q;
                q = skip_ws(q);
                if (*q && *q != ',')
                    return reader_error(r, "malformed retry rule \"%s\"", rule);
                fields[nf++] = arena_strndup(r->a, f0, (size_t)(end - f0));
                if (*q != ',')
                    break;
            }
            int want = algo == 'F' ? 2 : 3;
            if (nf != want)
                return reader_error(r, "retry rule %c needs %d values, found %d", algo, want, nf);
            long long cut, p1, p2 = 0;
            if (opt_parse_time(fields[0], &cut) != ST_OK || opt_parse_time(fields[1], &p1) != ST_OK)
                return reader_error(r, "invalid time in retry rule \"%s\"", rule);
            if (want == 3 && opt_parse_fixed(fields[2], &p2) != ST_OK)
                return reader_error(r, "invalid multiplier \"%s\" in retry rule", fields[2]);
            if (rr->nparams == cap) {
                retry_param *np = arena_calloc(r->a, sizeof(retry_param) * (size_t)cap * 2);
                memcpy(np, rr->params, sizeof(retry_param) * (size_t)cap);
                rr->params = np;
                cap *= 2;
            }
            rr->params[rr->nparams++] = (retry_param){ algo, (int)cut, (int)p1, (int)p2 };
        }
        if (!e)
            break;
        p = e + 1;
    }
    retry_rule **tail = &r->c->retries;
    while (*tail)
        tail = &(*tail)->next;
    *tail = rr;
    return ST_OK;
}

static status rewrite_line(reader *r, const char *line)
{
    const char *p = line;
    rewrite_rule *rw = arena_calloc(r->a, sizeof *rw);
    rw->file = r->file;
    rw->line = r->line;
    if (!(rw->pattern = token(r, &p)))
        return ST_ERROR;
    if (!(rw->replacement = token(r, &p)))
        return r->err ? ST_ERROR : reader_error(r, "missing replacement in rewrite rule");
    /* flag letters, in any order; spaces between them are ignored */
    char *flags = arena_strdup(r->a, p), *o = flags;
    for (const char *f = p; *f; f++) {
        if (*f == ' ' || *f == '\t')
            continue;
        if (!strchr("EFTbcfhrstSQqRw", *f))
            return reader_error(r, "unknown rewrite flag character '%c' (could be missing quotes round replacement item)", *f);
        if (*f == 'S' && rw->pattern[0] != '^' && strncmp(rw->pattern, "\\N^", 3) != 0)
            return reader_error(r, "rewrite rule has the S flag but is not a regular expression");
        *o++ = *f;
    }
    *o = '\0';
    rw->flags = flags;
    rewrite_rule **tail = &r->c->rewrites;
    while (*tail)
        tail = &(*tail)->next;
    *tail = rw;
    return ST_OK;
}

/* ---- builtin macros and computed defaults ------------------------------- */

static const char *host_name(arena *a)
{
    struct utsname u;
    if (uname(&u) != 0)
        return "localhost";
    if (strchr(u.nodename, '.'))
        return arena_strdup(a, u.nodename);
    struct addrinfo hints = { .ai_flags = AI_CANONNAME, .ai_family = AF_UNSPEC }, *res = NULL;
    const char *name = arena_strdup(a, u.nodename);
    if (getaddrinfo(u.nodename, NULL, &hints, &res) == 0) {
        if (res && res->ai_canonname && strchr(res->ai_canonname, '.'))
            name = arena_strdup(a, res->ai_canonname);
        freeaddrinfo(res);
    }
    return name;
}

static void computed_defaults(config *c)
{
    optval *m = c->main;
    if (!m[MO_primary_hostname].s) {
        m[MO_primary_hostname].s = host_name(c->a);
        m[MO_primary_hostname].set = true;
    }
    if (!m[MO_qualify_domain].s) {
        m[MO_qualify_domain].s = m[MO_primary_hostname].s;
        m[MO_qualify_domain].set = true;
    }
    if (!m[MO_qualify_recipient].s) {
        m[MO_qualify_recipient].s = m[MO_qualify_domain].s;
        m[MO_qualify_recipient].set = true;
    }
    if (!m[MO_spool_directory].s) {
        m[MO_spool_directory].s = "/var/spool/postern";
        m[MO_spool_directory].set = true;
    }
    if (!m[MO_exim_user].s) {
        m[MO_exim_user].s = "postern";
        m[MO_exim_user].set = true;
    }
}

/* Routers must name transports that exist (when the name is not expanded);
 * log_selector must use known names. */
static status cross_check(reader *r)
{
    const char *bad;
    const optval *ls = &r->c->main[MO_log_selector];
    if (!logsel_parse(ls->s, &r->c->logsel, &bad)) {
        r->file = ls->src_file;
        r->line = ls->src_line;
        return reader_error(r, "unknown log_selector setting: %s", bad);
    }
    for (driver_inst *d = r->c->drivers[DC_ROUTER]; d; d = d->next) {
        /* self: one of Exim's words, never expanded */
        const optval *sf = driver_opt(d, "self");
        const char *sv = sf && sf->s ? sf->s : "freeze";
        static const char *const selfs[] = { "freeze", "defer", "send", "pass", "fail" };
        bool self_ok = strncmp(sv, "reroute:", 8) == 0;
        for (size_t i = 0; i < sizeof selfs / sizeof selfs[0]; i++)
            self_ok = self_ok || strcmp(sv, selfs[i]) == 0;
        if (!self_ok) {
            r->err = arena_printf(r->a, "configuration error for %s router:\n  %s is not valid for the self option",
                                  d->name, sv);
            return ST_ERROR;
        }
        const optval *t = driver_opt(d, "transport");
        if (!t || !t->s || strchr(t->s, '$'))
            continue;
        bool found = false;
        for (driver_inst *tr = r->c->drivers[DC_TRANSPORT]; tr; tr = tr->next)
            if (strcmp(tr->name, t->s) == 0)
                found = true;
        if (!found) {
            r->file = t->src_file;
            r->line = t->src_line;
            return reader_error(r, "router \"%s\": transport \"%s\" not found", d->name, t->s);
        }
    }
    return ST_OK;
}

/* ---- the section loop --------------------------------------------------- */

static status parse_all(reader *r)
{
    gstr line;
    gstr_init(&line, r->a, 256);
    int sec = SEC_MAIN;
    bool seen_sec[8] = { true };
    bool *main_seen = arena_calloc(r->a, MO__COUNT);
    acl_state as = { 0 };
    driver_state ds = { 0 };
    ds.tail = &ds.lines;
    int rc;
    while ((rc = reader_next(r, &line)) > 0) {
        const char *p = line.s;
        if (strncmp(p, "begin", 5) == 0 && isspace((unsigned char)p[5])) {
            const char *name = skip_ws(p + 5);
            int ns = -1;
            for (int i = 1; i < (int)(sizeof section_names / sizeof section_names[0]); i++)
                if (strcmp(name, section_names[i]) == 0)
                    ns = i;
            if (ns < 0)
                return reader_error(r, "\"%s\" is not a known configuration section name", name);
            if (ns == SEC_LOCAL_SCAN)
                return reader_error(r, "the \"local_scan\" section is not supported by postern (no local_scan() function)");
            if (seen_sec[ns])
                return reader_error(r, "there are two \"begin %s\" sections", name);
            if (driver_finish(r, &ds) != ST_OK)
                return ST_ERROR;
            seen_sec[ns] = true;
            r->c->has_section[ns] = true;
            sec = ns;
            if (sec == SEC_ROUTERS) ds.cls = DC_ROUTER;
            if (sec == SEC_TRANSPORTS) ds.cls = DC_TRANSPORT;
            if (sec == SEC_AUTH) ds.cls = DC_AUTH;
            continue;
        }
        status st = ST_OK;
        switch (sec) {
        case SEC_MAIN: {
            if (named_list_line(r, p, &st))
                break;
            bool unknown;
            st = set_option(r, main_optdefs, MO__COUNT, r->c->main, p, &unknown, main_seen, NULL);
            if (unknown)
                st = reader_error(r, "main option \"%s\" unknown", r->unknown);
            break;
        }
        case SEC_ACL:
            st = acl_line(r, &as, p);
            break;
        case SEC_ROUTERS:
        case SEC_TRANSPORTS:
        case SEC_AUTH:
            st = driver_line(r, &ds, p);
            break;
        case SEC_RETRY:
            st = retry_line(r, p);
            break;
        case SEC_REWRITE:
            st = rewrite_line(r, p);
            break;
        }
        if (st != ST_OK)
            return ST_ERROR;
    }
    if (rc < 0)
        return ST_ERROR;
    if (driver_finish(r, &ds) != ST_OK)
        return ST_ERROR;
    computed_defaults(r->c);
    return cross_check(r);
}

/* config_load's arguments, for load() to report the log settings of a
 * configuration that failed */
static config_load_args *failed_args;

static status load(const char *name, FILE *f, const char *text, const char **defines,
                   config **out, char **err)
{
    arena *a = arena_new("config", false);
    config *c = arena_calloc(a, sizeof *c);
    c->a = a;
    c->filename = arena_strdup(a, name);
    reader r;
    reader_init(&r, c, *name ? name : "(built-in default configuration)", f, text);
    r.file = NULL;
    for (const char **d = defines; d && *d; d++) {
        const char *eq = strchr(*d, '=');
        char *nm = eq ? arena_strndup(a, *d, (size_t)(eq - *d)) : arena_strdup(a, *d);
        bool ok = isupper((unsigned char)nm[0]) || nm[0] == '_';
        for (const char *p = nm; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_')
                ok = false;
        if (!ok) {
            static char errbuf[512];
            snprintf(errbuf, sizeof errbuf, "-D: invalid macro name \"%.200s\" (letters, digits and "
                     "underscores, starting with an upper case letter)", nm);
            *err = errbuf;
            if (f)
                fclose(f);
            arena_free(a);
            return ST_ERROR;
        }
        reader_define(&r, nm, eq ? eq + 1 : "", true, false, false);
    }
    apply_defaults(&r, main_optdefs, MO__COUNT, c->main);
    if (parse_all(&r) != ST_OK) {
        /* The message outlives the arena of the failed configuration, and
         * so do the log settings read so far (for the paniclog) */
        static char errbuf[8192], logpath[4096], spooldir[4096];
        snprintf(errbuf, sizeof errbuf, "%s", r.err ? r.err : "configuration error");
        *err = errbuf;
        if (failed_args) {
            const optval *lp = &c->main[MO_log_file_path], *sd = &c->main[MO_spool_directory];
            if (lp->s && snprintf(logpath, sizeof logpath, "%s", lp->s) < (int)sizeof logpath)
                failed_args->err_log_file_path = logpath;
            if (sd->s && snprintf(spooldir, sizeof spooldir, "%s", sd->s) < (int)sizeof spooldir)
                failed_args->err_spool_directory = spooldir;
        }
        for (srcfile *s = r.top; s; s = s->up)
            if (s->f)
                fclose(s->f);
        arena_free(a);
        return ST_ERROR;
    }
    *out = c;
    return ST_OK;
}

status config_load_string(const char *text, const char *name, const char **defines,
                          config **out, char **err)
{
    return load(name, NULL, text, defines, out, err);
}

static status load_args(const config_load_args *args, config **out, char **err);

status config_load(config_load_args *args, config **out, char **err)
{
    args->err_log_file_path = args->err_spool_directory = NULL;
    failed_args = args;
    status st = load_args(args, out, err);
    failed_args = NULL;
    return st;
}

static status load_args(const config_load_args *args, config **out, char **err)
{
    if (args->use_builtin)
        return load("", NULL, config_builtin_default, args->defines, out, err);
    if (args->file) {
        /* -C may give a colon-separated list: the first that exists is used. */
        const char *list = args->file;
        const char *p = list;
        char tried[4096] = "";
        while (*p) {
            const char *e = strchr(p, ':');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            char path[4096];
            snprintf(path, sizeof path, "%.*s", (int)n, p);
            if (*path) {
                FILE *f = fopen(path, "r");
                if (f)
                    return load(path, f, NULL, args->defines, out, err);
                if (errno != ENOENT) {
                    static char msg[4200];
                    snprintf(msg, sizeof msg, "cannot open configuration file %s: %s", path, strerror(errno));
                    *err = msg;
                    return ST_ERROR;
                }
                size_t tl = strlen(tried);
                snprintf(tried + tl, sizeof tried - tl, "%s%.1000s", *tried ? ", " : "", path);
            }
            if (!e)
                break;
            p = e + 1;
        }
        static char msg[4200];
        snprintf(msg, sizeof msg, "configuration file not found: %s", *tried ? tried : list);
        *err = msg;
        return ST_ERROR;
    }
    FILE *f = fopen(CONFIG_DEFAULT_FILE, "r");
    if (f)
        return load(CONFIG_DEFAULT_FILE, f, NULL, args->defines, out, err);
    return load("", NULL, config_builtin_default, args->defines, out, err);
}

void config_free(config *c)
{
    if (c) {
        if (cfg == c)
            cfg = NULL;
        arena_free(c->a);
    }
}

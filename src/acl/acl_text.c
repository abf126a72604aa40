/* acl_text.c: parse ACL text that does not come from the "begin acl"
 * section: inline ACLs written in an acl_smtp_* option (or in an "acl ="
 * condition) and ACL files named by a leading '/'.  The statement syntax is
 * the configuration file's: a verb starts a statement, then one condition
 * or modifier per line; '#' comment lines, blank lines and backslash
 * continuations.  The vocabulary check is shared with the config reader
 * (config/acl_names.c), so the same word is refused in the same way. */
#include "acl/acl.h"
#include "config/acl_names.h"
#include "core/gstr.h"

#include <ctype.h>
#include <string.h>

typedef struct tparse {
    arena *a;
    const char *file;
    int line;
    char **err;
    acl_stmt *head, **tail;
    acl_stmt *cur;
    acl_cond **ctail;
    const char *linetext;   /* the logical line being parsed */
} tparse;

static const char *skip_ws(const char *p)
{
    while (*p && isspace((unsigned char)*p))
        p++;
    return p;
}

static status perr(tparse *t, const char *fmt, const char *a1, int n1, const char *a2)
{
    /* fmt has at most "%.*s" then "%s" */
    char *m = arena_printf(t->a, fmt, n1, a1, a2);
    /* inline text: Exim's words alone; a file: where in it */
    *t->err = strcmp(t->file, "inline") == 0 ? m : arena_printf(t->a, "%s in line %d of ACL file %s", m, t->line, t->file);
    return ST_ERROR;
}

static int verb_of(const char *w, size_t len)
{
    for (int v = 0; v < ACLV__COUNT; v++) {
        const char *n = acl_verb_name((acl_verb)v);
        if (strlen(n) == len && strncmp(n, w, len) == 0)
            return v;
    }
    return -1;
}

static status cond_line(tparse *t, const char *p)
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
    const acl_name_info *info = nl ? acl_name_lookup(name, nl) : NULL;
    if (!info)
        return perr(t, "unknown ACL condition/modifier in \"%.*s%s\"", t->linetext,
                    (int)strlen(t->linetext), "");
    if (!info->supported)
        return perr(t, "the ACL condition or modifier \"%.*s\" is not supported by postern%s",
                    info->name, (int)strlen(info->name), "");
    if (neg && info->modifier)
        return perr(t, "ACL error: negation is not allowed with \"%.*s\"%s", info->name,
                    (int)strlen(info->name), "");
    acl_cond *c = arena_calloc(t->a, sizeof *c);
    c->name = info->name;
    c->negated = neg;
    c->is_modifier = info->modifier;
    c->file = t->file;
    c->line = t->line;
    p = skip_ws(p);
    if (strcmp(info->name, "endpass") == 0) {
        c->value = "";         /* Exim ignores anything after it */
    } else if (strcmp(info->name, "set") == 0) {
        const char *var = p;
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        size_t vl = (size_t)(p - var);
        bool ok = vl > 5 && (strncmp(var, "acl_c", 5) == 0 || strncmp(var, "acl_m", 5) == 0)
                  && (isdigit((unsigned char)var[5]) || var[5] == '_');
        if (!ok)
            return perr(t, "invalid variable name after \"set\" in ACL modifier \"%.*s\"%s "
                           "(must start \"acl_c\" or \"acl_m\")", start, (int)strlen(start), "");
        const char *q = skip_ws(p);
        if (*q != '=')
            return perr(t, "\"=\" missing after ACL \"set %.*s\" modifier%s", var, (int)vl, "");
        c->value = arena_printf(t->a, "%.*s = %s", (int)vl, var, skip_ws(q + 1));
    } else {
        if (*p != '=')
            return perr(t, "\"=\" missing after ACL \"%.*s\" %s", info->name, (int)strlen(info->name),
                        info->modifier ? "modifier" : "condition");
        c->value = arena_strdup(t->a, skip_ws(p + 1));
    }
    *t->ctail = c;
    t->ctail = &c->next;
    return ST_OK;
}

static status stmt_line(tparse *t, const char *line)
{
    t->linetext = line;
    const char *p = line;
    const char *w = p;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    size_t wl = (size_t)(p - w);
    int v = verb_of(w, wl);
    if (v >= 0 && (!*p || isspace((unsigned char)*p))) {
        acl_stmt *s = arena_calloc(t->a, sizeof *s);
        s->verb = (acl_verb)v;
        s->file = t->file;
        s->line = t->line;
        *t->tail = s;
        t->tail = &s->next;
        t->cur = s;
        t->ctail = &s->conds;
        p = skip_ws(p);
        return *p ? cond_line(t, p) : ST_OK;
    }
    if (!t->cur)
        return perr(t, "unknown ACL verb \"%.*s\" in \"%s\"", w, (int)(wl ? wl : strcspn(w, " \t")), line);
    return cond_line(t, line);
}

status acl_parse_text(const char *text, const char *file, arena *a, acl_stmt **out, char **err)
{
    tparse t = { .a = a, .file = file ? file : "inline", .err = err };
    t.tail = &t.head;
    *out = NULL;
    if (err)
        *err = NULL;
    char *dummy;
    if (!err)
        t.err = &dummy;
    gstr logical;
    gstr_init(&logical, a, 128);
    const char *p = text;
    int lineno = 0, start_line = 0;
    bool continuing = false;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        const char *ls = p;
        p += len + (nl ? 1 : 0);
        /* trim trailing white space (and a CR) */
        while (len && isspace((unsigned char)ls[len - 1]))
            len--;
        const char *b = ls;
        while ((size_t)(b - ls) < len && isspace((unsigned char)*b))
            b++;
        size_t blen = len - (size_t)(b - ls);
        if (!continuing) {
            if (blen == 0 || *b == '#')
                continue;
            gstr_reset(&logical);
            start_line = lineno;
        } else if (blen && *b == '#') {
            /* a comment line inside a continuation is skipped, as Exim does */
            continue;
        }
        bool cont = blen && b[blen - 1] == '\\';
        gstr_catn(&logical, b, cont ? blen - 1 : blen);
        continuing = cont;
        if (cont && *p)
            continue;
        t.line = start_line;
        if (stmt_line(&t, logical.s) != ST_OK)
            return ST_ERROR;
        continuing = false;
    }
    *out = t.head;
    return ST_OK;
}

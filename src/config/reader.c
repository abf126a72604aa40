/* reader.c: the physical and logical line layer of the configuration
 * reader.  Order per physical line: macro substitution, then directives
 * (.include, .ifdef, ...), then comment removal, then continuation. */
#include "config/reader.h"
#include "config/builtins.h"
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>

enum { IF_ACTIVE, IF_SKIP_PENDING, IF_SKIP_DONE, IF_SKIP_OUTER };

void reader_init(reader *r, config *c, const char *name, FILE *f, const char *text)
{
    memset(r, 0, sizeof *r);
    r->c = c;
    r->a = c->a;
    r->macros_allowed = true;
    srcfile *s = arena_calloc(r->a, sizeof *s);
    s->name = arena_strdup(r->a, name);
    s->f = f;
    s->text = text;
    r->top = s;
    for (macro *m = c->macros; m; m = m->next)
        r->last_macro = m;
}

status reader_error(reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = arena_vprintf(r->a, fmt, ap);
    va_end(ap);
    if (r->file)
        r->err = arena_printf(r->a, "configuration error in line %d of %s:\n  %s", r->line, r->file, msg);
    else
        r->err = arena_printf(r->a, "configuration error:\n  %s", msg);
    return ST_ERROR;
}

macro *reader_find_macro(config *c, const char *name)
{
    for (macro *m = c->macros; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

status reader_define(reader *r, const char *name, const char *value, bool cmdline, bool builtin, bool redefine)
{
    macro *old = reader_find_macro(r->c, name);
    if (old) {
        if (old->from_cmdline && !cmdline)
            return ST_OK;                  /* -D overrides the file */
        if (!redefine && !cmdline)
            return reader_error(r, "macro \"%s\" is already defined (use \"==\" to redefine)", name);
        old->value = arena_strdup(r->a, value);
        return ST_OK;
    }
    if (!builtin && !cmdline) {
        for (macro *m = r->c->macros; m; m = m->next)
            if (!m->builtin && strstr(name, m->name))
                return reader_error(r, "\"%s\" cannot be defined as a macro because previously "
                                       "defined macro \"%s\" is a substring", name, m->name);
    }
    macro *m = arena_calloc(r->a, sizeof *m);
    m->name = arena_strdup(r->a, name);
    m->value = arena_strdup(r->a, value);
    m->from_cmdline = cmdline;
    m->builtin = builtin;
    if (r->last_macro)
        r->last_macro->next = m;
    else
        r->c->macros = m;
    r->last_macro = m;
    return ST_OK;
}

/* Read one physical line (without the newline) into g.  0 at EOF. */
static int physical(reader *r, srcfile *s, gstr *g)
{
    gstr_reset(g);
    if (!s->f) {
        if (!s->text || !*s->text)
            return 0;
        const char *e = strchr(s->text, '\n');
        size_t n = e ? (size_t)(e - s->text) : strlen(s->text);
        gstr_catn(g, s->text, n);
        s->text += n + (e ? 1 : 0);
    } else {
        int ch, got = 0;
        while ((ch = getc(s->f)) != EOF) {
            got = 1;
            if (ch == '\n')
                break;
            if (g->len >= CONFIG_MAX_LINE)
                continue;
            gstr_catc(g, (char)ch);
        }
        if (!got)
            return 0;
    }
    s->lineno++;
    while (g->len && (g->s[g->len - 1] == '\r' || isspace((unsigned char)g->s[g->len - 1])))
        g->len--;
    g->s[g->len] = '\0';
    return 1;
}

/* Replace macros in the physical line g.  Sets *found if any replaced.
 * at_start: this line starts a logical line (a "NAME =" definition prefix
 * is then left alone). */
static void substitute(reader *r, gstr *g, bool at_start, bool *found)
{
    *found = false;
    char *s = g->s;
    while (isspace((unsigned char)*s))
        s++;
    size_t from = (size_t)(s - g->s);
    if (at_start && isupper((unsigned char)*s)) {
        char *p = s;
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '=')
            from = (size_t)(p - g->s);
    }
    /* Cheap test: a macro name starts with an upper case letter, builtins
     * with "_" and an upper case letter. */
    bool any_upper = false, any_builtin = false;
    for (const char *p = g->s + from; *p; p++) {
        if (isupper((unsigned char)*p))
            any_upper = true;
        if (*p == '_' && isupper((unsigned char)p[1]))
            any_builtin = true;
    }
    if (!any_upper)
        return;
    for (macro *m = r->c->macros; m; m = m->next) {
        size_t nl = strlen(m->name), vl = strlen(m->value);
        size_t pos = from;
        char *hit;
        while ((hit = strstr(g->s + pos, m->name)) != NULL) {
            size_t at = (size_t)(hit - g->s);
            gstr ng;
            gstr_init(&ng, r->a, g->len + vl + 1);
            gstr_catn(&ng, g->s, at);
            gstr_catn(&ng, m->value, vl);
            gstr_cat(&ng, g->s + at + nl);
            *g = ng;
            pos = at + vl;
            *found = true;
        }
    }
    if (!any_builtin)
        return;
    for (size_t pos = from; pos < g->len; pos++) {
        if (g->s[pos] != '_' || !isupper((unsigned char)g->s[pos + 1]))
            continue;
        size_t nl = builtin_macro_at(g->s + pos);
        if (!nl)
            continue;
        gstr ng;
        gstr_init(&ng, r->a, g->len + 2);
        gstr_catn(&ng, g->s, pos);
        gstr_catc(&ng, 'y');
        gstr_cat(&ng, g->s + pos + nl);
        *g = ng;
        *found = true;
    }
}

static bool skipping(const reader *r)
{
    return r->ifdepth > 0 && r->ifs[r->ifdepth - 1].state != IF_ACTIVE;
}

/* Handle a directive line (starting with '.').  Returns 0 handled, -1 error. */
static int directive(reader *r, srcfile *s, const char *line, bool macro_found)
{
    const char *p = line + 1;
    const char *w = p;
    while (isalpha((unsigned char)*p) || *p == '_')
        p++;
    size_t wl = (size_t)(p - w);
    while (isspace((unsigned char)*p))
        p++;
#define IS(word) (wl == strlen(word) && strncmp(w, word, wl) == 0)
    if (IS("ifdef") || IS("ifndef")) {
        if (!*p && !macro_found) {
            reader_error(r, ".%.*s without a macro name", (int)wl, w);
            return -1;
        }
        if (r->ifdepth >= CONFIG_MAX_IF_DEPTH) {
            reader_error(r, ".ifdef nested too deeply (more than %d levels)", CONFIG_MAX_IF_DEPTH);
            return -1;
        }
        int st;
        if (skipping(r))
            st = IF_SKIP_OUTER;
        else
            st = (macro_found == IS("ifdef")) ? IF_ACTIVE : IF_SKIP_PENDING;
        r->ifs[r->ifdepth].state = st;
        r->ifs[r->ifdepth].line = s->lineno;
        r->ifs[r->ifdepth].file = s->name;
        r->ifdepth++;
        return 0;
    }
    if (IS("elifdef") || IS("elifndef") || IS("else") || IS("endif")) {
        if (r->ifdepth == 0) {
            reader_error(r, ".%.*s without preceding .ifdef", (int)wl, w);
            return -1;
        }
        int *st = &r->ifs[r->ifdepth - 1].state;
        if (IS("endif")) {
            r->ifdepth--;
        } else if (IS("else")) {
            if (*st == IF_ACTIVE)
                *st = IF_SKIP_DONE;
            else if (*st == IF_SKIP_PENDING)
                *st = IF_ACTIVE;
        } else {
            if (!*p && !macro_found) {
                reader_error(r, ".%.*s without a macro name", (int)wl, w);
                return -1;
            }
            if (*st == IF_ACTIVE)
                *st = IF_SKIP_DONE;
            else if (*st == IF_SKIP_PENDING && macro_found == IS("elifdef"))
                *st = IF_ACTIVE;
        }
        return 0;
    }
    if (skipping(r))
        return 0;
    if (IS("include") || IS("include_if_exists")) {
        bool must = IS("include");
        char *name = arena_strdup(r->a, p);
        size_t nl = strlen(name);
        if (nl >= 2 && name[0] == '"' && name[nl - 1] == '"') {
            name[nl - 1] = '\0';
            name++;
        }
        if (!*name) {
            reader_error(r, ".%.*s without a file name", (int)wl, w);
            return -1;
        }
        if (name[0] != '/') {
            if (!must) {
                reader_error(r, ".include_if_exists specifies a non-absolute path \"%s\"", name);
                return -1;
            }
            const char *slash = strrchr(s->name, '/');
            if (slash)
                name = arena_printf(r->a, "%.*s/%s", (int)(slash - s->name), s->name, name);
        }
        int depth = 0;
        for (srcfile *u = s; u; u = u->up)
            depth++;
        if (depth > CONFIG_MAX_INCLUDE_DEPTH) {
            reader_error(r, ".include nested too deeply (more than %d files): %s", CONFIG_MAX_INCLUDE_DEPTH, name);
            return -1;
        }
        FILE *f = fopen(name, "r");
        if (!f) {
            if (!must && errno == ENOENT)
                return 0;
            reader_error(r, "failed to open included configuration file %s: %s", name, strerror(errno));
            return -1;
        }
        srcfile *n = arena_calloc(r->a, sizeof *n);
        n->name = name;
        n->f = f;
        n->up = r->top;
        r->top = n;
        return 0;
    }
#undef IS
    reader_error(r, "unknown directive \"%.*s\"", (int)(wl + 1), line);
    return -1;
}

static int logical_line(reader *r, gstr *out)
{
    gstr phys;
    gstr_init(&phys, r->a, 256);
    gstr_reset(out);
    bool continuing = false;

    for (;;) {
        srcfile *s = r->top;
        if (!s)
            break;
        if (!physical(r, s, &phys)) {
            if (s->f)
                fclose(s->f);
            r->top = s->up;
            if (!r->top) {
                if (r->ifdepth > 0) {
                    r->file = r->ifs[r->ifdepth - 1].file;
                    r->line = s->lineno;
                    reader_error(r, "unexpected end of configuration file: .endif missing");
                    return -1;
                }
                break;
            }
            continue;
        }
        if (!continuing) {
            r->file = s->name;
            r->line = s->lineno;
        }
        bool found = false;
        substitute(r, &phys, !continuing, &found);
        char *p = phys.s;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '.' && isalpha((unsigned char)p[1])) {
            int save_line = r->line;
            const char *save_file = r->file;
            r->file = s->name;
            r->line = s->lineno;
            if (directive(r, s, p, found) < 0)
                return -1;
            r->file = save_file;
            r->line = save_line;
            continue;
        }
        if (skipping(r))
            continue;
        if (*p == '#')
            continue;                 /* comments, also inside continuations */
        if (!*p) {
            if (continuing)
                break;                /* an empty line ends a continuation */
            if (found)
                continue;             /* macro expanded to nothing */
            continue;
        }
        size_t l = strlen(p);
        bool more = l && p[l - 1] == '\\';
        if (more)
            l--;
        gstr_catn(out, p, l);
        if (more) {
            continuing = true;
            continue;
        }
        break;
    }
    if (!out->len)
        return continuing ? 1 : 0;
    while (out->len && isspace((unsigned char)out->s[out->len - 1]))
        out->len--;
    out->s[out->len] = '\0';

    /* Macro definition? */
    char *p = out->s;
    if (isupper((unsigned char)*p)) {
        char *q = p;
        while (isalnum((unsigned char)*q) || *q == '_')
            q++;
        char *e = q;
        while (isspace((unsigned char)*q))
            q++;
        if (*q == '=') {
            bool redef = q[1] == '=';
            q += redef ? 2 : 1;
            while (isspace((unsigned char)*q))
                q++;
            if (!r->macros_allowed) {
                reader_error(r, "macro definitions are not allowed inside a driver, ACL, retry or rewrite section entry");
                return -1;
            }
            *e = '\0';
            if (reader_define(r, p, q, false, false, redef) != ST_OK)
                return -1;
            return 2;
        }
    }
    return 1;
}

int reader_next(reader *r, gstr *out)
{
    int rc;
    while ((rc = logical_line(r, out)) == 2)
        ;
    return rc;
}

/* options.c: option value syntax (integers, times, fixed point, strings,
 * booleans), the main option table, accessors and -bP output. */
#include "config/config.h"
#include "config/drivers.h"
#include "core/list.h"
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAINOPT(name, type, flags, dflt) { #name, type, flags, dflt },
const optdef main_optdefs[MO__COUNT] = {
#include "config/main_opts.def"
};
#undef MAINOPT

const config *cfg;

void config_set_current(const config *c) { cfg = c; }

status opt_parse_int(const char *s, long long *out)
{
    const char *p = s;
    bool neg = false;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (!isdigit((unsigned char)*p))
        return ST_FAIL;
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        base = 16, p += 2;
    else if (p[0] == '0' && p[1])
        base = 8;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, base);
    if (errno || end == p)
        return ST_FAIL;
    unsigned long long mul = 1;
    switch (*end) {
    case 'k': case 'K': mul = 1024ULL; end++; break;
    case 'm': case 'M': mul = 1024ULL * 1024; end++; break;
    case 'g': case 'G': mul = 1024ULL * 1024 * 1024; end++; break;
    default: break;
    }
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return ST_FAIL;
    if (v > (unsigned long long)LLONG_MAX / mul)
        return ST_FAIL;
    *out = (long long)(v * mul) * (neg ? -1 : 1);
    return ST_OK;
}

status opt_parse_fixed(const char *s, long long *out)
{
    const char *p = s;
    if (!isdigit((unsigned char)*p))
        return ST_FAIL;
    long long v = 0;
    while (isdigit((unsigned char)*p)) {
        v = v * 10 + (*p++ - '0');
        if (v > LLONG_MAX / 10000)
            return ST_FAIL;
    }
    v *= 1000;
    if (*p == '.') {
        p++;
        long long m = 100;
        while (isdigit((unsigned char)*p) && m) {
            v += (*p++ - '0') * m;
            m /= 10;
        }
    }
    if (*p)
        return ST_FAIL;
    *out = v;
    return ST_OK;
}

status opt_parse_time(const char *s, long long *out)
{
    const char *p = s;
    long long total = 0;
    if (!*p)
        return ST_FAIL;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return ST_FAIL;
        long long v = 0;
        while (isdigit((unsigned char)*p)) {
            v = v * 10 + (*p++ - '0');
            if (v > INT_MAX)
                return ST_FAIL;
        }
        long long mul;
        switch (*p++) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        case 'w': mul = 7 * 86400; break;
        default: return ST_FAIL;
        }
        total += v * mul;
        if (total > INT_MAX)
            return ST_FAIL;
    }
    *out = total;
    return ST_OK;
}

char *opt_format_time(long long t, char *buf, size_t len)
{
    static const struct { char c; long long secs; } units[] = {
        { 'w', 7 * 86400 }, { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 },
    };
    size_t o = 0;
    buf[0] = '\0';
    if (t < 0) {
        snprintf(buf, len, "-");
        o = 1;
        t = -t;
    }
    if (t == 0) {
        snprintf(buf + o, len - o, "0s");
        return buf;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0] && o < len; i++) {
        if (t >= units[i].secs) {
            o += (size_t)snprintf(buf + o, len - o, "%lld%c", t / units[i].secs, units[i].c);
            t %= units[i].secs;
        }
    }
    return buf;
}

/* Integers print with K or M when an exact multiple (as Exim does). */
static void format_int(long long v, FILE *f)
{
    if (v != 0 && v % (1024 * 1024) == 0)
        fprintf(f, "%lldM", v / (1024 * 1024));
    else if (v != 0 && v % 1024 == 0)
        fprintf(f, "%lldK", v / 1024);
    else
        fprintf(f, "%lld", v);
}

void opt_format(const optdef *d, const optval *v, FILE *f)
{
    if (d->type == OT_BOOL && !v->s) {
        fprintf(f, "%s%s\n", v->n ? "" : "no_", d->name);
        return;
    }
    if (v->hidden) {
        fprintf(f, "%s = <value not displayable>\n", d->name);
        return;
    }
    fprintf(f, "%s = ", d->name);
    if (!v->set && d->type != OT_BOOL) {
        fputc('\n', f);
        return;
    }
    char buf[64];
    switch (d->type) {
    case OT_BOOL:
        fputs(v->s, f);
        break;
    case OT_INT:
        format_int(v->n, f);
        break;
    case OT_OCTINT:
        fprintf(f, "0%llo", v->n);
        break;
    case OT_FIXED:
        fprintf(f, "%lld.%03lld", v->n / 1000, v->n % 1000);
        break;
    case OT_TIME:
        fputs(opt_format_time(v->n, buf, sizeof buf), f);
        break;
    case OT_TIMELIST: {
        const char *l = v->s;
        int sep = 0;
        char *it;
        bool first = true;
        arena *a = arena_new("fmt", false);
        while ((it = list_next(&l, &sep, a))) {
            long long t = 0;
            opt_parse_time(it, &t);
            fprintf(f, "%s%s", first ? "" : ":", opt_format_time(t, buf, sizeof buf));
            first = false;
        }
        arena_free(a);
        break;
    }
    case OT_STRING:
    case OT_UID:
    case OT_GID:
        if (v->s)
            for (const unsigned char *p = (const unsigned char *)v->s; *p; p++) {
                if (*p == '\n') fputs("\\n", f);
                else if (*p == '\t') fputs("\\t", f);
                else if (*p == '\r') fputs("\\r", f);
                else if (*p < 32 || *p == 127) fprintf(f, "\\%03o", *p);
                else fputc(*p, f);
            }
        break;
    }
    fputc('\n', f);
}

int config_main_opt_index(const char *name)
{
    int lo = 0, hi = MO__COUNT - 1;
    while (lo <= hi) {     /* main_opts.def is sorted */
        int mid = (lo + hi) / 2;
        int c = strcmp(name, main_optdefs[mid].name);
        if (c == 0)
            return mid;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return -1;
}

const char *cfg_str(enum main_opt o)
{
    if (!cfg)
        panic("cfg_str(%s) before the configuration is loaded", main_optdefs[o].name);
    return cfg->main[o].s;
}

long long cfg_int(enum main_opt o)
{
    if (!cfg)
        panic("cfg_int(%s) before the configuration is loaded", main_optdefs[o].name);
    return cfg->main[o].n;
}

bool cfg_bool(enum main_opt o)
{
    if (!cfg)
        panic("cfg_bool(%s) before the configuration is loaded", main_optdefs[o].name);
    return cfg->main[o].n != 0;
}

const named_list *config_named_list(list_kind kind, const char *name)
{
    if (!cfg)
        return NULL;
    for (const named_list *l = cfg->lists; l; l = l->next)
        if (l->kind == kind && strcmp(l->name, name) == 0)
            return l;
    return NULL;
}

const acl_def *config_acl(const char *name)
{
    if (!cfg)
        return NULL;
    for (const acl_def *a = cfg->acls; a; a = a->next)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

const driver_inst *config_driver(driver_class cls, const char *name)
{
    if (!cfg)
        return NULL;
    for (const driver_inst *d = cfg->drivers[cls]; d; d = d->next)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

const optdef *config_generic_opts(driver_class cls, int *n)
{
    *n = driver_tables[cls].ngeneric;
    return driver_tables[cls].generic;
}

const driver_info *config_driver_info(driver_class cls, const char *name)
{
    const driver_table *t = &driver_tables[cls];
    for (int i = 0; i < t->ndrivers; i++)
        if (strcmp(t->drivers[i].info.name, name) == 0)
            return &t->drivers[i].info;
    return NULL;
}

const char *driver_class_name(driver_class cls)
{
    static const char *const n[DC__COUNT] = { "router", "transport", "authenticator" };
    return n[cls];
}

const optval *driver_opt(const driver_inst *d, const char *name)
{
    int n;
    const optdef *g = config_generic_opts(d->cls, &n);
    for (int i = 0; i < n; i++)
        if (strcmp(g[i].name, name) == 0)
            return &d->generic[i];
    if (d->info)
        for (int i = 0; i < d->info->nopts; i++)
            if (strcmp(d->info->opts[i].name, name) == 0)
                return &d->priv[i];
    return NULL;
}

const char *acl_verb_name(acl_verb v)
{
    static const char *const n[ACLV__COUNT] = {
        "accept", "defer", "deny", "discard", "drop", "require", "warn",
    };
    return (unsigned)v < ACLV__COUNT ? n[v] : "?";
}

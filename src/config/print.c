/* print.c: -bP output in Exim's format: main options, named lists,
 * macros, drivers and their options. */
#include "config/config.h"
#include "config/builtins.h"
#include "config/drivers.h"

#include <string.h>

static void print_driver(const driver_inst *d, FILE *f, bool admin, bool header)
{
    int ng;
    const optdef *g = config_generic_opts(d->cls, &ng);
    if (header)
        fprintf(f, "%s:\n", d->name);
    /* generic options, then the driver's own, each in alphabetical order */
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? (d->info ? d->info->nopts : 0) : ng;
        const optdef *defs = pass ? d->info->opts : g;
        const optval *vals = pass ? d->priv : d->generic;
        for (int i = 0; i < n; i++) {
            if (!defs[i].name)
                continue;
            if (strcmp(defs[i].name, "driver") == 0) {
                fprintf(f, "driver = %s\n", d->info->name);
                continue;
            }
            optval v = vals[i];
            if (admin)
                v.hidden = false;
            opt_format(&defs[i], &v, f);
        }
    }
}

static const char *kind_word(list_kind k)
{
    static const char *const w[NL__COUNT] = { "domainlist", "hostlist", "addresslist", "localpartlist" };
    return w[k];
}

bool config_print(const config *c, const char *name, FILE *f, bool admin)
{
    if (!name || strcmp(name, "all") == 0) {
        for (int i = 0; i < MO__COUNT; i++) {
            optval v = c->main[i];
            if (admin)
                v.hidden = false;
            opt_format(&main_optdefs[i], &v, f);
        }
        return true;
    }
    if (strcmp(name, "config_file") == 0) {
        fprintf(f, "%s\n", *c->filename ? c->filename : "(built-in default configuration)");
        return true;
    }
    if (strcmp(name, "macros") == 0 || strncmp(name, "macro ", 6) == 0) {
        const char *want = name[5] == ' ' ? name + 6 : NULL;
        bool found = false;
        int nb;
        const char *const *b = builtin_macros(&nb);
        for (int i = 0; i < nb; i++)
            if (want ? strcmp(b[i], want) == 0 : strncmp(b[i], "_HAVE_", 6) == 0) {
                fprintf(f, "%s=y\n", b[i]);
                found = true;
            }
        for (const macro *m = c->macros; m; m = m->next)
            if (!want || strcmp(m->name, want) == 0) {
                fprintf(f, "%s=%s\n", m->name, m->value);
                found = true;
            }
        if (want && !found)
            fprintf(f, "%s is not a known macro\n", want);
        return !want || found;
    }
    static const struct { const char *all, *list, *one; driver_class cls; } dn[] = {
        { "routers", "router_list", "router", DC_ROUTER },
        { "transports", "transport_list", "transport", DC_TRANSPORT },
        { "authenticators", "authenticator_list", "authenticator", DC_AUTH },
    };
    for (size_t k = 0; k < sizeof dn / sizeof dn[0]; k++) {
        size_t ol = strlen(dn[k].one);
        if (strcmp(name, dn[k].list) == 0) {
            for (const driver_inst *d = c->drivers[dn[k].cls]; d; d = d->next)
                fprintf(f, "%s\n", d->name);
            return true;
        }
        if (strcmp(name, dn[k].all) == 0) {
            for (const driver_inst *d = c->drivers[dn[k].cls]; d; d = d->next) {
                print_driver(d, f, admin, true);
                if (d->next)
                    fputc('\n', f);
            }
            return true;
        }
        if (strncmp(name, dn[k].one, ol) == 0 && name[ol] == ' ') {
            for (const driver_inst *d = c->drivers[dn[k].cls]; d; d = d->next)
                if (strcmp(d->name, name + ol + 1) == 0) {
                    print_driver(d, f, admin, false);
                    return true;
                }
            fprintf(f, "%s %s not found\n", dn[k].one, name + ol + 1);
            return false;
        }
    }
    if (name[0] == '+') {
        for (const named_list *l = c->lists; l; l = l->next)
            if (strcmp(l->name, name + 1) == 0) {
                fprintf(f, "%s %s = %s\n", kind_word(l->kind), l->name,
                        l->hidden && !admin ? "<value not displayable>" : l->value);
                return true;
            }
        fprintf(f, "%s is not a known named list\n", name + 1);
        return false;
    }
    if (strcmp(name, "named_lists") == 0) {
        for (const named_list *l = c->lists; l; l = l->next)
            fprintf(f, "%s %s = %s\n", kind_word(l->kind), l->name,
                    l->hidden && !admin ? "<value not displayable>" : l->value);
        return true;
    }
    if (strcmp(name, "acl") == 0) {
        for (const acl_def *a = c->acls; a; a = a->next) {
            fprintf(f, "%s:\n", a->name);
            for (const acl_stmt *s = a->stmts; s; s = s->next) {
                fprintf(f, "  %s\n", acl_verb_name(s->verb));
                for (const acl_cond *cd = s->conds; cd; cd = cd->next)
                    fprintf(f, "    %s%s = %s\n", cd->negated ? "!" : "", cd->name, cd->value);
            }
        }
        return true;
    }
    int i = config_main_opt_index(name);
    if (i < 0) {
        fprintf(f, "%s is not a known option\n", name);
        return false;
    }
    optval v = c->main[i];
    if (admin)
        v.hidden = false;
    opt_format(&main_optdefs[i], &v, f);
    return true;
}

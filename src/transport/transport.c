/* transport.c: the transport table and the generic options. */
#include "transport/transport.h"
#include "core/gstr.h"
#include "core/state.h"
#include "expand/expand.h"
#include "route/route.h"

#include "core/timefmt.h"
#include <string.h>
#include <time.h>

static const struct { const char *name; transport_driver fn; bool local; } drivers[] = {
    { "appendfile", transport_appendfile, true },
    { "lmtp", transport_lmtp, true },
    { "pipe", transport_pipe, true },
    { "queuefile", transport_queuefile, true },
    { "smtp", transport_smtp, false },
};

transport_driver transport_find(const driver_inst *t)
{
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
        if (strcmp(drivers[i].name, t->info->name) == 0)
            return drivers[i].fn;
    return NULL;
}

bool transport_is_local(const driver_inst *t)
{
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
        if (strcmp(drivers[i].name, t->info->name) == 0)
            return drivers[i].local;
    return strcmp(t->info->name, "smtp") != 0;
}

const char *tp_opt(const driver_inst *t, const char *name)
{
    const optval *v = driver_opt(t, name);
    return v ? v->s : NULL;
}

bool tp_opt_bool(const driver_inst *t, const char *name)
{
    const optval *v = driver_opt(t, name);
    if (!v)
        return false;
    if (v->is_expanded_bool) {
        bool b = false;
        char *err;
        expand_check_bool(v->s, ps.scratch, &b, &err);
        return b;
    }
    return v->n != 0;
}

long long tp_opt_int(const driver_inst *t, const char *name)
{
    const optval *v = driver_opt(t, name);
    if (!v)
        return 0;
    if (v->s) {
        char *out, *err;
        long long n = 0;
        if (expand_string(v->s, ps.scratch, &out, &err) == ST_OK)
            opt_parse_int(out, &n);
        return n;
    }
    return v->n;
}

status tp_opt_expand(const driver_inst *t, const char *name, tp_ctx *ctx, const char **out, char **err)
{
    const char *v = tp_opt(t, name);
    *out = NULL;
    if (!v)
        return ST_OK;
    char *res;
    status st = expand_string(v, ctx->a, &res, err);
    if (st == ST_OK)
        *out = res;
    return st;
}

void tp_set_vars(const driver_inst *t, const address_item *a)
{
    route_set_vars(a);
    ps.transport_name = t->name;
}

const char *tp_top_headers(const driver_inst *t, const address_item *a, tp_ctx *ctx)
{
    gstr g;
    gstr_init(&g, ctx->a, 128);
    if (tp_opt_bool(t, "return_path_add"))
        gstr_printf(&g, "Return-path: <%s>\n", ctx->m->sender);
    if (tp_opt_bool(t, "envelope_to_add")) {
        const address_item *top = a;
        while (top->parent)
            top = top->parent;
        gstr_printf(&g, "Envelope-to: %s\n", top->address);
    }
    if (tp_opt_bool(t, "delivery_date_add")) {
        char date[TIMEFMT_DATE_LEN];
        time_t now = time(NULL);
        timefmt_rfc5322(now, date, sizeof date);
        gstr_printf(&g, "Delivery-date: %s\n", date);
    }
    return g.len ? g.s : NULL;
}

const char *tp_added_headers(const driver_inst *t, const address_item *a, tp_ctx *ctx)
{
    gstr g;
    gstr_init(&g, ctx->a, 128);
    const char *lists[2] = { a->headers_add, tp_opt(t, "headers_add") };
    for (int i = 0; i < 2; i++) {
        if (!lists[i])
            continue;
        char *out, *err;
        if (expand_string(lists[i], ctx->a, &out, &err) != ST_OK || !*out)
            continue;
        gstr_cat(&g, out);
        if (out[strlen(out) - 1] != '\n')
            gstr_catc(&g, '\n');
    }
    return g.len ? g.s : NULL;
}

/* transport.c: the transport table and the generic options. */
#include "transport/transport.h"
#include "core/gstr.h"
#include "core/state.h"
#include "expand/expand.h"
#include "route/route.h"

#include "core/timefmt.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const struct { const char *name; transport_driver fn; bool local; } drivers[] = {
    { "appendfile", transport_appendfile, true },
    { "autoreply", transport_autoreply, true },
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

#define ENVTO_MAX 1024

/* Envelope-to: as Exim writes it: for each address, first (recursively)
 * the duplicates of it and of its ancestors, then its original
 * recipient; each recipient once. */
static void envelope_to(gstr *g, const address_item *p, const address_item **done, int *ndone, bool *first)
{
    const address_item *top = p;
    for (;;) {
        for (const address_item *x = top->dups; x; x = x->dup_next)
            envelope_to(g, x, done, ndone, first);
        if (!top->parent)
            break;
        top = top->parent;
    }
    for (int i = 0; i < *ndone; i++)
        if (done[i] == top)
            return;
    if (*ndone < ENVTO_MAX)
        done[(*ndone)++] = top;
    gstr_printf(g, "%s%s", *first ? "" : ",\n ", top->address);
    *first = false;
}

const char *tp_top_headers(const driver_inst *t, const address_item *a, tp_ctx *ctx)
{
    gstr g;
    gstr_init(&g, ctx->a, 128);
    if (tp_opt_bool(t, "return_path_add"))
        gstr_printf(&g, "Return-path: <%s>\n", ctx->m->sender);
    if (tp_opt_bool(t, "envelope_to_add")) {
        /* every (top-level) address of a batch, once */
        gstr_cat(&g, "Envelope-to: ");
        const address_item *done[ENVTO_MAX];
        int ndone = 0;
        bool first = true;
        for (const address_item *b = a; b; b = b->next)
            envelope_to(&g, b, done, &ndone, &first);
        gstr_cat(&g, "\n");
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
    /* the routers' (expanded when they ran), then the transport's */
    const char *lists[2] = { a->headers_add, tp_opt(t, "headers_add") };
    for (int i = 0; i < 2; i++) {
        if (!lists[i])
            continue;
        char *out = (char *)lists[i], *err;
        if (i == 1 && expand_string(lists[i], ctx->a, &out, &err) != ST_OK)
            continue;
        if (!*out)
            continue;
        gstr_cat(&g, out);
        if (out[strlen(out) - 1] != '\n')
            gstr_catc(&g, '\n');
    }
    return g.len ? g.s : NULL;
}

/* ---- the pipe from a local delivery child ------------------------------- */

static bool write_all(int fd, const char *p, size_t n)
{
    return write_to_fd(&fd, p, n);
}

bool tp_put_field(int fd, const char *s, size_t n)
{
    char len[32];
    int k = snprintf(len, sizeof len, "%zu:", n);
    return write_all(fd, len, (size_t)k) && write_all(fd, s, n) && write_all(fd, ",", 1);
}

static bool put_str(int fd, const char *s)
{
    return tp_put_field(fd, s ? s : "", s ? strlen(s) : 0);
}

void tp_put_results(int fd, const address_item *addrs)
{
    for (const address_item *a = addrs; a; a = a->next) {
        char st[16], en[16];
        snprintf(st, sizeof st, "%d", (int)a->result);
        snprintf(en, sizeof en, "%d", a->basic_errno);
        put_str(fd, "R");
        put_str(fd, st);
        put_str(fd, a->message);
        put_str(fd, a->user_message);
        put_str(fd, a->pass_message ? "1" : "0");
        put_str(fd, en);
        put_str(fd, a->return_output);
        put_str(fd, a->freeze ? "1" : "0");
        put_str(fd, a->smtp_confirmation);      /* LMTP's reply: C= */
        put_str(fd, a->transport ? a->transport->name : "");   /* appendfile's file_format may switch */
    }
}

const char *tp_next_field(const char **p, const char *end, size_t *len, arena *a)
{
    const char *s = *p;
    size_t n = 0;
    int digits = 0;
    while (s < end && *s >= '0' && *s <= '9' && digits < 12) {
        n = n * 10 + (size_t)(*s++ - '0');
        digits++;
    }
    if (!digits || s >= end || *s != ':' || (size_t)(end - s - 1) < n + 1 || s[1 + n] != ',')
        return NULL;
    const char *f = arena_strndup(a, s + 1, n);
    *p = s + 2 + n;
    if (len)
        *len = n;
    return f;
}

status tp_generate_message(tp_ctx *ctx, const tp_generated *g, char **err)
{
    if (ctx->gen_fd < 0) {
        *err = "no delivery process to queue a generated message";
        return ST_DEFER;
    }
    gstr r;
    gstr_init(&r, ctx->a, 128);
    for (int i = 0; i < g->nrcpt; i++)
        gstr_printf(&r, "%s%s", i ? "\n" : "", g->rcpts[i]);
    if (!put_str(ctx->gen_fd, "G") || !put_str(ctx->gen_fd, g->sender) || !put_str(ctx->gen_fd, r.s) ||
        !put_str(ctx->gen_fd, g->headers) || !put_str(ctx->gen_fd, g->body) ||
        !put_str(ctx->gen_fd, g->by_delivery ? "1" : "0")) {
        *err = "cannot pass the generated message to the delivery process";
        return ST_DEFER;
    }
    return ST_OK;
}

const char *tp_removed_headers(const driver_inst *t, const address_item *a, tp_ctx *ctx)
{
    const char *tr = NULL;
    char *err = NULL;
    tp_opt_expand(t, "headers_remove", ctx, &tr, &err);
    if (a->headers_remove && tr && *tr)
        return arena_printf(ctx->a, "%s:%s", a->headers_remove, tr);
    return a->headers_remove ? a->headers_remove : tr;
}

/* test.c: address testing (-bt) and verification (-bv, -bvs) from the
 * command line, with Exim's output. */
#include "route/route.h"
#include "core/state.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static void print_hosts(const host_item *h, FILE *out)
{
    for (; h; h = h->next) {
        fprintf(out, "  host %s [%s]", h->name, h->address ? h->address : "");
        if (h->mx >= 0)
            fprintf(out, " MX=%d", h->mx);
        if (h->port)
            fprintf(out, " port=%d", h->port);
        fputc('\n', out);
    }
}

/* Route a and its descendants, printing as we go; returns the worst
 * status (0 ok, 1 defer, 2 fail). */
typedef struct seen {
    const char *addr;
    struct seen *next;
} seen;
static seen *seen_list;

static bool duplicate(const address_item *a, arena *ar)
{
    for (seen *s = seen_list; s; s = s->next)
        if (strcasecmp(s->addr, a->address) == 0)
            return true;
    seen *n = arena_alloc(ar, sizeof *n);
    n->addr = a->address;
    n->next = seen_list;
    seen_list = n;
    return false;
}

static int test_one(address_item *a, route_ctx *ctx, bool verify, FILE *out)
{
    address_item *gen = NULL;
    status st;
    if (a->flags & (AF_PIPE | AF_FILE))
        st = ST_OK;
    else
        st = route_address(a, ctx, &gen);
    if (st == ST_REROUTED) {
        int worst = 0;
        /* Exim prints generated addresses last first */
        address_item *v[1024];
        int n = 0;
        for (address_item *c = gen; c && n < 1024; c = c->next)
            v[n++] = c;
        ctx->depth++;
        for (int i = n - 1; i >= 0; i--) {
            v[i]->next = NULL;
            int r = test_one(v[i], ctx, verify, out);
            if (r > worst)
                worst = r;
        }
        ctx->depth--;
        if (verify && a->parent == NULL && worst == 0)
            fprintf(out, "%s verified\n", a->address);
        return worst;
    }
    if (verify) {
        if (a->parent)
            return st == ST_OK || st == ST_DISCARD ? 0 : st == ST_DEFER ? 1 : 2;
        if (st == ST_OK || st == ST_DISCARD)
            fprintf(out, "%s verified\n", a->address);
        else if (st == ST_DEFER)
            fprintf(out, "%s cannot be resolved at this time: %s\n", a->address, a->message ? a->message : "");
        else
            fprintf(out, "%s failed to verify: %s\n", a->address, a->message ? a->message : "");
        return st == ST_OK || st == ST_DISCARD ? 0 : st == ST_DEFER ? 1 : 2;
    }
    switch (st) {
    case ST_OK:
        fprintf(out, "%s%s\n", a->address, duplicate(a, ctx->a) ? "   [duplicate, would not be delivered]" : "");
        for (const address_item *p = a->parent; p; p = p->parent)
            fprintf(out, "    <-- %s\n", p->address);
        fprintf(out, "  router = %s, transport = %s\n", a->router ? a->router->name : "unset",
                a->transport ? a->transport->name : "unset");
        print_hosts(a->hosts, out);
        return 0;
    case ST_DISCARD:
        fprintf(out, "%s is discarded\n", a->address);
        return 0;
    case ST_DEFER:
        fprintf(out, "%s cannot be resolved at this time: %s\n", a->address, a->message ? a->message : "");
        return 1;
    default:
        fprintf(out, "%s is undeliverable: %s\n", a->address, a->message ? a->message : "Unrouteable address");
        return 2;
    }
}

int route_test(char **addrs, int n, bool verify, bool verify_sender, FILE *out)
{
    route_ctx ctx = { .a = ps.msg, .verify = verify, .verify_sender = verify_sender, .address_test = !verify };
    char *err = NULL;
    dns_resolver *res = dns_process_resolver(&err, ps.msg);
    if (res)
        ctx.dns = dns_iface_unbound(res);
    int worst = 0;
    for (int i = 0; i < n; i++) {
        address_item *a = arena_calloc(ps.msg, sizeof *a);
        const char *s = addrs[i];
        const char *at = strrchr(s, '@');
        if (at) {
            a->local_part = arena_strndup(ps.msg, s, (size_t)(at - s));
            a->domain = at + 1;
            a->address = s;
        } else {
            a->local_part = s;
            a->domain = cfg_str(MO_qualify_recipient);
            a->address = arena_printf(ps.msg, "%s@%s", s, a->domain);
        }
        a->rcpt_index = -1;
        int r = test_one(a, &ctx, verify, out);
        if (r > worst)
            worst = r;
    }
    return worst;
}

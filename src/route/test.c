/* test.c: address testing (-bt) and verification (-bv, -bvs) from the
 * command line, with Exim's output.  -bt gives the full picture: the
 * failures as they happen, then every address routed to a local transport
 * and every one routed to a remote one, with its parents; -bv stops at the
 * first answer, following a redirection only when it gives one address. */
#include "route/route.h"
#include "core/state.h"
#include "transport/transport.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* what testing one command-line address found */
typedef struct bt_run {
    route_ctx *ctx;
    FILE *out;
    bool full;                 /* -bt: all generated addresses, with parents */
    const char *address;       /* the command-line address */
    address_item *local, *remote;      /* routed: the last first, as Exim lists them */
    bool allok;                /* nothing failed, deferred, nor was a pipe/file/reply */
} bt_run;

enum { BT_OK = 0, BT_DEFER = 1, BT_FAIL = 2 };

/* Hosts, the names and [addresses] padded to the longest (Exim's layout) */
static void print_hosts(const address_item *a, FILE *out)
{
    if (!a->transport)
        return;
    int maxname = 0, maxaddr = 0;
    for (const host_item *h = a->hosts; h; h = h->next) {
        int n = (int)strlen(h->name), m = h->address ? (int)strlen(h->address) : 7;
        maxname = n > maxname ? n : maxname;
        maxaddr = m > maxaddr ? m : maxaddr;
    }
    bool local = transport_is_local(a->transport);
    for (const host_item *h = a->hosts; h; h = h->next) {
        fprintf(out, "  host %-*s ", maxname, h->name);
        if (h->address || !local) {
            const char *ip = h->address ? h->address : "unknown";
            fprintf(out, "[%s%-*c", ip, maxaddr + 1 - (int)strlen(ip), ']');
        } else {
            fprintf(out, " %-*s ", maxaddr, "");
        }
        if (h->mx >= 0)
            fprintf(out, " MX=%d", h->mx);
        if (h->port)
            fprintf(out, " port=%d", h->port);
        fputc('\n', out);
    }
}

/* Exim's duplicate marking: the same address printed twice in one -bt */
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

static void print_parents(const address_item *a, FILE *out)
{
    for (const address_item *p = a->parent; p; p = p->parent)
        fprintf(out, "\n    <-- %s", p->address);
}

/* A pipe, file or reply a redirection set up: not routed, only shown */
static void print_pfr(const address_item *a, FILE *out)
{
    if (a->flags & AF_REPLY)
        fprintf(out, "%s -> mail %s", a->parent->address, a->address + (a->address[0] == '>'));
    else
        fprintf(out, "%s -> %s", a->parent->address, a->address);
    if (a->basic_errno == ERRNO_BADTRANSPORT)
        fprintf(out, "\n*** Error in setting up pipe, file, or autoreply:\n%s\n", a->message ? a->message : "");
    else if (a->flags & AF_FORBIDDEN)
        fprintf(out, " *** forbidden ***\n");
    else
        fprintf(out, "\n  transport = %s\n", a->transport ? a->transport->name : "unset");
}

/* "... is undeliverable" / "... cannot be resolved at this time", with
 * the reason and (-bt) the parents */
static void print_failure(const bt_run *t, const address_item *a, status st)
{
    const char *what = st == ST_DEFER ? "cannot be resolved at this time"
                       : t->ctx->address_test ? "is undeliverable" : "failed to verify";
    fprintf(t->out, "%s %s", t->full ? a->address : t->address, what);
    if (a->basic_errno > 0)
        fprintf(t->out, ": %s", strerror(a->basic_errno));
    if (a->message)
        fprintf(t->out, ": %s", a->message);
    else if (st == ST_DEFER && a->basic_errno <= 0)
        fprintf(t->out, ": unknown error");
    if (t->full)
        print_parents(a, t->out);
    fputc('\n', t->out);
}

static void print_routed(address_item *list, arena *ar, FILE *out)
{
    for (address_item *a = list; a; a = a->next) {
        fprintf(out, "%s", a->address);
        if (duplicate(a, ar))
            fprintf(out, "   [duplicate, would not be delivered]");
        print_parents(a, out);
        fprintf(out, "\n  router = %s, transport = %s\n", a->router ? a->router->name : "unset",
                a->transport ? a->transport->name : "unset");
        print_hosts(a, out);
    }
}

/* -bv: does the answer come now?  Not when a redirection gave exactly
 * one ordinary address: that one is verified instead. */
static bool verify_done(status st, const address_item *gen)
{
    return st != ST_REROUTED || !gen || gen->next || (gen->flags & (AF_PIPE | AF_FILE | AF_REPLY));
}

static int test_address(bt_run *t, address_item *top)
{
    int yield = BT_OK;
    address_item *todo = top;
    while (todo) {
        address_item *a = todo, *gen = NULL;
        todo = a->next;
        a->next = NULL;
        if (a->flags & (AF_PIPE | AF_FILE | AF_REPLY)) {
            t->allok = false;
            print_pfr(a, t->out);
            continue;
        }
        t->ctx->depth = 0;
        for (const address_item *p = a->parent; p; p = p->parent)
            t->ctx->depth++;
        status st = route_address(a, t->ctx, &gen);
        if (st == ST_FAIL || st == ST_DEFER) {
            t->allok = false;
            print_failure(t, a, st);
            if (!t->full)
                return st == ST_FAIL ? BT_FAIL : BT_DEFER;
            yield = st == ST_FAIL ? BT_FAIL : yield == BT_OK ? BT_DEFER : yield;
            continue;
        }
        if (!t->full && verify_done(st, gen)) {
            fprintf(t->out, "%s %s\n", t->address, t->ctx->address_test ? "is deliverable" : "verified");
            return BT_OK;
        }
        if (st == ST_OK) {
            address_item **list = a->transport && transport_is_local(a->transport) ? &t->local : &t->remote;
            a->next = *list;
            *list = a;
        } else if (st == ST_REROUTED && gen) {
            /* what a redirection generates is looked at next, in order */
            address_item *last = gen;
            while (last->next)
                last = last->next;
            last->next = todo;
            todo = gen;
        }
    }
    if (t->allok && !t->local && !t->remote) {
        fprintf(t->out, "mail to %s is discarded\n", t->address);
        return yield;
    }
    print_routed(t->local, t->ctx->a, t->out);
    print_routed(t->remote, t->ctx->a, t->out);
    return yield;
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
        /* addresses from the command line are tainted (Exim) */
        address_item *a = arena_calloc(ps.msg, sizeof *a);
        const char *s = arena_strdup(ps.msg_t, addrs[i]);
        const char *at = strrchr(s, '@');
        if (at) {
            a->local_part = arena_strndup(ps.msg_t, s, (size_t)(at - s));
            a->domain = at + 1;
            a->address = s;
        } else {
            a->local_part = s;
            a->domain = cfg_str(MO_qualify_recipient);
            a->address = arena_printf(ps.msg_t, "%s@%s", s, a->domain);
        }
        a->rcpt_index = -1;
        bt_run t = { .ctx = &ctx, .out = out, .full = !verify, .address = a->address, .allok = true };
        int r = test_address(&t, a);
        if (r == BT_FAIL || (r == BT_DEFER && worst == 0))
            worst = r;
    }
    return worst;
}

/* manualroute.c: hosts from route_list ("domain-pattern hosts [options]"
 * items separated by ';') or route_data ("hosts [options]"); options
 * byname, bydns, randomize, no_randomize, ipv4_prefer. */
#include "route/route.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"
#include "expand/match.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Parse "hosts options" into a host list. */
/* lookup: ROUTE_HOSTS_BYNAME ("byname"), ROUTE_HOSTS_DEFAULT ("bydns"), or
 * by default the DNS and then the system resolver (Exim's LK_DEFAULT) */
static host_item *parse_hosts(const char *text, arena *a, bool *randomize, unsigned *lookup,
                              const driver_inst **tp, const char **bad)
{
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    const char *hs = p;
    bool inq = false;
    if (*p == '"') {
        inq = true;
        hs = ++p;
        while (*p && *p != '"')
            p++;
    } else {
        while (*p && !isspace((unsigned char)*p))
            p++;
    }
    char *hosts = arena_strndup(a, hs, (size_t)(p - hs));
    if (inq && *p)
        p++;
    /* options */
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        const char *w = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        size_t n = (size_t)(p - w);
        if (n == 9 && !strncmp(w, "randomize", 9))
            *randomize = true;
        else if (n == 12 && !strncmp(w, "no_randomize", 12))
            *randomize = false;
        else if (n == 5 && !strncmp(w, "bydns", 5))
            *lookup = ROUTE_HOSTS_DEFAULT;
        else if (n == 6 && !strncmp(w, "byname", 6))
            *lookup = ROUTE_HOSTS_BYNAME;
        else if (n) {
            /* anything else names the transport, or is an error */
            char *word = arena_strndup(a, w, n);
            if (!(*tp = config_driver(DC_TRANSPORT, word)) && !*bad) {
                size_t k = strlen(w);          /* Exim names the rest of the item */
                while (k && isspace((unsigned char)w[k - 1]))
                    k--;
                *bad = arena_strndup(a, w, k);
            }
        }
    }
    host_item *head = NULL, **tail = &head;
    const char *l = hosts;
    int sep = 0;
    char *it;
    while ((it = list_next(&l, &sep, a))) {
        host_item *h = arena_calloc(a, sizeof *h);
        h->mx = -1;
        /* host:port or [ip]:port */
        char *colon = NULL;
        if (it[0] == '[') {
            char *rb = strchr(it, ']');
            if (rb) {
                *rb = '\0';
                if (rb[1] == ':')
                    h->port = atoi(rb + 2);
                it++;
            }
        } else if ((colon = strrchr(it, ':')) && strchr(it, ':') == colon) {
            *colon = '\0';
            h->port = atoi(colon + 1);
        }
        h->name = it;
        *tail = h;
        tail = &h->next;
    }
    return head;
}

static void shuffle(host_item **list)
{
    int n = 0;
    for (host_item *h = *list; h; h = h->next)
        n++;
    if (n < 2)
        return;
    host_item *v[256];
    if (n > 256)
        return;
    int i = 0;
    for (host_item *h = *list; h; h = h->next)
        v[i++] = h;
    for (i = n - 1; i > 0; i--) {
        int j = rand() % (i + 1);
        host_item *t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    for (i = 0; i < n - 1; i++)
        v[i]->next = v[i + 1];
    v[n - 1]->next = NULL;
    *list = v[0];
}

/* Is the host this machine: one of its interface addresses (as Exim's
 * local_interfaces default; 127.0.0.2 is not one)? */
static bool host_is_local(const host_item *h)
{
    return h->address && match_local_interface(h->address);
}

status router_manualroute(const driver_inst *r, address_item *a, route_ctx *ctx, address_item **gen)
{
    *gen = NULL;
    char *err = NULL;
    const char *entry = NULL;
    const char *rd = route_opt_str(r, "route_data");
    if (rd) {
        char *out;
        status st = expand_string(rd, ctx->a, &out, &err);
        if (st == ST_FAIL_FORCED)
            return ST_DECLINED;
        if (st != ST_OK) {
            a->message = arena_printf(ctx->a, "route_data for router %s: %s", r->name, err ? err : "");
            return ST_DEFER;
        }
        if (!*out)
            return ST_DECLINED;
        entry = out;
    } else {
        const char *rl = route_opt_str(r, "route_list");
        int sep = ';';
        char *it;
        while (rl && (it = list_next(&rl, &sep, ctx->a))) {
            const char *p = it;
            const char *pat = p;
            while (*p && !isspace((unsigned char)*p))
                p++;
            char *pattern = arena_strndup(ctx->a, pat, (size_t)(p - pat));
            const char *val;
            if (match_domain(a->domain, pattern, ctx->a, &val, &err) == ST_OK) {
                char *out;
                if (expand_string(p, ctx->a, &out, &err) != ST_OK) {
                    a->message = arena_printf(ctx->a, "route_list for router %s: %s", r->name, err ? err : "");
                    return ST_DEFER;
                }
                entry = out;
                break;
            }
        }
        if (!entry)
            return ST_DECLINED;
    }
    /* hosts_randomize is the default; "randomize"/"no_randomize" in the
     * route item win */
    bool randomize = route_opt_bool(r, "hosts_randomize");
    unsigned lookup = ROUTE_HOSTS_BYNAME_AFTER;
    const driver_inst *item_tp = NULL;
    const char *bad = NULL;
    host_item *hosts = parse_hosts(entry, ctx->a, &randomize, &lookup, &item_tp, &bad);
    if (bad) {
        const char *why = arena_printf(ctx->a, "unknown routing option or transport name \"%s\"", bad);
        log_write(LOG_MAIN, "%s%sError in %s router: %s", ps.message_id ? ps.message_id : "",
                  ps.message_id ? " " : "", r->name, why);
        a->message = arena_printf(ctx->a, "error in router: %s", why);
        a->basic_errno = ERRNO_UNKNOWNERROR;
        return ST_DEFER;
    }
    if (!hosts) {
        /* no hosts: a local transport is required */
        status st = item_tp ? ST_OK : route_set_transport(r, a, ctx);
        if (item_tp)
            a->transport = item_tp;
        return st;
    }
    if (randomize)
        shuffle(&hosts);
    /* look the names up one by one: host_find_failed says what a name
     * without addresses does (defer, the default; decline, fail, freeze,
     * ignore it, pass) */
    const char *hff = route_opt_str(r, "host_find_failed");
    unsigned how = route_opt_flag(r, "ipv4_only", ctx->a) ? ROUTE_HOSTS_IPV4_ONLY
                 : route_opt_flag(r, "ipv4_prefer", ctx->a) ? ROUTE_HOSTS_IPV4_FIRST : ROUTE_HOSTS_DEFAULT;
    how |= lookup;
    for (host_item **pp = &hosts; *pp;) {
        host_item *h = *pp, *rest = h->next;
        h->next = NULL;
        status st = route_lookup_hosts_ex(h, ctx, how, &err);
        if (st == ST_FAIL && hff && !strcmp(hff, "ignore")) {
            *pp = rest;
            continue;
        }
        if (st != ST_OK) {
            if (st == ST_FAIL && hff && !strcmp(hff, "decline"))
                return ST_DECLINED;
            if (st == ST_FAIL && hff && !strcmp(hff, "pass"))
                return ST_PASS;
            a->message = err;
            return st == ST_FAIL && hff && !strcmp(hff, "fail") ? ST_FAIL : ST_DEFER;
        }
        host_item *last = h;
        while (last->next)
            last = last->next;
        last->next = rest;
        pp = &last->next;
    }
    /* a later host that is this host: it and the ones after it are
     * dropped (as Exim: mail would come back here) */
    for (host_item *h = hosts; h && h->next; h = h->next)
        if (h->next->name != h->name && host_is_local(h->next)) {
            h->next = NULL;
            break;
        }
    /* self: the first host is this host (Exim's default: freeze) */
    if (hosts && host_is_local(hosts)) {
        const char *self = route_opt_str(r, "self");
        if (!self)
            self = "freeze";
        if (!strcmp(self, "pass"))
            return ST_PASS;
        if (!strncmp(self, "reroute:", 8)) {
            /* a new domain, routed from the first router again */
            const char *nd = self + 8;
            if (!strncmp(nd, "rewrite:", 8))
                nd += 8;
            address_item *c = arena_calloc(ctx->a, sizeof *c);
            *c = *a;
            c->next = NULL;
            c->parent = a;
            c->domain = arena_strdup(ctx->a, nd);
            c->address = arena_printf(ctx->a, "%s@%s", a->local_part, nd);
            c->router = NULL;
            c->transport = NULL;
            c->hosts = NULL;
            c->start_router = NULL;
            *gen = c;
            return ST_REROUTED;
        }
        if (strcmp(self, "send") != 0) {
            a->message = "remote host address is the local host";
            a->user_message = a->message;
            if (!strcmp(self, "fail"))
                return ST_FAIL;
            a->basic_errno = ERRNO_UNKNOWNERROR;
            if (strcmp(self, "defer") != 0) {   /* freeze */
                log_write(LOG_MAIN, "%s remote host address is the local host: %s", ps.message_id ? ps.message_id : "",
                          a->domain);
                a->freeze = true;
            }
            return ST_DEFER;
        }
    }
    /* ignore_target_hosts; host_all_ignored when none is left */
    const char *itl = route_opt_str(r, "ignore_target_hosts");
    bool had = hosts != NULL;
    for (host_item **pp = &hosts; itl && *pp;) {
        const char *v;
        if (match_ip((*pp)->address, itl, ctx->a, &v, &err) == ST_OK)
            *pp = (*pp)->next;
        else
            pp = &(*pp)->next;
    }
    if (!hosts) {
        const char *hai = route_opt_str(r, "host_all_ignored");
        a->message = had ? "all hosts were ignored" : "no host found";
        if (hai && !strcmp(hai, "decline"))
            return ST_DECLINED;
        if (hai && !strcmp(hai, "pass"))
            return ST_PASS;
        if (hai && !strcmp(hai, "fail"))
            return ST_FAIL;
        return ST_DEFER;
    }
    a->hosts = hosts;
    if (item_tp) {
        a->transport = item_tp;     /* named in the route item */
        return ST_OK;
    }
    return route_set_transport(r, a, ctx);
}

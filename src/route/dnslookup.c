/* dnslookup.c: the dnslookup router: MX records of the domain (or its
 * address records when there are none), preferences with equal ones
 * shuffled, null MX, SRV records (check_srv), ignore_target_hosts, and
 * the local host in the list ("self"). */
#include "route/route.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/match.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DNSLOOKUP_MAX_HOSTS 64

static int cmp_mx(const void *a, const void *b)
{
    const host_item *x = *(host_item *const *)a, *y = *(host_item *const *)b;
    return x->mx - y->mx;
}

static bool ignored(const driver_inst *r, const char *ip, arena *a)
{
    const char *list = route_opt_str(r, "ignore_target_hosts");
    if (!list || !ip)
        return false;
    const char *v;
    char *err;
    return match_ip(ip, list, a, &v, &err) == ST_OK;
}

static bool is_local_ip(const char *ip)
{
    if (!ip)
        return false;
    if (strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0)
        return true;
    return match_local_interface(ip);
}

/* check_srv: "_<service>._tcp.<domain>" SRV records, when there are any,
 * give the hosts and ports instead of MX records (RFC 2782: by priority,
 * and within one priority in a random order weighted by the records'
 * weights).  Returns the number of hosts put in v (0: no SRV records, use
 * MX), -1 on a temporary failure, -2 when the domain says it offers no
 * such service (a single record with target "."); a->message is set. */
/* Is the address's domain in the router's domain-list option? */
static bool in_domains(const driver_inst *r, const char *opt, const address_item *a, route_ctx *ctx)
{
    const char *list = route_opt_str(r, opt);
    const char *val;
    char *err = NULL;
    return list && match_domain(a->domain, list, ctx->a, &val, &err) == ST_OK;
}

static int srv_hosts(const driver_inst *r, address_item *a, route_ctx *ctx, host_item **v)
{
    if (!route_opt_str(r, "check_srv"))
        return 0;
    const char *service = NULL;
    char *err = NULL;
    status es = route_opt_expand(r, "check_srv", ctx->a, &service, &err);
    if (es == ST_FAIL || !service || !*service)
        return 0;                      /* forced failure: no SRV check */
    if (es != ST_OK) {
        a->message = arena_printf(ctx->a, "failed to expand check_srv: %s", err ? err : "");
        return -1;
    }
    const char *name = arena_printf(ctx->a, "_%s._tcp.%s", service, a->domain);
    dns_answer ans;
    status st = ctx->dns.lookup(ctx->dns.ctx, name, DNS_T_SRV, ctx->a, &ans);
    if (st == ST_DEFER && in_domains(r, "srv_fail_domains", a, ctx))
        return 0;                       /* an SRV lookup error counts as no SRV */
    if (st == ST_DEFER) {
        a->message = arena_printf(ctx->a, "DNS lookup of SRV for %s deferred: %s", name, ans.why ? ans.why : "");
        a->basic_errno = ERRNO_DNSDEFER;
        return -1;
    }
    if (st != ST_OK || ans.nrr == 0)
        return 0;
    if (ans.nrr == 1 && (!ans.rr[0].text || !*ans.rr[0].text || !strcmp(ans.rr[0].text, "."))) {
        a->message = arena_printf(ctx->a, "SRV record for %s says the service is not offered", name);
        return -2;
    }
    int n = 0;
    const dns_rr *rrs[DNSLOOKUP_MAX_HOSTS];
    for (int i = 0; i < ans.nrr && n < DNSLOOKUP_MAX_HOSTS; i++)
        if (ans.rr[i].text && *ans.rr[i].text && strcmp(ans.rr[i].text, "."))
            rrs[n++] = &ans.rr[i];
    /* selection sort by priority; within a priority pick by weight */
    for (int i = 0; i < n; i++) {
        int best = i;
        for (int j = i + 1; j < n; j++)
            if (rrs[j]->pref < rrs[best]->pref)
                best = j;
        unsigned prio = rrs[best]->pref;
        unsigned long total = 0;
        for (int j = i; j < n; j++)
            if (rrs[j]->pref == prio)
                total += rrs[j]->weight;
        unsigned long pick = total ? (unsigned long)rand() % (total + 1) : 0, run = 0;
        int chosen = -1;
        for (int j = i; j < n; j++) {
            if (rrs[j]->pref != prio)
                continue;
            if (chosen < 0)
                chosen = j;            /* with no weights: the first one */
            run += rrs[j]->weight;
            if (total && run >= pick) {
                chosen = j;
                break;
            }
        }
        const dns_rr *t = rrs[i];
        rrs[i] = rrs[chosen];
        rrs[chosen] = t;
    }
    for (int i = 0; i < n; i++) {
        host_item *h = arena_calloc(ctx->a, sizeof *h);
        h->name = rrs[i]->text;
        h->mx = (int)rrs[i]->pref;
        h->port = (int)rrs[i]->port;
        h->dnssec = ans.sec == DNS_SEC_SECURE;
        v[i] = h;
    }
    return n;
}

status router_dnslookup(const driver_inst *r, address_item *a, route_ctx *ctx, address_item **gen)
{
    *gen = NULL;
    if (!ctx->dns.lookup) {
        a->message = "no DNS resolver available";
        return ST_DEFER;
    }
    host_item *v[DNSLOOKUP_MAX_HOSTS];
    int srv = srv_hosts(r, a, ctx, v);
    if (srv < 0)
        return srv == -1 ? ST_DEFER : ST_FAIL;
    dns_answer mx = { .st = ST_NOTFOUND };
    status st = srv > 0 ? ST_NOTFOUND
                        : ctx->dns.lookup(ctx->dns.ctx, a->domain, DNS_T_MX, ctx->a, &mx);
    /* widen_domains: a domain that does not exist is tried with each of
     * these suffixes (the address is rewritten when one works) */
    const char *widen = route_opt_str(r, "widen_domains");
    if (srv == 0 && st == ST_NOTFOUND && mx.nxdomain && widen) {
        int sep = 0;
        char *suffix;
        while ((suffix = list_next(&widen, &sep, ctx->a))) {
            const char *wd = arena_printf(ctx->a, "%s.%s", a->domain, suffix);
            dns_answer w;
            status ws = ctx->dns.lookup(ctx->dns.ctx, wd, DNS_T_MX, ctx->a, &w);
            if (ws == ST_OK || (ws == ST_NOTFOUND && !w.nxdomain)) {
                a->domain = wd;
                a->address = arena_printf(ctx->a, "%s@%s", a->local_part, wd);
                mx = w;
                st = ws;
                break;
            }
        }
    }
    if (st == ST_DEFER && in_domains(r, "mx_fail_domains", a, ctx)) {
        st = ST_NOTFOUND;               /* an MX lookup error counts as no MX */
        mx = (dns_answer){ .st = ST_NOTFOUND };
    }
    if (st == ST_DEFER) {
        a->message = arena_printf(ctx->a, "DNS lookup of MX for %s deferred: %s", a->domain, mx.why ? mx.why : "");
        a->basic_errno = ERRNO_DNSDEFER;
        return ST_DEFER;
    }
    int n = srv;
    if (n > 0) {
        /* SRV records give the hosts (and ports); MX records are not used */
    } else if (st == ST_OK && mx.nrr > 0) {
        for (int i = 0; i < mx.nrr && n < DNSLOOKUP_MAX_HOSTS; i++) {
            const dns_rr *rr = &mx.rr[i];
            if (mx.nrr == 1 && rr->pref == 0 && (!rr->text || !*rr->text || !strcmp(rr->text, "."))) {
                a->message = arena_printf(ctx->a, "Domain %s has a null MX (it accepts no mail)", a->domain);
                return ST_FAIL;
            }
            host_item *h = arena_calloc(ctx->a, sizeof *h);
            h->name = rr->text;
            h->mx = (int)rr->pref;
            h->dnssec = mx.sec == DNS_SEC_SECURE;
            v[n++] = h;
        }
        /* shuffle, then a stable sort by preference keeps equal ones random */
        for (int i = n - 1; i > 0; i--) {
            int j = rand() % (i + 1);
            host_item *t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
        qsort(v, (size_t)n, sizeof v[0], cmp_mx);
    } else {
        if (mx.nxdomain) {
            if (in_domains(r, "fail_defer_domains", a, ctx)) {
                a->message = arena_printf(ctx->a, "DNS has no records for %s (fail_defer_domains)", a->domain);
                a->basic_errno = ERRNO_DNSDEFER;
                return ST_DEFER;
            }
            a->message = arena_printf(ctx->a, "Unrouteable address (domain %s does not exist)", a->domain);
            return ST_DECLINED;
        }
        const char *mxd = route_opt_str(r, "mx_domains");
        const char *val;
        char *err;
        if (mxd && match_domain(a->domain, mxd, ctx->a, &val, &err) == ST_OK)
            return ST_DECLINED;     /* an MX is required for these domains */
        host_item *h = arena_calloc(ctx->a, sizeof *h);
        h->name = a->domain;
        h->mx = -1;
        v[n++] = h;
    }
    /* addresses */
    host_item *head = NULL, **tail = &head;
    bool saw_local = false;
    bool any_defer = false;
    /* AAAA before A, as Exim (ipv4_prefer: A first; ipv4_only: A only) */
    bool v4first = route_opt_flag(r, "ipv4_prefer", ctx->a), v4only = route_opt_flag(r, "ipv4_only", ctx->a);
    for (int i = 0; i < n; i++) {
        for (int pass = 0; pass < 2; pass++) {
            bool six = v4first ? pass == 1 : pass == 0;
            if (six && (v4only || !route_want_aaaa(v[i]->name, ctx->a)))
                continue;
            dns_answer ans;
            status s2 = ctx->dns.lookup(ctx->dns.ctx, v[i]->name, six ? DNS_T_AAAA : DNS_T_A, ctx->a, &ans);
            if (s2 == ST_DEFER)
                any_defer = true;
            if (s2 != ST_OK)
                continue;
            for (int k = 0; k < ans.nrr; k++) {
                if (ignored(r, ans.rr[k].text, ctx->a))
                    continue;
                if (is_local_ip(ans.rr[k].text)) {
                    saw_local = true;
                    /* the local host: hosts with a worse preference are dropped */
                    const char *self = route_opt_str(r, "self");
                    if (!head) {
                        if (self && !strcmp(self, "pass"))
                            return ST_PASS;
                        if (self && !strcmp(self, "fail")) {
                            a->message = "lowest numbered MX record points to local host";
                            return ST_FAIL;
                        }
                        if (self && !strcmp(self, "send"))
                            goto keep;
                        a->message = "lowest numbered MX record points to local host";
                        return ST_DEFER;
                    }
                    goto done;
                }
            keep:;
                host_item *h = arena_calloc(ctx->a, sizeof *h);
                *h = *v[i];
                h->address = ans.rr[k].text;
                h->next = NULL;
                *tail = h;
                tail = &h->next;
            }
        }
    }
done:
    if (route_opt_bool(r, "check_secondary_mx") && !saw_local) {
        /* this host must be a (secondary) MX for the domain */
        return ST_DECLINED;
    }
    if (!head) {
        if (any_defer) {
            a->message = arena_printf(ctx->a, "host address lookups for %s deferred", a->domain);
            a->basic_errno = ERRNO_DNSDEFER;
            return ST_DEFER;
        }
        a->message = arena_printf(ctx->a, "all relevant MX records point to non-existent hosts");
        return ST_DECLINED;
    }
    a->hosts = head;
    return route_set_transport(r, a, ctx);
}

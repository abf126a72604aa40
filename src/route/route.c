/* route.c: the router list: generic preconditions, the driver, and what
 * its result means for the address. */
#include "route/route.h"
#include "core/list.h"
#include "core/log.h"
#include "core/state.h"
#include "expand/expand.h"
#include "expand/match.h"
#include "dns/host.h"

#include <arpa/inet.h>
#include <pwd.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>
#include <sys/time.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROUTE_MAX_DEPTH 32      /* redirection nesting before a loop is assumed */

static const struct { const char *name; router_driver fn; } drivers[] = {
    { "accept", router_accept },
    { "dnslookup", router_dnslookup },
    { "manualroute", router_manualroute },
    { "redirect", router_redirect },
};

const char *route_opt_str(const driver_inst *d, const char *name)
{
    const optval *v = driver_opt(d, name);
    return v ? v->s : NULL;
}

bool route_opt_bool(const driver_inst *d, const char *name)
{
    const optval *v = driver_opt(d, name);
    if (!v)
        return false;
    if (v->is_expanded_bool) {
        bool b = false;
        char *err;
        if (expand_check_bool(v->s, ps.scratch, &b, &err) != ST_OK)
            return false;
        return b;
    }
    return v->n != 0;
}

status route_opt_expand(const driver_inst *d, const char *name, arena *a, const char **out, char **err)
{
    const char *v = route_opt_str(d, name);
    *out = NULL;
    if (!v)
        return ST_OK;
    char *res;
    status st = expand_string(v, a, &res, err);
    if (st == ST_OK)
        *out = res;
    return st;
}

void route_set_vars(const address_item *a)
{
    ps.local_part = a->local_part;
    ps.domain = a->domain;
    ps.address_data = a->address_data;
    ps.router_vars = a->r_vars;
    ps.domain_data = a->domain_data;
    ps.local_part_data = a->local_part_data;
    ps.home_dir = a->home_dir;
    ps.local_part_prefix = a->prefix;
    ps.local_part_suffix = a->suffix;
    const address_item *top = a;
    while (top->parent)
        top = top->parent;
    ps.original_local_part = top->local_part;
    ps.original_domain = top->domain;
}

static status bad_transport(address_item *a, const char *message)
{
    a->message = message;
    a->basic_errno = ERRNO_BADTRANSPORT;
    return ST_DEFER;
}

/* Exim's rf_get_transport: the transport an option of router r names
 * (expanded).  An unset option is fine unless `required` (the option's
 * name for the message); otherwise a->message and ERRNO_BADTRANSPORT say
 * what is wrong.  A tainted name is refused and logged, as Exim does. */
status route_get_transport(const driver_inst *r, const char *option, bool required, address_item *a, route_ctx *ctx,
                           const driver_inst **out)
{
    *out = NULL;
    const char *name, *text = route_opt_str(r, option);
    char *err = NULL;
    if (!text)
        return required ? bad_transport(a, arena_printf(ctx->a, "%s unset in %s router", option, r->name)) : ST_OK;
    if (route_opt_expand(r, option, ctx->a, &name, &err) != ST_OK)
        return bad_transport(a, arena_printf(ctx->a, "failed to expand transport \"%s\" in %s router: %s", text,
                                             r->name, err ? err : ""));
    if (is_tainted(name)) {
        log_write(LOG_MAIN | LOG_PANIC | LOG_STDERR, "%s%sattempt to use tainted value '%s' from '%s' for transport",
                  ps.message_id ? ps.message_id : "", ps.message_id ? " " : "", name, text);
        /* nothing for an attacker to learn */
        return bad_transport(a, "internal configuration error");
    }
    if (!(*out = config_driver(DC_TRANSPORT, name)))
        return bad_transport(a, arena_printf(ctx->a, "transport \"%s\" not found in %s router", name, r->name));
    return ST_OK;
}

status route_set_transport(const driver_inst *r, address_item *a, route_ctx *ctx)
{
    const driver_inst *t;
    status st = route_get_transport(r, "transport", false, a, ctx, &t);
    if (t)
        a->transport = t;
    return st;
}

static bool inet_pton_any(const char *s, unsigned char *buf)
{
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

status route_lookup_hosts(host_item *h, route_ctx *ctx, char **err)
{
    return route_lookup_hosts_ex(h, ctx, ROUTE_HOSTS_DEFAULT, err);
}

/* h becomes one host item per address, in order, before `next`;
 * returns the last of them (NULL when there is no address). */
static host_item *host_addresses_in(host_item *h, host_item *last, const char *address, bool dnssec, arena *a)
{
    host_item *x = h;
    if (last) {
        x = arena_alloc(a, sizeof *x);
        *x = *h;
        last->next = x;
    }
    x->address = address;
    x->dnssec = dnssec;
    return x;
}

/* Exim's host_find_byname: the system resolver, /etc/hosts first */
static status lookup_byname(host_item *h, route_ctx *ctx, host_item **last, char **err)
{
    const char **addrs, *canonical;
    status st = host_find_byname(h->name, route_want_aaaa(h->name, ctx->a), ctx->a, &addrs, &canonical);
    if (st == ST_DEFER)
        *err = arena_printf(ctx->a, "host lookup for %s deferred", h->name);
    if (st != ST_OK)
        return st;
    h->name = canonical;
    for (int i = 0; addrs[i]; i++)
        *last = host_addresses_in(h, *last, addrs[i], false, ctx->a);
    return ST_OK;
}

/* The DNS: AAAA before A (A first with ipv4_prefer, A only with ipv4_only) */
static status lookup_bydns(host_item *h, route_ctx *ctx, unsigned how, host_item **last, char **err)
{
    if (!ctx->dns.lookup) {
        *err = arena_printf(ctx->a, "no DNS resolver to look up %s", h->name);
        return ST_DEFER;
    }
    bool want6 = !(how & ROUTE_HOSTS_IPV4_ONLY) && route_want_aaaa(h->name, ctx->a);
    dns_answer ans[2] = { { .st = ST_NOTFOUND }, { .st = ST_NOTFOUND } };
    status st[2];
    int first = (how & ROUTE_HOSTS_IPV4_FIRST) ? 0 : 1;     /* [0] A, [1] AAAA */
    st[0] = ctx->dns.lookup(ctx->dns.ctx, h->name, DNS_T_A, ctx->a, &ans[0]);
    st[1] = want6 ? ctx->dns.lookup(ctx->dns.ctx, h->name, DNS_T_AAAA, ctx->a, &ans[1]) : ST_NOTFOUND;
    for (int pass = 0; pass < 2; pass++) {
        int k = pass ? !first : first;
        for (int i = 0; st[k] == ST_OK && i < ans[k].nrr; i++)
            *last = host_addresses_in(h, *last, ans[k].rr[i].text, ans[k].sec == DNS_SEC_SECURE, ctx->a);
    }
    if (*last)
        return ST_OK;
    if (st[0] == ST_DEFER || st[1] == ST_DEFER) {
        *err = arena_printf(ctx->a, "host lookup for %s deferred", h->name);
        return ST_DEFER;
    }
    return ST_NOTFOUND;
}

/* Exim's order: AAAA before A (A first with ipv4_prefer, A only with
 * ipv4_only), a multi-homed host becoming one host item per address.
 * ROUTE_HOSTS_BYNAME asks the system resolver instead of the DNS;
 * ROUTE_HOSTS_BYNAME_AFTER asks it when the DNS does not know the name. */
status route_lookup_hosts_ex(host_item *h, route_ctx *ctx, unsigned how, char **err)
{
    for (; h; h = h->next) {
        if (h->address)
            continue;
        unsigned char buf[16];
        if (inet_pton_any(h->name, buf)) {
            h->address = h->name;
            continue;
        }
        host_item *last = NULL, *next = h->next;
        status st = (how & ROUTE_HOSTS_BYNAME) ? lookup_byname(h, ctx, &last, err)
                                               : lookup_bydns(h, ctx, how, &last, err);
        if (st == ST_NOTFOUND && (how & ROUTE_HOSTS_BYNAME_AFTER))
            st = lookup_byname(h, ctx, &last, err);
        if (st == ST_DEFER)
            return ST_DEFER;
        if (st != ST_OK) {
            *err = arena_printf(ctx->a, "host %s has no address", h->name);
            return ST_FAIL;
        }
        last->next = next;
        h = last;
    }
    return ST_OK;
}

/* An option Exim treats as a flag string (ipv4_only, ipv4_prefer): true
 * unless unset, forced to fail, empty, "0", "no" or "false". */
bool route_opt_flag(const driver_inst *r, const char *name, arena *a)
{
    const char *v = route_opt_str(r, name);
    if (!v)
        return false;
    char *out, *err;
    if (expand_string(v, a, &out, &err) != ST_OK)
        return false;
    return *out && strcmp(out, "0") != 0 && strcasecmp(out, "no") != 0 && strcasecmp(out, "false") != 0;
}

bool route_want_aaaa(const char *name, arena *a)
{
    if (cfg_bool(MO_disable_ipv6))
        return false;
    const char *l = cfg_str(MO_dns_ipv4_lookup);
    char *err = NULL;
    return !(l && *l && match_domain(name, l, a, NULL, &err) == ST_OK);
}

/* ---- generic preconditions ---------------------------------------------- */

/* ST_OK: run the driver; ST_DECLINED: skip this router; else error */
static status preconditions(const driver_inst *r, address_item *a, route_ctx *ctx)
{
    char *err = NULL;
    const char *v;

    /* local part prefix / suffix */
    a->prefix = a->suffix = NULL;
    const char *lp = a->local_part;
    if ((v = route_opt_str(r, "local_part_prefix"))) {
        int sep = 0;
        char *it;
        const char *found = NULL;
        while ((it = list_next(&v, &sep, ctx->a))) {
            size_t n = strlen(it);
            if (it[0] == '*' ? (n > 1 && strlen(lp) >= n - 1) :
                (strncasecmp(lp, it, n) == 0 && strlen(lp) > n)) {
                if (it[0] == '*') {
                    const char *x = strstr(lp, it + 1);
                    if (!x)
                        continue;
                    found = arena_strndup(ctx->a, lp, (size_t)(x - lp) + n - 1);
                } else {
                    found = arena_strndup(ctx->a, lp, n);
                }
                break;
            }
        }
        if (found) {
            a->prefix = found;
            lp += strlen(found);
        } else if (!route_opt_bool(r, "local_part_prefix_optional")) {
            return ST_DECLINED;
        }
    }
    if ((v = route_opt_str(r, "local_part_suffix"))) {
        int sep = 0;
        char *it;
        const char *found = NULL;
        while ((it = list_next(&v, &sep, ctx->a))) {
            size_t n = strlen(it), l = strlen(lp);
            if (it[n - 1] != '*' && l > n && strcasecmp(lp + l - n, it) == 0) {
                found = arena_strdup(ctx->a, lp + l - n);
                break;
            }
            if (it[n - 1] == '*' && n > 1) {
                const char *x = NULL;
                for (const char *p = lp + 1; (p = strstr(p, arena_strndup(ctx->a, it, n - 1))); p++)
                    x = p;
                if (x) {
                    found = arena_strdup(ctx->a, x);
                    break;
                }
            }
        }
        if (found) {
            a->suffix = found;
            lp = arena_strndup(ctx->a, lp, strlen(lp) - strlen(found));
        } else if (!route_opt_bool(r, "local_part_suffix_optional")) {
            return ST_DECLINED;
        }
    }
    if (lp != a->local_part)
        a->local_part = arena_strdup(ctx->a, lp);
    route_set_vars(a);

    /* the conditions after the affixes, as Exim */
    if (ctx->verify && !route_opt_bool(r, "verify"))
        return ST_DECLINED;
    if (ctx->verify && ctx->verify_sender && !route_opt_bool(r, "verify_sender"))
        return ST_DECLINED;
    if (ctx->verify && !ctx->verify_sender && !route_opt_bool(r, "verify_recipient"))
        return ST_DECLINED;
    if (!ctx->verify && route_opt_bool(r, "verify_only"))
        return ST_DECLINED;
    if (ctx->address_test && !route_opt_bool(r, "address_test"))
        return ST_DECLINED;

    if ((v = route_opt_str(r, "domains"))) {
        const char *val = NULL;
        status st = match_domain(a->domain, v, ctx->a, &val, &err);
        if (st == ST_DEFER || st == ST_ERROR) {
            a->message = arena_printf(ctx->a, "domains check for router %s: %s", r->name, err ? err : "");
            return ST_DEFER;
        }
        if (st != ST_OK)
            return ST_DECLINED;
        a->domain_data = val;
        route_set_vars(a);
    }
    if ((v = route_opt_str(r, "local_parts"))) {
        const char *val = NULL;
        status st = match_local_part(a->local_part, v, route_opt_bool(r, "caseful_local_part"), ctx->a, &val, &err);
        if (st == ST_DEFER || st == ST_ERROR) {
            a->message = arena_printf(ctx->a, "local_parts check for router %s: %s", r->name, err ? err : "");
            return ST_DEFER;
        }
        if (st != ST_OK)
            return ST_DECLINED;
        a->local_part_data = val;
        route_set_vars(a);
    }
    if (route_opt_bool(r, "check_local_user")) {
        struct passwd *pw = getpwnam(a->local_part);
        if (!pw)
            return ST_DECLINED;
        a->uid = pw->pw_uid;
        a->gid = pw->pw_gid;
        a->uid_set = a->gid_set = true;
        a->home_dir = arena_strdup(ctx->a, pw->pw_dir);
        a->local_part_data = arena_strdup(ctx->a, pw->pw_name);
        route_set_vars(a);
    }
    /* router_home_directory: $home for the rest of this router (the
     * transport keeps the home it would have had) */
    if ((v = route_opt_str(r, "router_home_directory"))) {
        char *out;
        status st = expand_string(v, ctx->a, &out, &err);
        if (st == ST_OK) {
            ctx->rhome = true;
            ctx->rhome_saved = a->home_dir;
            a->home_dir = out;
            route_set_vars(a);
        } else if (st != ST_FAIL_FORCED) {
            a->message = arena_printf(ctx->a, "failed to expand \"%s\" for router_home_directory in %s router: %s", v,
                                      r->name, err ? err : "");
            return ST_DEFER;
        }
    }
    if ((v = route_opt_str(r, "senders"))) {
        const char *val;
        status st = match_address(ps.sender_address ? ps.sender_address : "", v, false, ctx->a, &val, &err);
        if (st == ST_DEFER || st == ST_ERROR) {
            a->message = arena_printf(ctx->a, "senders check for router %s: %s", r->name, err ? err : "");
            return ST_DEFER;
        }
        if (st != ST_OK)
            return ST_DECLINED;
    }
    if ((v = route_opt_str(r, "require_files"))) {
        int sep = 0;
        char *it;
        while ((it = list_next(&v, &sep, ctx->a))) {
            bool neg = it[0] == '!';
            char *path;
            if (expand_string(neg ? it + 1 : it, ctx->a, &path, &err) != ST_OK) {
                a->message = arena_printf(ctx->a, "require_files for router %s: %s", r->name, err ? err : "");
                return ST_DEFER;
            }
            struct stat sb;
            bool exists = stat(path, &sb) == 0;
            if (exists == neg)
                return ST_DECLINED;
        }
    }
    if ((v = route_opt_str(r, "condition"))) {
        bool ok = false;
        status st = expand_check_bool(v, ctx->a, &ok, &err);
        if (st == ST_FAIL_FORCED)
            return ST_DECLINED;
        if (st != ST_OK) {
            a->message = arena_printf(ctx->a, "condition check for router %s: %s", r->name, err ? err : "");
            return ST_DEFER;
        }
        if (!ok)
            return ST_DECLINED;
    }
    /* set: r_ variables, after the preconditions, before address_data */
    if ((v = route_opt_str(r, "set"))) {
        int sep = -';';
        char *item;
        while ((item = list_next(&v, &sep, ctx->a))) {
            char *eq = strchr(item, '=');
            char *name = item, *end = eq ? eq : item + strlen(item);
            while (end > name && isspace((unsigned char)end[-1]))
                end--;
            *end = '\0';
            if (!eq || strncmp(name, "r_", 2) != 0 || !name[2]) {
                a->message = arena_printf(ctx->a, "bad \"set\" item in router %s: \"%s\" (want r_<name> = <value>)",
                                          r->name, item);
                return ST_DEFER;
            }
            const char *val = eq + 1;
            while (isspace((unsigned char)*val))
                val++;
            char *out;
            status st = expand_string(val, ctx->a, &out, &err);
            if (st != ST_OK) {
                a->message = arena_printf(ctx->a, "failed to expand \"%s\" in \"set\" of router %s: %s", val, r->name,
                                          err ? err : "");
                return ST_DEFER;
            }
            acl_var *nv = arena_calloc(ctx->a, sizeof *nv);
            nv->name = arena_strdup(ctx->a, name);
            nv->value = out;
            nv->next = a->r_vars;          /* the newest first: later settings win */
            a->r_vars = nv;
            route_set_vars(a);
        }
    }
    /* address_data: forced failure declines */
    if ((v = route_opt_str(r, "address_data"))) {
        char *out;
        status st = expand_string(v, ctx->a, &out, &err);
        if (st == ST_FAIL_FORCED)
            return ST_DECLINED;
        if (st != ST_OK) {
            a->message = arena_printf(ctx->a, "address_data for router %s: %s", r->name, err ? err : "");
            return ST_DEFER;
        }
        a->address_data = out;
        route_set_vars(a);
    }
    if ((v = route_opt_str(r, "errors_to"))) {
        char *out;
        if (expand_string(v, ctx->a, &out, &err) == ST_OK)
            a->errors_to = out;
    }
    /* headers_add / headers_remove: expanded now (Exim), added to what the
     * routers before (and the parents of a generated address) asked for */
    const char *hv;
    char *hx;
    if ((hv = route_opt_str(r, "headers_add")) && expand_string(hv, ctx->a, &hx, &err) == ST_OK && *hx)
        a->headers_add = a->headers_add ? arena_printf(ctx->a, "%s%s%s", a->headers_add,
                                                       a->headers_add[strlen(a->headers_add) - 1] == '\n' ? "" : "\n", hx)
                                        : hx;
    if ((hv = route_opt_str(r, "headers_remove")) && expand_string(hv, ctx->a, &hx, &err) == ST_OK && *hx)
        a->headers_remove = a->headers_remove ? arena_printf(ctx->a, "%s:%s", a->headers_remove, hx) : hx;
    return ST_OK;
}

static router_driver find_driver(const driver_inst *r)
{
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
        if (strcmp(drivers[i].name, r->info->name) == 0)
            return drivers[i].fn;
    return NULL;
}

/* rand() shuffles MX and manualroute hosts: each process its own sequence */
void route_seed_random(void)
{
    pid_t pid = getpid();
    if (ps.random_seeded == pid)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    srand((unsigned)(tv.tv_sec ^ tv.tv_usec ^ ((unsigned)pid << 16)));
    ps.random_seeded = pid;
}

static status route_list(address_item *a, route_ctx *ctx, address_item **generated);

status route_address(address_item *a, route_ctx *ctx, address_item **generated)
{
    status st = route_list(a, ctx, generated);
    /* Exim's addresses start with "unknown error" (-1): a router that
     * defers without saying why is logged "defer (-1)" */
    if (st == ST_DEFER && a->basic_errno == 0)
        a->basic_errno = ERRNO_UNKNOWNERROR;
    return st;
}

/* The routers in turn, from the first (or a->start_router) */
static status route_list(address_item *a, route_ctx *ctx, address_item **generated)
{
    route_seed_random();
    *generated = NULL;
    if (ctx->depth > ROUTE_MAX_DEPTH) {
        a->message = "too many levels of redirection (routing loop?)";
        return ST_FAIL;
    }
    if (a->flags & AF_REPLY) {
        /* an autoreply from a filter: the redirect router set its
         * transport (reply_transport) already, or failed it */
        if (a->transport)
            return ST_OK;
        if (a->basic_errno == ERRNO_BADTRANSPORT)
            return ST_DEFER;          /* reply_transport unset or unknown */
        if (!a->message)
            a->message = "no transport for an autoreply";
        return ST_FAIL;
    }
    const driver_inst *r = a->start_router ? a->start_router : cfg->drivers[DC_ROUTER];
    const char *cannot = NULL;
    /* each router starts from the whole local part; one that strips an
     * affix and then declines leaves it stripped (Exim logs a failure
     * after that as 'lp@domain <original>') */
    const char *orig_lp = a->local_part;
    while (r) {
        /* what a router that declines must not leave behind (check_local_user) */
        const char *orig_home = a->home_dir;
        uid_t orig_uid = a->uid;
        gid_t orig_gid = a->gid;
        bool orig_uid_set = a->uid_set, orig_gid_set = a->gid_set;
        ps.router_name = r->name;
        /* an address a router generated is not handled by that router again
         * when it is the same as an ancestor (loop prevention, as Exim) */
        bool loop = false;
        for (const address_item *p = a->parent; p; p = p->parent)
            if (p->router == r && strcasecmp(p->address, a->address) == 0)
                loop = true;
        if (loop) {
            r = r->next;
            continue;
        }
        a->local_part = orig_lp;
        status pre = preconditions(r, a, ctx);
        if (pre != ST_OK && ctx->rhome) {
            a->home_dir = ctx->rhome_saved;
            ctx->rhome = false;
        }
        if (pre == ST_DEFER)
            return ST_DEFER;
        if (pre == ST_DECLINED) {
            a->home_dir = orig_home;
            a->uid = orig_uid, a->gid = orig_gid, a->uid_set = orig_uid_set, a->gid_set = orig_gid_set;
            r = r->next;
            continue;
        }
        router_driver fn = find_driver(r);
        if (!fn) {
            a->message = arena_printf(ctx->a, "router %s: driver %s cannot route yet", r->name, r->info->name);
            return ST_DEFER;
        }
        a->router = r;
        status st = fn(r, a, ctx, generated);
        if (ctx->rhome) {
            a->home_dir = ctx->rhome_saved;
            ctx->rhome = false;
            route_set_vars(a);
        }
        if (route_opt_str(r, "cannot_route_message"))
            cannot = route_opt_str(r, "cannot_route_message");
        /* pass_on_timeout: a DNS lookup that timed out passes the address on */
        if (st == ST_DEFER && a->basic_errno == ERRNO_DNSDEFER && route_opt_bool(r, "pass_on_timeout"))
            st = ST_PASS;
        if (st == ST_DECLINED || st == ST_PASS) {
            a->home_dir = orig_home;
            a->uid = orig_uid, a->gid = orig_gid, a->uid_set = orig_uid_set, a->gid_set = orig_gid_set;
            a->transport = NULL;
            a->hosts = NULL;
            if (st == ST_DECLINED && !route_opt_bool(r, "more"))
                break;
            const char *pass = st == ST_PASS ? route_opt_str(r, "pass_router") : NULL;
            if (pass) {
                const driver_inst *p = config_driver(DC_ROUTER, pass);
                r = p ? p : r->next;
            } else {
                r = r->next;
            }
            continue;
        }
        if (st == ST_OK && !a->transport && !(a->flags & (AF_PIPE | AF_FILE)) && !ctx->verify && !ctx->address_test) {
            a->message = arena_printf(ctx->a, "router %s: no transport set", r->name);
            return ST_DEFER;
        }
        if (st == ST_REROUTED) {
            /* the pipes, files and replies a redirect set up run in the
             * directories this router gives its transports */
            const char *th = NULL, *tc = NULL;
            char *verr = NULL;
            route_opt_expand(r, "transport_home_directory", ctx->a, &th, &verr);
            route_opt_expand(r, "transport_current_directory", ctx->a, &tc, &verr);
            for (address_item *c = *generated; c && (th || tc); c = c->next) {
                if (c->flags & (AF_PIPE | AF_FILE | AF_REPLY)) {
                    if (th)
                        c->home_dir = th;
                    if (tc)
                        c->current_dir = tc;
                }
            }
        }
        if (st == ST_OK) {
            /* the directories the transport runs in */
            const char *v = NULL;
            char *verr = NULL;
            if (route_opt_expand(r, "transport_home_directory", ctx->a, &v, &verr) == ST_OK && v)
                a->home_dir = v;
            v = NULL;
            if (route_opt_expand(r, "transport_current_directory", ctx->a, &v, &verr) == ST_OK && v)
                a->current_dir = v;
            /* fail_verify: verification fails when this router accepts */
            if (ctx->verify && (route_opt_bool(r, "fail_verify") ||
                                (ctx->verify_sender ? route_opt_bool(r, "fail_verify_sender")
                                                    : route_opt_bool(r, "fail_verify_recipient")))) {
                a->message = arena_printf(ctx->a, "%s router forced verify failure", r->name);
                a->user_message = a->message;
                return ST_FAIL;
            }
            if (route_opt_bool(r, "initgroups"))
                a->initgroups = true;
        }
        return st;
    }
    if (cannot) {
        char *out, *err;
        if (expand_string(cannot, ctx->a, &out, &err) == ST_OK)
            a->message = out;
    }
    if (!a->message)
        a->message = "Unrouteable address";
    a->user_message = a->message;
    a->router = NULL;
    return ST_FAIL;
}

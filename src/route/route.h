/* route.h: routing an address through the configured routers, with
 * Exim's generic preconditions (domains, local_parts, check_local_user,
 * senders, condition, verify_only, ...) and its outcomes.  Each router
 * driver is a function in its own file. */
#ifndef POSTERN_ROUTE_H
#define POSTERN_ROUTE_H

#include "deliver/address.h"
#include "dns/dns.h"
#include "spool/spool.h"

typedef struct route_ctx {
    arena *a;                  /* for generated addresses and strings */
    bool verify;               /* routing for verification (-bv, verify =) */
    bool verify_sender;
    bool address_test;         /* -bt */
    dns_iface dns;             /* for dnslookup (lookup == NULL: no DNS) */
    int depth;                 /* redirection depth (loops) */
    bool rhome;                /* router_home_directory replaced a->home_dir ... */
    const char *rhome_saved;   /* ... which was this */
} route_ctx;

/* Router driver results: ST_OK (accepted: transport/hosts set),
 * ST_DECLINED, ST_PASS, ST_REROUTED (*generated holds new addresses),
 * ST_DISCARD (:blackhole:), ST_FAIL and ST_DEFER (a->message set). */
typedef status (*router_driver)(const driver_inst *r, address_item *a, route_ctx *ctx,
                                address_item **generated);

status router_accept(const driver_inst *r, address_item *a, route_ctx *ctx, address_item **gen);
status router_manualroute(const driver_inst *r, address_item *a, route_ctx *ctx, address_item **gen);
status router_redirect(const driver_inst *r, address_item *a, route_ctx *ctx, address_item **gen);
status router_dnslookup(const driver_inst *r, address_item *a, route_ctx *ctx, address_item **gen);

/* Route one address from the first router (or from `start` when not
 * NULL).  Same results as a driver, after "more", "pass_router" and the
 * end of the list ("Unrouteable address") are applied. */
status route_address(address_item *a, route_ctx *ctx, address_item **generated);
/* Seed rand() once per process (hosts are shuffled with it). */
void route_seed_random(void);

/* Helpers for drivers */
const char *route_opt_str(const driver_inst *d, const char *name);      /* unexpanded */
status route_opt_expand(const driver_inst *d, const char *name, arena *a, const char **out, char **err);
bool route_opt_bool(const driver_inst *d, const char *name);
/* Set $local_part, $domain, ... for expansions about a. */
void route_set_vars(const address_item *a);
/* The transport an option of router r names (expanded), Exim's way:
 * ST_DEFER with a->message and ERRNO_BADTRANSPORT when it cannot be had
 * (unset, when `required`; not expandable, tainted, unknown). */
status route_get_transport(const driver_inst *r, const char *option, bool required, address_item *a, route_ctx *ctx,
                           const driver_inst **out);
/* Find the transport named by the router's transport option (expanded). */
status route_set_transport(const driver_inst *r, address_item *a, route_ctx *ctx);
/* Look up host names of a host list (A/AAAA) through ctx->dns. */
status route_lookup_hosts(host_item *h, route_ctx *ctx, char **err);
enum {
    ROUTE_HOSTS_DEFAULT = 0, ROUTE_HOSTS_IPV4_FIRST = 1, ROUTE_HOSTS_IPV4_ONLY = 2,
    ROUTE_HOSTS_BYNAME = 4,        /* the system resolver (/etc/hosts), not the DNS */
    ROUTE_HOSTS_BYNAME_AFTER = 8,  /* the system resolver when the DNS does not know the name */
};
status route_lookup_hosts_ex(host_item *h, route_ctx *ctx, unsigned how, char **err);
/* ipv4_only / ipv4_prefer style options (expanded; "", 0, no, false: off) */
bool route_opt_flag(const driver_inst *r, const char *name, arena *a);
/* AAAA records wanted for this host name?  Not with disable_ipv6, nor for
 * names in dns_ipv4_lookup. */
bool route_want_aaaa(const char *name, arena *a);

/* verify = recipient / sender: ST_OK verified, ST_FAIL or ST_DEFER with
 * *msg ("Unrouteable address", ...). */
status route_verify_address(const char *address, bool sender, arena *a, const char **msg);
/* The same; with success_on_redirect a redirection verifies at once (no
 * child is routed); *routed (when not NULL) gets the address item that
 * routing accepted (its transport and hosts, for a callout), else NULL. */
status route_verify_address_full(const char *address, bool sender, bool success_on_redirect, arena *a,
                                 const char **msg, const address_item **routed);

/* -bt / -bv: route the addresses and print what Exim prints; returns the
 * exit status (0 all fine, 1 something deferred, 2 something failed). */
#include <stdio.h>
int route_test(char **addrs, int n, bool verify, bool verify_sender, FILE *out);

#endif

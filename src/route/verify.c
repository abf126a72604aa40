/* verify.c: address verification for ACLs (verify = recipient, verify =
 * sender): the address is routed with the routers' verify settings, as
 * Exim does.  Callouts (asking the remote host) are src/acl/acl_callout.c. */
#include "route/route.h"
#include "core/state.h"

#include <string.h>

status route_verify_address(const char *address, bool sender, arena *a, const char **msg)
{
    return route_verify_address_full(address, sender, false, a, msg, NULL);
}

status route_verify_address_full(const char *address, bool sender, bool success_on_redirect, arena *a,
                                 const char **msg, const address_item **routed)
{
    *msg = NULL;
    if (routed)
        *routed = NULL;
    address_item *ad = arena_calloc(a, sizeof *ad);
    const char *at = strrchr(address, '@');
    if (!at || at == address || !at[1]) {
        *msg = "malformed address";
        return ST_FAIL;
    }
    ad->address = address;
    ad->local_part = arena_strndup(a, address, (size_t)(at - address));
    ad->domain = at + 1;
    ad->rcpt_index = -1;
    route_ctx ctx = { .a = a, .verify = true, .verify_sender = sender };
    char *err = NULL;
    dns_resolver *res = dns_process_resolver(&err, a);
    if (res)
        ctx.dns = dns_iface_unbound(res);
    /* routing sets $local_part and $domain: keep the caller's */
    const char *lp = ps.local_part, *dom = ps.domain;
    address_item *gen = NULL;
    status st = route_address(ad, &ctx, &gen);
    /* a redirection to one ordinary address: that one is verified
     * instead; more than one, or a pipe, file or reply, verifies (Exim) */
    int depth = 0;
    address_item *last = ad;
    while (!success_on_redirect && st == ST_REROUTED && gen && !gen->next && !(gen->flags & (AF_PIPE | AF_FILE | AF_REPLY)) &&
           depth++ < 16) {
        address_item *child = gen;
        gen = NULL;
        ctx.depth = depth;
        st = route_address(child, &ctx, &gen);
        last = child;
        if (st != ST_OK && st != ST_REROUTED)
            ad->message = child->message;
    }
    ps.local_part = lp;
    ps.domain = dom;
    if (st == ST_OK && routed)
        *routed = last;
    if (st == ST_OK || st == ST_DISCARD || st == ST_REROUTED)
        return ST_OK;
    *msg = ad->message ? ad->message : "Unrouteable address";
    return st == ST_DEFER ? ST_DEFER : ST_FAIL;
}

/* accept.c: the accept router: takes every address that passes the
 * preconditions and hands it to its transport. */
#include "route/route.h"

status router_accept(const driver_inst *r, address_item *a, route_ctx *ctx, address_item **gen)
{
    *gen = NULL;
    return route_set_transport(r, a, ctx);
}

/* transport.h: transports deliver routed addresses.  Local transports
 * (appendfile, pipe, lmtp, queuefile) get one address at a time and run
 * in a child process under the address's uid/gid; smtp gets a batch of
 * addresses for the same host list.  Each sets a->result (ST_OK,
 * ST_DEFER, ST_FAIL) and a->message for every address it was given. */
#ifndef POSTERN_TRANSPORT_H
#define POSTERN_TRANSPORT_H

#include "deliver/address.h"
#include "spool/spool.h"
#include "transport/write.h"

typedef struct tp_ctx {
    spool_msg *m;
    int data_fd;               /* the -D file, open (read it with pread) */
    const spool_settings *ss;
    arena *a;
} tp_ctx;

typedef status (*transport_driver)(const driver_inst *t, address_item *addrs, tp_ctx *ctx);

status transport_appendfile(const driver_inst *t, address_item *addrs, tp_ctx *ctx);
status transport_pipe(const driver_inst *t, address_item *addrs, tp_ctx *ctx);
status transport_smtp(const driver_inst *t, address_item *addrs, tp_ctx *ctx);
status transport_queuefile(const driver_inst *t, address_item *addrs, tp_ctx *ctx);
status transport_lmtp(const driver_inst *t, address_item *addrs, tp_ctx *ctx);

transport_driver transport_find(const driver_inst *t);
bool transport_is_local(const driver_inst *t);

/* Option helpers (expanded values in ctx->a; NULL when unset) */
const char *tp_opt(const driver_inst *t, const char *name);
status tp_opt_expand(const driver_inst *t, const char *name, tp_ctx *ctx, const char **out, char **err);
bool tp_opt_bool(const driver_inst *t, const char *name);
long long tp_opt_int(const driver_inst *t, const char *name);

/* The header lines a transport puts first (Return-path:, Envelope-to:,
 * Delivery-date:) and those it adds at the end (headers_add of router and
 * transport), each ending in \n; NULL when none. */
const char *tp_top_headers(const driver_inst *t, const address_item *a, tp_ctx *ctx);
const char *tp_added_headers(const driver_inst *t, const address_item *a, tp_ctx *ctx);

/* Set the variables for expansions about a ($local_part, $domain, ...) */
void tp_set_vars(const driver_inst *t, const address_item *a);

#endif

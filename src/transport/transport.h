/* transport.h: transports deliver routed addresses.  Local transports
 * (appendfile, pipe, lmtp, queuefile, autoreply) get one address at a time and run
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
    int gen_fd;                /* local delivery child: the pipe to the delivery
                                * process (results, generated messages); else -1 */
    address_item *log_order;   /* set by a transport that took the batch in another
                                * order (smtp: fallback hosts): the batch, relinked,
                                * in the order its results are logged */
} tp_ctx;

/* A message a transport makes (autoreply): the delivery process queues it. */
typedef struct tp_generated {
    const char *sender;        /* "" for <> */
    const char *const *rcpts;
    int nrcpt;
    const char *headers;       /* header lines ending in \n */
    const char *body;
    bool by_delivery;          /* submitted by the delivery process itself (Exim's quota
                                * warning), not by the transport's user (an autoreply) */
} tp_generated;

typedef status (*transport_driver)(const driver_inst *t, address_item *addrs, tp_ctx *ctx);

status transport_appendfile(const driver_inst *t, address_item *addrs, tp_ctx *ctx);
status transport_pipe(const driver_inst *t, address_item *addrs, tp_ctx *ctx);
status transport_smtp(const driver_inst *t, address_item *addrs, tp_ctx *ctx);
status transport_queuefile(const driver_inst *t, address_item *addrs, tp_ctx *ctx);
status transport_lmtp(const driver_inst *t, address_item *addrs, tp_ctx *ctx);
status transport_autoreply(const driver_inst *t, address_item *addrs, tp_ctx *ctx);

/* The pipe transport's option combinations that Exim refuses when it
 * reads the configuration (Exim's wording); NULL when consistent. */
const char *transport_pipe_check(const driver_inst *t, arena *a);

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

/* In a local delivery child: hand a generated message to the delivery
 * process, which queues it after the transport has finished (a child
 * running as the recipient cannot write the spool).  ST_DEFER with *err
 * when there is no delivery process to take it. */
status tp_generate_message(tp_ctx *ctx, const tp_generated *g, char **err);

/* The records on the pipe from a local delivery child to the delivery
 * process: netstrings, "G" sender rcpts("\n"-joined) headers body by_delivery(0/1) for a
 * generated message, "R" status message user_message pass_message(0/1)
 * basic_errno return_output freeze(0/1) confirmation transport for each address of the
 * batch in order.  tp_next_field reads one netstring from *p (advancing it), NULL at
 * the end or on a malformed record. */
bool tp_put_field(int fd, const char *s, size_t n);
void tp_put_results(int fd, const address_item *addrs);
const char *tp_next_field(const char **p, const char *end, size_t *len, arena *a);

/* The headers to remove: the routers' headers_remove and the transport's
 * (expanded), a colon list; NULL when none. */
const char *tp_removed_headers(const driver_inst *t, const address_item *a, tp_ctx *ctx);

/* Set the variables for expansions about a ($local_part, $domain, ...) */
void tp_set_vars(const driver_inst *t, const address_item *a);

#endif
